#pragma once
/// The RocksDB keyed-state backend: each keyed operator instance keeps its
/// states in its own RocksDB instance, in a fresh directory under
/// StateBackendOptions::rocksdb_local_dir (the system's temporary directory
/// when empty), removed when the backend and its last snapshot are gone.
///
/// Layout. Every state has its own column family. A key of the operator is
/// stored as its key group (2 bytes, big-endian) followed by the key's
/// TypeSerializer<K> bytes (self-delimiting), so the keys of one key group,
/// and of a range of key groups, are one contiguous range of the column
/// family. Value, list, reducing and aggregating states have one entry per
/// key whose value is [8-byte last-access time, with TTL only] followed by
/// the TypeSerializer bytes of the value (of the std::vector for lists,
/// of the accumulator for aggregating state): the bytes the heap backend
/// writes for that value in a snapshot. Map state has one entry per map
/// entry, keyed by the operator key's bytes followed by the user key's
/// TypeSerializer bytes, valued by the user value's bytes; with TTL the map
/// has one more entry, keyed by the operator key's bytes alone (it sorts
/// first), holding the map's last-access time: a map expires as a whole, as
/// on the heap.
///
/// Column families are named "s" followed by the state name in hex (any
/// name is a valid state name).
///
/// Snapshots take a RocksDB snapshot on the task thread (cheap) and write
/// the backend-independent format (see KeyedStateBackend::SnapshotKeyGroup)
/// from it on the writer thread, so a snapshot of one backend restores into
/// the other. Entries are written in key-byte order, and map values list
/// their entries in user-key-byte order. Savepoints always take this form.
///
/// Incremental checkpoints (StateBackendOptions::incremental) also make a
/// RocksDB checkpoint on the task thread: the memtables are flushed and the
/// instance's files hard-linked into a directory next to it. The writer
/// thread uploads the SST files that the last completed checkpoint (or the
/// restore) did not already hold into the job's shared directory, named
/// "<backend id>-<file>", and references the others; the small files
/// (MANIFEST, CURRENT, OPTIONS) go into the task's state file. A restore
/// links the files of the old instance that overlaps most into a new
/// directory, opens it, deletes the key groups outside its range and copies
/// the range's entries of the other overlapping old instances (rescaling).
///
/// TTL: values of the value layout whose time to live has passed are
/// dropped by a compaction filter when RocksDB compacts them (judged at the
/// processing time the store last read), besides on access and from
/// snapshots; maps expire on access.
///
/// Failures of RocksDB (open, I/O, corruption, a full disk) throw
/// RocksDBStateError, whose message names the operation, the directory and
/// RocksDB's status.
///
/// RocksDB's own headers are only included by src/state/.

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "freshet/internal/heap_keyed_state.h"
#include "freshet/internal/operator.h"
#include "freshet/internal/timer_service.h"
#include "freshet/key_groups.h"
#include "freshet/serializer.h"
#include "freshet/state.h"
#include "freshet/status.h"

namespace freshet::internal {

/// A failure of the RocksDB instance behind a RocksDB state backend.
class RocksDBStateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Appends TypeSerializer output to a std::string (whose capacity is kept).
class StringWriter {
 public:
  explicit StringWriter(std::string* out) : out_(out) {}
  void Write(const void* bytes, size_t n) { out_->append(static_cast<const char*>(bytes), n); }

