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

#include "support/temp_dir.h"

namespace freshet {
namespace {

struct Seq {
  int64_t key;
  int64_t seq;
};

struct Report {
  std::mutex mu;
  std::map<int64_t, int64_t> final_seq;
  std::map<int64_t, std::string> final_summary;
  std::atomic<int64_t> violations{0};
};
Report* g_report = nullptr;

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

// Fails its subtask once per attempt below `attempts`.
class FaultInjector : public RichMapFunction<Seq, Seq> {
 public:
  explicit FaultInjector(int attempts) : attempts_(attempts) {}
  void Open() override {
    auto& rc = GetRuntimeContext();
    fail_at_ = rc.GetAttemptNumber() < attempts_
                   ? 1000 + 500 * rc.GetAttemptNumber() + 300 * rc.GetIndexOfThisSubtask()
                   : -1;
  }
  Seq Map(const Seq& s) override {
    if (++seen_ == fail_at_) throw std::runtime_error("injected failure");
    return s;
  }

 private:
  int attempts_;
  int64_t fail_at_ = -1;
  int64_t seen_ = 0;
};

void RecordFinal(const Seq& s) {
  std::lock_guard lock(g_report->mu);
  g_report->final_seq[s.key] = s.seq;
}

constexpr int64_t kKeys = 40;
constexpr int64_t kPerKey = 600;
constexpr int kParallelism = 2;

// Each source subtask owns kKeys / kParallelism keys and emits their
// numbers in order, round-robin.
Seq SequenceAt(int64_t i) {
  constexpr int64_t kKeysPerSubtask = kKeys / kParallelism;
  constexpr int64_t kRange = kKeysPerSubtask * kPerKey;
  int64_t subtask = i / kRange, j = i % kRange;
  return Seq{subtask * kKeysPerSubtask + j % kKeysPerSubtask, j / kKeysPerSubtask};
}

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
  RestartStrategyOptions restart;
  restart.kind = RestartStrategyOptions::Kind::kFixedDelay;
  restart.fixed_delay_attempts = 10;
  restart.fixed_delay_ms = 20;
  env->SetRestartStrategy(restart);
  env->FromGenerator(SequenceAt, kKeys * kPerKey, 20000)
      .Uid("source")
      .Map(FaultInjector(failures))
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
