#pragma once
// The checkpoint coordinator of one job (part of its JobMaster).
//
// It triggers checkpoints at the source tasks, collects every task's
// acknowledgement with the handles of the state it wrote, writes the
// checkpoint's `_metadata` last and atomically, then tells every task the
// checkpoint is complete. A checkpoint that a task declines, or that is not
// complete within the timeout, is aborted: its directory is removed and
// the tasks are told. Savepoints (also stop-with-savepoint) and the final
// checkpoint of a job whose sources all ended go the same way.
//
// Checkpoints on request (RequestCheckpoint, Flink's "trigger a checkpoint"
// REST call) are regular checkpoints: counted, retained and listed like
// periodic ones, and counted against max-concurrent-checkpoints. A request
// that would exceed it waits in a queue (first come, first served, ahead of
// the next periodic trigger) instead of failing; min-pause does not hold
// it back, as the user asked for a checkpoint now. Like any trigger it
// starts the periodic interval afresh.
//
// Threading: all methods are thread-safe. Calls into tasks (through the
// gateway) are made without holding the coordinator's lock.

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/job_client.h"
#include "freshet/source.h"
#include "graph/stream_graph.h"
#include "runtime/checkpoint/checkpoint_barrier.h"
#include "runtime/checkpoint/checkpoint_storage.h"

namespace freshet::internal {

/// How the coordinator reaches the tasks of the current execution attempt.
class CheckpointGateway {
 public:
  virtual ~CheckpointGateway() = default;
  virtual void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) = 0;
  virtual void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) = 0;
  virtual void NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) = 0;
  /// Asks a source task to end its input (stop-with-savepoint with drain).
  virtual void RequestDrain(const std::string& execution_id) = 0;
};

/// The id under which an operator's state is stored: its uid when set,
/// else a name derived from its position in the graph (stable as long as
/// the program builds the same graph).
std::string OperatorIdOf(const StreamNode& node);

/// A checkpoint that completed (its metadata is on disk).
struct CompletedCheckpoint {
  CheckpointId id = 0;
  std::string directory;
  bool savepoint = false;
  /// Shared files (incremental keyed state) it references, absolute paths.
  std::vector<std::string> shared_files;
};

/// Counts, per shared file of incremental keyed state, the retained
/// checkpoints that reference it; a file nobody references any more is
/// deleted. Not thread-safe (the coordinator's lock guards it).
class SharedFileRegistry {
 public:
  void Register(const std::vector<std::string>& files) {
    for (const std::string& f : files) ++references_[f];
  }
  /// Drops one reference to each file; returns the files no retained
  /// checkpoint references any more (for the caller to delete).
  std::vector<std::string> Release(const std::vector<std::string>& files) {
    std::vector<std::string> unused;
    for (const std::string& f : files) {
      auto it = references_.find(f);
      if (it == references_.end()) continue;
      if (--it->second == 0) {
        unused.push_back(f);
        references_.erase(it);
      }
    }
    return unused;
  }
  bool Referenced(const std::string& file) const { return references_.count(file) != 0; }
  size_t Size() const { return references_.size(); }

 private:
  std::map<std::string, int> references_;
};

/// One checkpoint or savepoint as monitoring (the REST API) shows it.
struct CheckpointRecord {
  enum class State { kInProgress, kCompleted, kFailed };
  CheckpointId id = 0;
  bool savepoint = false;
  State state = State::kInProgress;
  /// Wall-clock milliseconds of the trigger and of the completion or abort
  /// (0 while in progress).
  Timestamp trigger_ms = 0;
  Timestamp end_ms = 0;
  /// Tasks that take part, and those that acknowledged so far.
  int num_tasks = 0;
  int num_acknowledged = 0;
  /// Completed ones: bytes of state files and of in-flight data among them.
  int64_t state_size = 0;
  int64_t in_flight_size = 0;
  std::string directory;
  /// Failed ones: why.
  std::string failure;
  /// One subtask's acknowledgement, as the coordinator received it.
  struct SubtaskAck {
    int vertex = -1;
    int subtask = -1;
    /// Wall-clock milliseconds at which the coordinator got it.
    Timestamp ack_ms = 0;
    /// Bytes of the state files it wrote or referenced, and of in-flight
    /// data (unaligned checkpoints) among them.
    int64_t state_size = 0;
    int64_t in_flight_size = 0;
    /// What the task measured.
    SubtaskCheckpointMetrics metrics;
  };
  /// The acknowledgements so far, in arrival order. Kept only for the
  /// records Records() retains, so bounded by that history.
  std::vector<SubtaskAck> acks;
};

