#pragma once
// The metric endpoints' answers, read from the process's MetricRegistry
// (none: every list is empty). Flink's shapes: without `?get=` a list of
// the available metrics [{"id"}]; with `?get=a,b` their values
// [{"id", "value"}] (values as strings, as Flink sends them).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rest/rest_router.h"

namespace freshet::internal {

class MetricRegistry;

struct RestMetric {
  std::string id;
  double value = 0;
};

std::vector<RestMetric> ReadJobManagerMetrics(const MetricRegistry* registry);
std::vector<RestMetric> ReadTaskManagerMetrics(const MetricRegistry* registry, const std::string& tm_id);
/// Every subtask's metrics of a vertex, named "<subtask>.<name>".
std::vector<RestMetric> ReadVertexMetrics(const MetricRegistry* registry, const std::string& job_id, int vertex);
/// One subtask's metrics, named relative to the task.
std::vector<RestMetric> ReadSubtaskMetrics(const MetricRegistry* registry, const std::string& job_id, int vertex,
                                           int subtask);

/// The answer to a metrics request (see the file comment).
RestResponse MetricsResponse(const RestRequest& request, const std::vector<RestMetric>& metrics);
/// A TaskManager's metrics as one object {name: value}, for /taskmanagers/:tmid.
nlohmann::json TaskManagerMetricsObject(const MetricRegistry* registry, const std::string& tm_id);
/// A metric's value as Flink prints it: integers without a fraction.
std::string MetricValueText(double value);

}  // namespace freshet::internal
