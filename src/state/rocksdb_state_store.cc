// The non-template part of the RocksDB keyed-state backend: the RocksDB
// instance, the states' reads and writes, snapshots and restores (see
// include/freshet/internal/rocksdb_keyed_state.h for the layout).

#include <rocksdb/db.h>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/slice.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "freshet/internal/rocksdb_keyed_state.h"

namespace freshet::internal {
namespace {

constexpr size_t kGroupBytes = 2;
constexpr size_t kTimeBytes = sizeof(Timestamp);

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

void AppendGroup(std::string* out, int key_group) {
  out->push_back(static_cast<char>((key_group >> 8) & 0xff));
  out->push_back(static_cast<char>(key_group & 0xff));
}
std::string GroupKey(int key_group) {
  std::string s;
  AppendGroup(&s, key_group);
  return s;
}
int GroupOf(std::string_view key) {
  return (static_cast<int>(static_cast<uint8_t>(key[0])) << 8) | static_cast<uint8_t>(key[1]);
}
Timestamp TimeOf(std::string_view value) {
  Timestamp t = 0;
  std::memcpy(&t, value.data(), kTimeBytes);
  return t;
}
/// The smallest key greater than every key starting with `prefix` (empty:
/// there is none).
std::string Successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<uint8_t>(s.back()) == 0xff) s.pop_back();
  if (!s.empty()) s.back() = static_cast<char>(static_cast<uint8_t>(s.back()) + 1);
  return s;
}

[[noreturn]] void Fail(const std::string& path, const std::string& what, const rocksdb::Status& s) {
  throw RocksDBStateError("RocksDB state backend in '" + path + "': " + what + ": " + s.ToString());
}
Status ToStatus(const std::string& path, const std::string& what, const rocksdb::Status& s) {
  return Status::IoError("RocksDB state backend in '" + path + "': " + what + ": " + s.ToString());
}

/// The column family of state `name`.
std::string FamilyName(const std::string& name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "s";
  for (unsigned char c : name) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

/// A new directory under `base` (made if missing) for a RocksDB instance.
std::string MakeInstanceDirectory(const std::string& base) {
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  if (ec) {
    throw RocksDBStateError("RocksDB state backend: cannot create the local directory '" + base + "': " +
                            ec.message());
  }
  std::string path = (std::filesystem::path(base) / "freshet-rocksdb-XXXXXX").string();
  if (::mkdtemp(path.data()) == nullptr) {
    int error = errno;
    throw RocksDBStateError("RocksDB state backend: cannot create a directory in '" + base + "': " +
                            std::strerror(error));
  }
  return path;
}

std::string NewBackendId() {
  std::random_device device;
  std::mt19937_64 random((uint64_t{device()} << 32) ^ device());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (uint64_t v = random(), i = 0; i < 16; ++i, v >>= 4) id.push_back(kHex[v & 15]);
  return id;
}

/// Concatenates serialized lists (u32 count, then the elements): list
/// appends are merges, combined when read or compacted. A value too short
/// to hold a count fails the merge, which RocksDB reports as corruption.
class ListAppendOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    uint32_t count = 0, more = 0;
    if (value.size() < sizeof(more)) return false;
    std::memcpy(&more, value.data(), sizeof(more));
    if (existing == nullptr) {
      new_value->assign(value.data(), value.size());
      return true;
    }
    if (existing->size() < sizeof(count)) return false;
    std::memcpy(&count, existing->data(), sizeof(count));
    count += more;
    new_value->reserve(existing->size() + value.size() - sizeof(more));
    new_value->assign(reinterpret_cast<const char*>(&count), sizeof(count));
    new_value->append(existing->data() + sizeof(count), existing->size() - sizeof(count));
    new_value->append(value.data() + sizeof(more), value.size() - sizeof(more));
    return true;
  }
  const char* Name() const override { return "FreshetListAppend"; }
};

/// Drops values whose time to live has passed when RocksDB compacts them,
/// so expired values that are never read again leave the disk. Only for
/// states of the value layout (a map's entries have no time of their own;
/// an expired map goes when it is next accessed). "Now" is the processing
/// time the store last read, so a value is dropped only when a read at
/// that moment would not have returned it.
class TtlCompaction final : public rocksdb::CompactionFilterFactory {
 public:
  void SetTtl(uint32_t column_family_id, int64_t ttl_ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    ttl_by_family_[column_family_id] = ttl_ms;
  }
  void SetNow(Timestamp now) { now_.store(now, std::memory_order_relaxed); }
  /// A RocksDB snapshot being written judges expiry at `now`: compactions
  /// meanwhile (which RocksDB applies to the entries the snapshot sees too)
  /// drop nothing that was live then.
  void Hold(Timestamp now) {
    std::lock_guard<std::mutex> lock(mutex_);
    held_.insert(now);
  }
  void Release(Timestamp now) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = held_.find(now); it != held_.end()) held_.erase(it);
  }

  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& context) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = ttl_by_family_.find(context.column_family_id);
    if (found == ttl_by_family_.end()) return nullptr;
    Timestamp now = now_.load(std::memory_order_relaxed);
    if (!held_.empty()) now = std::min(now, *held_.begin());
    return std::make_unique<ExpiredValues>(found->second, now);
  }
  const char* Name() const override { return "freshet.TtlCompaction"; }

 private:
  class ExpiredValues final : public rocksdb::CompactionFilter {
   public:
    ExpiredValues(int64_t ttl_ms, Timestamp now) : ttl_ms_(ttl_ms), now_(now) {}
    bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*, bool*) const override {
      return value.size() >= kTimeBytes && TimeOf(ToView(value)) + ttl_ms_ <= now_;
    }
    const char* Name() const override { return "freshet.TtlCompaction.ExpiredValues"; }

   private:
    int64_t ttl_ms_;
    Timestamp now_;
  };

  std::mutex mutex_;
  std::map<uint32_t, int64_t> ttl_by_family_;
  std::multiset<Timestamp> held_;
  std::atomic<Timestamp> now_{std::numeric_limits<Timestamp>::min()};
};

}  // namespace

/// One RocksDB instance and its directory; shared by the store and its
/// snapshots, the last of which closes the instance and removes the
/// directory.
struct RocksDBStateStore::Instance {
  /// Shared files by their name in the instance's directory, and the
  /// shared directory they are in.
  struct Files {
    std::string directory;
    std::map<std::string, SharedFileRef> files;
  };

