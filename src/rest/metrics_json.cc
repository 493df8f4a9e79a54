#include "rest/metrics_json.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "metrics/metric_view.h"
#include "rest/rest_handlers.h"

namespace freshet::internal {

namespace {

std::vector<RestMetric> FromReadings(const std::vector<MetricReading>& readings) {
  std::vector<RestMetric> out;
  out.reserve(readings.size());
  for (const MetricReading& r : readings) out.push_back({r.name, r.value});
  return out;
}

std::vector<RestMetric> FromResult(const Result<std::vector<MetricReading>>& readings) {
  // NotFound: nothing registered under that scope (yet): no metrics.
  return readings.IsOk() ? FromReadings(*readings) : std::vector<RestMetric>{};
}

}  // namespace

std::vector<RestMetric> ReadJobMetrics(const MetricView* metrics, const std::string& job_id) {
  if (metrics == nullptr) return {};
  return FromResult(metrics->ReadJob(job_id));
}

std::vector<RestMetric> ReadJobManagerMetrics(const MetricView* metrics) {
  if (metrics == nullptr) return {};
  return FromReadings(metrics->ReadJobManager());
}

std::vector<RestMetric> ReadTaskManagerMetrics(const MetricView* metrics, const std::string& tm_id) {
  if (metrics == nullptr) return {};
  return FromResult(metrics->ReadTaskManager(tm_id));
}

std::vector<RestMetric> ReadVertexMetrics(const MetricView* metrics, const std::string& job_id, int vertex) {
  if (metrics == nullptr) return {};
  return FromResult(metrics->ReadVertex(job_id, vertex));
}

std::vector<RestMetric> ReadSubtaskMetrics(const MetricView* metrics, const std::string& job_id, int vertex,
                                           int subtask) {
  if (metrics == nullptr) return {};
  return FromResult(metrics->ReadSubtask(job_id, vertex, subtask));
}

std::string MetricValueText(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

RestResponse MetricsResponse(const RestRequest& request, const std::vector<RestMetric>& metrics) {
  nlohmann::json out = nlohmann::json::array();
  auto get = request.query.find("get");
  if (get == request.query.end()) {
    for (const RestMetric& m : metrics) out.push_back({{"id", m.id}});
    return JsonResponse(200, out);
  }
  std::set<std::string> wanted;
  size_t at = 0;
  const std::string& list = get->second;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    if (comma > at) wanted.insert(list.substr(at, comma - at));
    at = comma + 1;
  }
  for (const RestMetric& m : metrics) {
    if (wanted.count(m.id) != 0) out.push_back({{"id", m.id}, {"value", MetricValueText(m.value)}});
  }
  return JsonResponse(200, out);
}

nlohmann::json TaskManagerMetricsObject(const MetricView* metrics, const std::string& tm_id) {
  nlohmann::json out = nlohmann::json::object();
  for (const RestMetric& m : ReadTaskManagerMetrics(metrics, tm_id)) out[m.id] = m.value;
  return out;
}

void AddJobMetricHandlers(RestRouter& router, const RestContext& context) {
  const RestContext& ctx = context;
  router.Add("GET", "/jobs/:jobid/metrics", [&ctx](const RestRequest& req) {
    Result<std::string> job_id = HexIdParam(req, "jobid", "job id");
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    // Known jobs only, so a typo is a 404 rather than an empty list.
    Result<JobDetails> job = ctx.dispatcher->Job(*job_id);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    return MetricsResponse(req, ReadJobMetrics(ctx.metrics, *job_id));
  });
}

}  // namespace freshet::internal