 private:
  std::string* out_;
};

/// The operator key type as the non-template store sees it.
struct RocksDBKeyCodec {
  /// Appends the TypeSerializer bytes of `*key`.
  void (*serialize)(const void* key, std::string* out);
  /// The key group of `*key`.
  int (*key_group)(const void* key, int max_parallelism);
  /// The length of the serialized key at the start of `data`, or 0 when the
  /// bytes do not decode.
  size_t (*length)(const uint8_t* data, size_t size);
  /// As length, also giving the key's group.
  size_t (*parse)(const uint8_t* data, size_t size, int max_parallelism, int* key_group);
};

template <class K>
struct RocksDBKeyCodecOf {
  static void Serialize(const void* key, std::string* out) {
    StringWriter w(out);
    TypeSerializer<K>::Serialize(*static_cast<const K*>(key), w);
  }
  static int KeyGroup(const void* key, int max_parallelism) {
    return AssignToKeyGroup(*static_cast<const K*>(key), max_parallelism);
  }
  static size_t Length(const uint8_t* data, size_t size) {
    if constexpr (TypeSerializer<K>::kFixedSize != 0) {
      return size >= TypeSerializer<K>::kFixedSize ? TypeSerializer<K>::kFixedSize : 0;
    } else {
      ByteReader r(data, size);
      K key{};
      TypeSerializer<K>::Deserialize(r, key);
      return r.Failed() ? 0 : size - r.Remaining();
    }
  }
  static size_t Parse(const uint8_t* data, size_t size, int max_parallelism, int* key_group) {
    ByteReader r(data, size);
    K key{};
    TypeSerializer<K>::Deserialize(r, key);
    if (r.Failed()) return 0;
    *key_group = AssignToKeyGroup(key, max_parallelism);
    return size - r.Remaining();
  }
  static constexpr RocksDBKeyCodec kCodec{&Serialize, &KeyGroup, &Length, &Parse};
};

class RocksDBStateStore;

/// Entries to write into RocksDB at once (a rocksdb::WriteBatch); made by
/// the store, for its column families.
class RocksDBWriteBatch {
 public:
  ~RocksDBWriteBatch();
  RocksDBWriteBatch(RocksDBWriteBatch&&) noexcept;
  RocksDBWriteBatch& operator=(RocksDBWriteBatch&&) noexcept;
  void Put(int column_family, std::string_view key, std::string_view value);
  struct Impl;
  Impl& Get() { return *impl_; }

 private:
  friend class RocksDBStateStore;
  RocksDBWriteBatch();
  std::unique_ptr<Impl> impl_;
};

/// The untyped face of one named state of the RocksDB backend. The typed
/// states derive from it; its helpers (compiled once, in the .cc) do the
/// RocksDB reads and writes, TTL included. Task thread only.
class RocksDBStateBase : public KeyedStateBase {
 public:
  enum class Layout : uint8_t {
    kValue,  // one entry per key: [time with TTL] value bytes
    kMap,    // one entry per map entry (+ a time entry per key with TTL)
  };
  RocksDBStateBase(RocksDBStateStore* store, std::optional<StateTtlConfig> ttl, Layout layout);

  Layout GetLayout() const { return layout_; }
  const std::optional<StateTtlConfig>& Ttl() const { return ttl_; }
  /// The state's column family; set once when the store registers it.
  int ColumnFamily() const { return column_family_; }
  void SetColumnFamily(int column_family) { column_family_ = column_family; }

  /// Adds the entries of one restored value to `batch`: `key` is the key
  /// group and key bytes, `value` the value in the snapshot format, `now`
  /// the last-access time to give it. False when the value does not decode.
  virtual bool AddRestored(std::string_view key, const uint8_t* value, size_t size, Timestamp now,
                           RocksDBWriteBatch& batch);

 protected:
  /// True when `data` holds exactly one value of the state's type.
  virtual bool ValueDecodes(const uint8_t* data, size_t size) const = 0;

  // Value layout.
  /// Reads the current key's value; false when it has none (or it expired:
  /// then it is deleted). `read` says whether this refreshes the
  /// last-access time under kOnReadAndWrite. The payload stays valid until
  /// the next read of this state.
  bool ReadPayload(std::string_view* payload, bool read);
  /// The buffer to append the new value's bytes to, then FinishWrite().
  std::string& BeginWrite();
  /// Writes the current key's value from the BeginWrite() buffer.
  void FinishWrite();
  /// Without TTL: appends the list in the BeginWrite() buffer (u32 count,
  /// then the elements) to the current key's list through RocksDB's merge
  /// operator, without reading it.
  void FinishAppend();
  bool HasTtl() const { return ttl_.has_value(); }
  /// Deletes the current key's value (or map).
  void DeleteCurrent();

