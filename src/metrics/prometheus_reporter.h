#pragma once
// Serves a MetricRegistry at /metrics in Prometheus's text format (pull),
// converting the registry on each scrape, as Flink's PrometheusReporter:
//
// - name: "freshet_" + the logical scope and the metric name joined by
//   '_', e.g. freshet_taskmanager_job_task_operator_numRecordsIn; every
//   character outside [a-zA-Z0-9_:] becomes '_'.
// - labels: the scope's variables (host, tm_id, job_id, job_name, task_id,
//   task_name, subtask_index, task_attempt_num, operator_id,
//   operator_name, and the keys of key-value groups), names sanitized the
//   same way (':' too); values as they are (the text format escapes them).
// - types: counters, gauges and meters (their rate) are gauges — counters
//   may go down, which a Prometheus counter may not (Flink does the same);
//   histograms are summaries with quantiles 0.5, 0.75, 0.95, 0.98, 0.99,
//   0.999, _count (values ever recorded) and _sum.
// - one name, one type: when a histogram and another metric share a name,
//   the one scraped first keeps it and the other is left out.

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "freshet/status.h"
#include "metrics/metric_registry.h"

namespace prometheus {
class Exposer;
}

namespace freshet::internal {

class RegistryCollectable;

struct PrometheusReporterOptions {
  /// Address to listen on (metrics.reporter.prom.host): "0.0.0.0" for all
  /// interfaces, "127.0.0.1" for loopback only; IPv6 addresses as "::1".
  std::string host = "0.0.0.0";
  /// metrics.reporter.prom.port: a port ("9249"), or a range
  /// ("9249-9260") of which the first free port is used, so that several
  /// processes on one machine can share one setting; "0": any free port.
  std::string port = "9249";
};

class PrometheusReporter {
 public:
  /// Starts serving `registry`, which must outlive the reporter.
  /// InvalidArgument for a malformed port setting, Unavailable when no
  /// port of the range can be bound.
  static Result<std::unique_ptr<PrometheusReporter>> Start(const MetricRegistry& registry,
                                                           const PrometheusReporterOptions& options);
  /// Stops serving (waits for scrapes in progress).
  ~PrometheusReporter();
  PrometheusReporter(const PrometheusReporter&) = delete;
  PrometheusReporter& operator=(const PrometheusReporter&) = delete;

  /// The port bound.
  int Port() const { return port_; }

 private:
  PrometheusReporter() = default;
  std::shared_ptr<RegistryCollectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

/// Parses a port setting: "9249", "9249-9260", "0". Returns the range.
Result<std::pair<int, int>> ParsePortRange(std::string_view setting);
/// `text` with every character outside [a-zA-Z0-9_:] replaced by '_'.
std::string SanitizePrometheusName(std::string_view text);
/// A label name: [a-zA-Z_][a-zA-Z0-9_]*, other characters replaced by '_'.
std::string SanitizePrometheusLabelName(std::string_view text);
/// "freshet_<logical scope with '_'>_<metric>", sanitized.
std::string PrometheusMetricName(std::string_view logical_scope, std::string_view metric_name);

}  // namespace freshet::internal
