#pragma once
// The embedded mini-cluster: a dispatcher, TaskExecutors with the
// requested slots and one JobMaster per job, all in this process. The
// components talk through the same interfaces a distributed deployment
// puts behind RPC. With more than one TaskExecutor, each has its own
// network stack on loopback and subtasks placed in different executors
// exchange data over TCP exactly as TaskManager processes do.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/job_master.h"
#include "cluster/task_executor.h"
#include "metrics/metric_registry.h"

namespace freshet::internal {

class MiniCluster {
 public:
  /// One TaskExecutor with `num_slots` slots and no network.
  MiniCluster(int num_slots, Clock& clock);
  ~MiniCluster();

  /// `task_managers` TaskExecutors with `slots_per_task_manager` slots each
  /// (both >= 1); more than one get network stacks bound to 127.0.0.1.
  static Result<std::unique_ptr<MiniCluster>> Create(int task_managers, int slots_per_task_manager, Clock& clock);

  /// Submits a job and starts it; its slots are taken from the executors in
  /// order. The job's metric group (Flink's job metrics) is registered in
  /// Metrics() until ReleaseJob.
  Result<std::shared_ptr<JobMaster>> SubmitJob(std::shared_ptr<const JobGraph> job);
  TaskExecutor& Executor(int index = 0) { return *executors_.at(static_cast<size_t>(index)); }
  int NumTaskExecutors() const { return static_cast<int>(executors_.size()); }
  /// Waits for a job's task threads on every executor and drops its data
  /// and its job metric group.
  void ReleaseJob(const std::string& job_id);
  /// The metrics of every component of the cluster.
  MetricRegistry& Metrics() { return metrics_; }

 private:
  explicit MiniCluster(Clock& clock) : clock_(clock) {}
  Clock& clock_;
  MetricRegistry metrics_;  // outlives the executors
  std::vector<std::unique_ptr<TaskExecutor>> executors_;
  std::mutex job_metrics_mu_;
  std::map<std::string, std::unique_ptr<JobMetricGroup>> job_metrics_;  // by job id
};

/// A random 32-hex-digit job id.
std::string NewJobId();

}  // namespace freshet::internal
