#include "cluster/task_executor.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include <set>

namespace freshet::internal {

HostResources LocalHostResources() {
  HostResources r;
  r.cpu_cores = static_cast<int>(std::thread::hardware_concurrency());
  long pages = sysconf(_SC_PHYS_PAGES);
  long available = sysconf(_SC_AVPHYS_PAGES);
  long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) r.physical_memory = static_cast<int64_t>(pages) * page_size;
  if (available > 0 && page_size > 0) r.free_memory = static_cast<int64_t>(available) * page_size;
  return r;
}

TaskExecutor::TaskExecutor(std::string id, int num_slots, Clock& clock, MetricRegistry* metrics)
    : id_(std::move(id)), num_slots_(num_slots), clock_(clock), metrics_(metrics) {
  if (metrics_ == nullptr) return;
  // Slots holding a deployed task. Read under the registry's lock: only
  // try this executor's lock (a task group may be closed while it is
  // held), keeping the last figure when it is busy.
  metric_group_ = metrics_->CreateTaskManagerGroup(id_, num_slots_, [this, available = num_slots_]() mutable {
    std::unique_lock lock(mu_, std::try_to_lock);
    if (lock.owns_lock()) {
      std::set<int> used;
      for (const auto& [execution, e] : tasks_) used.insert(e->task->Descriptor().slot);
      available = num_slots_ - static_cast<int>(used.size());
    }
    return available;
  });
}

std::string TaskExecutor::DataAddress() const { return network_ ? network_->Address() : ""; }

std::vector<std::string> TaskExecutor::JobIds() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, e] : tasks_) {
    const std::string& job = e->task->Descriptor().job_id;
    if (out.empty() || out.back() != job) out.push_back(job);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> TaskExecutor::ExecutionsOf(const std::string& job_id) {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, e] : tasks_) {
    if (e->task->Descriptor().job_id == job_id) out.push_back(id);
  }
  return out;
}

Status TaskExecutor::EnableNetwork(const NetworkOptions& options) {
  if (network_) return Status::FailedPrecondition(fmt::format("task manager {} already has a network", id_));
  auto network = std::make_unique<NetworkEnvironment>(shuffle_, options);
  Status started = network->Start();
  if (!started.IsOk()) {
    return Status(started.Code(), fmt::format("task manager {}: network: {}", id_, started.Message()));
  }
  network_ = std::move(network);
  shuffle_.SetNetwork(network_.get());
  return Status::Ok();
}

TaskExecutor::~TaskExecutor() {
  std::map<std::string, std::unique_ptr<Entry>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& [id, e] : tasks) e->task->Cancel();
  for (auto& [id, e] : tasks) {
    if (e->thread.joinable()) e->thread.join();
  }
}

Status TaskExecutor::DeployTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job,
                                TaskStateListener* listener) {
  if (tdd.slot < 0 || tdd.slot >= num_slots_) {
    return Status::InvalidArgument(fmt::format("task manager {} has {} slots; slot {} does not exist", id_, num_slots_,
                                               tdd.slot));
  }
  std::string id = tdd.ExecutionId();
  std::unique_ptr<TaskMetricGroup> task_metrics;
  if (metrics_ != nullptr) {
    task_metrics = metrics_->CreateTaskGroup({"", id_, tdd.job_id, job->stream_graph->job_name, tdd.vertex,
                                              job->vertices.at(static_cast<size_t>(tdd.vertex)).name, tdd.subtask,
                                              tdd.attempt});
  }
  auto entry = std::make_unique<Entry>();
  entry->task = std::make_unique<StreamTask>(std::move(tdd), std::move(job), shuffle_, clock_, listener);
  if (task_metrics != nullptr) entry->task->SetMetricGroup(std::move(task_metrics));
  entry->listener = listener;
  std::lock_guard lock(mu_);
  if (!tasks_.emplace(id, std::move(entry)).second) {
    return Status::InvalidArgument("execution " + id + " is already deployed");
  }
  return Status::Ok();
}

void TaskExecutor::StartTask(const std::string& execution_id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(execution_id);
  if (it == tasks_.end()) return;
  Entry* e = it->second.get();
  e->thread = std::thread([this, e] { RunTask(e); });
}

void TaskExecutor::RunTask(Entry* e) {
  Status status = e->task->Run();
  ExecutionState state = status.IsOk()                               ? ExecutionState::kFinished
                         : status.Code() == StatusCode::kCancelled ? ExecutionState::kCanceled
                                                                     : ExecutionState::kFailed;
  e->listener->OnTaskTerminated(e->task->Descriptor().ExecutionId(), state, std::move(status),
                                std::move(e->task->Result()));
}

void TaskExecutor::CancelTask(const std::string& execution_id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(execution_id);
  if (it != tasks_.end()) it->second->task->Cancel();
}

void TaskExecutor::TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(execution_id);
  if (it != tasks_.end()) it->second->task->TriggerCheckpoint(barrier);
}

void TaskExecutor::NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(execution_id);
  if (it != tasks_.end()) it->second->task->NotifyCheckpointComplete(id);
}

void TaskExecutor::NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(execution_id);
  if (it != tasks_.end()) it->second->task->NotifyCheckpointAborted(id);
}

void TaskExecutor::RequestDrain(const std::string& execution_id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(execution_id);
  if (it != tasks_.end()) it->second->task->RequestDrain();
}

void TaskExecutor::ReleaseJob(const std::string& job_id) {
  std::vector<std::unique_ptr<Entry>> entries;
  {
    std::lock_guard lock(mu_);
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (it->second->task->Descriptor().job_id == job_id) {
        entries.push_back(std::move(it->second));
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& e : entries) {
    if (e->thread.joinable()) e->thread.join();
  }
  entries.clear();
  if (network_) network_->ReleaseJob(job_id);
  shuffle_.ReleaseJob(job_id);
}

}  // namespace freshet::internal
