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
#include <functional>
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

/// The state each operator of `vertex`'s chain (head first) restores in
/// subtask `subtask` from a snapshot: the same assignment wherever the task
/// is deployed (the JobManager's process or a TaskManager's).
std::vector<OperatorRestoreRefs> RestoreRefsForTask(const JobGraph& job, const JobVertex& vertex, int subtask,
                                                    const CheckpointMetadata& metadata);

class JobMaster final : public TaskStateListener, public CheckpointGateway {
 public:
  /// Runs the job in the slots of `executors` (filled in order: the first
  /// executor's slots, then the next one's); subtasks in different
  /// executors exchange data over their network.
  JobMaster(std::shared_ptr<const JobGraph> job, std::vector<TaskExecutorGateway*> executors, Clock& clock);
  JobMaster(std::shared_ptr<const JobGraph> job, TaskExecutorGateway& executor, Clock& clock)
      : JobMaster(std::move(job), std::vector<TaskExecutorGateway*>{&executor}, clock) {}
  /// The executors available now (TaskManagers come and go).
  using ExecutorProvider = std::function<std::vector<TaskExecutorGateway*>()>;
  /// Asks `provider` for the executors at every (re)start, so a restart
  /// after losing a TaskManager runs on the remaining and newly registered
  /// ones; too few slots then count as a failed attempt of the restart
  /// strategy. Executors handed out must stay valid while the job runs.
  JobMaster(std::shared_ptr<const JobGraph> job, ExecutorProvider provider, Clock& clock);
  /// Starts on `executors` and asks `provider` at every restart. The
  /// provider is called without the JobMaster's locks held, so it may lock
  /// what also calls into the JobMaster (the Dispatcher).
  JobMaster(std::shared_ptr<const JobGraph> job, std::vector<TaskExecutorGateway*> executors,
            ExecutorProvider provider, Clock& clock);
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
  /// A regular checkpoint on request (see CheckpointCoordinator::
  /// RequestCheckpoint); blocks until it completed or failed and returns
  /// its id. Errors: the job is not running, the coordinator's refusals,
  /// the checkpoint's failure.
  Result<CheckpointId> TriggerCheckpointNow(CheckpointType type);
  /// Directories of completed checkpoints and savepoints, newest first.
  std::vector<std::string> CompletedCheckpoints() const;

  /// One subtask of the current attempt, for monitoring.
  struct ExecutionView {
    std::string execution_id;
    int vertex = 0;
    int subtask = 0;
    ExecutionState state = ExecutionState::kCreated;
    /// Id() of the TaskExecutor it was deployed to (empty: unknown).
    std::string executor;
    /// When it ended (nullopt: still running).
    std::optional<std::chrono::steady_clock::time_point> ended;
  };
  /// A consistent copy of the job's state for monitoring (the REST API).
  struct View {
    JobStatus status = JobStatus::kCreated;  // as GetStatus() reports it
    int attempt = 0;
    /// Start() and the end of the job (nullopt: not ended).
    std::chrono::steady_clock::time_point start;
    std::optional<std::chrono::steady_clock::time_point> end;
    /// When the current attempt was deployed.
    std::chrono::steady_clock::time_point attempt_start;
    /// Why the job failed or the current attempt is going down (empty: no failure).
    std::string failure;
    std::vector<std::string> recovery_events;
    int restarts = 0;
    /// Records of the tasks of the current attempt that have ended.
    int64_t records_in = 0;
    int64_t records_out = 0;
    /// The snapshot the current attempt started from (empty directory: none).
    std::string restored_directory;
    CheckpointId restored_id = 0;
    bool restored_savepoint = false;
    std::vector<ExecutionView> executions;
  };
  View Describe() const;
  /// The job's checkpoint coordinator, for its read-only statistics.
  const CheckpointCoordinator& Coordinator() const { return *coordinator_; }

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

  /// The executor running an execution (nullptr: unknown).
  TaskExecutorGateway* ExecutorOf(const std::string& execution_id) const;
  int TotalSlots() const;

  std::shared_ptr<const JobGraph> job_;
  std::vector<TaskExecutorGateway*> executors_;
  ExecutorProvider provider_;
  // Where each execution of the current attempt runs; own lock, because
  // checkpoint calls reach tasks while mu_ may be held elsewhere.
  mutable std::mutex placement_mu_;
  std::map<std::string, TaskExecutorGateway*> placement_;
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
  // Monitoring only (Describe): when the attempt was deployed and when each
  // of its executions ended.
  std::chrono::steady_clock::time_point attempt_start_;
  std::map<std::string, std::chrono::steady_clock::time_point> execution_ended_;
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
