#pragma once
// Checkpoint storage on a file-system directory (local or a shared mount).
//
// Layout:
//   <state.checkpoints.dir>/<job-id>/chk-<n>/          one per checkpoint
//       <vertex>-<subtask>-<attempt>.state              one state file per task
//       _metadata                                       written last, atomically
//   <state.checkpoints.dir>/<job-id>/shared/            files of incremental keyed
//                                                       state, shared by checkpoints
//   <savepoint target>/savepoint-<job-id prefix>-<n>-<random>/   same content
//
// A checkpoint exists only once its `_metadata` exists: it is written to a
// temporary name, synced and renamed. Every state file ends with a footer
// holding its length and CRC32C; the metadata lists every file with its
// size and checksum and carries its own checksum, so corruption and partial
// writes are detected before anything is restored.
//
// Paths inside the metadata are relative to the checkpoint directory, so a
// savepoint can be moved or copied as a whole.
//
// Threading: a TaskStateWriter is used by one thread at a time; the free
// functions are thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/internal/snapshot.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet::internal {

/// A range of bytes in a state file.
struct BlockRef {
  std::string file;  // relative to the checkpoint directory
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const BlockRef&, const BlockRef&) = default;
};

/// The state one operator instance (subtask) wrote in a checkpoint.
struct OperatorSubtaskStateHandle {
  std::map<int, BlockRef> key_groups;  // key group -> block
  struct ListState {
    OperatorStateMode mode = OperatorStateMode::kSplit;
    std::vector<BlockRef> entries;  // one block per entry
  };
  std::map<std::string, ListState> operator_state;
  /// Keyed state as backend files (incremental checkpoints).
  struct Incremental {
    std::string backend_id;
    int key_group_start = 0;
    int key_group_end = -1;
    std::vector<std::pair<std::string, SharedFileRef>> shared_files;  // local name -> file in shared/
    std::vector<std::pair<std::string, BlockRef>> private_files;       // local name -> block
  };
  std::optional<Incremental> incremental;
  bool Empty() const { return key_groups.empty() && operator_state.empty() && !incremental; }
};

/// One operator (by its stable id) across all its subtasks.
struct OperatorStateHandle {
  std::string operator_id;  // the uid, or the generated id
  std::string name;         // for messages
  int parallelism = 1;
  int max_parallelism = 128;
  std::vector<StateInfo> state_info;
  std::vector<OperatorSubtaskStateHandle> subtasks;  // index: subtask
};

/// A file of the checkpoint with its size and CRC32C (of the whole file,
/// footer included).
struct StateFileInfo {
  std::string file;  // relative to the checkpoint directory ("../shared/<name>" for shared files)
  uint64_t size = 0;
  uint32_t crc32c = 0;
  /// A shared file: the backend's bytes as they are, without the state
  /// file footer (verified by size and checksum only).
  bool shared = false;
};

/// Path of a shared file relative to a checkpoint directory.
std::string SharedFilePath(const std::string& name);
/// `<checkpoint directory>/../shared`, normalized.
std::string SharedDirectoryOf(const std::string& checkpoint_directory);

struct CheckpointMetadata {
  std::string job_id;
  CheckpointId checkpoint_id = 0;
  Timestamp timestamp = 0;  // trigger time (ms since epoch)
  bool savepoint = false;
  std::vector<OperatorStateHandle> operators;
  std::vector<StateFileInfo> files;

  const OperatorStateHandle* FindOperator(const std::string& operator_id) const;
};

/// What a task measured while taking its part of one checkpoint
/// (monitoring only; the REST API's per-subtask checkpoint figures).
struct SubtaskCheckpointMetrics {
  /// From the trigger (the barrier's timestamp) to the task starting its
  /// part: a source getting the trigger, or another task its first barrier.
  int64_t start_delay_ms = 0;
  /// From the first barrier to the last one (aligned), or to the snapshot
  /// (unaligned: when the barrier overtook the rest or the alignment timed
  /// out). 0 for sources and tasks with one input channel.
  int64_t alignment_ms = 0;
  /// Input bytes the task processed during the alignment (from channels
  /// whose barrier had not come yet).
  int64_t processed_bytes = 0;
  /// The synchronous part on the task thread: forwarding the barrier and
  /// capturing every operator's state.
  int64_t sync_ms = 0;
  /// From the end of the synchronous part to the acknowledgement: writing
  /// the state file and uploads, and recording in-flight data.
  int64_t async_ms = 0;
  /// The snapshot was taken unaligned.
  bool unaligned = false;
};

/// What a task wrote for one checkpoint: per operator of its chain (head
/// first) the operator's handle for this subtask, and the file.
struct TaskStateSnapshot {
  std::vector<OperatorSubtaskStateHandle> operators;  // index: position in the chain
  std::vector<std::vector<StateInfo>> state_info;     // index: position in the chain
  std::vector<StateFileInfo> files;                   // empty when the task had no state
  SubtaskCheckpointMetrics metrics;                   // not part of the checkpoint's metadata
};

/// CRC32C (Castagnoli) of `n` bytes, continuing from `crc` (0 to start).
/// Uses the SSE4.2 instruction when the CPU has it.
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);
/// The table-driven CRC32C Crc32c falls back to; exposed so tests cover it
/// on machines with SSE4.2.
uint32_t Crc32cSoftware(const void* data, size_t n, uint32_t crc = 0);

/// Bytes of the footer ending every state file: u32 CRC32C of the data,
/// u64 length of the data, 8-byte magic "FRSHSTAT" (little endian).
inline constexpr size_t kStateFileFooterSize = 20;

