#include "metrics/prometheus_reporter.h"

#include <fmt/format.h>
#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <charconv>
#include <exception>
#include <map>
#include <set>
#include <vector>

namespace freshet::internal {

namespace {

bool IsNameChar(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         (allow_colon && c == ':');
}

std::string Sanitize(std::string_view text, bool allow_colon) {
  std::string out(text);
  for (char& c : out) {
    if (!IsNameChar(c, allow_colon)) c = '_';
  }
  return out;
}

Result<int> ParsePort(std::string_view text, std::string_view setting) {
  int port = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port < 0 || port > 65535) {
    return Status::InvalidArgument(fmt::format(
        "metrics.reporter.prom.port: '{}' is not a port (0-65535) or a port range such as 9249-9260", setting));
  }
  return port;
}

constexpr std::pair<double, double HistogramStatistics::*> kQuantiles[] = {
    {0.5, &HistogramStatistics::p50},  {0.75, &HistogramStatistics::p75}, {0.95, &HistogramStatistics::p95},
    {0.98, &HistogramStatistics::p98}, {0.99, &HistogramStatistics::p99}, {0.999, &HistogramStatistics::p999}};

}  // namespace

/// Converts the registry to metric families on every scrape.
class RegistryCollectable final : public prometheus::Collectable {
 public:
  explicit RegistryCollectable(const MetricRegistry& registry) : registry_(registry) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    std::map<std::string, size_t> family_of_name;
    for (const ScopedMetricReading& r : registry_.ReadAll()) {
      const bool summary = r.metric.kind == MetricKind::kHistogram;
      const prometheus::MetricType type = summary ? prometheus::MetricType::Summary : prometheus::MetricType::Gauge;
      std::string name = PrometheusMetricName(r.logical_scope, r.metric.name);
      auto [it, inserted] = family_of_name.try_emplace(name, families.size());
      if (inserted) {
        prometheus::MetricFamily f;
        f.name = name;
        f.help = fmt::format("{} (scope: {})", r.metric.name, r.logical_scope);
        f.type = type;
        families.push_back(std::move(f));
      }
      prometheus::MetricFamily& family = families[it->second];
      if (family.type != type) continue;
      prometheus::ClientMetric m;
      std::set<std::string> seen;
      for (const auto& [key, value] : r.variables) {
        std::string label = SanitizePrometheusLabelName(key);
        // Two variables may sanitize to one label name; a label appears once.
        if (seen.insert(label).second) m.label.push_back({std::move(label), value});
      }
      if (summary) {
        const HistogramStatistics& h = *r.metric.histogram;
        m.summary.sample_count = static_cast<uint64_t>(h.count);
        m.summary.sample_sum = h.sum;
        for (const auto& [q, field] : kQuantiles) m.summary.quantile.push_back({q, h.*field});
      } else {
        m.gauge.value = r.metric.value;
      }
      family.metric.push_back(std::move(m));
    }
    return families;
  }

 private:
  const MetricRegistry& registry_;
};

Result<std::pair<int, int>> ParsePortRange(std::string_view setting) {
  size_t dash = setting.find('-');
  if (dash == std::string_view::npos) {
    FRESHET_ASSIGN_OR_RETURN(int port, ParsePort(setting, setting));
    return std::pair{port, port};
  }
  FRESHET_ASSIGN_OR_RETURN(int first, ParsePort(setting.substr(0, dash), setting));
  FRESHET_ASSIGN_OR_RETURN(int last, ParsePort(setting.substr(dash + 1), setting));
  if (first == 0 || last < first) {
    return Status::InvalidArgument(fmt::format(
        "metrics.reporter.prom.port: '{}' is not a port range (it needs a first port of at least 1 and a last port "
        "not below it)",
        setting));
  }
  return std::pair{first, last};
}

std::string SanitizePrometheusName(std::string_view text) { return Sanitize(text, true); }

std::string SanitizePrometheusLabelName(std::string_view text) {
  std::string out = Sanitize(text, false);
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

std::string PrometheusMetricName(std::string_view logical_scope, std::string_view metric_name) {
  std::string name = "freshet_";
  name += logical_scope;
  name += '_';
  name += metric_name;
  return SanitizePrometheusName(name);
}

Result<std::unique_ptr<PrometheusReporter>> PrometheusReporter::Start(const MetricRegistry& registry,
                                                                      const PrometheusReporterOptions& options) {
  FRESHET_ASSIGN_OR_RETURN(auto range, ParsePortRange(options.port));
  std::string host = options.host.empty() ? "0.0.0.0" : options.host;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  auto reporter = std::unique_ptr<PrometheusReporter>(new PrometheusReporter());
  reporter->collectable_ = std::make_shared<RegistryCollectable>(registry);
  std::string last_error;
  for (int port = range.first; port <= range.second; ++port) {
    try {
      auto exposer = std::make_unique<prometheus::Exposer>(fmt::format("{}:{}", host, port), 2);
      std::vector<int> bound = exposer->GetListeningPorts();
      if (bound.empty()) continue;
      exposer->RegisterCollectable(reporter->collectable_);
      reporter->exposer_ = std::move(exposer);
      reporter->port_ = bound.front();
      return reporter;
    } catch (const std::exception& e) {
      // Taken (or not bindable): try the next port of the range.
      last_error = e.what();
    }
  }
  return Status::Unavailable(fmt::format("the Prometheus reporter could not listen on {} port {}: {}", host,
                                         options.port, last_error.empty() ? "no port bound" : last_error));
}

PrometheusReporter::~PrometheusReporter() {
  // Stop the server (and scrapes in progress) before the collectable goes.
  exposer_.reset();
}

}  // namespace freshet::internal