  // Map layout.
  /// With TTL: true when the current key holds a map that has not expired
  /// (an expired map is deleted; `read` refreshes the time under
  /// kOnReadAndWrite). Without TTL: true, without reading.
  bool MapAlive(bool read);
  /// The current key's bytes followed by the user key's bytes (the user key
  /// is appended by the caller to the returned buffer).
  std::string& BeginEntryKey();
  /// Reads the map entry at `entry_key`; the value stays valid until the
  /// next read of this state.
  bool ReadEntry(const std::string& entry_key, std::string_view* value);
  /// Puts a map entry (and refreshes the map's time, with TTL; an expired
  /// map is deleted first).
  void PutEntry(const std::string& entry_key, std::string_view value);
  /// Deletes a map entry; with TTL deletes the map's time when that was
  /// the last entry.
  void DeleteEntry(const std::string& entry_key);
  /// Calls `f(user key bytes, value bytes)` for every entry of the current
  /// key's map, in user-key-byte order; stops when `f` returns false.
  void ScanMap(const std::function<bool(std::string_view, std::string_view)>& f);

  RocksDBStateStore* store_;

 private:
  void PutTime(const std::string& key, Timestamp now);

  std::optional<StateTtlConfig> ttl_;
  Layout layout_;
  int column_family_ = -1;
  std::string read_;   // the last value read
  std::string write_;  // the value being written
  std::string entry_key_;
  std::string time_;   // a map's time entry
};

/// The non-template part of the RocksDB backend: the RocksDB instance, the
/// states, the current key's bytes, snapshots and restores.
///
/// Threading: the task thread, except that snapshots taken by Snapshot()
/// are written on another thread; they keep the RocksDB instance (and its
/// directory) alive until they are destroyed.
class RocksDBStateStore final : public KeyedStateStore {
 public:
  /// Opens a new RocksDB instance in a fresh directory. Throws
  /// RocksDBStateError when the directory cannot be made or RocksDB does
  /// not open. REQUIRES: max_parallelism in [1, 32768].
  /// The instances of one `slot` (any string; empty: this instance alone)
  /// share one memory budget, StateBackendOptions::rocksdb_memory_per_slot
  /// (the first instance's setting counts).
  RocksDBStateStore(KeyGroupRange range, int max_parallelism, ProcessingTimeService* time,
                    const StateBackendOptions& options, const RocksDBKeyCodec& codec, const std::string& slot = "");
  ~RocksDBStateStore() override;
  RocksDBStateStore(const RocksDBStateStore&) = delete;
  RocksDBStateStore& operator=(const RocksDBStateStore&) = delete;

  KeyedStateBase* Find(const std::string& name) override;
  /// Takes a state made for this backend: checks it against the restored
  /// state info, makes its column family and writes the restored entries
  /// waiting for it.
  KeyedStateBase* Register(const std::string& name, std::unique_ptr<KeyedStateBase> state) override;
  RocksDBStateStore* Rocks() override { return this; }

  /// Sets the current key (a `K` of the codec); its bytes are made on the
  /// first access. REQUIRES: `key` outlives the accesses.
  void SetCurrentKey(const void* key) {
    current_key_ = key;
    key_stale_ = true;
  }
  /// The current key's group and bytes.
  const std::string& CurrentKey() {
    if (key_stale_) [[unlikely]] SerializeCurrentKey();
    return key_bytes_;
  }
  /// Processing time, for TTL.
  Timestamp Now() const;
  /// A buffer for the caller's use until its next call into the store.
  std::string& Scratch() { return scratch_; }