  std::string path;
  std::string backend_id = NewBackendId();
  rocksdb::Options options;
  std::shared_ptr<TtlCompaction> ttl_compaction;  // also in options; null for a scratch instance
  rocksdb::DB* db = nullptr;
  // The column families (a state's is found by name), including those
  // restored for states not registered (yet) and, after a restore, the
  // default one. Changed by the task thread only; snapshots copy the
  // handles they need, which live as long as this.
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  std::map<std::string, int> family_index;  // by column family name
  // Incremental checkpoints. `uploaded` is written by the writer thread.
  std::mutex files_mutex;
  std::map<CheckpointId, Files> uploaded;  // by checkpoint, until it completes or is subsumed
  Files confirmed;  // of the last completed checkpoint, or of the restore
  rocksdb::ReadOptions read;
  rocksdb::WriteOptions write;
  // Single puts and deletes go through this batch, cleared each time (it
  // keeps its buffer): DB::Put would make a new batch per call.
  rocksdb::WriteBatch single;

  Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  ~Instance() {
    if (db != nullptr) {
      for (rocksdb::ColumnFamilyHandle* family : families) {
        if (family != nullptr) db->DestroyColumnFamilyHandle(family).PermitUncheckedError();
      }
      // The state is discarded with the directory: nothing to flush.
      db->Close().PermitUncheckedError();
      delete db;
    }
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// The memory budget of one slot: a block cache of the budget's size,
/// holding data, index and filter blocks, to which a write buffer manager
/// charges the memtables of every instance of the slot, flushing the
/// largest when they take more than half of it.
struct RocksDBStateStore::SlotMemory {
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;
  uint64_t budget = 0;
};

namespace {

/// The slot's memory, made by its first instance and gone with its last.
std::shared_ptr<RocksDBStateStore::SlotMemory> SlotMemoryFor(const std::string& slot, uint64_t budget) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<RocksDBStateStore::SlotMemory>> slots;
  std::lock_guard<std::mutex> lock(mutex);
  if (!slot.empty()) {
    if (auto found = slots.find(slot); found != slots.end()) {
      if (auto memory = found->second.lock()) return memory;
    }
  }
  for (auto it = slots.begin(); it != slots.end();) it = it->second.expired() ? slots.erase(it) : std::next(it);
  auto memory = std::make_shared<RocksDBStateStore::SlotMemory>();
  memory->budget = budget;
  rocksdb::LRUCacheOptions cache;
  cache.capacity = budget;
  cache.num_shard_bits = -1;
  cache.strict_capacity_limit = false;  // a full cache evicts; reads never fail for memory
  // Index and filter blocks are cached with high priority: evicting them
  // costs a disk read on every lookup.
  cache.high_pri_pool_ratio = 0.1;
  memory->cache = rocksdb::NewLRUCache(cache);
  memory->write_buffers = std::make_shared<rocksdb::WriteBufferManager>(budget / 2, memory->cache);
  if (!slot.empty()) slots[slot] = memory;
  return memory;
}

/// Opens the RocksDB instance in `instance->path` with `options`, with the
/// column families already there when `existing`.
void OpenInstance(RocksDBStateStore::Instance& instance, bool existing) {
  // Opening is rare (once per operator instance) and RocksDB sets up
  // process-wide registries lazily on the first opens: one open at a time.
  static std::mutex open_mutex;
  std::lock_guard<std::mutex> open_lock(open_mutex);
  rocksdb::Status s;
  if (!existing) {
    s = rocksdb::DB::Open(instance.options, instance.path, &instance.db);
    if (!s.ok()) Fail(instance.path, "opening", s);
    return;
  }
  std::vector<std::string> names;
  s = rocksdb::DB::ListColumnFamilies(instance.options, instance.path, &names);
  if (!s.ok()) Fail(instance.path, "listing the column families of the restored files", s);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(instance.options));
  }
  s = rocksdb::DB::Open(instance.options, instance.path, descriptors, &instance.families, &instance.db);
  if (!s.ok()) Fail(instance.path, "opening the restored files", s);
  for (size_t i = 0; i < names.size(); ++i) instance.family_index.emplace(names[i], static_cast<int>(i));
}

/// Puts the files of `part` into `directory` (shared files hard-linked, or
/// copied across file systems; the small files written).
Status MaterializeFiles(const RestoredIncrementalState& part, const std::string& directory) {
  namespace fs = std::filesystem;
  for (const auto& [local, ref] : part.shared_files) {
    const std::string source = (fs::path(part.shared_directory) / ref.name).string();
    const std::string target = (fs::path(directory) / local).string();
    std::error_code ec;
    uint64_t size = fs::file_size(source, ec);
    if (ec) return Status::NotFound("shared state file '" + source + "' of backend " + part.backend_id + ": " +
                                    ec.message());
    if (size != ref.size) {
      return Status::Corruption("shared state file '" + source + "' has " + std::to_string(size) +
                                " bytes; the checkpoint recorded " + std::to_string(ref.size));
    }
    if (::link(source.c_str(), target.c_str()) != 0) {
      fs::copy_file(source, target, ec);
      if (ec) return Status::IoError("cannot copy shared state file '" + source + "' to '" + target + "': " +
                                     ec.message());
    }
  }
  for (const auto& [local, bytes] : part.private_files) {
    const std::string target = (fs::path(directory) / local).string();
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) return Status::IoError("cannot write '" + target + "'");
  }
  return Status::Ok();
}

}  // namespace

struct RocksDBWriteBatch::Impl {
  rocksdb::WriteBatch batch;
  std::vector<rocksdb::ColumnFamilyHandle*>* families = nullptr;
};

RocksDBWriteBatch::RocksDBWriteBatch() : impl_(std::make_unique<Impl>()) {}
RocksDBWriteBatch::~RocksDBWriteBatch() = default;
RocksDBWriteBatch::RocksDBWriteBatch(RocksDBWriteBatch&&) noexcept = default;
RocksDBWriteBatch& RocksDBWriteBatch::operator=(RocksDBWriteBatch&&) noexcept = default;
void RocksDBWriteBatch::Put(int column_family, std::string_view key, std::string_view value) {
  rocksdb::Status s = impl_->batch.Put((*impl_->families)[static_cast<size_t>(column_family)], ToSlice(key),
                                       ToSlice(value));
  if (!s.ok()) throw RocksDBStateError("RocksDB write batch: " + s.ToString());
}

// ---------------------------------------------------------------------------
// The states' helpers.

RocksDBStateBase::RocksDBStateBase(RocksDBStateStore* store, std::optional<StateTtlConfig> ttl, Layout layout)
    : store_(store), ttl_(std::move(ttl)), layout_(layout) {}

bool RocksDBStateBase::AddRestored(std::string_view key, const uint8_t* value, size_t size, Timestamp now,
                                   RocksDBWriteBatch& batch) {
  if (!ValueDecodes(value, size)) return false;
  std::string& bytes = store_->Scratch();
  bytes.clear();
  if (ttl_) bytes.append(reinterpret_cast<const char*>(&now), kTimeBytes);
  bytes.append(reinterpret_cast<const char*>(value), size);
  batch.Put(column_family_, key, bytes);
  return true;
}

bool RocksDBStateBase::ReadPayload(std::string_view* payload, bool read) {
  const std::string& key = store_->CurrentKey();
  if (!store_->Get(column_family_, key, &read_)) return false;
  if (!ttl_) [[likely]] {
    *payload = read_;
    return true;
  }
  if (read_.size() < kTimeBytes) {
    throw RocksDBStateError("RocksDB state backend in '" + store_->Path() + "': a value is shorter than its time");
  }
  Timestamp now = store_->Now();
  Timestamp time = TimeOf(read_);
  if (time + ttl_->ttl.count() <= now) {
    store_->Delete(column_family_, key);
    return false;
  }
  if (read && ttl_->update_type == StateTtlConfig::UpdateType::kOnReadAndWrite && time != now) {
    std::memcpy(read_.data(), &now, kTimeBytes);
    store_->Put(column_family_, key, read_);
  }
  *payload = std::string_view(read_).substr(kTimeBytes);
  return true;
}

std::string& RocksDBStateBase::BeginWrite() {
  write_.clear();
  if (ttl_) write_.append(kTimeBytes, '\0');
  return write_;
}

void RocksDBStateBase::FinishWrite() {
  if (ttl_) {
    Timestamp now = store_->Now();
    std::memcpy(write_.data(), &now, kTimeBytes);
  }
  store_->Put(column_family_, store_->CurrentKey(), write_);
}

void RocksDBStateBase::FinishAppend() {
  store_->AppendList(column_family_, store_->CurrentKey(), write_);
}

