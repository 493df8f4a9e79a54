#pragma once
/// The heap keyed-state backend. Every distinct key that holds state gets a
/// dense slot number; each state keeps its values in arrays indexed by
/// slot. A record costs one key -> slot lookup however many states it
/// touches, and an int64 ValueState costs about 40 bytes per key in all
/// (resident, at 10 M int64 keys). A key's slot is released when its last
/// state is cleared.
///
/// The arrays (values with presence bits, TTL times, the key of each slot)
/// are stored copy-on-write in fixed-size chunks, so a checkpoint takes a
/// snapshot by sharing the chunks (O(slots / chunk) work on the task
/// thread) and writes it on another thread while the task goes on
/// processing: the task copies a chunk before its first write to it while
/// a snapshot still holds it (see SlotArray). Snapshots and restores work
/// per key group (the key group of a slot's key is computed when the
/// snapshot is written; the key index keeps each key group's keys
/// together, so a restore's inserts stay in the caches, see KeyIndex).

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <algorithm>
#include <any>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "freshet/functions.h"
#include "freshet/internal/huge_page_memory.h"
#include "freshet/internal/operators.h"
#include "freshet/internal/snapshot.h"
#include "freshet/internal/timer_service.h"
#include "freshet/key_groups.h"
#include "freshet/serializer.h"
#include "freshet/state.h"
#include "freshet/status.h"

namespace freshet::internal {

inline constexpr uint32_t kNoSlot = 0xffffffffu;

/// Slots per chunk of a SlotArray<T>: about 32 KiB of items (4096 int64
/// values, 1024 strings or vectors), a power of two in [256, 4096]. Larger
/// chunks make the chunk table smaller (it is read on every access and
/// copied by every snapshot); smaller ones make a copy-on-write copy cheaper.
template <class T>
inline constexpr uint32_t kChunkSlots =
    static_cast<uint32_t>(std::clamp<size_t>(std::bit_floor(size_t{32768} / sizeof(T)), 256, 4096));

/// An array indexed by slot with a bit per slot (whether the slot holds an
/// item), stored in chunks of kChunkSlots<T> slots that snapshots share
/// copy-on-write.
///
/// Threading: the owner (the task thread) reads and writes the array.
/// Share() gives a snapshot references to the current chunks; the snapshot
/// reads them on one other thread. The owner writes a chunk in place only
/// while no snapshot holds it: it keeps an "exclusive" flag per chunk,
/// which Share() clears, and before the next write to such a chunk checks
/// the chunk's reference count and copies the chunk if a snapshot still
/// holds it. Reads never copy. The reference count is intrusive rather than
/// a std::shared_ptr because reusing a chunk in place needs an acquire load
/// of the count (so the snapshot's reads happen before the owner's write),
/// and libstdc++'s shared_ptr::use_count() is a relaxed load: ThreadSanitizer
/// rightly reports that pattern as a race. A chunk nobody references any
/// more goes to the array's Recycler, whose chunks the next new chunks and
/// copies reuse.
template <class T>
class SlotArray {
 public:
  static constexpr uint32_t kSlots = kChunkSlots<T>;
  static constexpr uint32_t kShift = static_cast<uint32_t>(std::countr_zero(kSlots));

  class Recycler;
  struct Chunk {
    Chunk(std::atomic<uint32_t>* references, Recycler* recycler) : references(references), recycler(recycler) {}
    Chunk(const Chunk& other, std::atomic<uint32_t>* references, Recycler* recycler)
        : references(references), recycler(recycler), bits(other.bits), items(other.items) {}
    Chunk(const Chunk&) = delete;
    Chunk& operator=(const Chunk&) = delete;
    bool Bit(uint32_t slot) const { return (bits[Index(slot) / 64] >> (slot % 64)) & 1u; }
    // The count lives in the recycler's dense table, so that a snapshot,
    // which takes a reference to every chunk, touches a few cache lines
    // rather than one page per chunk.
    std::atomic<uint32_t>* references;
    Recycler* recycler;  // takes the chunk when its last reference goes
    std::array<uint64_t, kSlots / 64> bits{};
    std::array<T, kSlots> items{};
  };

  /// Makes the array's chunks and keeps those that neither the array nor a
  /// snapshot uses any more for the array's next new chunks and copies, so
  /// that these need no fresh memory: on the virtual machines we measured
  /// a page fault costs about 10 us per 4 KiB page, ~90 us for a fresh
  /// 32 KiB chunk against ~3 us to copy one. In a job that checkpoints
  /// periodically it holds about the chunks the last snapshot's copies
  /// replaced. Chunks are carved from slabs of 2 MiB (or of one chunk, if
  /// larger): the first slab is not advised for huge pages, so that it is
  /// faulted in 4 KiB at a time as its chunks are used and a small array
  /// stays small; the following ones are (see huge_page_memory.h): one
  /// fault per slab rather than 512. Slabs are freed when the recycler
  /// goes, after the array and all its snapshots. Shared (hence the
  /// shared_ptr) by the array and its snapshots, which may drop the last
  /// reference to a chunk on the writer thread: besides the reference
  /// counts, the free list is the one thing two threads touch, under a
  /// mutex.
  class Recycler {
   public:
    static constexpr size_t kSlabBytes = (sizeof(Chunk) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    static constexpr size_t kChunksPerSlab = kSlabBytes / sizeof(Chunk);

    Recycler() = default;
    Recycler(const Recycler&) = delete;
    Recycler& operator=(const Recycler&) = delete;
    ~Recycler() {
      // Every chunk made is free by now: the array and its snapshots, which
      // hold this recycler, have returned theirs.
      for (Chunk* chunk : free_) chunk->~Chunk();
      for (void* slab : slabs_) FreeHugePageMemory(slab);
    }
    /// A new chunk with one reference: a copy of `from`, or empty when
    /// null. Owner thread only (other threads use the counts, never the
    /// table; a deque does not move its elements).
    Chunk* Make(const Chunk* from) {
      if (slabs_.empty() || carved_ == kChunksPerSlab) {
        slabs_.reserve(slabs_.size() + 1);
        slabs_.push_back(AllocateHugePageMemory(kSlabBytes, /*huge=*/!slabs_.empty()));
        carved_ = 0;
      }
      void* memory = static_cast<char*>(slabs_.back()) + sizeof(Chunk) * carved_;
      std::atomic<uint32_t>* count = &counts_.emplace_back(1);
      Chunk* chunk;
      try {
        chunk = from != nullptr ? new (memory) Chunk(*from, count, this) : new (memory) Chunk(count, this);
      } catch (...) {
        counts_.pop_back();  // the memory stays uncarved for the next chunk
        throw;
      }
      ++carved_;
      return chunk;
    }
    void Put(Chunk* chunk) {
      std::lock_guard<std::mutex> lock(mutex_);
      free_.push_back(chunk);
    }
    /// A chunk to reuse, or nullptr.
    Chunk* Take() {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_.empty()) return nullptr;
      Chunk* chunk = free_.back();
      free_.pop_back();
      return chunk;
    }

