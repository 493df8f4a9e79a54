#pragma once
// A TaskExecutor (the TaskManager's core) runs deployed subtasks, each on
// its own thread, in a fixed number of slots, and reports their final
// state to the job's master through a listener.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "freshet/source.h"
#include "runtime/task/stream_task.h"

namespace freshet::internal {

class TaskStateListener : public CheckpointResponder {
 public:
  virtual ~TaskStateListener() = default;
  /// Called once per task, on the task's thread, as its last action.
  virtual void OnTaskTerminated(const std::string& execution_id, ExecutionState state, Status status,
                                TaskResult result) = 0;
};

class TaskExecutor {
 public:
  TaskExecutor(std::string id, int num_slots, Clock& clock);
  ~TaskExecutor();
  TaskExecutor(const TaskExecutor&) = delete;
  TaskExecutor& operator=(const TaskExecutor&) = delete;

  const std::string& Id() const { return id_; }
  int NumSlots() const { return num_slots_; }

  /// Creates the task and its result partitions; StartTask runs it.
  Status DeployTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job, TaskStateListener* listener);
  void StartTask(const std::string& execution_id);
  /// Asks a task to stop; returns at once.
  void CancelTask(const std::string& execution_id);
  /// Checkpoint control, forwarded to the task's mailbox (no-ops for
  /// unknown executions).
  void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier);
  void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id);
  void NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id);
  void RequestDrain(const std::string& execution_id);
  /// Waits for the job's task threads to end and drops its partitions.
  void ReleaseJob(const std::string& job_id);

 private:
  struct Entry {
    std::unique_ptr<StreamTask> task;
    TaskStateListener* listener = nullptr;
    std::thread thread;
  };
  void RunTask(Entry* entry);

  std::string id_;
  int num_slots_;
  Clock& clock_;
  ShuffleEnvironment shuffle_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> tasks_;
};

}  // namespace freshet::internal