void RocksDBStateBase::DeleteCurrent() {
  if (layout_ == Layout::kValue) {
    store_->Delete(column_family_, store_->CurrentKey());
  } else {
    store_->DeletePrefix(column_family_, store_->CurrentKey());
  }
}

void RocksDBStateBase::PutTime(const std::string& key, Timestamp now) {
  time_.assign(reinterpret_cast<const char*>(&now), kTimeBytes);
  store_->Put(column_family_, key, time_);
}

bool RocksDBStateBase::MapAlive(bool read) {
  if (!ttl_) [[likely]] return true;
  const std::string& key = store_->CurrentKey();
  if (!store_->Get(column_family_, key, &time_) || time_.size() < kTimeBytes) return false;
  Timestamp now = store_->Now();
  Timestamp time = TimeOf(time_);
  if (time + ttl_->ttl.count() <= now) {
    store_->DeletePrefix(column_family_, key);
    return false;
  }
  if (read && ttl_->update_type == StateTtlConfig::UpdateType::kOnReadAndWrite && time != now) PutTime(key, now);
  return true;
}

std::string& RocksDBStateBase::BeginEntryKey() {
  entry_key_.assign(store_->CurrentKey());
  return entry_key_;
}

bool RocksDBStateBase::ReadEntry(const std::string& entry_key, std::string_view* value) {
  if (!store_->Get(column_family_, entry_key, &read_)) return false;
  *value = read_;
  return true;
}

void RocksDBStateBase::PutEntry(const std::string& entry_key, std::string_view value) {
  if (ttl_) {
    const std::string& key = store_->CurrentKey();
    Timestamp now = store_->Now();
    if (store_->Get(column_family_, key, &time_) && time_.size() >= kTimeBytes &&
        TimeOf(time_) + ttl_->ttl.count() <= now) {
      store_->DeletePrefix(column_family_, key);  // the map expired: the entry starts a new one
    }
    store_->Put(column_family_, entry_key, value);
    PutTime(key, now);
    return;
  }
  store_->Put(column_family_, entry_key, value);
}

void RocksDBStateBase::DeleteEntry(const std::string& entry_key) {
  store_->Delete(column_family_, entry_key);
  if (!ttl_) return;
  const std::string& key = store_->CurrentKey();
  bool more = false;
  store_->Scan(column_family_, key, [&more, &key](std::string_view k, std::string_view) {
    more = k.size() > key.size();
    return !more;
  });
  if (!more) store_->Delete(column_family_, key);  // the map's time goes with its last entry
}

void RocksDBStateBase::ScanMap(const std::function<bool(std::string_view, std::string_view)>& f) {
  size_t prefix = store_->CurrentKey().size();
  store_->Scan(column_family_, store_->CurrentKey(), [&f, prefix](std::string_view k, std::string_view v) {
    if (k.size() == prefix) return true;  // the map's time
    return f(k.substr(prefix), v);
  });
}

// ---------------------------------------------------------------------------
// Snapshots.

namespace {

struct CapturedState {
  std::string name;
  rocksdb::ColumnFamilyHandle* family;
  RocksDBStateBase::Layout layout;
  bool ttl;
  int64_t ttl_ms;
};

/// A RocksDB snapshot of every state, written in the backend-independent
/// format on the writer thread.
class RocksDBKeyedSnapshot : public KeyedStateSnapshot {
 public:
  /// Without `take_snapshot` the derived class provides what to read
  /// (PrepareRead) before the first read.
  RocksDBKeyedSnapshot(std::shared_ptr<RocksDBStateStore::Instance> instance, std::vector<CapturedState> states,
                       std::vector<StateInfo> info, Timestamp now, int max_parallelism,
                       size_t (*key_length)(const uint8_t*, size_t), bool take_snapshot = true)
      : instance_(std::move(instance)),
        db_(instance_->db),
        states_(std::move(states)),
        snapshot_(take_snapshot ? instance_->db->GetSnapshot() : nullptr),
        info_(std::move(info)),
        now_(now),
        max_parallelism_(max_parallelism),
        key_length_(key_length) {
    if (snapshot_ != nullptr && instance_->ttl_compaction) instance_->ttl_compaction->Hold(now_);
  }
  ~RocksDBKeyedSnapshot() override {
    if (snapshot_ == nullptr) return;
    instance_->db->ReleaseSnapshot(snapshot_);
    if (instance_->ttl_compaction) instance_->ttl_compaction->Release(now_);
  }
  RocksDBKeyedSnapshot(const RocksDBKeyedSnapshot&) = delete;
  RocksDBKeyedSnapshot& operator=(const RocksDBKeyedSnapshot&) = delete;

  const std::vector<int>& KeyGroups() const override {
    PrepareRead();
    if (!groups_known_) FindGroups();
    return groups_;
  }

  void WriteKeyGroup(int key_group, ByteWriter& out) const override {
    PrepareRead();
    uint32_t num_states = static_cast<uint32_t>(states_.size());
    out.Write(&num_states, sizeof(num_states));
    for (const CapturedState& state : states_) {
      TypeSerializer<std::string>::Serialize(state.name, out);
      entries_.Reset();
      uint64_t n = 0;
      if (key_group >= 0 && key_group < max_parallelism_) {
        n = state.layout == RocksDBStateBase::Layout::kValue ? WriteValues(state, key_group)
                                                              : WriteMaps(state, key_group);
      }
      out.Write(&n, sizeof(n));
      out.Write(entries_.Data(), entries_.Size());
    }
  }

  const std::vector<StateInfo>& Info() const override { return info_; }

 protected:
  /// Called before reads (writer thread).
  virtual void PrepareRead() const {}

  std::shared_ptr<RocksDBStateStore::Instance> instance_;
  // What reads go to: the live instance (at snapshot_), or what PrepareRead set.
  mutable rocksdb::DB* db_;
  mutable std::vector<CapturedState> states_;

 private:
  std::unique_ptr<rocksdb::Iterator> Iterate(const CapturedState& state, const rocksdb::Slice* upper) const {
    rocksdb::ReadOptions options;
    options.snapshot = snapshot_;
    options.iterate_upper_bound = upper;
    options.fill_cache = false;
    return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(options, state.family));
  }
  void Check(const rocksdb::Iterator& it) const {
    if (!it.status().ok()) Fail(instance_->path, "reading a snapshot", it.status());
  }
  bool Live(const CapturedState& state, std::string_view value) const {
    return !state.ttl || (value.size() >= kTimeBytes && TimeOf(value) + state.ttl_ms > now_);
  }
  /// The length of the key group and key bytes at the start of `key`.
  size_t PrimaryLength(std::string_view key) const {
    size_t n = key.size() < kGroupBytes ? 0
                                        : key_length_(reinterpret_cast<const uint8_t*>(key.data()) + kGroupBytes,
                                                      key.size() - kGroupBytes);
    if (n == 0) {
      throw RocksDBStateError("RocksDB state backend in '" + instance_->path + "': a stored key does not decode");
    }
    return kGroupBytes + n;
  }

