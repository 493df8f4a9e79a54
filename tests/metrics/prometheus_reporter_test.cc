// The Prometheus endpoint: scraped over HTTP (a small Boost.Beast client)
// while a job runs, its text-format lines checked for the job's metrics
// with their labels; names and labels sanitized; port settings and ports
// already taken.

// GCC cannot instrument Asio's memory fences for ThreadSanitizer (-Wtsan);
// the client here runs on one thread, so a TSan build leaves them out.
#if defined(__SANITIZE_THREAD__) && !defined(BOOST_ASIO_DISABLE_FENCED_BLOCK)
#define BOOST_ASIO_DISABLE_FENCED_BLOCK
#endif

#include "metrics/prometheus_reporter.h"

#include <freshet/freshet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/held_job.h"

namespace freshet::internal {
namespace {

using testing_metrics::Aggregate;
using testing_metrics::HeldJob;
using testing_metrics::PollUntil;
using ::testing::HasSubstr;

struct HttpResponse {
  int status = 0;
  std::string body;
};

HttpResponse HttpGet(int port, const std::string& target) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                static_cast<unsigned short>(port)));
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  beast::error_code ignored;
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  return HttpResponse{static_cast<int>(response.result_int()), response.body()};
}

/// One sample line of the text format.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

/// Parses the sample lines of a scrape (comments skipped). Fails the test
/// on a line that is not valid text format.
std::vector<Sample> ParseSamples(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string key;
        while (i < line.size() && line[i] != '=') key += line[i++];
        EXPECT_EQ(line.substr(i, 2), "=\"") << line;
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            char e = line[i + 1];
            value += e == 'n' ? '\n' : e;
            i += 2;
          } else {
            value += line[i++];
          }
        }
        ++i;  // closing quote
        EXPECT_TRUE(s.labels.emplace(key, value).second) << "label " << key << " twice in " << line;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    EXPECT_EQ(line[i], ' ') << line;
    s.value = std::stod(line.substr(i + 1));
    out.push_back(std::move(s));
  }
  return out;
}

bool ValidName(const std::string& name, bool label) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (!label && c == ':');
    if (!ok) return false;
  }
  return true;
}

std::vector<Sample> Named(const std::vector<Sample>& samples, const std::string& name) {
  std::vector<Sample> out;
  for (const Sample& s : samples) {
    if (s.name == name) out.push_back(s);
  }
  return out;
}