  bool Get(int column_family, std::string_view key, std::string* value);
  void Put(int column_family, std::string_view key, std::string_view value);
  /// Merges `list` (u32 count, then elements) into the list at `key`.
  void AppendList(int column_family, std::string_view key, std::string_view list);
  void Delete(int column_family, std::string_view key);
  /// Deletes every entry whose key starts with `prefix`.
  void DeletePrefix(int column_family, std::string_view prefix);
  /// Calls `f(key, value)` for every entry whose key starts with `prefix`,
  /// in key order, until `f` returns false.
  void Scan(int column_family, std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& f);
  void Write(RocksDBWriteBatch& batch);

  /// A snapshot of every state. With `files`, also a RocksDB checkpoint of
  /// the instance for checkpoint `id` (KeyedStateSnapshot::WriteFiles):
  /// flushes the memtables on this thread.
  std::unique_ptr<KeyedStateSnapshot> Snapshot(bool files = false, CheckpointId id = 0);
  /// Checkpoint `id` completed: later checkpoints reference its files.
  void NotifyCheckpointComplete(CheckpointId id);
  /// Rebuilds the instance from the files of incremental checkpoints (see
  /// the top of this file). REQUIRES: no state registered, nothing restored.
  Status RestoreFiles(const std::vector<RestoredIncrementalState>& files);
  /// Whether checkpoints (not savepoints) write the instance's files.
  bool Incremental() const { return incremental_; }
  /// The id naming this instance's files in the shared directory.
  const std::string& BackendId() const;
  /// Memory in the slot's budget: the shared block cache's usage, which
  /// includes the memtables of every instance of the slot.
  uint64_t SlotMemoryUsage() const;
  /// The slot's budget (the shared block cache's capacity).
  uint64_t SlotMemoryBudget() const;
  /// Bytes of this instance's memtables.
  uint64_t MemTableBytes() const;
  /// Waits until the instance runs and has pending no flush or compaction
  /// (for tests and benchmarks).
  void WaitForBackgroundWork() const;
  /// Flushes and compacts every column family now (for tests and tools).
  void CompactAll();

  /// Timers of one time domain (`name`) in this instance: a column family
  /// of their own, keyed by time, key group, key and namespace. Timers are
  /// also written into key-group blocks by checkpoints, which is what
  /// restores read: a restore from files drops the timers' column families.
  std::unique_ptr<TimerStorage> NewTimerStorage(const std::string& name);
  /// The column family named `family_name` in the current instance, made
  /// when missing.
  int FamilyIndex(const std::string& family_name);
  /// Changes when a restore replaces the instance.
  const void* InstanceToken() const { return instance_.get(); }
  /// The first key >= `from` in the column family; false when none.
  bool FirstAtOrAfter(int column_family, std::string_view from, std::string* key);
  Status RestoreKeyGroup(const uint8_t* data, size_t size);
  void SetRestoredInfo(std::vector<StateInfo> info) { restored_info_ = std::move(info); }
  /// The key bytes (without key group) of every key holding a live value
  /// of state `name`, in key order.
  std::vector<std::string> KeysWithState(const std::string& name);
  /// Keys holding state in any state (scans everything).
  size_t NumKeys();
  /// The instance's directory.
  const std::string& Path() const;

  struct Instance;
  struct SlotMemory;

 private:
  struct PendingEntries {
    struct Block {
      std::string bytes;  // (key, u32 length, value) entries
      uint64_t count;
    };
    std::vector<Block> blocks;
  };
  void SerializeCurrentKey();
  /// An empty batch for this instance's column families.
  RocksDBWriteBatch NewBatch();
  /// Adds `count` entries (key, u32 length, value) of state `name` to
  /// `batch`, with last-access time `now`.
  Status AddEntries(const std::string& name, RocksDBStateBase& state, const uint8_t* data, size_t size,
                    uint64_t count, Timestamp now, RocksDBWriteBatch& batch);

