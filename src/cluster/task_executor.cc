#include "cluster/task_executor.h"

#include <fmt/format.h>

namespace freshet::internal {

TaskExecutor::TaskExecutor(std::string id, int num_slots, Clock& clock)
    : id_(std::move(id)), num_slots_(num_slots), clock_(clock) {}

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
  auto entry = std::make_unique<Entry>();
  entry->task = std::make_unique<StreamTask>(std::move(tdd), std::move(job), shuffle_, clock_, listener);
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
  shuffle_.ReleaseJob(job_id);
}

}  // namespace freshet::internal
