#pragma once
/// Handles on submitted jobs and their results.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {

enum class JobStatus { kCreated, kRunning, kFinished, kFailed, kCanceling, kCanceled, kRestarting };
const char* JobStatusName(JobStatus status);

/// Figures of one completed checkpoint or savepoint.
struct CheckpointStats {
  CheckpointId id = 0;
  bool savepoint = false;
  /// From the trigger to the last acknowledgement.
  Duration duration{0};
  /// Bytes of all state files written.
  int64_t state_size = 0;
  /// Bytes of in-flight data (unaligned checkpoints) among them.
  int64_t in_flight_size = 0;
  /// The largest figures the subtasks measured: from the trigger to a
  /// subtask starting its part (a source getting the trigger, another task
  /// its first barrier); from a subtask's first barrier to its last (or to
  /// its unaligned snapshot); its synchronous part (forwarding the barrier,
  /// capturing the state); its asynchronous part (writing the state).
  Duration max_start_delay{0};
  Duration max_alignment{0};
  Duration max_sync{0};
  Duration max_async{0};
  /// Input bytes the subtasks processed while aligning, summed.
  int64_t processed_bytes = 0;
};

struct JobExecutionResult {
  std::string job_id;
  std::string job_name;
  Duration net_runtime{0};
  /// Records emitted by all sources.
  int64_t records_in = 0;
  /// Records taken by all sinks.
  int64_t records_out = 0;
  /// Byte results per accumulator name, one entry per subtask in subtask order.
  std::map<std::string, std::vector<std::string>> accumulators;
  /// Operator counters summed over subtasks ("<operator>.numLateRecordsDropped").
  std::map<std::string, int64_t> counters;
  /// Times the job restarted after a failure.
  int restarts = 0;
  /// Checkpoints (and savepoints) completed and failed.
  int64_t checkpoints_completed = 0;
  int64_t checkpoints_failed = 0;
  /// The completed checkpoints and savepoints in order (the last 1000).
  std::vector<CheckpointStats> checkpoint_history;
  /// What recovery did, in order: the snapshot the job started from,
  /// failures, damaged checkpoints skipped, restarts and their snapshots.
  std::vector<std::string> recovery_events;
};

/// A running or finished job. Thread-safe.
class JobClient {
 public:
  virtual ~JobClient() = default;
  virtual const std::string& GetJobId() const = 0;
  virtual JobStatus GetJobStatus() const = 0;
  /// Requests cancellation; returns at once. Wait() then reports kCancelled.
  virtual void Cancel() = 0;
  /// Blocks until the job reaches a terminal state.
  virtual Result<JobExecutionResult> Wait() = 0;
  /// Like Wait(), but gives up after `timeout` (std::nullopt: still running).
  virtual std::optional<Result<JobExecutionResult>> WaitFor(Duration timeout) = 0;

  /// Takes a savepoint into a new directory under `target_directory`;
  /// blocks until it is complete and returns its path. The job goes on.
  virtual Result<std::string> TriggerSavepoint(const std::string& target_directory) = 0;
  /// Takes a savepoint and stops the job; Wait() then reports it finished.
  /// With `drain`, sources end their input first, so event time advances
  /// to the end (windows fire, timers run) before the savepoint.
  virtual Result<std::string> StopWithSavepoint(const std::string& target_directory, bool drain = false) = 0;
  /// Directories of the retained checkpoints and of savepoints taken, newest first.
  virtual std::vector<std::string> CompletedCheckpoints() const = 0;
};

/// Deletes a savepoint (or retained checkpoint) directory. Refuses a
/// directory that is not one, so a wrong path cannot delete other data.
Status DisposeSavepoint(const std::string& path);

}  // namespace freshet