  KeyGroupRange range_;
  int max_parallelism_;
  ProcessingTimeService* time_;
  RocksDBKeyCodec codec_;
  std::string base_dir_;  // where instance directories are made
  bool incremental_;
  std::shared_ptr<SlotMemory> slot_memory_;  // shared by the slot's instances
  std::shared_ptr<Instance> instance_;  // shared with snapshots
  const void* current_key_ = nullptr;
  bool key_stale_ = true;
  std::string key_bytes_;
  std::string scratch_;
  std::string restore_key_;
  std::map<std::string, std::unique_ptr<RocksDBStateBase>> states_;
  std::map<std::string, PendingEntries> pending_;  // restored, not yet registered
  std::vector<StateInfo> restored_info_;
};

template <class T>
class RocksDBValueState final : public RocksDBStateBase, public ValueState<T> {
 public:
  RocksDBValueState(RocksDBStateStore* store, const ValueStateDescriptor<T>& d)
      : RocksDBStateBase(store, d.Ttl(), Layout::kValue), default_(d.DefaultValue()) {}
  T Value() override {
    std::string_view payload;
    if (this->ReadPayload(&payload, true)) return Decode(payload);
    return default_ ? *default_ : T{};
  }
  std::optional<T> Get() override {
    std::string_view payload;
    if (this->ReadPayload(&payload, true)) return Decode(payload);
    return std::nullopt;
  }
  void Update(const T& value) override {
    StringWriter w(&this->BeginWrite());
    TypeSerializer<T>::Serialize(value, w);
    this->FinishWrite();
  }
  void Clear() override { this->DeleteCurrent(); }
  const std::type_info& Type() const override { return typeid(T); }
  const char* Kind() const override { return "value"; }

