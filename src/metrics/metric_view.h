#pragma once
// What the REST API reads metrics from, and the queries over dumps of root
// groups that answer it. A process's MetricRegistry is one view; a
// JobManager's MetricFetcher (src/rest/metric_fetcher.h) is another, which
// merges its own registry with the dumps fetched from TaskManager
// processes. Both answer with the same shapes, so the handlers do not know
// where a metric was kept.

#include <string>
#include <vector>

#include "freshet/status.h"
#include "metrics/metric_group.h"

namespace freshet::internal {

/// Aggregates of one metric over a vertex's subtasks (Flink's
/// /jobs/:jobid/vertices/:vid/subtasks/metrics?get=...&agg=...).
struct AggregatedMetric {
  std::string name;
  int subtasks = 0;  // subtasks that have the metric
  double min = 0;
  double max = 0;
  double avg = 0;
  double sum = 0;
};

/// The metrics of one registered root group at one moment, named relative
/// to the root ("numRecordsIn", "<operator>.<metric>").
struct GroupReadings {
  ScopeKind kind = ScopeKind::kUnregistered;
  RootKey key;
  std::vector<MetricReading> metrics;
};

/// Metric queries by Flink's REST scopes; `names` empty: every metric.
/// Implementations are thread-safe.
class MetricView {
 public:
  virtual ~MetricView() = default;

  virtual std::vector<MetricReading> ReadJobManager(const std::vector<std::string>& names = {}) const = 0;
  /// The job's job-manager metrics; NotFound when the job has no group.
  virtual Result<std::vector<MetricReading>> ReadJob(const std::string& job_id,
                                                     const std::vector<std::string>& names = {}) const = 0;
  virtual std::vector<std::string> TaskManagerIds() const = 0;
  /// NotFound when the task manager has no group.
  virtual Result<std::vector<MetricReading>> ReadTaskManager(const std::string& tm_id,
                                                             const std::vector<std::string>& names = {}) const = 0;
  /// One subtask's metrics (its latest attempt), named relative to the
  /// task. NotFound when the subtask has no group.
  virtual Result<std::vector<MetricReading>> ReadSubtask(const std::string& job_id, int vertex_id,
                                                         int subtask_index,
                                                         const std::vector<std::string>& names = {}) const = 0;
  /// Every subtask's metrics, named "<subtask>.<name>" like Flink's
  /// /jobs/:jobid/vertices/:vid/metrics. NotFound when no subtask of the
  /// vertex has a group.
  virtual Result<std::vector<MetricReading>> ReadVertex(const std::string& job_id, int vertex_id,
                                                        const std::vector<std::string>& names = {}) const = 0;
  /// Per metric name (relative to the task), min/max/avg/sum over the
  /// vertex's subtasks; histograms are left out. NotFound as ReadVertex.
  virtual Result<std::vector<AggregatedMetric>> AggregateSubtasks(const std::string& job_id, int vertex_id,
                                                                  const std::vector<std::string>& names = {}) const = 0;
};

// ---- queries over dumps (`groups` may come from several processes) ----

/// The task managers among `groups`, in order, without repeats.
std::vector<std::string> TaskManagerIdsIn(const std::vector<GroupReadings>& groups);
Result<std::vector<MetricReading>> TaskManagerReadings(const std::vector<GroupReadings>& groups,
                                                       const std::string& tm_id, const std::vector<std::string>& names);
Result<std::vector<MetricReading>> SubtaskReadings(const std::vector<GroupReadings>& groups, const std::string& job_id,
                                                   int vertex_id, int subtask_index,
                                                   const std::vector<std::string>& names);
Result<std::vector<MetricReading>> VertexReadings(const std::vector<GroupReadings>& groups, const std::string& job_id,
                                                  int vertex_id, const std::vector<std::string>& names);
Result<std::vector<AggregatedMetric>> AggregateVertex(const std::vector<GroupReadings>& groups,
                                                      const std::string& job_id, int vertex_id,
                                                      const std::vector<std::string>& names);

}  // namespace freshet::internal