/// The kind of checkpoint a request on demand asks for (the REST
/// `checkpointType`).
///
/// The state backends cannot be told per checkpoint whether to share files
/// with earlier checkpoints: RocksDB with `state.backend.incremental` writes
/// incremental checkpoints, everything else writes full ones. A request is
/// therefore taken only when the job's checkpoints already are of the kind
/// asked for, and refused (FailedPrecondition) otherwise.
enum class CheckpointType {
  kConfigured,   // whatever the job's periodic checkpoints are
  kFull,         // self-contained: no files shared with other checkpoints
  kIncremental,  // shares unchanged files with earlier checkpoints
};

/// "CONFIGURED", "FULL", "INCREMENTAL" (Flink's names).
const char* CheckpointTypeName(CheckpointType type);

enum class SavepointMode {
  kSavepoint,  // the job goes on
  kStop,       // the job stops once the savepoint is complete
  kStopDrain,  // sources end their input, event time advances to the end, then stop
};

class CheckpointCoordinator {
 public:
  /// `on_failure` is called (without locks held) when more consecutive
  /// checkpoints failed than tolerated.
  CheckpointCoordinator(std::shared_ptr<const JobGraph> job, CheckpointOptions options, CheckpointGateway& gateway,
                        Clock& clock, std::function<void(Status)> on_failure);
  ~CheckpointCoordinator();

  /// A new execution attempt is running: `tasks` maps (vertex, subtask)
  /// to execution id. Pending checkpoints of earlier attempts are aborted.
  void StartAttempt(std::map<std::pair<int, int>, std::string> tasks);
  /// The attempt is over (failure, cancellation): abort what is pending.
  void StopAttempt(const Status& reason);
  /// Triggers periodic checkpoints and times out pending ones. Returns how
  /// long the caller may wait before the next call.
  Duration Tick();

  void Acknowledge(const std::string& execution_id, CheckpointId id, TaskStateSnapshot state);
  void Decline(const std::string& execution_id, CheckpointId id, const Status& reason);
  void ReportEndOfData(const std::string& execution_id);
  /// A task of the current attempt ended. Checkpoints still waiting for it
  /// are aborted, and no new ones start (a finished task cannot snapshot).
  void TaskEnded(const std::string& execution_id);

  /// Triggers a savepoint into a new directory under `target`; the future
  /// yields its path or why it failed.
  std::future<Result<std::string>> TriggerSavepoint(const std::string& target, SavepointMode mode);

  /// Whether a checkpoint of `type` could be requested now. Errors
  /// (FailedPrecondition): the job is not running or is stopping, a task
  /// has finished, the job has no checkpoint directory
  /// (`state.checkpoints.dir`), or its checkpoints are not of that type.
  Status CheckCheckpointRequest(CheckpointType type) const;
  /// Requests a regular checkpoint now, also when periodic checkpointing
  /// is off (as long as the job has a checkpoint directory). It starts at
  /// once unless max-concurrent-checkpoints are in flight, else it waits
  /// for one of them to end. The future yields its id once it completed,
  /// or why it was refused, failed, or never started (the attempt ended).
  std::future<Result<CheckpointId>> RequestCheckpoint(CheckpointType type);

