#pragma once
// The JobManager's view of every metric in the cluster, in the spirit of
// Flink's MetricFetcher and MetricStore: its own registry (job manager,
// jobs, in-process TaskManagers and their tasks) merged with the metric
// groups of the TaskManager processes, fetched from them (QueryMetrics)
// when a REST request needs them and the last fetch is older than
// `metrics.fetcher.update-interval`. A TaskManager that is lost or does not
// answer within the timeout simply has no metrics until it answers again;
// no request waits longer than the timeout for it.
//
// Threading: thread-safe. One fetch runs at a time; requests arriving
// meanwhile wait for it (bounded by the timeout) and share its result.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "metrics/metric_view.h"

namespace freshet::internal {

class MetricRegistry;
class RemoteTaskExecutor;

struct MetricFetcherOptions {
  /// `metrics.fetcher.update-interval`: fetched metrics older than this
  /// are fetched again when read. Zero: every read fetches.
  std::chrono::milliseconds update_interval{1000};
  /// Longest wait for one TaskManager's answer (they are asked in
  /// parallel, so also the longest a read waits for a fetch).
  std::chrono::milliseconds timeout{3000};
};

class MetricFetcher final : public MetricView {
 public:
  /// The TaskManager processes registered now.
  using RemoteTaskManagers = std::function<std::vector<std::shared_ptr<RemoteTaskExecutor>>()>;

  /// REQUIRES: `local` outlives the fetcher.
  MetricFetcher(const MetricRegistry& local, RemoteTaskManagers remote, MetricFetcherOptions options = {});
  ~MetricFetcher() override;

  // From the local registry only: job managers and jobs live here.
  std::vector<MetricReading> ReadJobManager(const std::vector<std::string>& names = {}) const override;
  Result<std::vector<MetricReading>> ReadJob(const std::string& job_id,
                                             const std::vector<std::string>& names = {}) const override;
  // Local and fetched groups.
  std::vector<std::string> TaskManagerIds() const override;
  Result<std::vector<MetricReading>> ReadTaskManager(const std::string& tm_id,
                                                     const std::vector<std::string>& names = {}) const override;
  Result<std::vector<MetricReading>> ReadSubtask(const std::string& job_id, int vertex_id, int subtask_index,
                                                 const std::vector<std::string>& names = {}) const override;
  Result<std::vector<MetricReading>> ReadVertex(const std::string& job_id, int vertex_id,
                                                const std::vector<std::string>& names = {}) const override;
  Result<std::vector<AggregatedMetric>> AggregateSubtasks(const std::string& job_id, int vertex_id,
                                                          const std::vector<std::string>& names = {}) const override;

  /// Fetches now, however fresh the last fetch is (tests, shutdown-free
  /// refresh); returns how many TaskManagers answered.
  int FetchNow() const;

 private:
  /// The local task manager and task groups followed by the fetched ones
  /// (fetched again first when stale).
  std::vector<GroupReadings> AllGroups() const;
  /// The fetched groups, fetching when stale or `force`.
  std::shared_ptr<const std::vector<GroupReadings>> Remote(bool force, int* answered) const;

  const MetricRegistry& local_;
  RemoteTaskManagers remote_;
  MetricFetcherOptions options_;

  mutable std::mutex mu_;
  mutable std::condition_variable fetched_cv_;
  mutable bool fetching_ = false;
  mutable std::optional<std::chrono::steady_clock::time_point> last_fetch_;
  mutable std::shared_ptr<const std::vector<GroupReadings>> remote_groups_;
  mutable int last_answered_ = 0;
};

}  // namespace freshet::internal
