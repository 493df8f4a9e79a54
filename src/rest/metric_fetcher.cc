#include "rest/metric_fetcher.h"

#include <future>
#include <system_error>

#include "cluster/rpc/remote_task_executor.h"
#include "common/logging.h"
#include "metrics/metric_registry.h"

namespace freshet::internal {

MetricFetcher::MetricFetcher(const MetricRegistry& local, RemoteTaskManagers remote, MetricFetcherOptions options)
    : local_(local),
      remote_(std::move(remote)),
      options_(options),
      remote_groups_(std::make_shared<const std::vector<GroupReadings>>()) {}

MetricFetcher::~MetricFetcher() {
  // A read still fetching refers to this object: wait for it.
  std::unique_lock lock(mu_);
  fetched_cv_.wait(lock, [this] { return !fetching_; });
}

std::shared_ptr<const std::vector<GroupReadings>> MetricFetcher::Remote(bool force, int* answered) const {
  std::unique_lock lock(mu_);
  // A fetch in progress ends within the timeout; its result is fresh.
  fetched_cv_.wait(lock, [this] { return !fetching_; });
  if (!force && last_fetch_ && std::chrono::steady_clock::now() - *last_fetch_ < options_.update_interval) {
    if (answered != nullptr) *answered = last_answered_;
    return remote_groups_;
  }
  fetching_ = true;
  lock.unlock();

  std::vector<std::shared_ptr<RemoteTaskExecutor>> task_managers;
  if (remote_) task_managers = remote_();
  // Asked in parallel: a TaskManager that does not answer delays the fetch
  // by the timeout once, not once per TaskManager.
  std::vector<std::future<Result<std::vector<GroupReadings>>>> answers;
  for (const std::shared_ptr<RemoteTaskExecutor>& tm : task_managers) {
    if (tm == nullptr || tm->IsLost()) continue;
    try {
      answers.push_back(std::async(std::launch::async, [tm, timeout = options_.timeout] {
        return tm->QueryMetrics(timeout);
      }));
    } catch (const std::system_error& e) {
      Log("jobmanager")->warn("cannot query the metrics of TaskManager {}: {}", tm->Id(), e.what());
    }
  }
  auto groups = std::make_shared<std::vector<GroupReadings>>();
  int ok = 0;
  for (auto& answer : answers) {
    Result<std::vector<GroupReadings>> r = answer.get();
    if (!r.IsOk()) {
      Log("jobmanager")->debug("{}", r.GetStatus().Message());
      continue;
    }
    ++ok;
    for (GroupReadings& g : *r) groups->push_back(std::move(g));
  }

  lock.lock();
  remote_groups_ = std::move(groups);
  last_fetch_ = std::chrono::steady_clock::now();
  last_answered_ = ok;
  fetching_ = false;
  fetched_cv_.notify_all();
  if (answered != nullptr) *answered = ok;
  return remote_groups_;
}

int MetricFetcher::FetchNow() const {
  int answered = 0;
  Remote(true, &answered);
  return answered;
}

std::vector<GroupReadings> MetricFetcher::AllGroups() const {
  std::vector<GroupReadings> groups = local_.ReadTaskManagerAndTaskGroups();
  std::shared_ptr<const std::vector<GroupReadings>> remote = Remote(false, nullptr);
  groups.insert(groups.end(), remote->begin(), remote->end());
  return groups;
}

std::vector<MetricReading> MetricFetcher::ReadJobManager(const std::vector<std::string>& names) const {
  return local_.ReadJobManager(names);
}

Result<std::vector<MetricReading>> MetricFetcher::ReadJob(const std::string& job_id,
                                                          const std::vector<std::string>& names) const {
  return local_.ReadJob(job_id, names);
}

std::vector<std::string> MetricFetcher::TaskManagerIds() const { return TaskManagerIdsIn(AllGroups()); }

Result<std::vector<MetricReading>> MetricFetcher::ReadTaskManager(const std::string& tm_id,
                                                                  const std::vector<std::string>& names) const {
  return TaskManagerReadings(AllGroups(), tm_id, names);
}

Result<std::vector<MetricReading>> MetricFetcher::ReadSubtask(const std::string& job_id, int vertex_id,
                                                              int subtask_index,
                                                              const std::vector<std::string>& names) const {
  return SubtaskReadings(AllGroups(), job_id, vertex_id, subtask_index, names);
}

Result<std::vector<MetricReading>> MetricFetcher::ReadVertex(const std::string& job_id, int vertex_id,
                                                             const std::vector<std::string>& names) const {
  return VertexReadings(AllGroups(), job_id, vertex_id, names);
}

Result<std::vector<AggregatedMetric>> MetricFetcher::AggregateSubtasks(const std::string& job_id, int vertex_id,
                                                                       const std::vector<std::string>& names) const {
  return AggregateVertex(AllGroups(), job_id, vertex_id, names);
}

}  // namespace freshet::internal