/// Writes one task's state file. Use: for each operator of the chain,
/// BeginOperator(i) and then the operator's AsyncSnapshot writes into this
/// SnapshotOutput; Finish() writes the footer, syncs and returns the handles.
/// Nothing is written to disk when no operator adds anything.
class TaskStateWriter final : public SnapshotOutput {
 public:
  /// `directory` is the checkpoint directory; `file` the name inside it.
  /// With `shared_directory` (checkpoints, not savepoints) operators may
  /// write incremental keyed state.
  TaskStateWriter(std::string directory, std::string file, int num_operators, std::string shared_directory = {});
  ~TaskStateWriter() override;
  TaskStateWriter(const TaskStateWriter&) = delete;
  TaskStateWriter& operator=(const TaskStateWriter&) = delete;

  void BeginOperator(int index);
  Status AddKeyGroup(int key_group, std::string_view bytes) override;
  Status AddOperatorState(const std::string& name, OperatorStateMode mode,
                          const std::vector<std::string>& entries) override;
  void AddStateInfo(StateInfo info) override;
  std::string SharedDirectory() const override;
  Result<SharedFileRef> UploadSharedFile(const std::string& local_path, const std::string& name) override;
  Status AddIncrementalKeyedState(const IncrementalKeyedState& state) override;
  Result<TaskStateSnapshot> Finish();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// `<base>/<job_id>/chk-<id>`.
std::string CheckpointDirectory(const std::string& base, const std::string& job_id, CheckpointId id);
/// Creates a fresh `savepoint-...` directory under `target` and returns its path.
Result<std::string> CreateSavepointDirectory(const std::string& target, const std::string& job_id, CheckpointId id);

/// Writes `<directory>/_metadata` atomically (temporary file, fsync, rename,
/// fsync of the directory).
Status WriteMetadata(const std::string& directory, const CheckpointMetadata& metadata);
/// Reads a checkpoint's metadata; `path` is the checkpoint directory or its
/// `_metadata` file. Errors name the path and what is wrong (missing,
/// truncated, checksum mismatch, unsupported version).
Result<CheckpointMetadata> ReadMetadata(const std::string& path);
/// The bytes of a `_metadata` file for `metadata`, and back (`file` names
/// the origin in errors): how checkpoint state descriptions travel between
/// processes, checked as a file is.
std::string EncodeMetadata(const CheckpointMetadata& metadata);
Result<CheckpointMetadata> DecodeMetadata(std::string_view bytes, const std::string& file);
/// Checks every file the metadata lists: present, of the recorded size,
/// with the recorded checksum. The error names the first bad file.
Status VerifyCheckpoint(const std::string& directory, const CheckpointMetadata& metadata);
/// Completed checkpoints (directories `chk-<n>` holding `_metadata`) of a
/// job, newest first.
std::vector<std::pair<CheckpointId, std::string>> ListCheckpoints(const std::string& base, const std::string& job_id);
/// Removes a checkpoint or savepoint directory with everything in it.
/// Refuses (InvalidArgument) a directory that holds no `_metadata` and is
/// not a `chk-<n>` directory, so a wrong path does not delete user data.
/// (A `savepoint-...` directory without `_metadata` is accepted too, so an
/// unfinished savepoint can be cleaned up.) A path that does not exist is
/// not an error: there is nothing to remove.
Status DisposeCheckpoint(const std::string& directory);
/// Reads one block (`directory` is the checkpoint directory).
Result<std::string> ReadBlock(const std::string& directory, const BlockRef& block);

/// The state references one operator instance restores from, at a possibly
/// different parallelism: key groups of its new range, operator list state
/// redistributed by mode.
struct OperatorRestoreRefs {
  bool restored = false;
  std::vector<std::pair<int, BlockRef>> key_groups;
  struct ListState {
    OperatorStateMode mode = OperatorStateMode::kSplit;
    std::vector<BlockRef> entries;
  };
  std::map<std::string, ListState> operator_state;
  std::vector<StateInfo> state_info;
  std::vector<OperatorSubtaskStateHandle::Incremental> incremental;  // overlapping old instances
};

/// Which blocks subtask `subtask` of `parallelism` restores from
/// `handle`. Key groups: those of the subtask's range (max parallelism must
/// be unchanged). Split lists: entries of all old subtasks in order, cut
/// into `parallelism` contiguous parts (sizes differ by at most one, the
/// first parts larger). Union lists: all entries. Broadcast: old subtask
/// (subtask mod old parallelism)'s entries. Incremental keyed state: every
/// old instance whose key groups overlap the subtask's range.
OperatorRestoreRefs AssignRestore(const OperatorStateHandle& handle, int subtask, int parallelism);

/// Reads the referenced blocks into an OperatorRestore.
Result<OperatorRestore> LoadRestore(const std::string& directory, const OperatorRestoreRefs& refs);

/// An operator of the job being started, for the compatibility check.
struct RestoreTarget {
  std::string operator_id;
  std::string name;
  int parallelism = 1;
  int max_parallelism = 128;
};

/// Checks that a snapshot can be restored into a job: every operator with
/// state in the snapshot exists in the job (unless `allow_non_restored`),
/// and keyed state keeps its max parallelism. Reports every problem in one
/// FailedPrecondition error, one line per problem.
Status CheckRestoreCompatibility(const CheckpointMetadata& metadata, const std::vector<RestoreTarget>& job,
                                 bool allow_non_restored);

}  // namespace freshet::internal