   private:
    std::deque<std::atomic<uint32_t>> counts_;  // one per chunk made
    std::vector<void*> slabs_;                  // owner thread only, until destruction
    size_t carved_ = 0;                         // chunks made from the last slab
    std::mutex mutex_;
    std::vector<Chunk*> free_;
  };

  /// An owning reference to a chunk.
  class ChunkRef {
   public:
    ChunkRef() = default;
    /// Adopts a chunk just allocated (its count is 1).
    explicit ChunkRef(Chunk* chunk) : chunk_(chunk) {}
    ChunkRef(const ChunkRef& other) : chunk_(other.chunk_) {
      if (chunk_ != nullptr) chunk_->references->fetch_add(1, std::memory_order_relaxed);
    }
    ChunkRef(ChunkRef&& other) noexcept : chunk_(std::exchange(other.chunk_, nullptr)) {}
    ChunkRef& operator=(ChunkRef other) noexcept {
      std::swap(chunk_, other.chunk_);
      return *this;
    }
    ~ChunkRef() {
      if (chunk_ == nullptr || chunk_->references->fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      chunk_->recycler->Put(chunk_);
    }
    Chunk* Get() const { return chunk_; }
    /// True when this is the only reference. An acquire: what the holders
    /// of dropped references did before dropping them happens before what
    /// the caller does next.
    bool Unique() const { return chunk_->references->load(std::memory_order_acquire) == 1; }

   private:
    Chunk* chunk_ = nullptr;
  };

  /// The array as it was when shared: read-only, for one thread at a time.
  class Snapshot {
   public:
    Snapshot() = default;
    Snapshot(std::shared_ptr<Recycler> recycler, std::vector<ChunkRef> chunks)
        : recycler_(std::move(recycler)), chunks_(std::move(chunks)) {}
    bool Has(uint32_t slot) const {
      size_t i = slot >> kShift;
      return i < chunks_.size() && chunks_[i].Get() != nullptr && chunks_[i].Get()->Bit(slot);
    }
    /// REQUIRES: Has(slot).
    const T& Get(uint32_t slot) const { return chunks_[slot >> kShift].Get()->items[Index(slot)]; }
    /// Starts loading the slot's bit and item into the cache.
    void Prefetch(uint32_t slot) const {
      size_t i = slot >> kShift;
      if (i >= chunks_.size() || chunks_[i].Get() == nullptr) return;
      __builtin_prefetch(&chunks_[i].Get()->bits[Index(slot) / 64]);
      __builtin_prefetch(&chunks_[i].Get()->items[Index(slot)]);
    }

   private:
    std::shared_ptr<Recycler> recycler_;  // outlives chunks_, which may go back to it
    std::vector<ChunkRef> chunks_;
  };

  SlotArray() : recycler_(std::make_shared<Recycler>()) {}
  SlotArray(const SlotArray&) = delete;
  SlotArray& operator=(const SlotArray&) = delete;

  bool Has(uint32_t slot) const {
    size_t i = slot >> kShift;
    return i < chunks_.size() && chunks_[i].chunk.Get() != nullptr && chunks_[i].chunk.Get()->Bit(slot);
  }
  /// REQUIRES: Has(slot).
  const T& Get(uint32_t slot) const { return chunks_[slot >> kShift].chunk.Get()->items[Index(slot)]; }
  /// The slot's item, to change in place (a write: the chunk is copied
  /// first if a snapshot holds it). REQUIRES: Has(slot).
  T& Mutable(uint32_t slot) { return Writable(slot).items[Index(slot)]; }
  /// Marks the slot as holding an item and returns the item to write;
  /// `*added` tells whether the slot held none before.
  T& Set(uint32_t slot, bool* added) {
    Chunk& chunk = Writable(slot);
    uint64_t& word = chunk.bits[Index(slot) / 64];
    uint64_t bit = uint64_t{1} << (slot % 64);
    *added = (word & bit) == 0;
    if (*added) word |= bit;  // no store when set: keeps the line clean
    return chunk.items[Index(slot)];
  }
  /// Marks the slot as empty and resets its item (freeing what it owns);
  /// true when it held one.
  bool Unset(uint32_t slot) {
    if (!Has(slot)) return false;
    Chunk& chunk = Writable(slot);
    chunk.bits[Index(slot) / 64] &= ~(uint64_t{1} << (slot % 64));
    chunk.items[Index(slot)] = T{};
    return true;
  }
  /// A snapshot of the array: references to every chunk. O(slots / kSlots).
  Snapshot Share() {
    std::vector<ChunkRef> chunks;
    chunks.reserve(chunks_.size());
    for (Entry& e : chunks_) {
      chunks.push_back(e.chunk);
      e.exclusive = false;
    }
    return Snapshot(recycler_, std::move(chunks));
  }

 private:
  struct Entry {
    ChunkRef chunk;
    bool exclusive = false;  // no snapshot shares the chunk (owner-only)
  };
  static uint32_t Index(uint32_t slot) { return slot & (kSlots - 1); }

  // The hot path stays small enough to inline; the rest is out of line.
  Chunk& Writable(uint32_t slot) {
    size_t i = slot >> kShift;
    if (i < chunks_.size() && chunks_[i].exclusive) [[likely]] return *chunks_[i].chunk.Get();
    return MakeWritable(i);
  }
  /// Grows the table, allocates the chunk, or copies it when a snapshot
  /// still holds it.
  [[gnu::noinline]] Chunk& MakeWritable(size_t i) {
    if (i >= chunks_.size()) chunks_.resize(i + 1);
    Entry& e = chunks_[i];
    if (e.chunk.Get() == nullptr) {
      e.chunk = ChunkRef(NewChunk(nullptr));
    } else if (!e.chunk.Unique()) {
      e.chunk = ChunkRef(NewChunk(e.chunk.Get()));  // a snapshot still reads the old chunk
    }
    e.exclusive = true;
    return *e.chunk.Get();
  }
  /// A chunk with one reference: a copy of `from`, or empty when null.
  /// Reuses a recycled chunk if there is one.
  Chunk* NewChunk(const Chunk* from) {
    Chunk* chunk = recycler_->Take();
    if (chunk == nullptr) return recycler_->Make(from);
    try {
      if (from != nullptr) {
        chunk->bits = from->bits;
        chunk->items = from->items;
      } else {
        chunk->bits.fill(0);
        chunk->items.fill(T{});
      }
    } catch (...) {
      recycler_->Put(chunk);
      throw;
    }
    chunk->references->store(1, std::memory_order_relaxed);
    return chunk;
  }

