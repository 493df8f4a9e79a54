#pragma once
// The embedded mini-cluster: a dispatcher, one TaskExecutor with the
// requested slots and one JobMaster per job, all in this process. The
// components talk through the same interfaces a distributed deployment
// puts behind RPC.

#include <memory>
#include <mutex>
#include <string>

#include "cluster/job_master.h"
#include "cluster/task_executor.h"

namespace freshet::internal {

class MiniCluster {
 public:
  MiniCluster(int num_slots, Clock& clock);
  ~MiniCluster();

  /// Submits a job and starts it.
  Result<std::shared_ptr<JobMaster>> SubmitJob(std::shared_ptr<const JobGraph> job);
  TaskExecutor& Executor() { return *executor_; }

 private:
  Clock& clock_;
  std::unique_ptr<TaskExecutor> executor_;
};

/// A random 32-hex-digit job id.
std::string NewJobId();

}  // namespace freshet::internal
