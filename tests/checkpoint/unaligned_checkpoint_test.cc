// Unaligned checkpoints end to end: barriers overtake the data queued in
// back-pressured channels, that in-flight data is written with the
// checkpoint and replayed on restore, exactly once; the aligned-checkpoint
// timeout switches a slow alignment to unaligned; checkpoints holding
// in-flight data refuse a restore at another parallelism.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "freshet/freshet.h"
#include "runtime/checkpoint/checkpoint_storage.h"
#include "support/sequence_oracle.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

namespace fs = std::filesystem;

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("freshet-unaligned") {}
};

using test_support::FaultInjector;
using test_support::FixedDelayRestarts;
using test_support::RecordFinal;
using test_support::Seq;
using Report = test_support::OracleReport;
test_support::OracleReport*& g_report = test_support::g_oracle;

/// Holds the last number per key; a gap or a duplicate is a violation.
/// Slow on purpose (a few microseconds per record), so that its input
/// channels fill up and stay full: back-pressure.
class SlowSequenceChecker : public KeyedProcessFunction<int64_t, Seq, Seq> {
 public:
  void Open() override { last_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("last", -1)); }
  void ProcessElement(const Seq& s, Context& ctx, Collector<Seq>&) override {
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(15);
    while (std::chrono::steady_clock::now() < until) {
    }
    int64_t last = last_->Value();
    if (s.seq != last + 1) g_report->violations.fetch_add(1);
    if (last < 0) ctx.GetTimerService().RegisterEventTimeTimer(kMaxWatermark);
    last_->Update(s.seq);
    g_report->processed.fetch_add(1, std::memory_order_relaxed);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<Seq>& out) override {
    out.Collect(Seq{ctx.GetCurrentKey(), last_->Value()});
  }

 private:
  ValueState<int64_t>* last_ = nullptr;
};

constexpr int64_t kKeys = 20;
constexpr int64_t kPerKey = 3000;
constexpr int kParallelism = 2;

Seq SequenceOf(int64_t i) { return test_support::SequenceAt(i, kKeys, kPerKey, kParallelism); }

/// source (unthrottled) -> faults -> keyBy -> slow checker -> sink
void BuildJob(StreamExecutionEnvironment& env, int fail_attempts) {
  env.FromGenerator(SequenceOf, kKeys * kPerKey, -1)
      .Uid("source")
      .Map(FaultInjector(fail_attempts, 300, 0, 200))
      .Uid("faults")
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(SlowSequenceChecker())
      .Uid("checker")
      .SinkTo(RecordFinal)
      .Uid("sink");
}

void Configure(StreamExecutionEnvironment& env, const std::string& dir, int64_t interval_ms, bool unaligned,
               int64_t aligned_timeout_ms = 0) {
  env.SetParallelism(kParallelism);
  // Small buffers: many of them queue up in front of the slow checker.
  env.GetOptions().segment_size = 4096;
  env.EnableCheckpointing(Duration(interval_ms));
  env.GetCheckpointConfig().directory = dir;
  env.GetCheckpointConfig().num_retained = 100;
  env.GetCheckpointConfig().unaligned = unaligned;
  env.GetCheckpointConfig().aligned_checkpoint_timeout_ms = aligned_timeout_ms;
  env.SetRestartStrategy(FixedDelayRestarts());
}

void ExpectComplete(const Report& r) {
  EXPECT_EQ(r.violations.load(), 0);
  ASSERT_EQ(static_cast<int64_t>(r.final_seq.size()), kKeys);
  for (const auto& [key, last] : r.final_seq) EXPECT_EQ(last, kPerKey - 1) << "key " << key;
}

/// Bytes of in-flight data in a completed checkpoint.
int64_t InFlightBytes(const std::string& checkpoint_dir) {
  Result<internal::CheckpointMetadata> md = internal::ReadMetadata(checkpoint_dir);
  if (!md.IsOk()) return -1;
  int64_t bytes = 0;
  for (const internal::OperatorStateHandle& op : md->operators) {
    for (const internal::OperatorSubtaskStateHandle& sub : op.subtasks) {
      for (const auto& [name, list] : sub.operator_state) {
        if (list.mode != internal::OperatorStateMode::kChannel) continue;
        for (const internal::BlockRef& b : list.entries) bytes += static_cast<int64_t>(b.length);
      }
    }
  }
  return bytes;
}

/// The largest in-flight data of any completed checkpoint.
int64_t MaxInFlight(const JobExecutionResult& r) {
  int64_t max = 0;
  for (const CheckpointStats& c : r.checkpoint_history) max = std::max(max, c.in_flight_size);
  return max;
}

/// The median checkpoint duration, printed with the test's output.
void PrintDurations(const JobExecutionResult& r) {
  std::vector<int64_t> ms;
  for (const CheckpointStats& c : r.checkpoint_history) ms.push_back(c.duration.count());
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  std::printf("%zu checkpoints: median duration %lld ms, max %lld ms; largest in-flight data %lld bytes\n", ms.size(),
              static_cast<long long>(ms[ms.size() / 2]), static_cast<long long>(ms.back()),
              static_cast<long long>(MaxInFlight(r)));
}