  void FindGroups() const {
    std::vector<bool> has(static_cast<size_t>(max_parallelism_), false);
    std::string upper_key = GroupKey(max_parallelism_);
    rocksdb::Slice upper(upper_key);
    for (const CapturedState& state : states_) {
      auto it = Iterate(state, &upper);
      it->SeekToFirst();
      while (it->Valid()) {
        std::string_view key = ToView(it->key());
        bool live;
        if (state.layout == RocksDBStateBase::Layout::kValue) {
          live = Live(state, ToView(it->value()));
        } else {
          // With TTL a map is live when its time entry (its first) is.
          live = !state.ttl || (PrimaryLength(key) == key.size() && Live(state, ToView(it->value())));
        }
        if (!live) {
          it->Next();
          continue;
        }
        int kg = GroupOf(key);
        has[static_cast<size_t>(kg)] = true;
        if (kg + 1 >= max_parallelism_) break;
        it->Seek(GroupKey(kg + 1));
      }
      Check(*it);
    }
    for (int kg = 0; kg < max_parallelism_; ++kg) {
      if (has[static_cast<size_t>(kg)]) groups_.push_back(kg);
    }
    groups_known_ = true;
  }

  uint64_t WriteValues(const CapturedState& state, int key_group) const {
    std::string lower_key = GroupKey(key_group), upper_key = GroupKey(key_group + 1);
    rocksdb::Slice upper(upper_key);
    auto it = Iterate(state, &upper);
    uint64_t n = 0;
    for (it->Seek(lower_key); it->Valid(); it->Next()) {
      std::string_view key = ToView(it->key()), value = ToView(it->value());
      if (!Live(state, value)) continue;
      if (state.ttl) value.remove_prefix(kTimeBytes);
      entries_.Write(key.data() + kGroupBytes, key.size() - kGroupBytes);
      uint32_t len = static_cast<uint32_t>(value.size());
      entries_.Write(&len, sizeof(len));
      entries_.Write(value.data(), value.size());
      ++n;
    }
    Check(*it);
    return n;
  }

  // A map's entries are consecutive (its time entry first, with TTL): they
  // are gathered into the snapshot format of the whole map, a u32 count
  // then the (user key, user value) bytes.
  uint64_t WriteMaps(const CapturedState& state, int key_group) const {
    std::string lower_key = GroupKey(key_group), upper_key = GroupKey(key_group + 1);
    rocksdb::Slice upper(upper_key);
    auto it = Iterate(state, &upper);
    uint64_t n = 0;
    std::string primary;
    bool live = false;
    uint32_t count = 0;
    auto flush = [&] {
      if (count == 0) return;
      entries_.Write(primary.data() + kGroupBytes, primary.size() - kGroupBytes);
      uint32_t len = static_cast<uint32_t>(sizeof(count) + map_.Size());
      entries_.Write(&len, sizeof(len));
      entries_.Write(&count, sizeof(count));
      entries_.Write(map_.Data(), map_.Size());
      ++n;
    };
    for (it->Seek(lower_key); it->Valid(); it->Next()) {
      std::string_view key = ToView(it->key()), value = ToView(it->value());
      size_t primary_length = PrimaryLength(key);
      if (primary.size() != primary_length || key.compare(0, primary_length, primary) != 0) {
        flush();
        primary.assign(key.substr(0, primary_length));
        count = 0;
        map_.Reset();
        live = !state.ttl;  // with TTL, the time entry tells
      }
      if (key.size() == primary_length) {
        live = Live(state, value);
        continue;
      }
      if (!live) continue;
      map_.Write(key.data() + primary_length, key.size() - primary_length);
      map_.Write(value.data(), value.size());
      ++count;
    }
    Check(*it);
    flush();
    return n;
  }

  const rocksdb::Snapshot* snapshot_;
  std::vector<StateInfo> info_;
  Timestamp now_;
  int max_parallelism_;
  size_t (*key_length_)(const uint8_t*, size_t);
  // The writer thread's.
  mutable bool groups_known_ = false;
  mutable std::vector<int> groups_;
  mutable ByteWriter entries_;  // one state's entries in a key group
  mutable ByteWriter map_;      // one map's entries
};

/// A RocksDB checkpoint of the instance (its files, hard-linked into a
/// directory of their own) for an incremental checkpoint. An output that
/// does not take files gets the key groups, read from those files.
///
/// It takes no RocksDB snapshot of the live instance: releasing one makes
/// RocksDB rewrite the bottommost files (to zero their sequence numbers),
/// and the next checkpoint would upload the rewritten files again.
class RocksDBFileSnapshot final : public RocksDBKeyedSnapshot {
 public:
  RocksDBFileSnapshot(std::shared_ptr<RocksDBStateStore::Instance> instance, std::vector<CapturedState> states,
                      std::vector<StateInfo> info, Timestamp now, int max_parallelism,
                      size_t (*key_length)(const uint8_t*, size_t), std::string directory, CheckpointId id,
                      KeyGroupRange range)
      : RocksDBKeyedSnapshot(std::move(instance), std::move(states), std::move(info), now, max_parallelism,
                             key_length, /*take_snapshot=*/false),
        directory_(std::move(directory)),
        id_(id),
        range_(range) {}
  ~RocksDBFileSnapshot() override {
    reader_.reset();
    std::error_code ec;
    std::filesystem::remove_all(directory_, ec);
  }

  bool HasFiles() const override { return true; }

  Status WriteFiles(SnapshotOutput& out) const override {
    namespace fs = std::filesystem;
    RocksDBStateStore::Instance::Files base;
    {
      std::lock_guard<std::mutex> lock(instance_->files_mutex);
      base = instance_->confirmed;
    }
    // Files of a completed checkpoint are in the shared directory as long
    // as a retained checkpoint holds them; those of another job's are not
    // this job's to reference.
    const bool reuse = base.directory == out.SharedDirectory();
    IncrementalKeyedState state;
    state.backend_id = instance_->backend_id;
    state.key_group_start = range_.start;
    state.key_group_end = range_.end;
    std::error_code ec;
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(directory_, ec)) files.push_back(entry.path());
    if (ec) return Status::IoError("cannot list the RocksDB checkpoint in '" + directory_ + "': " + ec.message());
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string name = file.filename().string();
      if (file.extension() == ".sst") {
        auto known = reuse ? base.files.find(name) : base.files.end();
        uint64_t size = fs::file_size(file, ec);
        if (ec) return Status::IoError("cannot read '" + file.string() + "': " + ec.message());
        if (known != base.files.end() && known->second.size == size) {
          state.shared_files.emplace_back(name, known->second);
          continue;
        }
        FRESHET_ASSIGN_OR_RETURN(SharedFileRef ref,
                                 out.UploadSharedFile(file.string(), instance_->backend_id + "-" + name));
        state.shared_files.emplace_back(name, std::move(ref));
      } else {
        std::ifstream in(file, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (in.bad()) return Status::IoError("cannot read '" + file.string() + "'");
        state.private_files.emplace_back(name, std::move(bytes));
      }
    }
    FRESHET_RETURN_IF_ERROR(out.AddIncrementalKeyedState(state));
    RocksDBStateStore::Instance::Files written;
    written.directory = out.SharedDirectory();
    for (const auto& [name, ref] : state.shared_files) written.files.emplace(name, ref);
    std::lock_guard<std::mutex> lock(instance_->files_mutex);
    instance_->uploaded[id_] = std::move(written);
    return Status::Ok();
  }

 protected:
  /// Opens the checkpoint's files read-only and reads from them.
  void PrepareRead() const override {
    if (reader_ != nullptr) return;
    reader_ = std::make_unique<RocksDBStateStore::Instance>();
    RocksDBStateStore::Instance& reader = *reader_;
    reader.path = directory_;
    reader.options = instance_->options;
    std::vector<std::string> names;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(reader.options, directory_, &names);
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(reader.options));
    if (s.ok()) s = rocksdb::DB::OpenForReadOnly(reader.options, directory_, descriptors, &reader.families, &reader.db);
    if (!s.ok()) Fail(directory_, "opening the files of checkpoint " + std::to_string(id_), s);
    for (size_t i = 0; i < names.size(); ++i) reader.family_index.emplace(names[i], static_cast<int>(i));
    db_ = reader.db;
    for (CapturedState& state : states_) {
      auto found = reader.family_index.find(FamilyName(state.name));
      if (found == reader.family_index.end()) {
        throw RocksDBStateError("RocksDB state backend in '" + directory_ + "': the files of checkpoint " +
                                std::to_string(id_) + " have no column family for state '" + state.name + "'");
      }
      state.family = reader.families[static_cast<size_t>(found->second)];
    }
  }

 private:
  std::string directory_;
  CheckpointId id_;
  KeyGroupRange range_;
  mutable std::unique_ptr<RocksDBStateStore::Instance> reader_;  // see PrepareRead
};

}  // namespace

