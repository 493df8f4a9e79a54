// Flink's job metrics (numRestarts, uptime, downtime, checkpoint figures)
// of a job on a MiniCluster that checkpoints, fails once and restarts from
// its checkpoint, read through the registry as the REST API and the
// Prometheus endpoint read them.

#include <freshet/freshet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cluster/job_metrics.h"
#include "cluster/mini_cluster.h"
#include "graph/stream_graph.h"
#include "metrics/held_job.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

using testing_metrics::PollUntil;

/// Set by the test: the next record makes the map fail (once).
std::atomic<bool> g_fail_next{false};

class FailOnceMap : public MapFunction<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> {
 public:
  std::pair<int64_t, int64_t> Map(const std::pair<int64_t, int64_t>& value) override {
    if (g_fail_next.exchange(false)) throw std::runtime_error("injected failure");
    return value;
  }
};

class JobMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_fail_next = false;
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(2);
    env->EnableCheckpointing(Duration(50));
    env->GetCheckpointConfig().directory = checkpoints_.Path();
    RestartStrategyOptions restart;
    restart.kind = RestartStrategyOptions::Kind::kFixedDelay;
    restart.fixed_delay_attempts = 1;
    // Long enough for the test to see the job restarting.
    restart.fixed_delay_ms = 1500;
    env->SetRestartStrategy(restart);
    // Keyed running sums: every checkpoint holds state.
    env->FromGenerator([](int64_t i) { return std::pair<int64_t, int64_t>(i % 16, 1); }, -1, 2000)
        .Map(FailOnceMap())
        .KeyBy([](const std::pair<int64_t, int64_t>& p) { return p.first; })
        .Sum<1>()
        .SinkTo([](const std::pair<int64_t, int64_t>&) {}, "Discard");
    Result<internal::StreamGraph> graph =
        internal::BuildStreamGraph(env->Transformations(), env->GetOptions(), "restarting job");
    ASSERT_TRUE(graph.IsOk()) << graph.GetStatus().Message();
    job_ = std::make_shared<const internal::JobGraph>(internal::BuildJobGraph(
        std::make_shared<const internal::StreamGraph>(std::move(graph).Value()), internal::NewJobId()));
    cluster_ = std::make_unique<internal::MiniCluster>(internal::JobMaster::RequiredSlots(*job_), Clock::System());
  }

  void TearDown() override {
    if (master_ != nullptr) {
      master_->Cancel();
      master_->Wait(std::nullopt);
    }
    cluster_->ReleaseJob(job_->job_id);
  }

  void Submit() {
    Result<std::shared_ptr<internal::JobMaster>> master = cluster_->SubmitJob(job_);
    ASSERT_TRUE(master.IsOk()) << master.GetStatus().Message();
    master_ = *master;
  }

  /// The job metric `name` now (nullopt: the job has no group or no such metric).
  std::optional<double> Read(const std::string& name) {
    Result<std::vector<internal::MetricReading>> r = cluster_->Metrics().ReadJob(job_->job_id, {name});
    if (!r.IsOk() || r->size() != 1) return std::nullopt;
    return r->front().value;
  }
  double Value(const std::string& name) { return Read(name).value_or(-12345); }
  /// Every job metric from one read (one sample of the job).
  std::map<std::string, double> ReadAll() {
    std::map<std::string, double> out;
    Result<std::vector<internal::MetricReading>> r = cluster_->Metrics().ReadJob(job_->job_id);
    if (r.IsOk()) {
      for (const internal::MetricReading& m : *r) out[m.name] = m.value;
    }
    return out;
  }

  test_support::TempDir checkpoints_{"freshet-job-metrics"};
  std::shared_ptr<const internal::JobGraph> job_;
  std::unique_ptr<internal::MiniCluster> cluster_;
  std::shared_ptr<internal::JobMaster> master_;
};