TEST(UnalignedCheckpointTest, ExactlyOnceUnderBackPressureAndFailures) {
  TempDir dir;
  Report report;
  g_report = &report;
  auto env = StreamExecutionEnvironment::Create();
  Configure(*env, dir.Path(), 30, /*unaligned=*/true);
  BuildJob(*env, /*fail_attempts=*/2);
  Result<JobExecutionResult> r = env->Execute("unaligned oracle");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->restarts, 2);
  EXPECT_GT(r->checkpoints_completed, 2);
  ExpectComplete(report);
  bool from_checkpoint = false;
  for (const std::string& e : r->recovery_events) from_checkpoint |= e.find("from checkpoint") != std::string::npos;
  EXPECT_TRUE(from_checkpoint) << ::testing::PrintToString(r->recovery_events);
  PrintDurations(*r);
  EXPECT_GT(MaxInFlight(*r), 0) << "no checkpoint caught data in flight: the test does not exercise unaligned "
                                   "checkpoints";
}

/// Runs the job until a completed checkpoint holds in-flight data, cancels
/// it and returns that checkpoint.
std::string CheckpointWithInFlightData(const std::string& base) {
  Report report;
  g_report = &report;
  auto env = StreamExecutionEnvironment::Create();
  Configure(*env, base, 40, /*unaligned=*/true);
  BuildJob(*env, 0);
  auto client = env->ExecuteAsync("unaligned, cancelled");
  EXPECT_TRUE(client.IsOk()) << client.GetStatus().ToString();
  if (!client.IsOk()) return "";
  std::string found;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (found.empty() && std::chrono::steady_clock::now() < deadline) {
    for (const std::string& c : (*client)->CompletedCheckpoints()) {
      if (InFlightBytes(c) > 0) {
        found = c;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  (*client)->Cancel();
  (void)(*client)->Wait();
  EXPECT_LT(report.processed.load(), kKeys * kPerKey) << "the job ended before it was cancelled";
  return found;
}

TEST(UnalignedCheckpointTest, ResumeReplaysInFlightDataExactlyOnce) {
  TempDir dir;
  std::string checkpoint = CheckpointWithInFlightData(dir.Path() + "/checkpoints");
  ASSERT_FALSE(checkpoint.empty()) << "no checkpoint held in-flight data";
  ASSERT_TRUE(fs::exists(fs::path(checkpoint) / "_metadata"));

  // At another parallelism the channels do not exist any more: refused,
  // naming the reason.
  {
    Report report;
    g_report = &report;
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(3);
    RestoreOptions restore;
    restore.path = checkpoint;
    env->SetStateRestore(restore);
    BuildJob(*env, 0);
    Result<JobExecutionResult> r = env->Execute("unaligned, rescaled");
    ASSERT_FALSE(r.IsOk());
    EXPECT_EQ(r.GetStatus().Code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.GetStatus().Message().find("in-flight data"), std::string::npos) << r.GetStatus().ToString();
  }

  Report report;
  g_report = &report;
  auto env = StreamExecutionEnvironment::Create();
  Configure(*env, dir.Path() + "/resumed", 1000, /*unaligned=*/true);
  RestoreOptions restore;
  restore.path = checkpoint;
  env->SetStateRestore(restore);
  BuildJob(*env, 0);
  Result<JobExecutionResult> r = env->Execute("unaligned, resumed");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  // The checker resumed from its state and saw every later number once:
  // the in-flight records were replayed, none lost and none twice.
  ExpectComplete(report);
}

TEST(UnalignedCheckpointTest, AlignedCheckpointTimeoutSwitchesToUnaligned) {
  // A timeout far below the time the barriers need to pass the queued
  // buffers: the checkpoints become unaligned and catch in-flight data.
  TempDir dir;
  Report report;
  g_report = &report;
  auto env = StreamExecutionEnvironment::Create();
  Configure(*env, dir.Path(), 30, /*unaligned=*/true, /*aligned_timeout_ms=*/2);
  BuildJob(*env, 1);
  Result<JobExecutionResult> r = env->Execute("aligned timeout");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_GT(r->checkpoints_completed, 2);
  ExpectComplete(report);
  PrintDurations(*r);
  EXPECT_GT(MaxInFlight(*r), 0);
}

TEST(UnalignedCheckpointTest, LongAlignedTimeoutKeepsCheckpointsAligned) {
  TempDir dir;
  Report report;
  g_report = &report;
  auto env = StreamExecutionEnvironment::Create();
  Configure(*env, dir.Path(), 30, /*unaligned=*/true, /*aligned_timeout_ms=*/600000);
  BuildJob(*env, 0);
  Result<JobExecutionResult> r = env->Execute("aligned, long timeout");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_GT(r->checkpoints_completed, 0);
  ExpectComplete(report);
  PrintDurations(*r);
  EXPECT_EQ(MaxInFlight(*r), 0);
}

TEST(UnalignedCheckpointTest, OptionsThatCannotWorkAreRefused) {
  TempDir dir;
  Report report;
  g_report = &report;
  {
    auto env = StreamExecutionEnvironment::Create();
    Configure(*env, dir.Path(), 30, /*unaligned=*/true);
    env->GetCheckpointConfig().max_concurrent = 2;
    BuildJob(*env, 0);
    Result<JobExecutionResult> r = env->Execute("concurrent");
    ASSERT_FALSE(r.IsOk());
    EXPECT_NE(r.GetStatus().Message().find("max-concurrent-checkpoints"), std::string::npos)
        << r.GetStatus().ToString();
  }
  {
    auto env = StreamExecutionEnvironment::Create();
    Configure(*env, dir.Path(), 30, /*unaligned=*/true);
    env->GetCheckpointConfig().mode = CheckpointingMode::kAtLeastOnce;
    BuildJob(*env, 0);
    Result<JobExecutionResult> r = env->Execute("at least once");
    ASSERT_FALSE(r.IsOk());
    EXPECT_NE(r.GetStatus().Message().find("EXACTLY_ONCE"), std::string::npos) << r.GetStatus().ToString();
  }
}

}  // namespace
}  // namespace freshet