  std::shared_ptr<Recycler> recycler_;  // outlives chunks_, which go back to it
  std::vector<Entry> chunks_;
};

/// What a state needs from its backend: the current key's slot and time.
class SlotAccess {
 public:
  virtual ~SlotAccess() = default;
  /// Slot of the current key, or kNoSlot when the key holds no state.
  virtual uint32_t ReadSlot() = 0;
  /// Slot of the current key, assigned if needed.
  virtual uint32_t WriteSlot() = 0;
  /// A state gained / lost its value for `slot`.
  virtual void OnSet(uint32_t slot) = 0;
  virtual void OnCleared(uint32_t slot) = 0;
  /// Processing time, for TTL.
  virtual Timestamp Now() = 0;
  /// Number of slots ever assigned (for incremental cleanup).
  virtual uint32_t SlotCount() const = 0;
};

/// One state's values as captured by a snapshot. Built on the task thread;
/// then read on one other thread (the snapshot writer), never touching the
/// live state.
class StateValuesSnapshot {
 public:
  virtual ~StateValuesSnapshot() = default;
  /// True when `slot` held a value that had not expired at the snapshot.
  virtual bool Has(uint32_t slot) const = 0;
  /// Serializes the slot's value. REQUIRES: Has(slot).
  virtual void Serialize(uint32_t slot, ByteWriter& out) const = 0;
  /// Starts loading what Has and Serialize read for `slot` into the cache.
  virtual void Prefetch(uint32_t slot) const = 0;
};

/// The untyped face of one named keyed state, of any backend.
class KeyedStateBase {
 public:
  virtual ~KeyedStateBase() = default;
  /// The value type (the element type of lists, the accumulator of
  /// aggregating state; the value type of maps).
  virtual const std::type_info& Type() const = 0;
  /// "value", "list", "map", "reducing" or "aggregating".
  virtual const char* Kind() const = 0;
};

/// The untyped face of one named state of the heap backend: values per slot.
class StateBase : public KeyedStateBase {
 public:
  /// True when the slot holds a value that has not expired. A read.
  virtual bool HasValue(uint32_t slot) = 0;
  /// Serializes the slot's value (which must exist). A read.
  virtual void Serialize(uint32_t slot, ByteWriter& out) = 0;
  /// Restores the slot's value from bytes; false when they do not decode.
  virtual bool Restore(uint32_t slot, ByteReader& in) = 0;
  /// Captures the values (sharing their chunks) for a snapshot, judging
  /// expiry at the current processing time. Task thread.
  virtual std::unique_ptr<StateValuesSnapshot> Capture() = 0;
};

/// A point-in-time view of a keyed backend, taken on the task thread at
/// the barrier and written afterwards without touching the live state.
///
/// Threading: after it is taken, its methods are called from one thread at
/// a time (the snapshot writer), while the task thread keeps changing the
/// backend; it may be destroyed on that thread.
class KeyedStateSnapshot {
 public:
  virtual ~KeyedStateSnapshot() = default;
  /// Key groups holding state, ascending.
  virtual const std::vector<int>& KeyGroups() const = 0;
  /// Writes one key group in the format of SnapshotKeyGroup.
  virtual void WriteKeyGroup(int key_group, ByteWriter& out) const = 0;
  /// The registered states, for the compatibility check on restore.
  virtual const std::vector<StateInfo>& Info() const = 0;
  /// True when the snapshot also holds the backend's own files (an
  /// incremental checkpoint of the RocksDB backend): an output that takes
  /// shared files (SnapshotOutput::SharedDirectory) then gets WriteFiles
  /// instead of the key groups; any other output gets the key groups.
  virtual bool HasFiles() const { return false; }
  /// Writes the backend's files: uploads those no completed checkpoint
  /// holds, references the others (SnapshotOutput::AddIncrementalKeyedState).
  virtual Status WriteFiles(SnapshotOutput& out) const {
    (void)out;
    return Status::FailedPrecondition("this keyed state snapshot has no files");
  }
};

class RocksDBStateStore;

/// The keyed-state interface RuntimeContext talks to: named states,
/// created by KeyedStateAccess (keyed_state.h) for the backend at hand.
class KeyedStateStore {
 public:
  virtual ~KeyedStateStore() = default;
  virtual KeyedStateBase* Find(const std::string& name) = 0;
  /// Takes a state made for this backend (see Slots() and Rocks()).
  virtual KeyedStateBase* Register(const std::string& name, std::unique_ptr<KeyedStateBase> state) = 0;
  /// The heap backend's slots; null for other backends.
  virtual SlotAccess* Slots() { return nullptr; }
  /// The RocksDB backend's store; null for other backends.
  virtual RocksDBStateStore* Rocks() { return nullptr; }

  /// Where registering a state with another kind or type than the snapshot
  /// being restored declared is reported (OperatorContext::restore_problems,
  /// which the task reports all at once); the state then starts empty.
  /// Without a sink such a registration throws NonRecoverableError.
  virtual void SetRestoreProblems(std::vector<std::string>* sink, std::string operator_name) {
    problems_ = sink;
    operator_name_ = std::move(operator_name);
  }

 protected:
  /// Reports a restored state that does not match; returns when there is
  /// a sink (the caller drops the restored entries), throws otherwise.
  void ReportRestoreProblem(const std::string& message) {
    if (problems_ == nullptr) throw NonRecoverableError(message);
    problems_->push_back("operator '" + operator_name_ + "': " + message);
  }

