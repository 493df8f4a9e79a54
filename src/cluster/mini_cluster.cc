#include "cluster/mini_cluster.h"

#include <fmt/format.h>

#include <random>

namespace freshet::internal {

MiniCluster::MiniCluster(int num_slots, Clock& clock)
    : clock_(clock), executor_(std::make_unique<TaskExecutor>("taskmanager-0", num_slots, clock)) {}

MiniCluster::~MiniCluster() = default;

Result<std::shared_ptr<JobMaster>> MiniCluster::SubmitJob(std::shared_ptr<const JobGraph> job) {
  auto master = std::make_shared<JobMaster>(job, *executor_, clock_);
  Status s = master->Start();
  if (!s.IsOk()) {
    executor_->ReleaseJob(job->job_id);
    return s;
  }
  return master;
}

std::string NewJobId() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lock(mu);
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

}  // namespace freshet::internal
