// Built-in task metrics and user metrics of running jobs on a mini-cluster,
// read through the cluster's metric registry: record counts against the
// known input, the user counter in its operator's scope, the input
// watermark, idle / busy / back-pressured time, task manager slots, and
// removal of the groups when the job ends.

#include <freshet/freshet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metrics/held_job.h"

namespace freshet {
namespace {

using internal::AggregatedMetric;
using internal::MetricReading;
using internal::ScopedMetricReading;
using testing_metrics::Aggregate;
using testing_metrics::HeldJob;
using testing_metrics::PollUntil;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

std::optional<double> ValueOf(const std::vector<MetricReading>& readings, const std::string& name) {
  for (const MetricReading& r : readings) {
    if (r.name == name) return r.value;
  }
  return std::nullopt;
}

double SumOf(HeldJob& job, int vertex, const std::string& name) {
  std::optional<AggregatedMetric> a = Aggregate(job.Metrics(), job.JobId(), vertex, name);
  return a ? a->sum : -1;
}

constexpr int64_t kRecords = 200'000;

TEST(TaskMetricsTest, RecordCountsAndUserCounterMatchTheInput) {
  HeldJob job(kRecords, 2);
  internal::MetricRegistry& registry = job.Metrics();
  const int source = job.SourceVertex();
  const int sink = job.SinkVertex();

  ASSERT_TRUE(PollUntil([&] { return SumOf(job, sink, "numRecordsIn") == kRecords; }))
      << "sink numRecordsIn: " << SumOf(job, sink, "numRecordsIn");
  EXPECT_EQ(SumOf(job, source, "numRecordsOut"), kRecords);
  EXPECT_EQ(SumOf(job, source, "numRecordsIn"), 0);  // records from a source reader are not network input
  EXPECT_EQ(SumOf(job, sink, "numRecordsOut"), 0);   // nor are records a sink consumes network output
  std::optional<AggregatedMetric> bytes = Aggregate(registry, job.JobId(), sink, "numBytesIn");
  ASSERT_TRUE(bytes);
  EXPECT_GE(bytes->sum, 16.0 * kRecords);  // at least timestamp and value of each record
  EXPECT_EQ(bytes->subtasks, 2);

  // Per subtask: each source subtask emitted its half.
  for (int s = 0; s < 2; ++s) {
    Result<std::vector<MetricReading>> sub = registry.ReadSubtask(job.JobId(), source, s);
    ASSERT_TRUE(sub.IsOk()) << sub.GetStatus().ToString();
    EXPECT_EQ(ValueOf(*sub, "numRecordsOut"), kRecords / 2) << "subtask " << s;
    EXPECT_EQ(ValueOf(*sub, "Counting Map.mappedRecords"), kRecords / 2) << "subtask " << s;
    bool histogram_seen = false;
    for (const MetricReading& r : *sub) {
      if (r.name != "Counting Map.values") continue;
      histogram_seen = true;
      ASSERT_TRUE(r.histogram);
      EXPECT_EQ(r.histogram->count, kRecords / 2);
      // The reservoir holds the subtask's last values.
      EXPECT_EQ(r.histogram->max, kRecords / 2 * (s + 1) - 1);
    }
    EXPECT_TRUE(histogram_seen);
  }

  // The user counter is reported with the operator's scope and variables.
  int user_counters = 0;
  for (const ScopedMetricReading& r : registry.ReadAll()) {
    if (r.metric.name != "mappedRecords") continue;
    ++user_counters;
    EXPECT_EQ(r.logical_scope, "taskmanager.job.task.operator");
    EXPECT_THAT(r.variables, Contains(Pair("job_id", job.JobId())));
    EXPECT_THAT(r.variables, Contains(Pair("job_name", "metrics job")));
    EXPECT_THAT(r.variables, Contains(Pair("operator_name", "Counting Map")));
    EXPECT_THAT(r.variables, Contains(Pair("task_name", job.SourceVertexName())));
    EXPECT_THAT(r.variables, Contains(Pair("task_id", std::to_string(source))));
    EXPECT_THAT(r.variables, Contains(Pair("tm_id", "taskmanager-0")));
    EXPECT_EQ(r.metric.value, kRecords / 2);
  }
  EXPECT_EQ(user_counters, 2);

  // Watermarks: source subtask s emitted timestamps up to its share's end,
  // so the sink's input watermark is the lower end's, minus 1.
  const double expected_watermark = kRecords / 2 - 1 - 1;
  EXPECT_TRUE(PollUntil([&] {
    std::optional<AggregatedMetric> wm = Aggregate(registry, job.JobId(), sink, "currentInputWatermark");
    return wm && wm->min == expected_watermark && wm->max == expected_watermark;
  }));

  // Rates come from the registry's updater.
  EXPECT_TRUE(PollUntil([&] { return SumOf(job, sink, "numRecordsInPerSecond") > 0; }));
  EXPECT_TRUE(PollUntil([&] { return SumOf(job, source, "numRecordsOutPerSecond") > 0; }));

  // Both slots of the task manager hold the job's tasks.
  auto tm_metric = [&](const std::string& name) {
    Result<std::vector<MetricReading>> tm = registry.ReadTaskManager("taskmanager-0");
    return tm.IsOk() ? ValueOf(*tm, name) : std::nullopt;
  };
  EXPECT_EQ(tm_metric("taskSlotsTotal"), 2);
  // The figure is refreshed when the executor is not busy: wait for it.
  EXPECT_TRUE(PollUntil([&] { return tm_metric("taskSlotsAvailable") == 0; }));

  // The job ends: its task groups go; the task manager's stays.
  job.Release();
  Result<JobExecutionResult> result = job.Wait();
  ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
  EXPECT_EQ(registry.ReadVertex(job.JobId(), source).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(registry.ReadVertex(job.JobId(), sink).GetStatus().Code(), StatusCode::kNotFound);
  for (const ScopedMetricReading& r : registry.ReadAll()) {
    EXPECT_THAT(r.variables, ::testing::Not(Contains(Pair("job_id", job.JobId())))) << r.metric.name;
  }
  EXPECT_TRUE(PollUntil([&] { return tm_metric("taskSlotsAvailable") == 2; }));
}

/// Whether every subtask of `vertex` reports idle + back-pressured + busy
/// within `tolerance` of 1000 ms/s and `check` holds for its readings.
template <class F>
bool EverySubtask(HeldJob& job, int vertex, int parallelism, F check, double tolerance = 50) {
  for (int s = 0; s < parallelism; ++s) {
    Result<std::vector<MetricReading>> r = job.Metrics().ReadSubtask(job.JobId(), vertex, s);
    if (!r.IsOk()) return false;
    double idle = ValueOf(*r, "idleTimeMsPerSecond").value_or(-1);
    double back_pressured = ValueOf(*r, "backPressuredTimeMsPerSecond").value_or(-1);
    double busy = ValueOf(*r, "busyTimeMsPerSecond").value_or(-1);
    if (idle < 0 || back_pressured < 0 || busy < 0) return false;
    if (std::abs(idle + back_pressured + busy - 1000) > tolerance) return false;
    if (!check(idle, back_pressured, busy)) return false;
  }
  return true;
}

TEST(TaskMetricsTest, TasksWithoutInputAreIdle) {
  HeldJob job(20'000, 2);
  ASSERT_TRUE(PollUntil([&] { return SumOf(job, job.SinkVertex(), "numRecordsIn") == 20'000; }));
  // Every task now waits: the sources for data, the sinks for input.
  auto mostly_idle = [](double idle, double back_pressured, double busy) {
    return idle >= 800 && back_pressured < 100 && busy < 200;
  };
  EXPECT_TRUE(PollUntil([&] { return EverySubtask(job, job.SinkVertex(), 2, mostly_idle); }));
  EXPECT_TRUE(PollUntil([&] { return EverySubtask(job, job.SourceVertex(), 2, mostly_idle); }));
  Result<std::vector<MetricReading>> sink = job.Metrics().ReadSubtask(job.JobId(), job.SinkVertex(), 0);
  ASSERT_TRUE(sink.IsOk());
  EXPECT_GT(ValueOf(*sink, "accumulateIdleTimeMs").value_or(0), 0);
}

TEST(TaskMetricsTest, SlowSinkBackPressuresTheSource) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  env->FromGenerator([](int64_t i) { return i; }, -1)
      .Rebalance()
      .SinkTo(
          [](const int64_t&) {
            // A slow consumer (the work a real sink does per record).
            std::this_thread::sleep_for(std::chrono::microseconds(20));
          },
          "Slow Sink");
  Result<internal::StreamGraph> graph =
      internal::BuildStreamGraph(env->Transformations(), env->GetOptions(), "back-pressure job");
  ASSERT_TRUE(graph.IsOk()) << graph.GetStatus().ToString();
  auto job = std::make_shared<const internal::JobGraph>(internal::BuildJobGraph(
      std::make_shared<const internal::StreamGraph>(std::move(graph).Value()), internal::NewJobId()));
  ASSERT_EQ(job->vertices.size(), 2U);
  internal::MiniCluster cluster(internal::JobMaster::RequiredSlots(*job), Clock::System());
  Result<std::shared_ptr<internal::JobMaster>> master = cluster.SubmitJob(job);
  ASSERT_TRUE(master.IsOk()) << master.GetStatus().ToString();
  int source = job->vertices[0].is_source ? 0 : 1;
  int sink = 1 - source;
  auto read = [&](int vertex) {
    Result<std::vector<MetricReading>> r = cluster.Metrics().ReadSubtask(job->job_id, vertex, 0);
    return r.IsOk() ? *r : std::vector<MetricReading>{};
  };
  auto balanced = [&](const std::vector<MetricReading>& r) {
    double sum = ValueOf(r, "idleTimeMsPerSecond").value_or(-1e9) +
                 ValueOf(r, "backPressuredTimeMsPerSecond").value_or(-1e9) +
                 ValueOf(r, "busyTimeMsPerSecond").value_or(-1e9);
    return std::abs(sum - 1000) <= 50;
  };
  bool source_back_pressured = PollUntil([&] {
    std::vector<MetricReading> r = read(source);
    return ValueOf(r, "backPressuredTimeMsPerSecond").value_or(0) >= 500 && balanced(r);
  });
  bool sink_busy = PollUntil([&] {
    std::vector<MetricReading> r = read(sink);
    return ValueOf(r, "busyTimeMsPerSecond").value_or(0) >= 500 && balanced(r);
  });
  std::vector<MetricReading> source_now = read(source);
  std::vector<MetricReading> sink_now = read(sink);
  (*master)->Cancel();
  (*master)->Wait(std::nullopt);
  cluster.ReleaseJob(job->job_id);
  EXPECT_TRUE(source_back_pressured) << "source back-pressured "
                                     << ValueOf(source_now, "backPressuredTimeMsPerSecond").value_or(-1)
                                     << " idle " << ValueOf(source_now, "idleTimeMsPerSecond").value_or(-1)
                                     << " busy " << ValueOf(source_now, "busyTimeMsPerSecond").value_or(-1);
  EXPECT_TRUE(sink_busy) << "sink busy " << ValueOf(sink_now, "busyTimeMsPerSecond").value_or(-1) << " idle "
                         << ValueOf(sink_now, "idleTimeMsPerSecond").value_or(-1);
  EXPECT_GT(ValueOf(source_now, "accumulateBackPressuredTimeMs").value_or(0), 0);
}

class ConflictingMetrics : public RichMapFunction<int64_t, int64_t> {
 public:
  void Open() override {
    GetRuntimeContext().GetMetricGroup().Counter("seen");
    GetRuntimeContext().GetMetricGroup().Gauge("seen", [] { return 1.0; });
  }
  int64_t Map(const int64_t& v) override { return v; }
};

TEST(TaskMetricsTest, ConflictingUserMetricFailsTheJobNamingIt) {
  auto env = StreamExecutionEnvironment::Create();
  env->FromSequence(0, 9).Map(ConflictingMetrics()).Name("Bad Metrics").SinkTo([](const int64_t&) {});
  Result<JobExecutionResult> result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kUserFunctionError);
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("Bad Metrics"));
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("seen' is already registered as a counter"));
}

}  // namespace
}  // namespace freshet