TEST(PrometheusReporterTest, ScrapeShowsTheRunningJobsMetricsWithLabels) {
  constexpr int64_t kRecords = 100'000;
  HeldJob job(kRecords, 2);
  Result<std::unique_ptr<PrometheusReporter>> reporter =
      PrometheusReporter::Start(job.Metrics(), PrometheusReporterOptions{"127.0.0.1", "0"});
  ASSERT_TRUE(reporter.IsOk()) << reporter.GetStatus().ToString();
  const int port = (*reporter)->Port();
  ASSERT_GT(port, 0);
  ASSERT_TRUE(PollUntil([&] {
    auto a = Aggregate(job.Metrics(), job.JobId(), job.SinkVertex(), "numRecordsIn");
    return a && a->sum == kRecords;
  }));

  HttpResponse response = HttpGet(port, "/metrics");
  ASSERT_EQ(response.status, 200);
  const std::string& text = response.body;
  EXPECT_THAT(text, HasSubstr("# TYPE freshet_taskmanager_job_task_numRecordsIn gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE freshet_taskmanager_job_task_operator_values summary"));
  std::vector<Sample> samples = ParseSamples(text);
  for (const Sample& s : samples) {
    EXPECT_TRUE(ValidName(s.name, false)) << s.name;
    for (const auto& [label, value] : s.labels) EXPECT_TRUE(ValidName(label, true)) << label;
  }

  // numRecordsIn of the sink's subtasks: one sample each, with the task's labels.
  double sink_in = 0;
  int sink_samples = 0;
  for (const Sample& s : Named(samples, "freshet_taskmanager_job_task_numRecordsIn")) {
    if (s.labels.at("job_id") != job.JobId() || s.labels.at("task_id") != std::to_string(job.SinkVertex())) continue;
    ++sink_samples;
    sink_in += s.value;
    EXPECT_EQ(s.labels.at("job_name"), "metrics job");
    EXPECT_EQ(s.labels.at("task_name"), "Metrics Sink");
    EXPECT_EQ(s.labels.at("tm_id"), "taskmanager-0");
    EXPECT_EQ(s.labels.at("task_attempt_num"), "0");
    EXPECT_EQ(s.labels.at("host"), job.Metrics().Host());
    EXPECT_TRUE(s.labels.at("subtask_index") == "0" || s.labels.at("subtask_index") == "1");
  }
  EXPECT_EQ(sink_samples, 2);
  EXPECT_EQ(sink_in, kRecords);

  // The user counter, in its operator's scope.
  std::vector<Sample> mapped = Named(samples, "freshet_taskmanager_job_task_operator_mappedRecords");
  ASSERT_EQ(mapped.size(), 2U);
  for (const Sample& s : mapped) {
    EXPECT_EQ(s.labels.at("operator_name"), "Counting Map");
    EXPECT_EQ(s.labels.at("task_name"), job.SourceVertexName());
    EXPECT_EQ(s.value, kRecords / 2);
  }

  // The user histogram as a summary: quantiles, count and sum per subtask.
  std::vector<Sample> quantiles = Named(samples, "freshet_taskmanager_job_task_operator_values");
  EXPECT_EQ(quantiles.size(), 2U * 6);
  for (const Sample& s : quantiles) EXPECT_TRUE(s.labels.count("quantile")) << "quantile label missing";
  std::vector<Sample> counts = Named(samples, "freshet_taskmanager_job_task_operator_values_count");
  ASSERT_EQ(counts.size(), 2U);
  EXPECT_EQ(counts[0].value + counts[1].value, kRecords);
  EXPECT_EQ(Named(samples, "freshet_taskmanager_job_task_operator_values_sum").size(), 2U);

  // Task manager metrics.
  std::vector<Sample> cpu = Named(samples, "freshet_taskmanager_Status_Process_CpuTime");
  ASSERT_EQ(cpu.size(), 1U);
  EXPECT_EQ(cpu[0].labels.at("tm_id"), "taskmanager-0");
  EXPECT_GT(cpu[0].value, 0);
  ASSERT_EQ(Named(samples, "freshet_taskmanager_taskSlotsTotal").size(), 1U);

  // Once the job ended, its metrics are no longer scraped.
  job.Release();
  ASSERT_TRUE(job.Wait().IsOk());
  std::vector<Sample> after = ParseSamples(HttpGet(port, "/metrics").body);
  for (const Sample& s : after) {
    auto it = s.labels.find("job_id");
    EXPECT_TRUE(it == s.labels.end() || it->second != job.JobId()) << s.name;
  }
  EXPECT_EQ(Named(after, "freshet_taskmanager_taskSlotsTotal").size(), 1U);
}

TEST(PrometheusReporterTest, NamesAndLabelsAreSanitized) {
  MetricRegistry registry(MetricRegistryOptions{"host-1", std::chrono::milliseconds(0), {}});
  auto task = registry.CreateTaskGroup(TaskScope{"", "tm:1", "job-1", "Job \"quoted\"\nline", 0, "Task", 0, 0});
  MetricGroup& op = task->AddOperator(4, "Map \\ Filter");
  MetricGroup& group = op.AddGroup("cache hits!").AddGroup("shard id", "a\\b");
  group.Counter("lat.p-99").Inc(7);
  op.AddGroup("9lives", "yes").Gauge("g", [] { return 1.5; });
  // A user key that sanitizes to a built-in label: the built-in one stays.
  op.AddGroup("job id", "not the job").Counter("clash").Inc();

  Result<std::unique_ptr<PrometheusReporter>> reporter =
      PrometheusReporter::Start(registry, PrometheusReporterOptions{"127.0.0.1", "0"});
  ASSERT_TRUE(reporter.IsOk()) << reporter.GetStatus().ToString();
  HttpResponse response = HttpGet((*reporter)->Port(), "/metrics");
  ASSERT_EQ(response.status, 200);
  std::vector<Sample> samples = ParseSamples(response.body);

  std::vector<Sample> lat = Named(samples, "freshet_taskmanager_job_task_operator_cache_hits__shard_id_lat_p_99");
  ASSERT_EQ(lat.size(), 1U) << response.body;
  EXPECT_EQ(lat[0].value, 7);
  EXPECT_EQ(lat[0].labels.at("shard_id"), "a\\b");
  EXPECT_EQ(lat[0].labels.at("job_name"), "Job \"quoted\"\nline");
  EXPECT_EQ(lat[0].labels.at("operator_name"), "Map \\ Filter");
  EXPECT_EQ(lat[0].labels.at("tm_id"), "tm:1");

  std::vector<Sample> g = Named(samples, "freshet_taskmanager_job_task_operator_9lives_g");
  ASSERT_EQ(g.size(), 1U);
  EXPECT_EQ(g[0].labels.at("_9lives"), "yes");
  EXPECT_EQ(g[0].value, 1.5);

  std::vector<Sample> clash = Named(samples, "freshet_taskmanager_job_task_operator_job_id_clash");
  ASSERT_EQ(clash.size(), 1U);
  EXPECT_EQ(clash[0].labels.at("job_id"), "job-1");

  EXPECT_EQ(SanitizePrometheusName("a.b-c:d e"), "a_b_c:d_e");
  EXPECT_EQ(SanitizePrometheusLabelName("9x:y"), "_9x_y");
  EXPECT_EQ(SanitizePrometheusLabelName(""), "_");
  EXPECT_EQ(PrometheusMetricName("taskmanager.job", "x y"), "freshet_taskmanager_job_x_y");
}

