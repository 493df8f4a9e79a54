#pragma once
/// What operators write into checkpoints and read back on restore.
///
/// An operator instance's state has two parts:
/// - keyed state, written per key group (the unit of rescaling): one block
///   of bytes per non-empty key group, itself a list of named parts
///   ("state" for the keyed backend, "timers" for timers, operator-specific
///   parts for windows and joins; see KeyGroupParts);
/// - operator state, named lists of entries with a redistribution mode.
///
/// Snapshots are taken in two steps. On the task thread, when the barrier
/// has reached the operator, `SnapshotState` captures what it needs (a
/// cheap copy-on-write handle, or already-serialized bytes) and returns an
/// `AsyncSnapshot`. The task runs that function later, possibly on another
/// thread, to write the bytes into a `SnapshotOutput`; it must not touch
/// the operator's live state.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/serializer.h"
#include "freshet/status.h"

namespace freshet::internal {

/// How a named operator list state is given back after a restore at
/// possibly another parallelism.
enum class OperatorStateMode : uint8_t {
  /// The entries of all old subtasks, concatenated in subtask order, are
  /// split into contiguous near-equal parts, one per new subtask.
  kSplit = 0,
  /// Every new subtask gets all entries of all old subtasks.
  kUnion = 1,
  /// Every subtask held the same entries (broadcast state): new subtask i
  /// gets old subtask (i mod old parallelism)'s entries.
  kBroadcast = 2,
  /// In-flight data of an unaligned checkpoint (the task's input channels):
  /// restored by the same subtask only, at the same parallelism.
  kChannel = 3,
};

/// Declares a state of an operator for the compatibility check on restore.
struct StateInfo {
  std::string name;
  std::string kind;       // "value", "list", "map", "reducing", "aggregating", "operator-list", ...
  std::string type_name;  // the value type's name (a changed type is a different name)
};

/// A file of a keyed backend's own format (an SST file of RocksDB) in the
/// job's shared directory: uploaded by the first checkpoint that holds it
/// and referenced by every later one that still does (incremental
/// checkpoints). Shared files are immutable; the checkpoint coordinator
/// counts the retained checkpoints that reference each one and deletes it
/// when none does.
struct SharedFileRef {
  std::string name;  // in the shared directory; unique per backend instance and file
  uint64_t size = 0;
  uint32_t crc32c = 0;  // of the whole file
  friend bool operator==(const SharedFileRef&, const SharedFileRef&) = default;
};

/// The keyed state of one operator instance as the files of its backend's
/// own format, for an incremental checkpoint: large immutable files in the
/// shared directory, small per-checkpoint files (manifest, options)
/// written into the task's state file.
struct IncrementalKeyedState {
  /// The backend instance that wrote the files: a restore at the same key
  /// groups that keeps this id may keep referencing its shared files.
  std::string backend_id;
  int key_group_start = 0;  // the key groups the backend held
  int key_group_end = -1;
  /// File name in the backend's directory -> the shared file.
  std::vector<std::pair<std::string, SharedFileRef>> shared_files;
  /// File name in the backend's directory -> contents.
  std::vector<std::pair<std::string, std::string>> private_files;
};

/// IncrementalKeyedState as restored: shared files by absolute path.
struct RestoredIncrementalState {
  std::string backend_id;
  int key_group_start = 0;
  int key_group_end = -1;
  /// The shared directory the files are in (absolute), so a backend can
  /// tell whether its next checkpoint may reference them (same directory)
  /// or must upload them again (a job resumed from another job's
  /// checkpoint).
  std::string shared_directory;
  std::vector<std::pair<std::string, SharedFileRef>> shared_files;
  std::vector<std::pair<std::string, std::string>> private_files;
};

/// Where an AsyncSnapshot writes. Implemented by checkpoint storage (a
/// file per task) and by the test harness (memory).
class SnapshotOutput {
 public:
  virtual ~SnapshotOutput() = default;
  /// The job's shared directory (absolute) when this output takes
  /// incremental keyed state, empty otherwise (savepoints, which must be
  /// self-contained and backend-independent, and test harnesses): a backend
  /// then writes its key groups with AddKeyGroup.
  virtual std::string SharedDirectory() const { return {}; }
  /// Uploads a local file into the shared directory as `name` (written
  /// under a temporary name, synced, renamed) and returns its reference.
  /// A file of that name already there with the same size is kept (an
  /// upload repeated after a failure). REQUIRES: SharedDirectory() is set.
  virtual Result<SharedFileRef> UploadSharedFile(const std::string& local_path, const std::string& name) {
    (void)local_path;
    return Status::FailedPrecondition("this snapshot takes no shared files (uploading '" + name + "')");
  }
  /// Adds the current operator's keyed state as backend files (at most
  /// once per operator; its shared files were uploaded by this or an
  /// earlier checkpoint). REQUIRES: SharedDirectory() is set.
  virtual Status AddIncrementalKeyedState(const IncrementalKeyedState& state) {
    return Status::FailedPrecondition("this snapshot takes no incremental keyed state (backend " + state.backend_id +
                                      ")");
  }
  /// Adds the bytes of one key group. Each key group at most once.
  virtual Status AddKeyGroup(int key_group, std::string_view bytes) = 0;
  /// Adds a named operator list state.
  virtual Status AddOperatorState(const std::string& name, OperatorStateMode mode,
                                  const std::vector<std::string>& entries) = 0;
  /// Declares a state (keyed or operator) for the compatibility check.
  virtual void AddStateInfo(StateInfo info) = 0;
};

/// Writes a snapshot captured on the task thread; may run on another thread.
using AsyncSnapshot = std::function<Status(SnapshotOutput&)>;

/// Runs several captured snapshots into one output, in order.
inline AsyncSnapshot CombineSnapshots(std::vector<AsyncSnapshot> parts) {
  return [parts = std::move(parts)](SnapshotOutput& out) -> Status {
    for (const AsyncSnapshot& p : parts) {
      if (p) FRESHET_RETURN_IF_ERROR(p(out));
    }
    return Status::Ok();
  };
}

/// One operator list state as restored for this subtask.
struct RestoredOperatorState {
  OperatorStateMode mode = OperatorStateMode::kSplit;
  std::vector<std::string> entries;
};

/// What one operator instance restores from: the bytes of the key groups it
/// owns now (written by one or several old subtasks) and the operator state
/// assigned to it.
struct OperatorRestore {
  /// True when the job started from a checkpoint or savepoint holding state
  /// for this operator (possibly none for this subtask).
  bool restored = false;
  std::vector<std::pair<int, std::string>> key_groups;
  std::map<std::string, RestoredOperatorState> operator_state;
  std::vector<StateInfo> state_info;
  /// Keyed state of incremental checkpoints: every old instance whose key
  /// groups overlap this one's (one when the parallelism is unchanged).
  std::vector<RestoredIncrementalState> incremental;