 private:
  std::vector<std::string>* problems_ = nullptr;
  std::string operator_name_;
};

/// One state's entries in a key-group block: `count` times (key, u32
/// length, value), `size` bytes from `begin`.
struct KeyGroupStateEntries {
  std::string name;
  const uint8_t* begin;
  size_t size;
  uint64_t count;
};

/// Splits a key-group block (the format of KeyedStateBackend::
/// SnapshotKeyGroup) into its states' entries, checking every entry before
/// the caller applies any: `read_key(ByteReader&)` reads one key and
/// returns its key group, or -1 when the key does not decode. Corruption
/// when the block does not decode or a key is outside `range`.
template <class ReadKey>
Result<std::vector<KeyGroupStateEntries>> ParseKeyGroupBlock(const uint8_t* data, size_t size,
                                                             const KeyGroupRange& range, ReadKey read_key) {
  ByteReader r(data, size);
  uint32_t num_states = 0;
  r.Read(&num_states, sizeof(num_states));
  std::vector<KeyGroupStateEntries> parsed;
  for (uint32_t i = 0; i < num_states && !r.Failed(); ++i) {
    std::string name;
    TypeSerializer<std::string>::Deserialize(r, name);
    uint64_t n = 0;
    r.Read(&n, sizeof(n));
    const uint8_t* begin = data + (size - r.Remaining());
    for (uint64_t e = 0; e < n && !r.Failed(); ++e) {
      int key_group = read_key(r);
      if (key_group < 0) {
        r.Fail();
        break;
      }
      uint32_t len = 0;
      r.Read(&len, sizeof(len));
      if (r.Take(len) == nullptr) break;
      if (!range.Contains(key_group)) {
        return Status::Corruption("restored key belongs to key group " + std::to_string(key_group) +
                                  ", outside this operator's range");
      }
    }
    if (r.Failed()) break;
    parsed.push_back({std::move(name), begin, static_cast<size_t>(data + (size - r.Remaining()) - begin), n});
  }
  if (r.Failed() || r.Remaining() != 0) return Status::Corruption("keyed state snapshot does not decode");
  return parsed;
}

/// The keyed-state backend of one keyed operator instance, for keys of
/// type K: the heap backend (HeapKeyedStateBackend) or RocksDB
/// (RocksDBKeyedStateBackend, rocksdb_keyed_state.h); operators make one
/// with CreateKeyedStateBackend (keyed_state.h). Both write and read the
/// same backend-independent snapshot format, so a snapshot of one restores
/// into the other.
///
/// Threading: the task thread, except that a Snapshot() is written on
/// another thread (see KeyedStateSnapshot).
template <class K>
class KeyedStateBackend : public KeyedStateStore {
 public:
  /// Sets the key that state accesses refer to until the next call.
  /// REQUIRES: `key` outlives those accesses (it is not copied).
  virtual void SetCurrentKey(const K& key) = 0;
  /// Captures the state of all keys for a checkpoint: cheap on the task
  /// thread; the result is written on another thread while processing goes
  /// on. Expiry (TTL) is judged at the processing time of this call.
  virtual std::unique_ptr<KeyedStateSnapshot> Snapshot() = 0;
  /// Loads a key group in the format KeyedStateSnapshot::WriteKeyGroup
  /// writes. Entries of states not registered yet wait until they are.
  virtual Status RestoreKeyGroup(const uint8_t* data, size_t size) = 0;
  /// Restores from the backend's own files written by WriteFiles (the old
  /// instances whose key groups overlap this one's). Before any state is
  /// registered and any key group restored. The heap backend does not read
  /// them: it reports a restore problem naming the way out (a savepoint),
  /// so the job fails without restarting.
  virtual Status RestoreFiles(const std::vector<RestoredIncrementalState>& files) {
    (void)files;
    this->ReportRestoreProblem(
        "the keyed state was checkpointed in the RocksDB backend's own files (an incremental checkpoint) and "
        "restores only into the RocksDB backend; to change the state backend, take a savepoint and resume from it");
    return Status::Ok();
  }
  /// Checkpoint `id` completed (task thread): a backend writing its own
  /// files may reference this checkpoint's files from later ones.
  virtual void NotifyCheckpointComplete(CheckpointId id) { (void)id; }
  /// The states declared by the snapshot being restored: registering one
  /// of them with another kind or type is an error.
  virtual void SetRestoredInfo(std::vector<StateInfo> info) = 0;
  /// Calls `fn(key)` for every key holding a value of state `name`, with
  /// that key set as the current key; `fn` may change or clear state.
  virtual void ForEachKeyWithState(const std::string& name, const std::function<void(const K&)>& fn) = 0;
  /// Keys that hold state (may scan the whole state: for tests and tools).
  virtual size_t NumKeys() = 0;

  /// Writes one key group in the backend-independent format: u32 number of
  /// states, then per state (by name): string name, u64 number of entries,
  /// entries (key bytes, u32 length, value bytes). Expired values are left
  /// out. Takes a whole snapshot to do so: for tests and tools.
  void SnapshotKeyGroup(int key_group, ByteWriter& out) { Snapshot()->WriteKeyGroup(key_group, out); }
};

/// TTL bookkeeping shared by the state kinds: a last-access time per slot.
class TtlClock {
 public:
  /// The times as captured by a snapshot, with the processing time then.
  class Snapshot {
   public:
    Snapshot() = default;
    Snapshot(SlotArray<Timestamp>::Snapshot times, int64_t ttl, Timestamp now)
        : enabled_(true), times_(std::move(times)), ttl_(ttl), now_(now) {}
    bool Expired(uint32_t slot) const {
      if (!enabled_) return false;
      return (times_.Has(slot) ? times_.Get(slot) : 0) + ttl_ <= now_;
    }

   private:
    bool enabled_ = false;
    SlotArray<Timestamp>::Snapshot times_;
    int64_t ttl_ = 0;
    Timestamp now_ = 0;
  };

  TtlClock(SlotAccess* slots, std::optional<StateTtlConfig> ttl) : slots_(slots), ttl_(std::move(ttl)) {}
  bool Enabled() const { return ttl_.has_value(); }
  bool Expired(uint32_t slot) {
    if (!ttl_) return false;
    return (times_.Has(slot) ? times_.Get(slot) : 0) + ttl_->ttl.count() <= slots_->Now();
  }
  void Touch(uint32_t slot, bool write) {
    if (!ttl_) return;
    if (!write && ttl_->update_type != StateTtlConfig::UpdateType::kOnReadAndWrite) return;
    bool added = false;
    times_.Set(slot, &added) = slots_->Now();
  }
  /// Round-robin over slots: returns up to `cleanup_entries_per_access` slots to check.
  template <class F>
  void Incremental(F check) {
    if (!ttl_) return;
    uint32_t slot_count = slots_->SlotCount();
    if (slot_count == 0) return;
    for (int i = 0; i < ttl_->cleanup_entries_per_access; ++i) {
      if (cursor_ >= slot_count) cursor_ = 0;
      check(cursor_++);
    }
  }
  Snapshot Capture() {
    if (!ttl_) return Snapshot();
    return Snapshot(times_.Share(), ttl_->ttl.count(), slots_->Now());
  }

 private:
  SlotAccess* slots_;
  std::optional<StateTtlConfig> ttl_;
  SlotArray<Timestamp> times_;
  uint32_t cursor_ = 0;
};

/// Base of the heap states: presence, TTL, slot bookkeeping, snapshots.
template <class V>
class HeapState : public StateBase {
 public:
  HeapState(SlotAccess* slots, std::optional<StateTtlConfig> ttl) : slots_(slots), ttl_(slots, std::move(ttl)) {}
  bool HasValue(uint32_t slot) override { return values_.Has(slot) && !ttl_.Expired(slot); }
  void Serialize(uint32_t slot, ByteWriter& out) override { TypeSerializer<V>::Serialize(values_.Get(slot), out); }
  bool Restore(uint32_t slot, ByteReader& in) override {
    V v{};
    TypeSerializer<V>::Deserialize(in, v);
    if (in.Failed()) return false;
    bool added = false;
    values_.Set(slot, &added) = std::move(v);
    if (added) slots_->OnSet(slot);
    ttl_.Touch(slot, true);
    return true;
  }
  std::unique_ptr<StateValuesSnapshot> Capture() override {
    return std::make_unique<Snapshot>(values_.Share(), ttl_.Capture());
  }
  const std::type_info& Type() const override { return typeid(V); }