// ---------------------------------------------------------------------------
// The store.

RocksDBStateStore::RocksDBStateStore(KeyGroupRange range, int max_parallelism, ProcessingTimeService* time,
                                     const StateBackendOptions& options, const RocksDBKeyCodec& codec,
                                     const std::string& slot)
    : range_(range),
      max_parallelism_(max_parallelism),
      time_(time),
      codec_(codec),
      incremental_(options.incremental),
      slot_memory_(SlotMemoryFor(slot, options.rocksdb_memory_per_slot)) {
  FRESHET_CHECK_MSG(max_parallelism >= 1 && max_parallelism <= 32768, "max parallelism out of [1, 32768]");
  if (options.rocksdb_local_dir.empty()) {
    std::error_code ec;
    base_dir_ = std::filesystem::temp_directory_path(ec).string();
    if (ec) throw RocksDBStateError("RocksDB state backend: no temporary directory: " + ec.message());
  } else {
    base_dir_ = options.rocksdb_local_dir;
  }
  auto instance = std::make_shared<Instance>();
  instance->path = MakeInstanceDirectory(base_dir_);  // from here on the instance removes the directory
  rocksdb::Options& o = instance->options;
  o.create_if_missing = true;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.keep_log_file_num = 1;
  // The instance holds a copy of checkpointed state: it is rebuilt from a
  // checkpoint after a failure, never recovered from its own files.
  o.avoid_flush_during_shutdown = true;
  // Memory: everything the slot's instances hold in memory is in its
  // budget (see SlotMemory). A memtable (one per state, two while one is
  // flushed) is at most an eighth of the budget's memtable half, 64 MB at
  // most, and grows in arena blocks of an eighth of that: what a flush
  // leaves in use stays small against the budget.
  const uint64_t budget = slot_memory_->budget;
  o.write_buffer_manager = slot_memory_->write_buffers;
  o.write_buffer_size = std::clamp<uint64_t>(budget / 2 / 8, uint64_t{256} << 10, uint64_t{64} << 20);
  o.arena_block_size = std::clamp<uint64_t>(o.write_buffer_size / 8, uint64_t{32} << 10, uint64_t{1} << 20);
  o.max_write_buffer_number = 2;
  // Point lookups dominate keyed state: a Bloom filter per table (and per
  // memtable) lets a lookup skip the files that do not hold the key, and
  // the block cache keeps hot blocks decoded. Index and filter blocks live
  // in the cache (in the budget); those of level 0, read by every lookup,
  // stay pinned there.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  table.block_cache = slot_memory_->cache;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  o.memtable_prefix_bloom_size_ratio = 0.1;
  o.memtable_whole_key_filtering = true;
  // One writer (the task thread): the memtable's single-writer insert path.
  o.allow_concurrent_memtable_write = false;
  o.merge_operator = std::make_shared<ListAppendOperator>();
  instance->ttl_compaction = std::make_shared<TtlCompaction>();
  o.compaction_filter_factory = instance->ttl_compaction;
  OpenInstance(*instance, false);
  instance->write.disableWAL = true;
  instance_ = std::move(instance);
}

RocksDBStateStore::~RocksDBStateStore() {
  // States first: they refer to the store.
  states_.clear();
}

const std::string& RocksDBStateStore::Path() const { return instance_->path; }

Timestamp RocksDBStateStore::Now() const {
  if (time_ == nullptr) return 0;
  Timestamp now = time_->CurrentProcessingTime();
  instance_->ttl_compaction->SetNow(now);
  return now;
}

void RocksDBStateStore::SerializeCurrentKey() {
  FRESHET_CHECK_MSG(current_key_ != nullptr, "keyed state accessed without a current key");
  key_bytes_.clear();
  AppendGroup(&key_bytes_, codec_.key_group(current_key_, max_parallelism_));
  codec_.serialize(current_key_, &key_bytes_);
  key_stale_ = false;
}

KeyedStateBase* RocksDBStateStore::Find(const std::string& name) {
  auto it = states_.find(name);
  return it == states_.end() ? nullptr : it->second.get();
}

KeyedStateBase* RocksDBStateStore::Register(const std::string& name, std::unique_ptr<KeyedStateBase> made) {
  auto* typed = dynamic_cast<RocksDBStateBase*>(made.get());
  if (typed == nullptr) throw std::logic_error("state '" + name + "' was not made for the RocksDB backend");
  std::unique_ptr<RocksDBStateBase> state(typed);
  made.release();
  bool mismatch = false;
  for (const StateInfo& old : restored_info_) {
    if (old.name == name && (old.kind != state->Kind() || old.type_name != state->Type().name())) {
      ReportRestoreProblem("keyed state '" + name + "' was saved as " + old.kind + " state of type '" +
                           old.type_name + "' and is now requested as " + state->Kind() + " state of type '" +
                           state->Type().name() + "'; a state's kind and type must not change across a restore");
      pending_.erase(name);  // the saved values do not fit: the state starts empty
      mismatch = true;
    }
  }
  Instance& instance = *instance_;
  const std::string family_name = FamilyName(name);
  auto restored = instance.family_index.find(family_name);
  if (restored != instance.family_index.end() && mismatch) {
    // Restored from files: the state's old entries go with their family.
    rocksdb::ColumnFamilyHandle*& old = instance.families[static_cast<size_t>(restored->second)];
    rocksdb::Status s = instance.db->DropColumnFamily(old);
    if (s.ok()) s = instance.db->DestroyColumnFamilyHandle(old);
    if (!s.ok()) Fail(instance.path, "dropping the restored column family of state '" + name + "'", s);
    old = nullptr;
    rocksdb::ColumnFamilyHandle* family = nullptr;
    s = instance.db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(instance.options), family_name, &family);
    if (!s.ok()) Fail(instance.path, "creating the column family of state '" + name + "'", s);
    old = family;
  } else if (restored == instance.family_index.end()) {
    rocksdb::ColumnFamilyHandle* family = nullptr;
    rocksdb::Status s =
        instance.db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(instance.options), family_name, &family);
    if (!s.ok()) Fail(instance.path, "creating the column family of state '" + name + "'", s);
    instance.families.push_back(family);
    restored = instance.family_index.emplace(family_name, static_cast<int>(instance.families.size() - 1)).first;
  }
  state->SetColumnFamily(restored->second);
  if (state->Ttl() && state->GetLayout() == RocksDBStateBase::Layout::kValue) {
    instance.ttl_compaction->SetTtl(instance.families[static_cast<size_t>(restored->second)]->GetID(),
                                    state->Ttl()->ttl.count());
    Now();  // compactions from here on know the time
  }
  RocksDBStateBase* registered = states_.emplace(name, std::move(state)).first->second.get();

  auto pending = pending_.find(name);
  if (pending != pending_.end()) {
    PendingEntries entries = std::move(pending->second);
    pending_.erase(pending);
    RocksDBWriteBatch batch = NewBatch();
    Timestamp now = Now();
    for (PendingEntries::Block& block : entries.blocks) {
      Status added = AddEntries(name, *registered, reinterpret_cast<const uint8_t*>(block.bytes.data()),
                                block.bytes.size(), block.count, now, batch);
      if (!added.IsOk()) throw std::runtime_error(added.Message());
      std::string().swap(block.bytes);
    }
    Write(batch);
  }
  return registered;
}

