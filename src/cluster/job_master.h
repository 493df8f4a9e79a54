#pragma once
// The JobMaster of one job: turns the job graph into parallel subtasks,
// places them in slots (one subtask of each vertex of a slot sharing group
// per slot), deploys them, follows their state, and decides the job's
// outcome. A failing task fails the job and cancels the rest.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cluster/task_executor.h"
#include "freshet/job_client.h"
#include "graph/stream_graph.h"

namespace freshet::internal {

class JobMaster final : public TaskStateListener {
 public:
  JobMaster(std::shared_ptr<const JobGraph> job, TaskExecutor& executor);
  ~JobMaster() override;

  /// Slots the job needs: per slot sharing group, its widest vertex.
  static int RequiredSlots(const JobGraph& job);

  /// Deploys and starts every subtask.
  Status Start();
  /// Cancels every subtask; returns at once.
  void Cancel();
  JobStatus GetStatus() const;
  /// Blocks until the job ends (nullopt: timeout passed first).
  std::optional<Result<JobExecutionResult>> Wait(std::optional<Duration> timeout);

  void OnTaskTerminated(const std::string& execution_id, ExecutionState state, Status status,
                        TaskResult result) override;

 private:
  void CancelAllLocked();
  Result<JobExecutionResult> OutcomeLocked() const;

  std::shared_ptr<const JobGraph> job_;
  TaskExecutor& executor_;
  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  JobStatus status_ = JobStatus::kCreated;
  std::map<std::string, ExecutionState> executions_;
  std::map<std::string, std::pair<int, int>> execution_vertex_;  // vertex, subtask
  int running_ = 0;
  Status failure_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point end_;
  JobExecutionResult result_;
  std::map<std::string, std::map<std::pair<int, int>, std::string>> accumulators_;
};

}  // namespace freshet::internal
