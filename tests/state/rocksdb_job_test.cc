// Whole jobs on the RocksDB keyed-state backend, chosen by configuration:
// results match a sequential computation, checkpoints and recoveries keep
// state exactly once, and the instances' directories are gone afterwards.
#include <freshet/freshet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "support/sequence_oracle.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

using test_support::FaultInjector;
using test_support::FixedDelayRestarts;
using test_support::RecordFinal;
using test_support::Seq;
using Report = test_support::OracleReport;
test_support::OracleReport*& g_report = test_support::g_oracle;

// Keeps every state kind per key on the backend the job is configured
// with; any gap or duplicate in a key's sequence is a violation. Emits the
// last number when event time ends.
class Checker : public KeyedProcessFunction<int64_t, Seq, Seq> {
 public:
  void Open() override {
    auto& rc = GetRuntimeContext();
    last_ = &rc.GetState(ValueStateDescriptor<int64_t>("last", -1));
    recent_ = &rc.GetListState(ListStateDescriptor<int64_t>("recent"));
    by_residue_ = &rc.GetMapState(MapStateDescriptor<int64_t, int64_t>("by_residue"));
    sum_ = &rc.GetReducingState(ReducingStateDescriptor<int64_t>("sum", [](int64_t a, int64_t b) { return a + b; }));
  }
  void ProcessElement(const Seq& s, Context& ctx, Collector<Seq>&) override {
    int64_t last = last_->Value();
    if (s.seq != last + 1) g_report->violations.fetch_add(1);
    if (last < 0) ctx.GetTimerService().RegisterEventTimeTimer(kMaxWatermark);
    last_->Update(s.seq);
    if (s.seq % 50 == 0) recent_->Clear();
    recent_->Add(s.seq);
    by_residue_->Put(s.seq % 7, by_residue_->Get(s.seq % 7).value_or(0) + 1);
    sum_->Add(s.seq);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<Seq>& out) override {
    int64_t counted = 0;
    by_residue_->ForEach([&](const int64_t&, const int64_t& n) { counted += n; });
    std::string summary = std::to_string(recent_->Get().size()) + "/" + std::to_string(counted) + "/" +
                          std::to_string(sum_->Get().value_or(-1));
    {
      std::lock_guard lock(g_report->mu);
      g_report->final_summary[ctx.GetCurrentKey()] = summary;
    }
    // The sink is chained: it takes the report's mutex itself.
    out.Collect(Seq{ctx.GetCurrentKey(), last_->Value()});
  }

 private:
  ValueState<int64_t>* last_ = nullptr;
  ListState<int64_t>* recent_ = nullptr;
  MapState<int64_t, int64_t>* by_residue_ = nullptr;
  ReducingState<int64_t>* sum_ = nullptr;
};

constexpr int64_t kKeys = 40;
constexpr int64_t kPerKey = 600;
constexpr int kParallelism = 2;

Seq SequenceAt(int64_t i) { return test_support::SequenceAt(i, kKeys, kPerKey, kParallelism); }

std::string ExpectedSummary() {
  int64_t sum = kPerKey * (kPerKey - 1) / 2;
  int64_t recent = (kPerKey - 1) % 50 + 1;
  return std::to_string(recent) + "/" + std::to_string(kPerKey) + "/" + std::to_string(sum);
}

Result<JobExecutionResult> RunOracle(const std::string& local_dir, const std::string& checkpoints, int failures) {
  Configuration config;
  config.Set("state.backend.type", "rocksdb");
  config.Set("state.backend.rocksdb.localdir", local_dir);
  auto env = StreamExecutionEnvironment::Create(config);
  env->SetParallelism(kParallelism);
  env->EnableCheckpointing(Duration(50));
  env->GetCheckpointConfig().directory = checkpoints;
  env->SetRestartStrategy(FixedDelayRestarts());
  env->FromGenerator(SequenceAt, kKeys * kPerKey, 20000)
      .Uid("source")
      .Map(FaultInjector(failures, 1000, 500, 300))
      .Uid("faults")
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(Checker())
      .Uid("checker")
      .SinkTo(RecordFinal)
      .Uid("sink");
  return env->Execute("rocksdb oracle");
}

TEST(RocksDBJobTest, SequenceOracleSurvivesFailuresOnRocksDB) {
  test_support::TempDir local("freshet-rocks-local");
  test_support::TempDir checkpoints("freshet-rocks-ckpt");
  Report report;
  g_report = &report;
  Result<JobExecutionResult> r = RunOracle(local.Path(), checkpoints.Path(), 2);
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->restarts, 2);
  // At least the final checkpoint (restores from checkpoints are asserted
  // by the recovery suite, which runs on both backends; here the timing of
  // failures against checkpoints varies, e.g. under ThreadSanitizer).
  EXPECT_GE(r->checkpoints_completed, 1);
  EXPECT_EQ(report.violations.load(), 0);
  ASSERT_EQ(static_cast<int64_t>(report.final_seq.size()), kKeys);
  for (const auto& [key, last] : report.final_seq) EXPECT_EQ(last, kPerKey - 1) << "key " << key;
  for (const auto& [key, summary] : report.final_summary) EXPECT_EQ(summary, ExpectedSummary()) << "key " << key;
  // Every operator instance's RocksDB directory is gone.
  EXPECT_TRUE(std::filesystem::is_empty(local.Path()));
}

TEST(RocksDBJobTest, UnusableLocalDirectoryFailsTheJobWithTheReason) {
  test_support::TempDir dir("freshet-rocks-bad");
  std::string blocked = dir.Sub("file");
  { std::FILE* f = std::fopen(blocked.c_str(), "w"); std::fclose(f); }
  Configuration config;
  config.Set("state.backend.type", "rocksdb");
  config.Set("state.backend.rocksdb.localdir", blocked + "/below");
  auto env = StreamExecutionEnvironment::Create(config);
  Report report;
  g_report = &report;
  env->FromGenerator(SequenceAt, 100)
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(Checker())
      .SinkTo(RecordFinal);
  Result<JobExecutionResult> r = env->Execute("bad local dir");
  ASSERT_FALSE(r.IsOk());
  EXPECT_NE(r.GetStatus().Message().find(blocked), std::string::npos) << r.GetStatus().ToString();
}

}  // namespace
}  // namespace freshet