 protected:
  class Snapshot final : public StateValuesSnapshot {
   public:
    Snapshot(typename SlotArray<V>::Snapshot values, TtlClock::Snapshot ttl)
        : values_(std::move(values)), ttl_(std::move(ttl)) {}
    bool Has(uint32_t slot) const override { return values_.Has(slot) && !ttl_.Expired(slot); }
    void Serialize(uint32_t slot, ByteWriter& out) const override {
      TypeSerializer<V>::Serialize(values_.Get(slot), out);
    }
    void Prefetch(uint32_t slot) const override { values_.Prefetch(slot); }

   private:
    typename SlotArray<V>::Snapshot values_;
    TtlClock::Snapshot ttl_;
  };

  /// The current key's value, or nullptr (expired values are dropped here).
  /// A read: it never copies a chunk (unless TTL is refreshed on reads).
  const V* ReadValue() {
    if (ttl_.Enabled()) [[unlikely]] return ReadValueWithTtl();
    uint32_t slot = slots_->ReadSlot();
    if (slot == kNoSlot || !values_.Has(slot)) return nullptr;
    return &values_.Get(slot);
  }
  /// The value the previous ReadValue() returned, to change in place: the
  /// value's chunk is copied first if a snapshot shares it. Does not touch
  /// TTL. REQUIRES: the previous ReadValue() returned a value.
  V& UpdateInPlace() { return values_.Mutable(slots_->ReadSlot()); }
  /// The current key's value, created empty if absent.
  V& WriteValue() {
    uint32_t slot = slots_->WriteSlot();
    if (ttl_.Enabled()) [[unlikely]] return WriteValueWithTtl(slot);
    bool added = false;
    V& v = values_.Set(slot, &added);
    if (added) slots_->OnSet(slot);
    return v;
  }
  void ClearValue() {
    uint32_t slot = slots_->ReadSlot();
    if (slot != kNoSlot) Drop(slot);
  }
  void Drop(uint32_t slot) {
    if (values_.Unset(slot)) slots_->OnCleared(slot);
  }

 private:
  // With TTL (out of line, so that the paths without stay small).
  [[gnu::noinline]] const V* ReadValueWithTtl() {
    CleanupSome();
    uint32_t slot = slots_->ReadSlot();
    if (slot == kNoSlot || !values_.Has(slot)) return nullptr;
    if (ttl_.Expired(slot)) {
      Drop(slot);
      return nullptr;
    }
    ttl_.Touch(slot, false);
    return &values_.Get(slot);
  }
  [[gnu::noinline]] V& WriteValueWithTtl(uint32_t slot) {
    if (values_.Has(slot) && ttl_.Expired(slot)) {
      Drop(slot);
      // Dropping the key's last value released its slot.
      slot = slots_->WriteSlot();
    }
    bool added = false;
    V& v = values_.Set(slot, &added);
    if (added) slots_->OnSet(slot);
    ttl_.Touch(slot, true);
    return v;
  }
  void CleanupSome() {
    ttl_.Incremental([this](uint32_t slot) {
      if (values_.Has(slot) && ttl_.Expired(slot)) Drop(slot);
    });
  }

 protected:
  SlotAccess* slots_;
  TtlClock ttl_;
  SlotArray<V> values_;
};

template <class T>
class HeapValueState final : public HeapState<T>, public ValueState<T> {
 public:
  HeapValueState(SlotAccess* slots, const ValueStateDescriptor<T>& d)
      : HeapState<T>(slots, d.Ttl()), default_(d.DefaultValue()) {}
  T Value() override {
    if (const T* v = this->ReadValue()) return *v;
    return default_ ? *default_ : T{};
  }
  std::optional<T> Get() override {
    if (const T* v = this->ReadValue()) return *v;
    return std::nullopt;
  }
  void Update(const T& value) override { this->WriteValue() = value; }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "value"; }

 private:
  std::optional<T> default_;
};

template <class T>
class HeapListState final : public HeapState<std::vector<T>>, public ListState<T> {
 public:
  HeapListState(SlotAccess* slots, const ListStateDescriptor<T>& d) : HeapState<std::vector<T>>(slots, d.Ttl()) {}
  const std::vector<T>& Get() override {
    if (const auto* v = this->ReadValue()) return *v;
    return empty_;
  }
  void Add(const T& value) override { this->WriteValue().push_back(value); }
  void AddAll(const std::vector<T>& values) override {
    if (values.empty()) return;
    auto& v = this->WriteValue();
    v.insert(v.end(), values.begin(), values.end());
  }
  void Update(std::vector<T> values) override {
    if (values.empty()) {
      Clear();
    } else {
      this->WriteValue() = std::move(values);
    }
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "list"; }

 private:
  const std::vector<T> empty_;
};

template <class K, class V>
class HeapMapState final : public HeapState<std::unordered_map<K, V, KeyHasher<K>>>, public MapState<K, V> {
 public:
  using Map = std::unordered_map<K, V, KeyHasher<K>>;
  HeapMapState(SlotAccess* slots, const MapStateDescriptor<K, V>& d) : HeapState<Map>(slots, d.Ttl()) {}
  std::optional<V> Get(const K& key) override {
    if (const Map* m = this->ReadValue()) {
      auto it = m->find(key);
      if (it != m->end()) return it->second;
    }
    return std::nullopt;
  }
  void Put(const K& key, const V& value) override { this->WriteValue()[key] = value; }
  void Remove(const K& key) override {
    const Map* m = this->ReadValue();
    if (m == nullptr || m->find(key) == m->end()) return;  // nothing to change: no copy
    Map& map = this->UpdateInPlace();
    map.erase(key);
    if (map.empty()) this->ClearValue();
  }
  bool Contains(const K& key) override {
    const Map* m = this->ReadValue();
    return m != nullptr && m->count(key) > 0;
  }
  bool IsEmpty() override {
    const Map* m = this->ReadValue();
    return m == nullptr || m->empty();
  }
  void ForEach(const std::function<void(const K&, const V&)>& f) override {
    if (const Map* m = this->ReadValue()) {
      for (const auto& [k, v] : *m) f(k, v);
    }
  }
  std::vector<std::pair<K, V>> Entries() override {
    std::vector<std::pair<K, V>> out;
    if (const Map* m = this->ReadValue()) out.assign(m->begin(), m->end());
    return out;
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "map"; }
};

template <class T>
class HeapReducingState final : public HeapState<T>, public ReducingState<T> {
 public:
  HeapReducingState(SlotAccess* slots, const ReducingStateDescriptor<T>& d)
      : HeapState<T>(slots, d.Ttl()), reduce_(d.ReduceFunction()) {}
  std::optional<T> Get() override {
    if (const T* v = this->ReadValue()) return *v;
    return std::nullopt;
  }
  void Add(const T& value) override {
    if (this->ReadValue() != nullptr) {
      T& v = this->UpdateInPlace();
      v = reduce_(v, value);
      this->ttl_.Touch(this->slots_->ReadSlot(), true);
    } else {
      this->WriteValue() = value;
    }
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "reducing"; }

