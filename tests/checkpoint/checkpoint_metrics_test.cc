// What tasks measure while they take their part of a checkpoint: start
// delay, alignment (time and bytes processed meanwhile), the synchronous
// and the asynchronous part. Each test builds a job whose timing it
// controls and checks the figures the checkpoints report.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "freshet/freshet.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("freshet-checkpoint-metrics") {}
};

std::unique_ptr<StreamExecutionEnvironment> Environment(const TempDir& dir, int64_t interval_ms) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  env->EnableCheckpointing(Duration(interval_ms), CheckpointingMode::kExactlyOnce);
  env->GetCheckpointConfig().directory = dir.Sub("checkpoints");
  return env;
}

/// One record per poll, each after `pause`: the task thread is busy in
/// PollNext, so a checkpoint's trigger waits until the poll returns.
class PausingSource final : public Source<int64_t> {
 public:
  PausingSource(int64_t records, Duration pause) : records_(records), pause_(pause) {}
  Boundedness GetBoundedness() const override { return Boundedness::kBounded; }
  std::unique_ptr<SourceReader<int64_t>> CreateReader(SourceReaderContext&) const override {
    return std::make_unique<Reader>(records_, pause_);
  }

 private:
  class Reader final : public SourceReader<int64_t> {
   public:
    Reader(int64_t records, Duration pause) : left_(records), pause_(pause) {}
    Result<InputStatus> PollNext(ReaderOutput<int64_t>& out) override {
      if (left_ == 0) return InputStatus::kEndOfInput;
      std::this_thread::sleep_for(pause_);
      out.Collect(-left_--);
      return InputStatus::kMoreAvailable;
    }
    Result<std::vector<std::string>> SnapshotState(CheckpointId) override {
      return std::vector<std::string>{std::to_string(left_)};
    }

   private:
    int64_t left_;
    Duration pause_;
  };
  int64_t records_;
  Duration pause_;
};

TEST(CheckpointMetricsTest, AlignmentWaitsForTheBarrierOfTheSlowestInput) {
  TempDir dir;
  auto env = Environment(dir, 100);
  // The paused source sees each trigger up to 250 ms late; the task after
  // the union has the other input's barrier by then, and aligns meanwhile.
  DataStream<int64_t> fast = env->FromGenerator([](int64_t i) { return i; }, 4000, 2000);
  DataStream<int64_t> slow = env->FromSource(PausingSource(8, Duration(250)), "Paused Source");
  std::atomic<int64_t> seen{0};
  fast.Union(slow).Map([](const int64_t& v) { return v; }).SinkTo([&seen](const int64_t&) { seen.fetch_add(1); });
  Result<JobExecutionResult> r = env->Execute("alignment");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(seen.load(), 4008);
  ASSERT_GE(r->checkpoint_history.size(), 3u) << "the job runs 2 s with a 100 ms interval";

  // A trigger lands at a random point of a 250 ms pause: over the
  // checkpoints, some wait far longer than 30 ms for it.
  Duration max_alignment{0}, max_delay{0};
  int64_t processed = 0;
  for (const CheckpointStats& c : r->checkpoint_history) {
    max_alignment = std::max(max_alignment, c.max_alignment);
    max_delay = std::max(max_delay, c.max_start_delay);
    processed += c.processed_bytes;
    // Neither can exceed the checkpoint itself.
    EXPECT_LE(c.max_alignment, c.duration) << "checkpoint " << c.id;
    EXPECT_LE(c.max_start_delay, c.duration + Duration(5)) << "checkpoint " << c.id;
  }
  EXPECT_GE(max_alignment, Duration(30));
  EXPECT_GE(max_delay, Duration(30));
  // The paused source's record before its barrier reaches the union's task
  // while that one aligns.
  EXPECT_GT(processed, 0);
}

/// Sleeps in its synchronous snapshot hook.
class SlowSnapshotMap : public RichMapFunction<int64_t, int64_t>, public CheckpointedFunction {
 public:
  void InitializeState(FunctionInitializationContext&) override {}
  void SnapshotState(const FunctionSnapshotContext&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  int64_t Map(const int64_t& v) override { return v; }
};

TEST(CheckpointMetricsTest, SynchronousPartIncludesTheOperatorsSnapshotHooks) {
  TempDir dir;
  auto env = Environment(dir, 100);
  env->FromGenerator([](int64_t i) { return i; }, 3000, 3000)
      .Map(SlowSnapshotMap())
      .SinkTo([](const int64_t&) {});
  Result<JobExecutionResult> r = env->Execute("sync part");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ASSERT_GE(r->checkpoint_history.size(), 2u);
  for (const CheckpointStats& c : r->checkpoint_history) {
    EXPECT_GE(c.max_sync, Duration(40)) << "checkpoint " << c.id;
    EXPECT_LE(c.max_sync, c.duration) << "checkpoint " << c.id;
  }
}

/// Holds a value of 1 KiB per key: megabytes of keyed state, written in
/// the asynchronous part.
class LargeState : public KeyedProcessFunction<int64_t, int64_t, int64_t> {
 public:
  void Open() override { value_ = &GetRuntimeContext().GetState(ValueStateDescriptor<std::string>("v", "")); }
  void ProcessElement(const int64_t& v, Context&, Collector<int64_t>&) override {
    value_->Update(std::string(1024, static_cast<char>('a' + v % 26)));
  }

 private:
  ValueState<std::string>* value_ = nullptr;
};

TEST(CheckpointMetricsTest, AsynchronousPartCoversWritingTheState) {
  TempDir dir;
  auto env = Environment(dir, 150);
  env->FromGenerator([](int64_t i) { return i; }, 60000, 40000)
      .KeyBy([](const int64_t& v) { return v; })
      .Process(LargeState())
      .SinkTo([](const int64_t&) {});
  Result<JobExecutionResult> r = env->Execute("async part");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ASSERT_FALSE(r->checkpoint_history.empty());
  // The last checkpoints hold up to 60 MiB: serialising, checksumming and
  // syncing that takes milliseconds, and happens after the synchronous part.
  const CheckpointStats& last = r->checkpoint_history.back();
  EXPECT_GT(last.state_size, 25 << 20);
  EXPECT_GE(last.max_async, Duration(5)) << "state of " << last.state_size << " bytes";
  for (const CheckpointStats& c : r->checkpoint_history) {
    EXPECT_LE(c.max_async, c.duration + Duration(1)) << "checkpoint " << c.id;
  }
}

}  // namespace
}  // namespace freshet