bool RocksDBStateStore::Get(int column_family, std::string_view key, std::string* value) {
  rocksdb::Status s = instance_->db->Get(instance_->read, instance_->families[static_cast<size_t>(column_family)],
                                         ToSlice(key), value);
  if (s.ok()) return true;
  if (s.IsNotFound()) return false;
  Fail(instance_->path, "reading", s);
}

void RocksDBStateStore::Put(int column_family, std::string_view key, std::string_view value) {
  rocksdb::WriteBatch& batch = instance_->single;
  batch.Clear();
  rocksdb::Status s =
      batch.Put(instance_->families[static_cast<size_t>(column_family)], ToSlice(key), ToSlice(value));
  if (s.ok()) s = instance_->db->Write(instance_->write, &batch);
  if (!s.ok()) Fail(instance_->path, "writing", s);
}

void RocksDBStateStore::AppendList(int column_family, std::string_view key, std::string_view list) {
  rocksdb::WriteBatch& batch = instance_->single;
  batch.Clear();
  rocksdb::Status s =
      batch.Merge(instance_->families[static_cast<size_t>(column_family)], ToSlice(key), ToSlice(list));
  if (s.ok()) s = instance_->db->Write(instance_->write, &batch);
  if (!s.ok()) Fail(instance_->path, "appending to a list", s);
}

void RocksDBStateStore::Delete(int column_family, std::string_view key) {
  rocksdb::WriteBatch& batch = instance_->single;
  batch.Clear();
  rocksdb::Status s = batch.Delete(instance_->families[static_cast<size_t>(column_family)], ToSlice(key));
  if (s.ok()) s = instance_->db->Write(instance_->write, &batch);
  if (!s.ok()) Fail(instance_->path, "deleting", s);
}

void RocksDBStateStore::Scan(int column_family, std::string_view prefix,
                             const std::function<bool(std::string_view, std::string_view)>& f) {
  std::string upper_key = Successor(prefix);
  rocksdb::Slice upper(upper_key);
  rocksdb::ReadOptions options = instance_->read;
  if (!upper_key.empty()) options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(
      instance_->db->NewIterator(options, instance_->families[static_cast<size_t>(column_family)]));
  for (it->Seek(ToSlice(prefix)); it->Valid(); it->Next()) {
    std::string_view key = ToView(it->key());
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!f(key, ToView(it->value()))) return;
  }
  if (!it->status().ok()) Fail(instance_->path, "iterating", it->status());
}

void RocksDBStateStore::DeletePrefix(int column_family, std::string_view prefix) {
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* family = instance_->families[static_cast<size_t>(column_family)];
  rocksdb::Status s;
  Scan(column_family, prefix, [&](std::string_view key, std::string_view) {
    s = batch.Delete(family, ToSlice(key));
    return s.ok();
  });
  if (s.ok()) s = instance_->db->Write(instance_->write, &batch);
  if (!s.ok()) Fail(instance_->path, "deleting", s);
}

void RocksDBStateStore::Write(RocksDBWriteBatch& batch) {
  rocksdb::Status s = instance_->db->Write(instance_->write, &batch.Get().batch);
  if (!s.ok()) Fail(instance_->path, "writing", s);
}

std::unique_ptr<KeyedStateSnapshot> RocksDBStateStore::Snapshot(bool files, CheckpointId id) {
  std::vector<CapturedState> states;
  std::vector<StateInfo> info;
  states.reserve(states_.size());
  for (const auto& [name, state] : states_) {
    const auto& ttl = state->Ttl();
    states.push_back({name, instance_->families[static_cast<size_t>(state->ColumnFamily())], state->GetLayout(),
                      ttl.has_value(), ttl ? ttl->ttl.count() : 0});
    info.push_back({name, state->Kind(), state->Type().name()});
  }
  if (!files) {
    return std::make_unique<RocksDBKeyedSnapshot>(instance_, std::move(states), std::move(info), Now(),
                                                  max_parallelism_, codec_.length);
  }
  // The checkpoint flushes the memtables (nothing is written meanwhile:
  // this is the only writer) and hard-links the live files.
  std::string directory = instance_->path + ".chk-" + std::to_string(id);
  std::error_code ec;
  std::filesystem::remove_all(directory, ec);  // of an earlier attempt of this checkpoint
  rocksdb::Checkpoint* checkpoint = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(instance_->db, &checkpoint);
  if (s.ok()) {
    s = checkpoint->CreateCheckpoint(directory, /*log_size_for_flush=*/0);
    delete checkpoint;
  }
  if (!s.ok()) {
    std::filesystem::remove_all(directory, ec);
    Fail(instance_->path, "making the files of checkpoint " + std::to_string(id) + " in '" + directory + "'", s);
  }
  return std::make_unique<RocksDBFileSnapshot>(instance_, std::move(states), std::move(info), Now(),
                                               max_parallelism_, codec_.length, std::move(directory), id, range_);
}

void RocksDBStateStore::NotifyCheckpointComplete(CheckpointId id) {
  std::lock_guard<std::mutex> lock(instance_->files_mutex);
  auto& uploaded = instance_->uploaded;
  auto it = uploaded.find(id);
  if (it != uploaded.end()) instance_->confirmed = std::move(it->second);
  // Older checkpoints are subsumed; an aborted one's files may be gone.
  uploaded.erase(uploaded.begin(), uploaded.upper_bound(id));
}

const std::string& RocksDBStateStore::BackendId() const { return instance_->backend_id; }

uint64_t RocksDBStateStore::SlotMemoryUsage() const { return slot_memory_->cache->GetUsage(); }

uint64_t RocksDBStateStore::SlotMemoryBudget() const { return slot_memory_->cache->GetCapacity(); }

