// Jobs over several TaskExecutors whose subtasks exchange data over TCP
// (each executor with its own network stack on loopback): results against
// a sequential computation, the traffic really on the network, and the
// sequence oracle through failures with aligned and unaligned checkpoints.

#include <gtest/gtest.h>

#include <map>

#include "cluster/mini_cluster.h"
#include "freshet/freshet.h"
#include "graph/stream_graph.h"
#include "support/sequence_oracle.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

using test_support::FaultInjector;
using test_support::FixedDelayRestarts;
using test_support::Seq;

std::map<int64_t, int64_t> SequentialSums(int64_t count, int64_t keys) {
  std::map<int64_t, int64_t> sums;
  for (int64_t x = 1; x <= count; ++x) sums[x % keys] += x;
  return sums;
}

TEST(NetworkClusterTest, KeyedSumOverTwoTaskManagersMatchesSequentialRun) {
  constexpr int64_t kCount = 200'000, kKeys = 97;
  Configuration config;
  config.Set("minicluster.number-of-taskmanagers", "2");
  auto env = StreamExecutionEnvironment::Create(config);
  env->SetParallelism(4);
  auto sums = env->FromSequence(1, kCount)
                  .Map([](int64_t x) { return std::pair<int64_t, int64_t>(x % kKeys, x); })
                  .KeyBy([](const std::pair<int64_t, int64_t>& p) { return p.first; })
                  .Sum<1>();
  std::map<int64_t, int64_t> last;
  int64_t updates = 0;
  for (const auto& [key, sum] : sums.ExecuteAndCollect("keyed sum over TCP")) {
    last[key] = std::max(last[key], sum);
    ++updates;
  }
  EXPECT_EQ(updates, kCount);
  EXPECT_EQ(last, SequentialSums(kCount, kKeys));
}

TEST(NetworkClusterTest, BadTaskManagerCountIsRejected) {
  Configuration config;
  config.Set("minicluster.number-of-taskmanagers", "zero");
  auto env = StreamExecutionEnvironment::Create(config);
  env->FromSequence(1, 10).Print();
  auto r = env->Execute("bad");
  ASSERT_FALSE(r.IsOk());
  EXPECT_NE(r.GetStatus().Message().find("minicluster.number-of-taskmanagers"), std::string::npos)
      << r.GetStatus().Message();
}

/// A job graph from an environment's transformations, as Execute() builds it.
std::shared_ptr<const internal::JobGraph> JobOf(StreamExecutionEnvironment& env, const std::string& name) {
  auto graph = internal::BuildStreamGraph(env.Transformations(), env.GetOptions(), name);
  EXPECT_TRUE(graph.IsOk()) << graph.GetStatus().Message();
  return std::make_shared<const internal::JobGraph>(
      internal::BuildJobGraph(std::make_shared<const internal::StreamGraph>(std::move(graph).Value()),
                              internal::NewJobId()));
}

std::atomic<int64_t> g_sink_records{0};

TEST(NetworkClusterTest, RecordsCrossBetweenTaskManagersOverOneConnectionEach) {
  auto cluster = internal::MiniCluster::Create(2, 1, Clock::System());
  ASSERT_TRUE(cluster.IsOk()) << cluster.GetStatus().Message();
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  g_sink_records = 0;
  env->FromSequence(1, 100'000)
      .KeyBy([](int64_t x) { return x; })
      .Map([](int64_t x) { return x; })
      .SinkTo([](const int64_t&) { g_sink_records.fetch_add(1, std::memory_order_relaxed); });
  auto job = JobOf(*env, "cross");
  auto master = (*cluster)->SubmitJob(job);
  ASSERT_TRUE(master.IsOk()) << master.GetStatus().Message();
  auto result = (*master)->Wait(std::nullopt);
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(result->IsOk()) << result->GetStatus().Message();
  EXPECT_EQ(g_sink_records.load(), 100'000);
  for (int i = 0; i < 2; ++i) {
    internal::NetworkStats stats = (*cluster)->Executor(i).Network()->Stats();
    // Each executor's source subtask sends about half its records to the
    // other executor: data went both ways, over one connection each way.
    EXPECT_GT(stats.data_buffers_sent, 0) << "executor " << i;
    EXPECT_GT(stats.data_buffers_received, 0) << "executor " << i;
    EXPECT_EQ(stats.connections_opened, 1) << "executor " << i;
    EXPECT_GE(stats.event_buffers_sent, 1) << "end of partition travels in-band";
  }
  (*cluster)->ReleaseJob(job->job_id);
}

/// Holds the last sequence number per key: any gap or duplicate is a
/// violation of exactly-once state.
class Checker : public KeyedProcessFunction<int64_t, Seq, Seq> {
 public:
  void Open() override { last_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("last", -1)); }
  void ProcessElement(const Seq& s, Context& ctx, Collector<Seq>&) override {
    int64_t last = last_->Value();
    if (s.seq != last + 1) test_support::g_oracle->violations.fetch_add(1);
    if (last < 0) ctx.GetTimerService().RegisterEventTimeTimer(kMaxWatermark);
    last_->Update(s.seq);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<Seq>& out) override {
    out.Collect(Seq{ctx.GetCurrentKey(), last_->Value()});
  }

 private:
  ValueState<int64_t>* last_ = nullptr;
};

class NetworkOracleTest : public ::testing::TestWithParam<bool> {};

TEST_P(NetworkOracleTest, ExactlyOnceThroughFailuresAcrossTaskManagers) {
  constexpr int64_t kKeys = 40, kPerKey = 600;
  constexpr int kParallelism = 2;
  test_support::TempDir dir("freshet-net-oracle");
  test_support::OracleReport report;
  test_support::g_oracle = &report;
  Configuration config;
  config.Set("minicluster.number-of-taskmanagers", "2");
  auto env = StreamExecutionEnvironment::Create(config);
  env->SetParallelism(kParallelism);
  env->EnableCheckpointing(Duration(50));
  env->GetCheckpointConfig().directory = dir.Path();
  env->GetCheckpointConfig().unaligned = GetParam();
  env->SetRestartStrategy(FixedDelayRestarts());
  env->FromGenerator([](int64_t i) { return test_support::SequenceAt(i, kKeys, kPerKey, kParallelism); },
                     kKeys * kPerKey, 20000)
      .Uid("source")
      .Map(FaultInjector(2, 1000, 500, 300))
      .Uid("faults")
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(Checker())
      .Uid("checker")
      .SinkTo(test_support::RecordFinal)
      .Uid("sink");
  auto r = env->Execute("oracle over TCP");
  test_support::g_oracle = nullptr;
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->restarts, 2);
  EXPECT_GT(r->checkpoints_completed, 2);
  EXPECT_EQ(report.violations.load(), 0);
  ASSERT_EQ(static_cast<int64_t>(report.final_seq.size()), kKeys);
  for (const auto& [key, last] : report.final_seq) EXPECT_EQ(last, kPerKey - 1) << "key " << key;
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, NetworkOracleTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Unaligned") : std::string("Aligned");
                         });

}  // namespace
}  // namespace freshet