 private:
  bool ValueDecodes(const uint8_t* data, size_t size) const override {
    T v{};
    return DeserializeFromBytes(data, size, v);
  }
  static T Decode(std::string_view payload) {
    T v{};
    ByteReader r(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    TypeSerializer<T>::Deserialize(r, v);
    return v;
  }
  std::optional<T> default_;
};

template <class T>
class RocksDBListState final : public RocksDBStateBase, public ListState<T> {
 public:
  RocksDBListState(RocksDBStateStore* store, const ListStateDescriptor<T>& d)
      : RocksDBStateBase(store, d.Ttl(), Layout::kValue) {}
  const std::vector<T>& Get() override {
    std::string_view payload;
    if (this->ReadPayload(&payload, true)) {
      ByteReader r(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
      TypeSerializer<std::vector<T>>::Deserialize(r, list_);
    } else {
      list_.clear();
    }
    return list_;
  }
  void Add(const T& value) override { Append(&value, 1); }
  void AddAll(const std::vector<T>& values) override {
    if (!values.empty()) Append(values.data(), values.size());
  }
  void Update(std::vector<T> values) override {
    if (values.empty()) {
      Clear();
      return;
    }
    StringWriter w(&this->BeginWrite());
    TypeSerializer<std::vector<T>>::Serialize(values, w);
    this->FinishWrite();
  }
  void Clear() override { this->DeleteCurrent(); }
  const std::type_info& Type() const override { return typeid(std::vector<T>); }
  const char* Kind() const override { return "list"; }

 private:
  // The serialized list is its u32 length then its elements one after
  // another, so lists concatenate without being decoded. Without TTL an
  // append is a RocksDB merge (no read: appends cost the same however long
  // the list); with TTL the old value's time decides whether it is kept, so
  // an append reads, copies and rewrites it.
  void Append(const T* values, size_t n) {
    if (!this->HasTtl()) [[likely]] {
      std::string& out = this->BeginWrite();
      const auto count = static_cast<uint32_t>(n);
      out.append(reinterpret_cast<const char*>(&count), sizeof(count));
      StringWriter w(&out);
      for (size_t i = 0; i < n; ++i) TypeSerializer<T>::Serialize(values[i], w);
      this->FinishAppend();
      return;
    }
    std::string_view old;
    bool present = this->ReadPayload(&old, false);
    std::string& out = this->BeginWrite();
    size_t count_at = out.size();
    uint32_t count = 0;
    if (present && old.size() >= sizeof(count)) {
      std::memcpy(&count, old.data(), sizeof(count));
      out.append(old);
    } else {
      out.append(sizeof(count), '\0');
    }
    count += static_cast<uint32_t>(n);
    std::memcpy(out.data() + count_at, &count, sizeof(count));
    StringWriter w(&out);
    for (size_t i = 0; i < n; ++i) TypeSerializer<T>::Serialize(values[i], w);
    this->FinishWrite();
  }
  bool ValueDecodes(const uint8_t* data, size_t size) const override {
    std::vector<T> v;
    return DeserializeFromBytes(data, size, v);
  }
  std::vector<T> list_;
};

template <class UK, class UV>
class RocksDBMapState final : public RocksDBStateBase, public MapState<UK, UV> {
 public:
  RocksDBMapState(RocksDBStateStore* store, const MapStateDescriptor<UK, UV>& d)
      : RocksDBStateBase(store, d.Ttl(), Layout::kMap) {}
  std::optional<UV> Get(const UK& key) override {
    if (!this->MapAlive(true)) return std::nullopt;
    std::string_view value;
    if (!this->ReadEntry(EntryKey(key), &value)) return std::nullopt;
    return DecodeValue(value);
  }
  void Put(const UK& key, const UV& value) override {
    const std::string& entry_key = EntryKey(key);
    std::string& bytes = this->store_->Scratch();
    bytes.clear();
    StringWriter w(&bytes);
    TypeSerializer<UV>::Serialize(value, w);
    this->PutEntry(entry_key, bytes);
  }
  void Remove(const UK& key) override {
    if (!this->MapAlive(true)) return;
    const std::string& entry_key = EntryKey(key);
    std::string_view value;
    if (!this->ReadEntry(entry_key, &value)) return;
    this->DeleteEntry(entry_key);
  }
  bool Contains(const UK& key) override {
    if (!this->MapAlive(true)) return false;
    std::string_view value;
    return this->ReadEntry(EntryKey(key), &value);
  }
  bool IsEmpty() override {
    if (!this->MapAlive(true)) return true;
    bool empty = true;
    this->ScanMap([&empty](std::string_view, std::string_view) { return empty = false; });
    return empty;
  }
  void ForEach(const std::function<void(const UK&, const UV&)>& f) override {
    if (!this->MapAlive(true)) return;
    // Decoded first: `f` may change the state.
    for (const auto& [k, v] : Decoded()) f(k, v);
  }
  std::vector<std::pair<UK, UV>> Entries() override {
    if (!this->MapAlive(true)) return {};
    return Decoded();
  }
  void Clear() override { this->DeleteCurrent(); }
  const std::type_info& Type() const override { return typeid(std::unordered_map<UK, UV, KeyHasher<UK>>); }
  const char* Kind() const override { return "map"; }

  /// Splits a map in the snapshot format into entries.
  bool AddRestored(std::string_view key, const uint8_t* value, size_t size, Timestamp now,
                   RocksDBWriteBatch& batch) override {
    ByteReader r(value, size);
    uint32_t n = ReadLength(r, TypeSerializer<UK>::kFixedSize + TypeSerializer<UV>::kFixedSize);
    std::string entry_key(key);
    UK k{};
    UV v{};
    for (uint32_t i = 0; i < n && !r.Failed(); ++i) {
      size_t key_begin = size - r.Remaining();
      TypeSerializer<UK>::Deserialize(r, k);
      size_t value_begin = size - r.Remaining();
      TypeSerializer<UV>::Deserialize(r, v);
      size_t value_end = size - r.Remaining();
      if (r.Failed()) break;
      entry_key.resize(key.size());
      entry_key.append(reinterpret_cast<const char*>(value + key_begin), value_begin - key_begin);
      batch.Put(this->ColumnFamily(), entry_key,
                std::string_view(reinterpret_cast<const char*>(value + value_begin), value_end - value_begin));
    }
    if (r.Failed() || r.Remaining() != 0) return false;
    if (n > 0 && this->Ttl()) {
      std::string time(sizeof(Timestamp), '\0');
      std::memcpy(time.data(), &now, sizeof(now));
      batch.Put(this->ColumnFamily(), key, time);
    }
    return true;
  }