void RocksDBStateStore::WaitForBackgroundWork() const {
  for (;;) {
    uint64_t pending = 0, running = 0, flushes = 0, flush_pending = 0;
    rocksdb::DB* db = instance_->db;
    db->GetAggregatedIntProperty(rocksdb::DB::Properties::kCompactionPending, &pending);
    db->GetIntProperty(rocksdb::DB::Properties::kNumRunningCompactions, &running);
    db->GetIntProperty(rocksdb::DB::Properties::kNumRunningFlushes, &flushes);
    db->GetAggregatedIntProperty(rocksdb::DB::Properties::kMemTableFlushPending, &flush_pending);
    if (pending == 0 && running == 0 && flushes == 0 && flush_pending == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void RocksDBStateStore::CompactAll() {
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  for (rocksdb::ColumnFamilyHandle* family : instance_->families) {
    if (family != nullptr) families.push_back(family);
  }
  rocksdb::FlushOptions flush;
  rocksdb::Status s = instance_->db->Flush(flush, families);
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* family : families) {
    if (s.ok()) s = instance_->db->CompactRange(options, family, nullptr, nullptr);
  }
  if (!s.ok()) Fail(instance_->path, "compacting", s);
}

int RocksDBStateStore::FamilyIndex(const std::string& family_name) {
  Instance& instance = *instance_;
  if (auto found = instance.family_index.find(family_name); found != instance.family_index.end()) {
    return found->second;
  }
  rocksdb::ColumnFamilyHandle* family = nullptr;
  rocksdb::Status s =
      instance.db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(instance.options), family_name, &family);
  if (!s.ok()) Fail(instance.path, "creating column family '" + family_name + "'", s);
  instance.families.push_back(family);
  int index = static_cast<int>(instance.families.size() - 1);
  instance.family_index.emplace(family_name, index);
  return index;
}

bool RocksDBStateStore::FirstAtOrAfter(int column_family, std::string_view from, std::string* key) {
  std::unique_ptr<rocksdb::Iterator> it(
      instance_->db->NewIterator(instance_->read, instance_->families[static_cast<size_t>(column_family)]));
  it->Seek(ToSlice(from));
  if (!it->Valid()) {
    if (!it->status().ok()) Fail(instance_->path, "iterating", it->status());
    return false;
  }
  key->assign(it->key().data(), it->key().size());
  return true;
}

namespace {

/// Timers of one time domain in a column family of the store's instance:
/// key = time (8 bytes, big-endian, sign bit flipped: signed order) + key
/// group (2 bytes) + key and namespace bytes; no value. The earliest timer
/// is found by a seek from the smallest key that may still be there (the
/// last one taken, or a smaller one added since), which steps over the
/// deletions of the timers already fired.
class RocksDBTimerStorage final : public TimerStorage {
 public:
  RocksDBTimerStorage(RocksDBStateStore* store, std::string family_name)
      : store_(store), family_name_(std::move(family_name)) {}

  bool Add(Timestamp ts, int key_group, std::string_view key_ns) override {
    MakeKey(ts, key_group, key_ns);
    int family = Family();
    if (store_->Get(family, key_, &value_)) return false;
    store_->Put(family, key_, std::string_view());
    if (key_ < low_) low_ = key_;
    ++size_;
    return true;
  }
  bool Remove(Timestamp ts, int key_group, std::string_view key_ns) override {
    MakeKey(ts, key_group, key_ns);
    int family = Family();
    if (!store_->Get(family, key_, &value_)) return false;
    store_->Delete(family, key_);
    --size_;
    return true;
  }
  bool First(Timestamp* ts, int* key_group, std::string_view* key_ns) override {
    if (size_ == 0) return false;
    if (!store_->FirstAtOrAfter(Family(), low_, &first_)) return false;
    low_ = first_;
    Parse(first_, ts, key_group, key_ns);
    return true;
  }
  void ForEach(const std::function<void(Timestamp, int, std::string_view)>& f) override {
    store_->Scan(Family(), std::string_view(), [&f](std::string_view key, std::string_view) {
      Timestamp ts = 0;
      int key_group = 0;
      std::string_view key_ns;
      Parse(key, &ts, &key_group, &key_ns);
      f(ts, key_group, key_ns);
      return true;
    });
  }
  size_t Size() const override { return size_; }

 private:
  static constexpr uint64_t kSign = uint64_t{1} << 63;
  void MakeKey(Timestamp ts, int key_group, std::string_view key_ns) {
    key_.clear();
    uint64_t t = static_cast<uint64_t>(ts) ^ kSign;
    for (int shift = 56; shift >= 0; shift -= 8) key_.push_back(static_cast<char>((t >> shift) & 0xff));
    AppendGroup(&key_, key_group);
    key_.append(key_ns);
  }
  static void Parse(std::string_view key, Timestamp* ts, int* key_group, std::string_view* key_ns) {
    uint64_t t = 0;
    for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<uint8_t>(key[static_cast<size_t>(i)]);
    *ts = static_cast<Timestamp>(t ^ kSign);
    *key_group = GroupOf(key.substr(8));
    *key_ns = key.substr(8 + kGroupBytes);
  }
  int Family() {
    if (store_->InstanceToken() != instance_) {
      instance_ = store_->InstanceToken();
      family_ = store_->FamilyIndex(family_name_);
    }
    return family_;
  }

  RocksDBStateStore* store_;
  std::string family_name_;
  const void* instance_ = nullptr;
  int family_ = -1;
  size_t size_ = 0;
  std::string low_;  // no timer has a smaller key
  std::string key_, value_, first_;
};

}  // namespace

std::unique_ptr<TimerStorage> RocksDBStateStore::NewTimerStorage(const std::string& name) {
  std::string family_name = FamilyName(name);
  family_name[0] = 't';
  return std::make_unique<RocksDBTimerStorage>(this, std::move(family_name));
}

uint64_t RocksDBStateStore::MemTableBytes() const {
  uint64_t bytes = 0;
  if (!instance_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &bytes)) return 0;
  return bytes;
}

