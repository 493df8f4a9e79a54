#pragma once
// A TaskExecutor (the TaskManager's core) runs deployed subtasks, each on
// its own thread, in a fixed number of slots, and reports their final
// state to the job's master through a listener.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "freshet/source.h"
#include "metrics/metric_registry.h"
#include "runtime/net/network_environment.h"
#include "runtime/task/stream_task.h"

namespace freshet::internal {

class TaskStateListener : public CheckpointResponder {
 public:
  virtual ~TaskStateListener() = default;
  /// Called once per task, on the task's thread, as its last action.
  virtual void OnTaskTerminated(const std::string& execution_id, ExecutionState state, Status status,
                                TaskResult result) = 0;
};

/// How a JobMaster reaches one TaskManager: the TaskExecutor itself in the
/// same process, or its RPC stub.
/// What a TaskManager's host offers, as the REST API shows it.
struct HostResources {
  int cpu_cores = 0;
  int64_t physical_memory = -1;  // bytes; -1: unknown
  int64_t free_memory = -1;      // bytes available when last read; -1: unknown
};

/// This host's, read now (sysconf).
HostResources LocalHostResources();

class TaskExecutorGateway {
 public:
  virtual ~TaskExecutorGateway() = default;
  virtual const std::string& Id() const = 0;
  virtual int NumSlots() const = 0;
  /// "host:port" where other TaskManagers read this one's partitions
  /// (empty: it serves no network).
  virtual std::string DataAddress() const = 0;
  /// Its host's resources: this process's host for an in-process one; a
  /// TaskManager process reports its own (registration, heartbeats).
  virtual HostResources Resources() const { return LocalHostResources(); }
  /// Wall-clock milliseconds of its last heartbeat; -1 for one in this
  /// process, which needs none.
  virtual Timestamp LastHeartbeatMillis() const { return -1; }

  /// Creates the task and its result partitions; StartTask runs it.
  virtual Status DeployTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job,
                            TaskStateListener* listener) = 0;
  virtual void StartTask(const std::string& execution_id) = 0;
  /// Asks a task to stop; returns at once.
  virtual void CancelTask(const std::string& execution_id) = 0;
  /// Checkpoint control, forwarded to the task's mailbox (no-ops for
  /// unknown executions).
  virtual void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) = 0;
  virtual void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) = 0;
  virtual void NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) = 0;
  virtual void RequestDrain(const std::string& execution_id) = 0;
  /// Waits for the job's task threads to end and drops its partitions.
  virtual void ReleaseJob(const std::string& job_id) = 0;
};

class TaskExecutor final : public TaskExecutorGateway {
 public:
  /// With `metrics`, which must outlive the executor, the executor
  /// registers its own group and one per deployed task.
  TaskExecutor(std::string id, int num_slots, Clock& clock, MetricRegistry* metrics = nullptr);
  ~TaskExecutor() override;
  TaskExecutor(const TaskExecutor&) = delete;
  TaskExecutor& operator=(const TaskExecutor&) = delete;

  const std::string& Id() const override { return id_; }
  int NumSlots() const override { return num_slots_; }
  std::string DataAddress() const override;

  /// Starts this executor's network stack: tasks of other executors (in
  /// this or other processes) then read its partitions over TCP, and its
  /// tasks read theirs. REQUIRES: called before any task is deployed.
  Status EnableNetwork(const NetworkOptions& options);
  /// Jobs with tasks here, and a job's executions (any state).
  std::vector<std::string> JobIds();
  std::vector<std::string> ExecutionsOf(const std::string& job_id);
  /// The network stack (nullptr: not enabled).
  NetworkEnvironment* Network() { return network_.get(); }

  Status DeployTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job,
                    TaskStateListener* listener) override;
  void StartTask(const std::string& execution_id) override;
  void CancelTask(const std::string& execution_id) override;
  void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) override;
  void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) override;
  void NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) override;
  void RequestDrain(const std::string& execution_id) override;
  void ReleaseJob(const std::string& job_id) override;

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
  // After shuffle_: destroyed (stopped) before the partitions it serves.
  std::unique_ptr<NetworkEnvironment> network_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> tasks_;
  MetricRegistry* metrics_;
  // Last: unregistered first, as its gauges read tasks_.
  std::unique_ptr<TaskManagerMetricGroup> metric_group_;
};

}  // namespace freshet::internal