  /// Completed checkpoints and savepoints of this job, newest first.
  std::vector<CompletedCheckpoint> Completed() const;
  /// The checkpoint id the next trigger uses.
  void SetNextId(CheckpointId id);
  /// Retained checkpoints are removed when the job ends for good, unless
  /// retention on cancellation is configured.
  void Shutdown(bool delete_checkpoints);
  int64_t NumCompleted() const;
  int64_t NumFailed() const;
  /// Figures of the completed checkpoints, oldest first (the last 1000).
  std::vector<CheckpointStats> History() const;
  /// The checkpoints in progress, then the latest completed and aborted
  /// ones (the last 100), newest first within each.
  std::vector<CheckpointRecord> Records() const;
  /// Checkpoints and savepoints aborted for any reason (NumFailed() counts
  /// only those that count towards the tolerated failures).
  int64_t NumAborted() const;
  /// What job metrics read on every sample, without copying the history.
  struct Summary {
    int in_progress = 0;
    /// The newest completed checkpoint or savepoint (none: both -1).
    int64_t last_duration_ms = -1;
    int64_t last_state_size = -1;
  };
  Summary Summarize() const;

 private:
  struct Pending {
    CheckpointBarrier barrier;
    std::set<std::string> waiting;  // execution ids not acknowledged yet
    std::map<std::pair<int, int>, TaskStateSnapshot> states;
    std::chrono::steady_clock::time_point started;
    std::optional<std::promise<Result<std::string>>> promise;  // savepoints
    std::optional<std::promise<Result<CheckpointId>>> requested;  // checkpoints on request
    bool final = false;  // the last checkpoint before the job ends
    std::vector<CheckpointRecord::SubtaskAck> acks;  // monitoring only
  };
  using Actions = std::vector<std::function<void()>>;

  /// A checkpoint on request waiting for a free slot under max-concurrent.
  struct CheckpointRequest {
    CheckpointType type = CheckpointType::kConfigured;
    std::promise<Result<CheckpointId>> promise;
  };

  bool CanTriggerLocked(std::chrono::steady_clock::time_point now) const;
  Status CheckCheckpointRequestLocked(CheckpointType type) const;
  /// Periodic and requested checkpoints in flight (savepoints not counted).
  int PendingCheckpointsLocked() const;
  /// Starts queued requests while max-concurrent allows.
  void TriggerRequestedLocked(Actions& actions);
  /// Fails every queued request (they can no longer start in this attempt).
  void FailRequestsLocked(const Status& reason);
  /// Returns the id of the checkpoint it started.
  CheckpointId TriggerLocked(bool savepoint, bool terminate, std::string directory,
                             std::optional<std::promise<Result<std::string>>> promise, Actions& actions);
  void CompleteLocked(CheckpointId id, Actions& actions);
  void AbortLocked(CheckpointId id, const Status& reason, bool count_failure, Actions& actions);
  Result<CheckpointMetadata> BuildMetadataLocked(const Pending& p) const;
  static void Run(Actions& actions);

  std::shared_ptr<const JobGraph> job_;
  CheckpointOptions options_;
  CheckpointGateway& gateway_;
  Clock& clock_;
  std::function<void(Status)> on_failure_;

  mutable std::mutex mu_;
  std::map<std::pair<int, int>, std::string> tasks_;
  std::map<std::string, std::pair<int, int>> task_of_execution_;
  std::set<std::string> sources_;  // execution ids of source tasks
  std::set<std::string> ended_sources_;
  std::set<std::string> ended_tasks_;
  std::map<CheckpointId, Pending> pending_;
  std::deque<CheckpointRequest> requests_;  // checkpoints on request not started yet, oldest first
  std::deque<CompletedCheckpoint> completed_;  // newest first
  SharedFileRegistry shared_files_;            // of the retained checkpoints in completed_
  std::deque<CheckpointStats> history_;        // oldest first
  CheckpointId next_id_ = 1;
  std::chrono::steady_clock::time_point next_trigger_;
  std::chrono::steady_clock::time_point last_completion_;
  int consecutive_failures_ = 0;
  int64_t num_completed_ = 0;
  int64_t num_failed_ = 0;
  // Monitoring only (Records): ended checkpoints, newest last.
  std::deque<CheckpointRecord> records_;
  int64_t num_aborted_ = 0;
  bool running_ = false;
  bool final_triggered_ = false;
  // A stop-with-savepoint with drain waits for the sources to end.
  std::optional<std::pair<std::string, std::promise<Result<std::string>>>> drain_;
};

}  // namespace freshet::internal