TEST(PrometheusReporterTest, PortSettingsAreParsedAndBadOnesRejected) {
  Result<std::pair<int, int>> single = ParsePortRange("9249");
  ASSERT_TRUE(single.IsOk());
  EXPECT_EQ(*single, std::make_pair(9249, 9249));
  Result<std::pair<int, int>> range = ParsePortRange("9249-9260");
  ASSERT_TRUE(range.IsOk());
  EXPECT_EQ(*range, std::make_pair(9249, 9260));
  for (const char* bad : {"", "abc", "70000", "-1", "9260-9249", "0-10", "9249-", "92a9", "1-2-3"}) {
    Result<std::pair<int, int>> r = ParsePortRange(bad);
    ASSERT_FALSE(r.IsOk()) << bad;
    EXPECT_EQ(r.GetStatus().Code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.GetStatus().Message(), HasSubstr("metrics.reporter.prom.port")) << bad;
    EXPECT_THAT(r.GetStatus().Message(), HasSubstr(std::string("'") + bad + "'")) << bad;
  }
  MetricRegistry registry(MetricRegistryOptions{"h", std::chrono::milliseconds(0), {}});
  Result<std::unique_ptr<PrometheusReporter>> r =
      PrometheusReporter::Start(registry, PrometheusReporterOptions{"127.0.0.1", "port"});
  ASSERT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kInvalidArgument);
}

TEST(PrometheusReporterTest, TakenPortsAreSkippedWithinTheRange) {
  // Hold a port so the reporter cannot have it.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor taken(io, boost::asio::ip::tcp::endpoint(
                                               boost::asio::ip::make_address("127.0.0.1"), 0));
  const int port = taken.local_endpoint().port();
  ASSERT_LT(port, 65535 - 20);
  MetricRegistry registry(MetricRegistryOptions{"h", std::chrono::milliseconds(0), {}});

  Result<std::unique_ptr<PrometheusReporter>> only_taken =
      PrometheusReporter::Start(registry, PrometheusReporterOptions{"127.0.0.1", std::to_string(port)});
  ASSERT_FALSE(only_taken.IsOk());
  EXPECT_EQ(only_taken.GetStatus().Code(), StatusCode::kUnavailable);
  EXPECT_THAT(only_taken.GetStatus().Message(), HasSubstr(std::to_string(port)));

  std::string range = std::to_string(port) + "-" + std::to_string(port + 20);
  Result<std::unique_ptr<PrometheusReporter>> next =
      PrometheusReporter::Start(registry, PrometheusReporterOptions{"127.0.0.1", range});
  ASSERT_TRUE(next.IsOk()) << next.GetStatus().ToString();
  EXPECT_GT((*next)->Port(), port);
  EXPECT_LE((*next)->Port(), port + 20);
  EXPECT_EQ(HttpGet((*next)->Port(), "/metrics").status, 200);
}

}  // namespace
}  // namespace freshet::internal