 private:
  std::function<T(const T&, const T&)> reduce_;
};

template <class A>
class HeapAggregatingState final : public HeapState<typename A::AccumulatorType>,
                                   public AggregatingState<typename A::InputType, typename A::OutputType> {
 public:
  using ACC = typename A::AccumulatorType;
  HeapAggregatingState(SlotAccess* slots, const AggregatingStateDescriptor<A>& d)
      : HeapState<ACC>(slots, d.Ttl()), agg_(d.Aggregate()) {}
  std::optional<typename A::OutputType> Get() override {
    if (const ACC* acc = this->ReadValue()) return agg_.GetResult(*acc);
    return std::nullopt;
  }
  void Add(const typename A::InputType& value) override {
    ACC* acc = nullptr;
    if (this->ReadValue() == nullptr) {
      ACC& fresh = this->WriteValue();
      fresh = agg_.CreateAccumulator();
      acc = &fresh;
    } else {
      acc = &this->UpdateInPlace();
      this->ttl_.Touch(this->slots_->ReadSlot(), true);
    }
    *acc = agg_.Add(value, std::move(*acc));
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "aggregating"; }

 private:
  A agg_;
};

/// The key index of a heap backend: key -> slot, one hash map whose
/// layout follows the key groups. Its hash is the murmur mix that assigns
/// the key group (MurmurMix(KeyHash(key)), whose remainder by the max
/// parallelism is the key group; see key_groups.h), rotated right by
/// log2(max parallelism) when that is a power of two, so that the key
/// group becomes the hash's top bits. The map takes the position from the
/// top bits (and a per-entry tag from the low byte, here bits of the mix
/// above the key group), so the keys of one key group occupy one
/// contiguous slice of the table. With another max parallelism the hash
/// is the mix as it is: lookups work the same, a restore's inserts are
/// spread over the table.
///
/// Keys of 8 bytes (integers, doubles) are stored packed with their slot:
/// 12 bytes an entry rather than 16 as a std::pair (4 of them padding).
template <class K, bool kPacked>
struct KeyIndexEntry {};  // only the packed form is used
template <class K>
struct [[gnu::packed]] KeyIndexEntry<K, true> {
  K key;
  uint32_t slot;
};

template <class K>
class KeyIndex {
 public:
  explicit KeyIndex(int max_parallelism) : map_(0, Hash(max_parallelism)) {}
  /// The key's slot, or kNoSlot.
  uint32_t Find(const K& key) const {
    auto it = map_.find(key);
    if (it == map_.end()) return kNoSlot;
    if constexpr (kPacked) {
      return it->slot;
    } else {
      return it->second;
    }
  }
  /// REQUIRES: `key` is not in the index.
  void Insert(const K& key, uint32_t slot) {
    if constexpr (kPacked) {
      map_.insert(PackedEntry{key, slot});
    } else {
      map_.emplace(key, slot);
    }
  }
  void Erase(const K& key) { map_.erase(key); }
  /// Makes room for `n` keys in all: rehashes once, now, unless there is
  /// room already (never shrinks).
  void Reserve(size_t n) {
    if (n > map_.max_load()) map_.reserve(n);
  }
  size_t Size() const { return map_.size(); }

 private:
  static constexpr bool kPacked = (std::is_arithmetic_v<K> || std::is_enum_v<K>) && sizeof(K) == 8;
  using PackedEntry = KeyIndexEntry<K, kPacked>;
  class Hash {
   public:
    using is_avalanching = void;  // the map uses the hash as it is
    using is_transparent = void;  // packed entries are looked up by key
    explicit Hash(int max_parallelism)
        : rotation_(std::has_single_bit(static_cast<unsigned>(max_parallelism))
                        ? std::countr_zero(static_cast<unsigned>(max_parallelism))
                        : 0) {}
    size_t operator()(const K& key) const {
      return static_cast<size_t>(std::rotr(MurmurMix(KeyHash<K>()(key)), rotation_));
    }
    size_t operator()(const PackedEntry& entry) const { return (*this)(K(entry.key)); }

   private:
    int rotation_;
  };
  struct PackedEqual {
    using is_transparent = void;
    bool operator()(const PackedEntry& a, const PackedEntry& b) const { return K(a.key) == K(b.key); }
    bool operator()(const K& a, const PackedEntry& b) const { return a == K(b.key); }
    bool operator()(const PackedEntry& a, const K& b) const { return K(a.key) == b; }
  };
  using Map = std::conditional_t<
      kPacked, boost::unordered_flat_set<PackedEntry, Hash, PackedEqual, HugePageAllocator<PackedEntry>>,
      boost::unordered_flat_map<K, uint32_t, Hash, std::equal_to<K>,
                                HugePageAllocator<std::pair<const K, uint32_t>>>>;
  Map map_;
};

/// Keyed state of one operator instance for keys of type K.
///
/// The key index (key -> slot, see KeyIndex) is one hash map whose layout
/// follows the key groups: with a power-of-two max parallelism the keys of
/// one key group occupy one contiguous slice of its table (1 / max
/// parallelism of it). A restore, which reads one key group at a time,
/// thus inserts into a slice that fits in the caches rather than missing
/// them on every insert, as one map per key group would, while a lookup
/// costs what it costs in an unordered map (no key group to compute: with
/// a map per key group the random read-modify-write benchmark lost about
/// a fifth of its throughput). The index and the slot arrays are advised
/// for transparent huge pages (huge_page_memory.h).
///
/// Threading: used by the task thread only, except that snapshots taken by
/// Snapshot() are written on another thread (see KeyedStateSnapshot).
template <class K>
class HeapKeyedStateBackend final : private SlotAccess, public KeyedStateBackend<K> {
 public:
  /// REQUIRES: max_parallelism <= 32768 (the configuration's limit).
  HeapKeyedStateBackend(KeyGroupRange range, int max_parallelism, ProcessingTimeService* time)
      : range_(range),
        max_parallelism_(max_parallelism),
        time_(time),
        index_(max_parallelism) {
    FRESHET_CHECK_MSG(max_parallelism >= 1 && max_parallelism <= 32768, "max parallelism out of [1, 32768]");
  }

  /// Sets the key that state accesses refer to until the next call.
  /// REQUIRES: `key` outlives those accesses (it is not copied, to keep
  /// string keys free of copies per record).
  void SetCurrentKey(const K& key) override {
    current_ = &key;
    current_slot_ = kUnknown;
  }

