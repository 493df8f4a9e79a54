#pragma once
// The metric endpoints' answers, read from a MetricView: the process's
// MetricRegistry, or in a JobManager process its MetricFetcher, which adds
// the metrics of the TaskManager processes (none: every list is empty).
// Flink's shapes: without `?get=` a list of the available metrics [{"id"}];
// with `?get=a,b` their values [{"id", "value"}] (values as strings, as
// Flink sends them).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rest/rest_router.h"

namespace freshet::internal {

class MetricView;
struct RestContext;

struct RestMetric {
  std::string id;
  double value = 0;
};

/// A job's job metrics (numRestarts, uptime, checkpoints...); empty when
/// the job has no metric group (it ended, or metrics are off).
std::vector<RestMetric> ReadJobMetrics(const MetricView* metrics, const std::string& job_id);
std::vector<RestMetric> ReadJobManagerMetrics(const MetricView* metrics);
std::vector<RestMetric> ReadTaskManagerMetrics(const MetricView* metrics, const std::string& tm_id);
/// Every subtask's metrics of a vertex, named "<subtask>.<name>".
std::vector<RestMetric> ReadVertexMetrics(const MetricView* metrics, const std::string& job_id, int vertex);
/// One subtask's metrics, named relative to the task.
std::vector<RestMetric> ReadSubtaskMetrics(const MetricView* metrics, const std::string& job_id, int vertex,
                                           int subtask);

/// The answer to a metrics request (see the file comment).
RestResponse MetricsResponse(const RestRequest& request, const std::vector<RestMetric>& metrics);
/// A TaskManager's metrics as one object {name: value}, for /taskmanagers/:tmid.
nlohmann::json TaskManagerMetricsObject(const MetricView* metrics, const std::string& tm_id);
/// GET /jobs/:jobid/metrics (Flink's JobMetricsHandler): the job's job
/// metrics; 404 for a job the Dispatcher does not know.
void AddJobMetricHandlers(RestRouter& router, const RestContext& context);
/// A metric's value as Flink prints it: integers without a fraction.
std::string MetricValueText(double value);

}  // namespace freshet::internal