Status RocksDBStateStore::RestoreFiles(const std::vector<RestoredIncrementalState>& files) {
  if (!states_.empty() || !pending_.empty()) {
    return Status::Internal("RocksDB files restored after states were registered or key groups restored");
  }
  auto overlap = [this](const RestoredIncrementalState& part) {
    return std::max(0, std::min(part.key_group_end, range_.end) - std::max(part.key_group_start, range_.start) + 1);
  };
  const RestoredIncrementalState* base = nullptr;
  for (const RestoredIncrementalState& part : files) {
    if (overlap(part) > 0 && (base == nullptr || overlap(part) > overlap(*base))) base = &part;
  }
  if (base == nullptr) return Status::Ok();  // nothing of this instance's key groups

  // The instance that overlaps most becomes this one's, clipped to the range.
  auto instance = std::make_shared<Instance>();
  instance->path = MakeInstanceDirectory(base_dir_);
  instance->options = instance_->options;
  instance->ttl_compaction = std::make_shared<TtlCompaction>();
  instance->options.compaction_filter_factory = instance->ttl_compaction;
  instance->write = instance_->write;
  FRESHET_RETURN_IF_ERROR(MaterializeFiles(*base, instance->path));
  OpenInstance(*instance, true);
  // Timers come back from the key-group blocks, not from the files (their
  // keys start with the time, not the key group).
  for (auto it = instance->family_index.begin(); it != instance->family_index.end();) {
    if (it->first.empty() || it->first[0] != 't') {
      ++it;
      continue;
    }
    rocksdb::ColumnFamilyHandle*& family = instance->families[static_cast<size_t>(it->second)];
    rocksdb::Status s = instance->db->DropColumnFamily(family);
    if (s.ok()) s = instance->db->DestroyColumnFamilyHandle(family);
    if (!s.ok()) return ToStatus(instance->path, "dropping the restored timers", s);
    family = nullptr;
    it = instance->family_index.erase(it);
  }
  const std::string lowest = GroupKey(range_.start), beyond = GroupKey(range_.end + 1);
  const std::string everything_after = "\xff";  // keys start with a key group < 32768
  {
    rocksdb::WriteBatch clip;
    for (const auto& [name, index] : instance->family_index) {
      if (name == rocksdb::kDefaultColumnFamilyName) continue;
      rocksdb::ColumnFamilyHandle* family = instance->families[static_cast<size_t>(index)];
      rocksdb::Status s;
      if (base->key_group_start < range_.start) s = clip.DeleteRange(family, rocksdb::Slice(), lowest);
      if (s.ok() && base->key_group_end > range_.end) s = clip.DeleteRange(family, beyond, everything_after);
      if (!s.ok()) return ToStatus(instance->path, "clipping to key groups", s);
    }
    rocksdb::Status s = instance->db->Write(instance->write, &clip);
    if (!s.ok()) return ToStatus(instance->path, "clipping to key groups", s);
  }

  // The other overlapping instances' entries in the range are copied in.
  for (const RestoredIncrementalState& part : files) {
    if (&part == base || overlap(part) == 0) continue;
    Instance other;
    other.path = MakeInstanceDirectory(base_dir_);
    other.options = instance->options;
    // Read once and removed: no compaction (and no TTL filter, whose
    // column family ids are the new instance's).
    other.options.compaction_filter_factory = nullptr;
    other.options.disable_auto_compactions = true;
    FRESHET_RETURN_IF_ERROR(MaterializeFiles(part, other.path));
    OpenInstance(other, true);
    rocksdb::Slice lower(lowest), upper(beyond);
    rocksdb::ReadOptions read;
    read.iterate_lower_bound = &lower;
    read.iterate_upper_bound = &upper;
    read.fill_cache = false;
    for (const auto& [name, index] : other.family_index) {
      if (name == rocksdb::kDefaultColumnFamilyName || name[0] == 't') continue;
      auto target = instance->family_index.find(name);
      if (target == instance->family_index.end()) {
        rocksdb::ColumnFamilyHandle* family = nullptr;
        rocksdb::Status s =
            instance->db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(instance->options), name, &family);
        if (!s.ok()) return ToStatus(instance->path, "creating a column family", s);
        instance->families.push_back(family);
        target = instance->family_index.emplace(name, static_cast<int>(instance->families.size() - 1)).first;
      }
      rocksdb::ColumnFamilyHandle* family = instance->families[static_cast<size_t>(target->second)];
      std::unique_ptr<rocksdb::Iterator> it(
          other.db->NewIterator(read, other.families[static_cast<size_t>(index)]));
      rocksdb::WriteBatch batch;
      rocksdb::Status s;
      for (it->Seek(lower); it->Valid() && s.ok(); it->Next()) {
        s = batch.Put(family, it->key(), it->value());
        if (s.ok() && batch.GetDataSize() >= (size_t{4} << 20)) {
          s = instance->db->Write(instance->write, &batch);
          batch.Clear();
        }
      }
      if (s.ok()) s = it->status();
      if (s.ok()) s = instance->db->Write(instance->write, &batch);
      if (!s.ok()) return ToStatus(other.path, "copying the entries of backend " + part.backend_id, s);
    }
  }

  // The base's files are this instance's too: the next checkpoint
  // references them when it goes to the same shared directory.
  instance->confirmed.directory = base->shared_directory;
  for (const auto& [local, ref] : base->shared_files) instance->confirmed.files.emplace(local, ref);
  instance_ = std::move(instance);
  return Status::Ok();
}

RocksDBWriteBatch RocksDBStateStore::NewBatch() {
  RocksDBWriteBatch batch;
  batch.Get().families = &instance_->families;
  return batch;
}

Status RocksDBStateStore::AddEntries(const std::string& name, RocksDBStateBase& state, const uint8_t* data,
                                     size_t size, uint64_t count, Timestamp now, RocksDBWriteBatch& batch) {
  ByteReader r(data, size);
  std::string& key = restore_key_;
  for (uint64_t e = 0; e < count; ++e) {
    const uint8_t* at = data + (size - r.Remaining());
    int kg = 0;
    size_t key_length = codec_.parse(at, r.Remaining(), max_parallelism_, &kg);
    r.Take(key_length);
    uint32_t len = 0;
    r.Read(&len, sizeof(len));
    const uint8_t* value = r.Take(len);
    if (key_length == 0 || r.Failed()) return Status::Corruption("keyed state snapshot does not decode");
    key.clear();
    AppendGroup(&key, kg);
    key.append(reinterpret_cast<const char*>(at), key_length);
    if (!state.AddRestored(key, value, len, now, batch)) {
      return Status::Corruption("state '" + name + "' does not decode from its snapshot");
    }
  }
  return Status::Ok();
}

Status RocksDBStateStore::RestoreKeyGroup(const uint8_t* data, size_t size) {
  // Every entry's framing and key are checked before anything is applied.
  Result<std::vector<KeyGroupStateEntries>> parsed = ParseKeyGroupBlock(data, size, range_, [&](ByteReader& r) {
    int kg = 0;
    size_t key_length = codec_.parse(data + (size - r.Remaining()), r.Remaining(), max_parallelism_, &kg);
    if (key_length == 0) return -1;
    r.Take(key_length);
    return kg;
  });
  if (!parsed.IsOk()) return parsed.GetStatus();
  // Then the values of registered states, all into one batch, written
  // only when every one decodes.
  RocksDBWriteBatch batch = NewBatch();
  Timestamp now = Now();
  bool any = false;
  for (const KeyGroupStateEntries& entries : *parsed) {
    if (entries.count == 0) continue;
    auto state = states_.find(entries.name);
    if (state == states_.end()) continue;
    FRESHET_RETURN_IF_ERROR(
        AddEntries(entries.name, *state->second, entries.begin, entries.size, entries.count, now, batch));
    any = true;
  }
  if (any) Write(batch);
  for (const KeyGroupStateEntries& entries : *parsed) {
    if (entries.count == 0 || states_.count(entries.name) > 0) continue;
    pending_[entries.name].blocks.push_back(
        {std::string(reinterpret_cast<const char*>(entries.begin), entries.size), entries.count});
  }
  return Status::Ok();
}

std::vector<std::string> RocksDBStateStore::KeysWithState(const std::string& name) {
  std::vector<std::string> keys;
  auto found = states_.find(name);
  if (found == states_.end()) return keys;
  const RocksDBStateBase& state = *found->second;
  const auto& ttl = state.Ttl();
  Timestamp now = Now();
  auto live = [&](std::string_view value) {
    return !ttl || (value.size() >= kTimeBytes && TimeOf(value) + ttl->ttl.count() > now);
  };
  Scan(state.ColumnFamily(), std::string_view(), [&](std::string_view key, std::string_view value) {
    if (key.size() < kGroupBytes) return true;
    if (state.GetLayout() == RocksDBStateBase::Layout::kValue) {
      if (live(value)) keys.emplace_back(key.substr(kGroupBytes));
      return true;
    }
    size_t n = codec_.length(reinterpret_cast<const uint8_t*>(key.data()) + kGroupBytes, key.size() - kGroupBytes);
    std::string_view primary = key.substr(kGroupBytes, n);
    if (!keys.empty() && keys.back() == primary) return true;
    // With TTL a map's first entry is its time.
    if (!ttl || (n + kGroupBytes == key.size() && live(value))) keys.emplace_back(primary);
    return true;
  });
  return keys;
}

size_t RocksDBStateStore::NumKeys() {
  std::set<std::string> keys;
  for (const auto& [name, state] : states_) {
    Scan(state->ColumnFamily(), std::string_view(), [&](std::string_view key, std::string_view) {
      size_t n = state->GetLayout() == RocksDBStateBase::Layout::kValue
                     ? key.size()
                     : kGroupBytes + codec_.length(reinterpret_cast<const uint8_t*>(key.data()) + kGroupBytes,
                                                   key.size() - kGroupBytes);
      keys.emplace(key.substr(0, n));
      return true;
    });
  }
  return keys.size();
}

}  // namespace freshet::internal