 private:
  static uint32_t ReadLength(ByteReader& r, size_t min_element_size) {
    return internal::ReadLength(r, min_element_size);
  }
  const std::string& EntryKey(const UK& key) {
    std::string& out = this->BeginEntryKey();
    StringWriter w(&out);
    TypeSerializer<UK>::Serialize(key, w);
    return out;
  }
  static UV DecodeValue(std::string_view bytes) {
    UV v{};
    ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    TypeSerializer<UV>::Deserialize(r, v);
    return v;
  }
  std::vector<std::pair<UK, UV>> Decoded() {
    std::vector<std::pair<UK, UV>> out;
    this->ScanMap([&out](std::string_view k, std::string_view v) {
      auto& [key, value] = out.emplace_back();
      ByteReader r(reinterpret_cast<const uint8_t*>(k.data()), k.size());
      TypeSerializer<UK>::Deserialize(r, key);
      value = DecodeValue(v);
      return true;
    });
    return out;
  }
  bool ValueDecodes(const uint8_t*, size_t) const override { return true; }  // see AddRestored
};

template <class T>
class RocksDBReducingState final : public RocksDBStateBase, public ReducingState<T> {
 public:
  RocksDBReducingState(RocksDBStateStore* store, const ReducingStateDescriptor<T>& d)
      : RocksDBStateBase(store, d.Ttl(), Layout::kValue), reduce_(d.ReduceFunction()) {}
  std::optional<T> Get() override {
    std::string_view payload;
    if (this->ReadPayload(&payload, true)) return Decode(payload);
    return std::nullopt;
  }
  void Add(const T& value) override {
    std::string_view payload;
    // The write refreshes the time: the read need not.
    if (this->ReadPayload(&payload, false)) {
      Write(reduce_(Decode(payload), value));
    } else {
      Write(value);
    }
  }
  void Clear() override { this->DeleteCurrent(); }
  const std::type_info& Type() const override { return typeid(T); }
  const char* Kind() const override { return "reducing"; }