  StateBase* Find(const std::string& name) override {
    auto it = states_.find(name);
    return it == states_.end() ? nullptr : it->second.get();
  }
  StateBase* Register(const std::string& name, std::unique_ptr<KeyedStateBase> made) override {
    auto* heap_state = dynamic_cast<StateBase*>(made.get());
    if (heap_state == nullptr) throw std::logic_error("state '" + name + "' was not made for the heap backend");
    std::unique_ptr<StateBase> state(heap_state);
    made.release();
    if (states_.size() >= 255) throw std::logic_error("an operator can hold at most 255 keyed states");
    for (const StateInfo& old : restored_info_) {
      if (old.name == name && (old.kind != state->Kind() || old.type_name != state->Type().name())) {
        this->ReportRestoreProblem("keyed state '" + name + "' was saved as " + old.kind + " state of type '" +
                                   old.type_name + "' and is now requested as " + state->Kind() +
                                   " state of type '" + state->Type().name() +
                                   "'; a state's kind and type must not change across a restore");
        pending_.erase(name);  // the saved values do not fit: the state starts empty
      }
    }
    StateBase* s = states_.emplace(name, std::move(state)).first->second.get();
    ApplyPending(name, *s);
    return s;
  }

  void SetRestoredInfo(std::vector<StateInfo> info) override { restored_info_ = std::move(info); }

  /// Captures the state of all keys: shares the chunks of every state's
  /// values, TTL times and the slots' keys, O(slots / chunk) on the task
  /// thread (1 to 7 ms for 40 M int64 keys). The returned snapshot is
  /// written on another thread while the task keeps processing; expiry is
  /// judged at the processing time of this call.
  std::unique_ptr<KeyedStateSnapshot> Snapshot() override {
    std::vector<CapturedState> states;
    std::vector<StateInfo> info;
    states.reserve(states_.size());
    for (const auto& [name, state] : states_) {
      states.push_back({name, state->Capture()});
      info.push_back({name, state->Kind(), state->Type().name()});
    }
    return std::make_unique<CopyOnWriteSnapshot>(max_parallelism_, slot_count_, keys_.Share(), std::move(states),
                                                 std::move(info));
  }

  /// Loads a key group written by SnapshotKeyGroup. States not registered
  /// yet keep their entries (as bytes) until they are.
  Status RestoreKeyGroup(const uint8_t* data, size_t size) override {
    K key{};
    Result<std::vector<KeyGroupStateEntries>> parsed = ParseKeyGroupBlock(data, size, range_, [&](ByteReader& r) {
      TypeSerializer<K>::Deserialize(r, key);
      return r.Failed() ? -1 : KeyGroupOf(key);
    });
    if (!parsed.IsOk()) return parsed.GetStatus();
    for (KeyGroupStateEntries& entries : *parsed) {
      if (entries.count == 0) continue;
      auto state = states_.find(entries.name);
      if (state != states_.end()) {
        ApplyEntries(entries.name, *state->second, entries.begin, entries.size, entries.count);
      } else {
        PendingEntries& pending = pending_[entries.name];
        pending.blocks.push_back(
            {std::string(reinterpret_cast<const char*>(entries.begin), entries.size), entries.count});
        pending.count += entries.count;
      }
    }
    return Status::Ok();
  }
  SlotAccess* Slots() override { return this; }

  void ForEachKeyWithState(const std::string& name, const std::function<void(const K&)>& fn) override {
    StateBase* state = Find(name);
    if (state == nullptr) return;
    // The keys are copied first: `fn` may clear state, which releases
    // slots. The backend keeps a pointer to the current key, so the copies
    // live on in `visited_keys_` after the loop.
    std::vector<K> keys;
    ForEachKey([&](const K& key, int, uint32_t slot) {
      if (state->HasValue(slot)) keys.push_back(key);
    });
    for (const K& key : keys) {
      SetCurrentKey(key);
      fn(key);
    }
    visited_keys_ = std::move(keys);
  }

  /// Keys that hold state.
  size_t NumKeys() override { return index_.Size(); }
  size_t NumKeys() const { return index_.Size(); }
  const std::map<std::string, std::unique_ptr<StateBase>>& States() const { return states_; }

  /// Calls `f(key, key_group, slot)` for every key holding state, in slot
  /// order. `key` stays valid until the backend changes.
  template <class F>
  void ForEachKey(F f) const {
    for (uint32_t slot = 0; slot < slot_count_; ++slot) {
      if (!keys_.Has(slot)) continue;
      const K& key = keys_.Get(slot);
      f(key, KeyGroupOf(key), slot);
    }
  }
  int KeyGroupOf(const K& key) const { return AssignToKeyGroup(key, max_parallelism_); }
  const KeyGroupRange& Range() const { return range_; }

 private:
  static constexpr uint32_t kUnknown = 0xfffffffeu;

  struct CapturedState {
    std::string name;
    std::unique_ptr<StateValuesSnapshot> values;
  };

  /// Restored entries of a state not registered yet: per key group its
  /// (key, u32 length, value) entries, as in the snapshot.
  struct PendingEntries {
    struct Block {
      std::string bytes;
      uint64_t count;  // entries in `bytes`
    };
    std::vector<Block> blocks;
    uint64_t count = 0;
  };

  /// A snapshot sharing the backend's chunks. The slots are bucketed by
  /// key group once, in one pass, on the writer thread (when first asked).
  class CopyOnWriteSnapshot final : public KeyedStateSnapshot {
   public:
    CopyOnWriteSnapshot(int max_parallelism, uint32_t slot_count, typename SlotArray<K>::Snapshot keys,
                        std::vector<CapturedState> states, std::vector<StateInfo> info)
        : max_parallelism_(max_parallelism),
          slot_count_(slot_count),
          keys_(std::move(keys)),
          states_(std::move(states)),
          info_(std::move(info)) {}

    const std::vector<int>& KeyGroups() const override {
      Bucket();
      return groups_;
    }
    void WriteKeyGroup(int key_group, ByteWriter& out) const override {
      Bucket();
      size_t begin = 0, end = 0;
      if (key_group >= 0 && key_group < max_parallelism_) {
        begin = group_begin_[static_cast<size_t>(key_group)];
        end = group_begin_[static_cast<size_t>(key_group) + 1];
      }
      uint32_t num_states = static_cast<uint32_t>(states_.size());
      out.Write(&num_states, sizeof(num_states));
      ByteWriter value;
      for (size_t s = 0; s < states_.size(); ++s) {
        const CapturedState& state = states_[s];
        TypeSerializer<std::string>::Serialize(state.name, out);
        uint64_t n = begin < end ? entry_counts_[s * static_cast<size_t>(max_parallelism_) +
                                                 static_cast<size_t>(key_group)]
                                 : 0;
        out.Write(&n, sizeof(n));
        for (size_t i = begin; i < end; ++i) {
          // The slots of a key group are scattered: load a few ahead.
          constexpr size_t kAhead = 8;
          if (i + kAhead < end) {
            keys_.Prefetch(slots_[i + kAhead]);
            state.values->Prefetch(slots_[i + kAhead]);
          }
          uint32_t slot = slots_[i];
          if (!state.values->Has(slot)) continue;
          TypeSerializer<K>::Serialize(keys_.Get(slot), out);
          value.Reset();
          state.values->Serialize(slot, value);
          uint32_t len = static_cast<uint32_t>(value.Size());
          out.Write(&len, sizeof(len));
          out.Write(value.Data(), value.Size());
        }
      }
    }
    const std::vector<StateInfo>& Info() const override { return info_; }