TEST_F(JobMetricsTest, RestartAndCheckpointFiguresFollowTheJob) {
  Submit();
  // Running, with a completed checkpoint of the keyed sums.
  ASSERT_TRUE(PollUntil([&] { return Value("numberOfCompletedCheckpoints") >= 1 && Value("uptime") > 0; }))
      << "completed " << Value("numberOfCompletedCheckpoints") << ", uptime " << Value("uptime");
  EXPECT_EQ(Value("numRestarts"), 0);
  EXPECT_EQ(Value("fullRestarts"), 0);
  EXPECT_EQ(Value("downtime"), 0);
  EXPECT_GT(Value("lastCheckpointSize"), 0);
  EXPECT_GE(Value("lastCheckpointDuration"), 0);
  EXPECT_GE(Value("numberOfFailedCheckpoints"), 0);
  EXPECT_GE(Value("numberOfInProgressCheckpoints"), 0);
  EXPECT_GE(Value("totalNumberOfCheckpoints"), Value("numberOfCompletedCheckpoints"));
  EXPECT_EQ(Value("lastCheckpointRestoreTimestamp"), -1);  // started from nothing

  // One failure: the job is down for the restart delay, then runs again
  // from its latest checkpoint.
  auto failed_at = std::chrono::steady_clock::now();
  Timestamp failed_wall = Clock::System().NowMillis();
  g_fail_next = true;
  std::map<std::string, double> down;
  ASSERT_TRUE(PollUntil([&] {
    down = ReadAll();
    return down["downtime"] > 0;
  })) << "downtime " << down["downtime"];
  EXPECT_EQ(down["uptime"], 0);
  ASSERT_TRUE(PollUntil([&] { return Value("numRestarts") == 1 && Value("uptime") > 0; }))
      << "restarts " << Value("numRestarts") << ", uptime " << Value("uptime");
  EXPECT_EQ(Value("fullRestarts"), 1);
  EXPECT_EQ(Value("downtime"), 0);
  // Uptime counts from the restart, not from the submission.
  auto since_failure =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - failed_at).count();
  EXPECT_LE(Value("uptime"), static_cast<double>(since_failure));
  double restored = Value("lastCheckpointRestoreTimestamp");
  EXPECT_GE(restored, static_cast<double>(failed_wall));
  EXPECT_LE(restored, static_cast<double>(Clock::System().NowMillis()));
  double completed_before = Value("numberOfCompletedCheckpoints");
  ASSERT_TRUE(PollUntil([&] { return Value("numberOfCompletedCheckpoints") > completed_before; }));
  EXPECT_GT(Value("lastCheckpointSize"), 0);

  // Ended: Flink reports -1 for uptime and downtime of an ended job.
  master_->Cancel();
  master_->Wait(std::nullopt);
  EXPECT_EQ(Value("uptime"), -1);
  EXPECT_EQ(Value("downtime"), -1);
  EXPECT_EQ(Value("numRestarts"), 1);
  // Released: the job's group is gone.
  cluster_->ReleaseJob(job_->job_id);
  EXPECT_FALSE(Read("numRestarts").has_value());
  EXPECT_EQ(cluster_->Metrics().ReadJob(job_->job_id).GetStatus().Code(), StatusCode::kNotFound);
}

TEST_F(JobMetricsTest, JobMetricsAreScrapedWithTheJobScope) {
  Submit();
  ASSERT_TRUE(PollUntil([&] { return Value("uptime") > 0; }));
  bool found = false;
  for (const internal::ScopedMetricReading& r : cluster_->Metrics().ReadAll()) {
    if (r.metric.name != "uptime") continue;
    found = true;
    EXPECT_EQ(r.logical_scope, "jobmanager.job");
    EXPECT_GT(r.metric.value, 0);
    EXPECT_THAT(r.variables, ::testing::Contains(::testing::Pair("job_id", job_->job_id)));
    EXPECT_THAT(r.variables, ::testing::Contains(::testing::Pair("job_name", "restarting job")));
  }
  EXPECT_TRUE(found);
}

TEST(JobMetricsSampleTest, AJobThatHasNotStartedHasNoFigures) {
  auto env = StreamExecutionEnvironment::Create();
  env->FromSequence(1, 10).SinkTo([](const int64_t&) {}, "Discard");
  Result<internal::StreamGraph> graph = internal::BuildStreamGraph(env->Transformations(), env->GetOptions(), "idle");
  ASSERT_TRUE(graph.IsOk());
  auto job = std::make_shared<const internal::JobGraph>(internal::BuildJobGraph(
      std::make_shared<const internal::StreamGraph>(std::move(graph).Value()), internal::NewJobId()));
  internal::TaskExecutor executor("tm", 1, Clock::System());
  internal::JobMaster master(job, executor, Clock::System());
  internal::JobMetricsSample s = internal::SampleJobMetrics(master, Clock::System());
  EXPECT_EQ(s.restarts, 0);
  EXPECT_EQ(s.uptime_ms, 0);
  EXPECT_EQ(s.downtime_ms, 0);
  EXPECT_EQ(s.last_checkpoint_duration_ms, -1);
  EXPECT_EQ(s.last_checkpoint_size, -1);
  EXPECT_EQ(s.completed_checkpoints, 0);
  EXPECT_EQ(s.in_progress_checkpoints, 0);
  EXPECT_EQ(s.last_restore_timestamp_ms, -1);
}

}  // namespace
}  // namespace freshet