 private:
  void Write(const T& value) {
    StringWriter w(&this->BeginWrite());
    TypeSerializer<T>::Serialize(value, w);
    this->FinishWrite();
  }
  static T Decode(std::string_view payload) {
    T v{};
    ByteReader r(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    TypeSerializer<T>::Deserialize(r, v);
    return v;
  }
  bool ValueDecodes(const uint8_t* data, size_t size) const override {
    T v{};
    return DeserializeFromBytes(data, size, v);
  }
  std::function<T(const T&, const T&)> reduce_;
};

template <class A>
class RocksDBAggregatingState final : public RocksDBStateBase,
                                      public AggregatingState<typename A::InputType, typename A::OutputType> {
 public:
  using ACC = typename A::AccumulatorType;
  RocksDBAggregatingState(RocksDBStateStore* store, const AggregatingStateDescriptor<A>& d)
      : RocksDBStateBase(store, d.Ttl(), Layout::kValue), agg_(d.Aggregate()) {}
  std::optional<typename A::OutputType> Get() override {
    std::string_view payload;
    if (this->ReadPayload(&payload, true)) return agg_.GetResult(Decode(payload));
    return std::nullopt;
  }
  void Add(const typename A::InputType& value) override {
    std::string_view payload;
    // The write refreshes the time: the read need not.
    ACC acc = this->ReadPayload(&payload, false) ? Decode(payload) : agg_.CreateAccumulator();
    acc = agg_.Add(value, std::move(acc));
    StringWriter w(&this->BeginWrite());
    TypeSerializer<ACC>::Serialize(acc, w);
    this->FinishWrite();
  }
  void Clear() override { this->DeleteCurrent(); }
  const std::type_info& Type() const override { return typeid(ACC); }
  const char* Kind() const override { return "aggregating"; }

 private:
  static ACC Decode(std::string_view payload) {
    ACC v{};
    ByteReader r(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    TypeSerializer<ACC>::Deserialize(r, v);
    return v;
  }
  bool ValueDecodes(const uint8_t* data, size_t size) const override {
    ACC v{};
    return DeserializeFromBytes(data, size, v);
  }
  A agg_;
};

/// Keyed state of one operator instance for keys of type K, in RocksDB
/// (see the top of this file). SetCurrentKey keeps a pointer; the key is
/// serialized on the first state access after it changes.
///
/// Threading: the task thread only, except that snapshots taken by
/// Snapshot() are written on another thread (see KeyedStateSnapshot).
template <class K>
class RocksDBKeyedStateBackend final : public KeyedStateBackend<K> {
 public:
  /// Throws RocksDBStateError when the RocksDB instance cannot be made.
  /// REQUIRES: max_parallelism in [1, 32768].
  /// `ctx` (optional) tells which snapshot is being taken: with it and
  /// incremental checkpoints configured, checkpoints write the instance's
  /// files; without it every snapshot is in the backend-independent format.
  RocksDBKeyedStateBackend(KeyGroupRange range, int max_parallelism, ProcessingTimeService* time,
                           const StateBackendOptions& options, const OperatorContext* ctx = nullptr)
      : store_(range, max_parallelism, time, options, RocksDBKeyCodecOf<K>::kCodec,
               ctx != nullptr ? ctx->slot : std::string()),
        ctx_(ctx) {}

  void SetCurrentKey(const K& key) override { store_.SetCurrentKey(&key); }
  KeyedStateBase* Find(const std::string& name) override { return store_.Find(name); }
  KeyedStateBase* Register(const std::string& name, std::unique_ptr<KeyedStateBase> state) override {
    return store_.Register(name, std::move(state));
  }
  RocksDBStateStore* Rocks() override { return &store_; }
  void SetRestoreProblems(std::vector<std::string>* sink, std::string operator_name) override {
    store_.SetRestoreProblems(sink, std::move(operator_name));
  }

  /// Takes a RocksDB snapshot: O(1) on the task thread. The returned
  /// snapshot reads it on the writer thread; expiry is judged at the
  /// processing time of this call.
  std::unique_ptr<KeyedStateSnapshot> Snapshot() override {
    bool files = ctx_ != nullptr && store_.Incremental() && !ctx_->savepoint && ctx_->checkpoint_id > 0;
    return store_.Snapshot(files, files ? ctx_->checkpoint_id : 0);
  }
  void NotifyCheckpointComplete(CheckpointId id) override { store_.NotifyCheckpointComplete(id); }
  Status RestoreFiles(const std::vector<RestoredIncrementalState>& files) override {
    return store_.RestoreFiles(files);
  }
  /// Checks every entry, then writes them (or keeps them for a state not
  /// registered yet).
  Status RestoreKeyGroup(const uint8_t* data, size_t size) override { return store_.RestoreKeyGroup(data, size); }
  void SetRestoredInfo(std::vector<StateInfo> info) override { store_.SetRestoredInfo(std::move(info)); }

  void ForEachKeyWithState(const std::string& name, const std::function<void(const K&)>& fn) override {
    std::vector<K> keys;
    for (const std::string& bytes : store_.KeysWithState(name)) {
      ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      TypeSerializer<K>::Deserialize(r, keys.emplace_back());
    }
    for (const K& key : keys) {
      SetCurrentKey(key);
      fn(key);
    }
    // The store keeps a pointer to the current key.
    visited_keys_ = std::move(keys);
  }
  size_t NumKeys() override { return store_.NumKeys(); }

  /// The RocksDB instance's directory.
  const std::string& Path() const { return store_.Path(); }

 private:
  RocksDBStateStore store_;
  const OperatorContext* ctx_;
  std::vector<K> visited_keys_;  // see ForEachKeyWithState
};

}  // namespace freshet::internal