   private:
    // Counting sort of the slots holding a live value by key group (within
    // a group the slots stay ascending, so the chunks are read in order),
    // counting the entries of every state in every group on the way.
    void Bucket() const {
      if (bucketed_) return;
      bucketed_ = true;
      constexpr uint16_t kNone = 0xffff;
      const size_t groups = static_cast<size_t>(max_parallelism_);
      std::vector<uint16_t, HugePageAllocator<uint16_t>> group_of(slot_count_, kNone);
      std::vector<size_t> counts(groups + 1, 0);
      entry_counts_.assign(states_.size() * groups, 0);
      std::vector<uint8_t> has(states_.size());
      for (uint32_t slot = 0; slot < slot_count_; ++slot) {
        if (!keys_.Has(slot)) continue;
        bool live = false;
        for (size_t s = 0; s < states_.size(); ++s) {
          has[s] = states_[s].values->Has(slot) ? 1 : 0;
          live = live || has[s] != 0;
        }
        if (!live) continue;
        auto kg = static_cast<uint16_t>(AssignToKeyGroup(keys_.Get(slot), max_parallelism_));
        group_of[slot] = kg;
        ++counts[kg];
        for (size_t s = 0; s < states_.size(); ++s) entry_counts_[s * groups + kg] += has[s];
      }
      group_begin_.assign(counts.size(), 0);
      size_t total = 0;
      for (size_t kg = 0; kg + 1 < counts.size(); ++kg) {
        group_begin_[kg] = total;
        if (counts[kg] > 0) groups_.push_back(static_cast<int>(kg));
        total += counts[kg];
      }
      group_begin_.back() = total;
      slots_.resize(total);
      std::vector<size_t> next(group_begin_.begin(), group_begin_.end() - 1);
      for (uint32_t slot = 0; slot < slot_count_; ++slot) {
        if (group_of[slot] != kNone) slots_[next[group_of[slot]]++] = slot;
      }
    }

    int max_parallelism_;
    uint32_t slot_count_;
    typename SlotArray<K>::Snapshot keys_;
    std::vector<CapturedState> states_;
    std::vector<StateInfo> info_;
    // Built by Bucket() on the writer thread.
    mutable bool bucketed_ = false;
    mutable std::vector<int> groups_;
    mutable std::vector<uint32_t, HugePageAllocator<uint32_t>> slots_;  // slots holding a value, by key group
    mutable std::vector<size_t> group_begin_;  // index into slots_ per key group, plus the end
    mutable std::vector<uint64_t> entry_counts_;  // per state and key group
  };

  uint32_t ReadSlot() override {
    if (current_slot_ == kUnknown) current_slot_ = index_.Find(*current_);
    return current_slot_;
  }
  uint32_t WriteSlot() override {
    if (current_slot_ < kUnknown) [[likely]] return current_slot_;  // the key's slot, known
    return AddCurrentKey();
  }
  /// WriteSlot when the key's slot is not known: looks it up, and assigns
  /// one if the key holds no state.
  [[gnu::noinline]] uint32_t AddCurrentKey() {
    uint32_t slot = ReadSlot();
    if (slot != kNoSlot) return slot;
    slot = AssignSlot(*current_);
    index_.Insert(*current_, slot);
    current_slot_ = slot;
    return slot;
  }
  /// A free slot for `key`; the caller enters it in the index.
  uint32_t AssignSlot(const K& key) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = slot_count_++;
      live_.push_back(0);
    }
    bool added = false;
    keys_.Set(slot, &added) = key;
    return slot;
  }
  void ApplyPending(const std::string& name, StateBase& state) {
    auto it = pending_.find(name);
    if (it == pending_.end()) return;
    PendingEntries pending = std::move(it->second);
    pending_.erase(it);
    // Restoring into a fresh backend: size the key index once.
    if (index_.Size() == 0) {
      index_.Reserve(pending.count);
      live_.reserve(pending.count);
    }
    for (auto& block : pending.blocks) {
      ApplyEntries(name, state, reinterpret_cast<const uint8_t*>(block.bytes.data()), block.bytes.size(),
                   block.count);
      std::string().swap(block.bytes);
    }
  }
  /// Restores the `count` entries (key, u32 length, value) that
  /// RestoreKeyGroup checked (those of one key group when written by
  /// Snapshot(): their inserts go to one slice of the key index).
  void ApplyEntries(const std::string& name, StateBase& state, const uint8_t* data, size_t size, uint64_t count) {
    ByteReader r(data, size);
    K key{};
    for (uint64_t e = 0; e < count && r.Remaining() > 0; ++e) {
      TypeSerializer<K>::Deserialize(r, key);
      uint32_t len = 0;
      r.Read(&len, sizeof(len));
      const uint8_t* bytes = r.Take(len);
      FRESHET_CHECK_MSG(!r.Failed(), "restored entries were checked when they were read");
      uint32_t slot = index_.Find(key);
      if (slot == kNoSlot) {
        slot = AssignSlot(key);
        index_.Insert(key, slot);  // the probe Find made is still in the cache
      }
      ByteReader value(bytes, len);
      if (!state.Restore(slot, value)) {
        throw std::runtime_error("state '" + name + "' does not decode from its snapshot");
      }
    }
    // The current key may have gained a slot.
    current_slot_ = kUnknown;
  }

  void OnSet(uint32_t slot) override { ++live_[slot]; }
  void OnCleared(uint32_t slot) override {
    if (--live_[slot] > 0) return;
    index_.Erase(keys_.Get(slot));
    keys_.Unset(slot);
    free_.push_back(slot);
    if (current_slot_ == slot) current_slot_ = kUnknown;
  }
  Timestamp Now() override { return time_ != nullptr ? time_->CurrentProcessingTime() : 0; }
  uint32_t SlotCount() const override { return slot_count_; }

  KeyGroupRange range_;
  int max_parallelism_;
  ProcessingTimeService* time_;
  const K* current_ = nullptr;
  uint32_t current_slot_ = kUnknown;
  KeyIndex<K> index_;
  SlotArray<K> keys_;    // the key of each assigned slot
  uint32_t slot_count_ = 0;  // slots ever assigned
  // States holding a value per slot (at most 255 states per operator).
  std::vector<uint8_t, HugePageAllocator<uint8_t>> live_;
  std::vector<uint32_t> free_;
  std::map<std::string, std::unique_ptr<StateBase>> states_;
  std::vector<K> visited_keys_;  // see ForEachKeyWithState
  std::map<std::string, PendingEntries> pending_;  // restored, not yet registered
  std::vector<StateInfo> restored_info_;
};

}  // namespace freshet::internal