  /// The declared type of state `name` in the snapshot, or nullptr.
  const StateInfo* FindInfo(const std::string& name) const {
    for (const StateInfo& i : state_info) {
      if (i.name == name) return &i;
    }
    return nullptr;
  }
};

/// A key group's block: named parts, so several components of an operator
/// (keyed backend, timers, window contents) share one block and a restore
/// finds each by name.
///
/// Format: u32 count, then per part: string name, u64 length, bytes.
class KeyGroupParts {
 public:
  void Add(const std::string& name, const uint8_t* data, size_t size) {
    parts_.emplace_back(name, std::string(reinterpret_cast<const char*>(data), size));
  }
  void Add(const std::string& name, const ByteWriter& w) { Add(name, w.Data(), w.Size()); }
  bool Empty() const { return parts_.empty(); }
  std::string Encode() const {
    ByteWriter w;
    uint32_t n = static_cast<uint32_t>(parts_.size());
    w.Write(&n, sizeof(n));
    for (const auto& [name, bytes] : parts_) {
      TypeSerializer<std::string>::Serialize(name, w);
      uint64_t len = bytes.size();
      w.Write(&len, sizeof(len));
      w.Write(bytes.data(), bytes.size());
    }
    return std::string(reinterpret_cast<const char*>(w.Data()), w.Size());
  }
  /// Splits a block into its parts; Corruption when it does not decode.
  static Result<std::vector<std::pair<std::string, std::string_view>>> Decode(std::string_view block) {
    ByteReader r(reinterpret_cast<const uint8_t*>(block.data()), block.size());
    uint32_t n = 0;
    r.Read(&n, sizeof(n));
    std::vector<std::pair<std::string, std::string_view>> out;
    for (uint32_t i = 0; i < n && !r.Failed(); ++i) {
      std::string name;
      TypeSerializer<std::string>::Deserialize(r, name);
      uint64_t len = 0;
      r.Read(&len, sizeof(len));
      const uint8_t* p = r.Take(len);
      if (p == nullptr) break;
      out.emplace_back(std::move(name), std::string_view(reinterpret_cast<const char*>(p), len));
    }
    if (r.Failed() || r.Remaining() != 0) return Status::Corruption("key group block does not decode");
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> parts_;
};

/// A portable name for a state's value type.
template <class T>
std::string TypeNameOf() {
  return typeid(T).name();
}

/// SnapshotOutput collecting into memory (the operator test harness and
/// tests of snapshot formats use it).
class MemorySnapshotOutput final : public SnapshotOutput {
 public:
  Status AddKeyGroup(int key_group, std::string_view bytes) override {
    if (!key_groups.emplace(key_group, std::string(bytes)).second) {
      return Status::Internal("key group " + std::to_string(key_group) + " written twice");
    }
    return Status::Ok();
  }
  Status AddOperatorState(const std::string& name, OperatorStateMode mode,
                          const std::vector<std::string>& entries) override {
    auto& s = operator_state[name];
    s.mode = mode;
    s.entries = entries;
    return Status::Ok();
  }
  void AddStateInfo(StateInfo info) override { state_info.push_back(std::move(info)); }

  /// This snapshot as the restore of a single subtask at the same parallelism.
  OperatorRestore AsRestore() const {
    OperatorRestore r;
    r.restored = true;
    for (const auto& [kg, bytes] : key_groups) r.key_groups.emplace_back(kg, bytes);
    r.operator_state = operator_state;
    r.state_info = state_info;
    return r;
  }

  std::map<int, std::string> key_groups;
  std::map<std::string, RestoredOperatorState> operator_state;
  std::vector<StateInfo> state_info;
};

}  // namespace freshet::internal
