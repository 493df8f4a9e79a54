#include "cluster/mini_cluster.h"

#include <fmt/format.h>

#include <random>

#include "cluster/job_metrics.h"

namespace freshet::internal {

MiniCluster::MiniCluster(int num_slots, Clock& clock) : clock_(clock) {
  executors_.push_back(std::make_unique<TaskExecutor>("taskmanager-0", num_slots, clock, &metrics_));
}

MiniCluster::~MiniCluster() = default;

Result<std::unique_ptr<MiniCluster>> MiniCluster::Create(int task_managers, int slots_per_task_manager,
                                                          Clock& clock) {
  if (task_managers < 1 || slots_per_task_manager < 1) {
    return Status::InvalidArgument(fmt::format("a mini-cluster needs at least one task manager and one slot each, "
                                               "got {} task managers with {} slots",
                                               task_managers, slots_per_task_manager));
  }
  auto cluster = std::unique_ptr<MiniCluster>(new MiniCluster(clock));
  for (int i = 0; i < task_managers; ++i) {
    auto executor =
        std::make_unique<TaskExecutor>(fmt::format("taskmanager-{}", i), slots_per_task_manager, clock,
                                                   &cluster->metrics_);
    if (task_managers > 1) FRESHET_RETURN_IF_ERROR(executor->EnableNetwork(NetworkOptions{}));
    cluster->executors_.push_back(std::move(executor));
  }
  return cluster;
}

Result<std::shared_ptr<JobMaster>> MiniCluster::SubmitJob(std::shared_ptr<const JobGraph> job) {
  std::vector<TaskExecutorGateway*> gateways;
  for (auto& e : executors_) gateways.push_back(e.get());
  auto master = std::make_shared<JobMaster>(job, std::move(gateways), clock_);
  Status s = master->Start();
  if (!s.IsOk()) {
    ReleaseJob(job->job_id);
    return s;
  }
  std::unique_ptr<JobMetricGroup> group = RegisterJobMetrics(metrics_, *job, master, clock_);
  std::lock_guard lock(job_metrics_mu_);
  job_metrics_[job->job_id] = std::move(group);
  return master;
}

void MiniCluster::ReleaseJob(const std::string& job_id) {
  for (auto& e : executors_) e->ReleaseJob(job_id);
  std::unique_ptr<JobMetricGroup> group;  // unregistered after the lock is released
  {
    std::lock_guard lock(job_metrics_mu_);
    auto it = job_metrics_.find(job_id);
    if (it == job_metrics_.end()) return;
    group = std::move(it->second);
    job_metrics_.erase(it);
  }
}

std::string NewJobId() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lock(mu);
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

}  // namespace freshet::internal
