#pragma once
// The JobMaster of one job: turns the job graph into parallel subtasks,
// places them in slots (one subtask of each vertex of a slot sharing group
// per slot), deploys them, follows their state, and decides the job's
// outcome. It owns the job's checkpoint coordinator. A failing task stops
// the other tasks; the restart strategy then decides between restarting
// every task from the latest completed checkpoint and failing the job.
//
// Threading: public methods are thread-safe. Task callbacks arrive on task
// and snapshot threads; timed work (checkpoint triggers, timeouts,
// restarts) runs on the JobMaster's own thread.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/restart_strategy.h"
#include "cluster/task_executor.h"
#include "freshet/job_client.h"
#include "graph/stream_graph.h"
#include "runtime/checkpoint/checkpoint_coordinator.h"

namespace freshet::internal {

class JobMaster final : public TaskStateListener, public CheckpointGateway {
 public:
  JobMaster(std::shared_ptr<const JobGraph> job, TaskExecutor& executor, Clock& clock);
  ~JobMaster() override;

  /// Slots the job needs: per slot sharing group, its widest vertex.
  static int RequiredSlots(const JobGraph& job);

  /// Loads the snapshot to start from (if configured), checks that it fits
  /// the job, deploys and starts every subtask.
  Status Start();
  /// Cancels every subtask; returns at once.
  void Cancel();
  JobStatus GetStatus() const;
  /// Blocks until the job ends (nullopt: timeout passed first).
  std::optional<Result<JobExecutionResult>> Wait(std::optional<Duration> timeout);

  /// Savepoints (see SavepointMode); blocks until done.
  Result<std::string> TriggerSavepoint(const std::string& target, SavepointMode mode);
  /// Directories of completed checkpoints and savepoints, newest first.
  std::vector<std::string> CompletedCheckpoints() const;

  void OnTaskTerminated(const std::string& execution_id, ExecutionState state, Status status,
                        TaskResult result) override;
  void AcknowledgeCheckpoint(const std::string& execution_id, CheckpointId id, TaskStateSnapshot state) override;
  void DeclineCheckpoint(const std::string& execution_id, CheckpointId id, Status reason) override;
  void ReportEndOfData(const std::string& execution_id) override;
  void ReportInitialized(const std::string& execution_id) override;

  // CheckpointGateway: reach the tasks through the TaskExecutor.
  void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) override;
  void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) override;
  void NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) override;
  void RequestDrain(const std::string& execution_id) override;

 private:
  /// A snapshot the next attempt restores from.
  struct RestoreSource {
    std::string directory;
    CheckpointMetadata metadata;
  };
  /// Deploys and starts attempt `attempt_`, restoring from `restore_`.
  Status DeployLocked(std::unique_lock<std::mutex>& lock);
  /// The newest completed checkpoint that verifies, falling back to older
  /// ones (and saying so) when one is damaged.
  std::optional<RestoreSource> LatestValidCheckpoint();
  void FailLocked(Status failure);
  /// Fails the job with every task's start problems (restored state that
  /// does not match) once every task has either started or failed to, or
  /// the wait for the others has run out.
  void MaybeFailForStartProblemsLocked();
  void CancelAllLocked();
  void TimerLoop();
  void OnCheckpointFailure(Status failure);
  Result<JobExecutionResult> OutcomeLocked() const;

  std::shared_ptr<const JobGraph> job_;
  TaskExecutor& executor_;
  Clock& clock_;
  std::unique_ptr<CheckpointCoordinator> coordinator_;
  std::unique_ptr<RestartStrategy> restart_strategy_;

  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  std::condition_variable timer_cv_;
  JobStatus status_ = JobStatus::kCreated;
  int attempt_ = 0;
  std::optional<RestoreSource> restore_;
  std::map<std::string, ExecutionState> executions_;
  std::map<std::string, std::pair<int, int>> execution_vertex_;  // vertex, subtask
  int running_ = 0;
  Status failure_;          // why the current attempt is going down
  bool restarting_ = false; // the current attempt is being torn down for a restart
  std::optional<std::chrono::steady_clock::time_point> restart_at_;
  bool stop_timer_ = false;
  std::thread timer_thread_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point end_;
  JobExecutionResult result_;
  std::map<std::string, std::map<std::pair<int, int>, std::string>> accumulators_;
  // Tasks that could not start because the restored state does not match
  // the job: their problems are collected over all tasks of the attempt
  // and reported together.
  std::set<std::string> initialized_;        // executions of this attempt that started
  std::vector<std::string> start_problems_;  // distinct problem lines, in arrival order
  std::vector<std::string> start_failures_;  // executions that failed to start
  std::optional<std::chrono::steady_clock::time_point> start_problems_deadline_;
};

}  // namespace freshet::internal
