// Event time: watermark strategies and idleness, keyed timers, side
// outputs, and whole jobs on the embedded cluster (watermark alignment over
// channels, idle sources, out-of-order input, window joins, co-group and
// interval joins against brute-force oracles).

#include <freshet/freshet.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace freshet {
namespace {

struct Event {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t value = 0;
  bool operator==(const Event&) const = default;
  auto operator<=>(const Event&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{k" << e.key << " @" << e.ts << " v" << e.value << "}";
}

Event Ev(int64_t key, int64_t ts, int64_t value = 0) { return Event{key, ts, value}; }

using Harness = testing::OneInputOperatorHarness<Event, Event>;

DataStream<Event> Assigned(StreamExecutionEnvironment& env, WatermarkStrategy<Event> strategy) {
  return env.FromElements<Event>({}).AssignTimestampsAndWatermarks(
      strategy.WithTimestampAssigner([](const Event& e) { return e.ts; }));
}

// ---- watermark strategies -------------------------------------------------------

TEST(WatermarkStrategyTest, MonotonousTimestampsEmitPeriodicallyAndOnlyWhenAdvancing) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForMonotonousTimestamps()));
  h.Open();
  h.SetProcessingTime(200);  // nothing seen yet: no watermark
  EXPECT_TRUE(h.Watermarks().empty());
  h.ProcessElement(Ev(1, 10));
  h.ProcessElement(Ev(1, 20));
  EXPECT_TRUE(h.Watermarks().empty()) << "periodic generators emit only on the interval";
  h.SetProcessingTime(399);
  EXPECT_TRUE(h.Watermarks().empty());
  h.SetProcessingTime(400);
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{19});
  h.SetProcessingTime(600);  // no progress: not emitted again
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{19});
  h.ProcessElement(Ev(1, 35));
  h.SetProcessingTime(800);
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{19, 34}));
  // Records carry the assigned timestamps.
  EXPECT_EQ(h.Output(), (std::vector<std::pair<Event, Timestamp>>{{Ev(1, 10), 10}, {Ev(1, 20), 20}, {Ev(1, 35), 35}}));
}

TEST(WatermarkStrategyTest, BoundedOutOfOrdernessIsMaxMinusDelayMinusOne) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForBoundedOutOfOrderness(Duration(3))));
  h.Open();
  Timestamp now = 0;
  auto tick = [&] { h.SetProcessingTime(now += 200); };
  for (Timestamp ts : {7, 11, 16}) h.ProcessElement(Ev(1, ts));
  tick();
  h.ProcessElement(Ev(1, 24));
  tick();
  h.ProcessElement(Ev(1, 19));  // out of order: the watermark does not go back
  tick();
  h.ProcessElement(Ev(1, 30));
  tick();
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{12, 20, 26}));
}

TEST(WatermarkStrategyTest, AutoWatermarkIntervalComesFromTheOptions) {
  auto env = StreamExecutionEnvironment::Create();
  env->GetOptions().auto_watermark_interval_ms = 50;
  // The harness uses the operator defaults (200 ms); the option reaches jobs.
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForMonotonousTimestamps()));
  h.Open();
  h.ProcessElement(Ev(1, 5));
  h.SetProcessingTime(199);
  EXPECT_TRUE(h.Watermarks().empty());
  h.SetProcessingTime(200);
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{4});
}

TEST(WatermarkStrategyTest, EndOfInputEmitsTheLastPeriodicWatermark) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForBoundedOutOfOrderness(Duration(10))));
  h.Open();
  h.ProcessElement(Ev(1, 100));
  h.EndInput();
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{89});
  h.ProcessWatermark(kMaxWatermark);  // the end of a bounded input passes through
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{89, kMaxWatermark}));
}

TEST(WatermarkStrategyTest, UpstreamWatermarksAndStatusesAreReplaced) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForMonotonousTimestamps()));
  h.Open();
  h.ProcessWatermark(500);
  h.ProcessWatermarkStatus(true);
  EXPECT_TRUE(h.Watermarks().empty());
  EXPECT_TRUE(h.WatermarkStatuses().empty());
}

/// Emits a watermark at every record whose value is negative (a marker).
class PunctuatedGenerator final : public WatermarkGenerator<Event> {
 public:
  void OnEvent(const Event& e, Timestamp ts, WatermarkOutput& out) override {
    if (e.value < 0) out.EmitWatermark(ts);
  }
  void OnPeriodicEmit(WatermarkOutput&) override {}
};

TEST(WatermarkStrategyTest, PunctuatedGeneratorEmitsOnMarkers) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForGenerator([] { return std::make_unique<PunctuatedGenerator>(); })));
  h.Open();
  h.ProcessElement(Ev(1, 5, 1));
  EXPECT_TRUE(h.Watermarks().empty());
  h.ProcessElement(Ev(1, 7, -1));
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{7});
  h.ProcessElement(Ev(1, 6, -1));  // behind the last watermark: dropped
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{7});
  h.SetProcessingTime(1000);
  h.ProcessElement(Ev(1, 30, -1));
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{7, 30}));
}

/// Emits 100, 200, ... on successive periodic calls, ignoring records.
class CountingPeriodicGenerator final : public WatermarkGenerator<Event> {
 public:
  void OnEvent(const Event&, Timestamp, WatermarkOutput&) override {}
  void OnPeriodicEmit(WatermarkOutput& out) override { out.EmitWatermark(100 * ++calls_); }

 private:
  int64_t calls_ = 0;
};

TEST(WatermarkStrategyTest, CustomPeriodicGeneratorRunsOnProcessingTime) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env,
                     WatermarkStrategy<Event>::ForGenerator([] { return std::make_unique<CountingPeriodicGenerator>(); })));
  h.Open();
  h.SetProcessingTime(200);
  h.SetProcessingTime(400);
  h.SetProcessingTime(500);
  h.SetProcessingTime(600);
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{100, 200, 300}));
}

TEST(WatermarkStrategyTest, TimestampAssignerSeesPreviousTimestamp) {
  auto env = StreamExecutionEnvironment::Create();
  auto stream = env->FromElements<Event>({}).AssignTimestampsAndWatermarks(
      WatermarkStrategy<Event>::NoWatermarks().WithTimestampAssigner(
          [](const Event& e, Timestamp previous) { return previous == kNoTimestamp ? e.ts : previous + e.value; }));
  Harness h(stream);
  h.Open();
  h.ProcessElement(Ev(1, 10, 0));
  h.ProcessElement(Ev(1, 0, 5), 100);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<Event, Timestamp>>{{Ev(1, 10, 0), 10}, {Ev(1, 0, 5), 105}}));
}

TEST(WatermarkStrategyTest, NoWatermarksAssignsTimestampsOnly) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::NoWatermarks()));
  h.Open();
  h.ProcessElement(Ev(1, 10));
  h.SetProcessingTime(10000);
  h.EndInput();
  EXPECT_TRUE(h.Watermarks().empty());
  EXPECT_EQ(h.Output().at(0).second, 10);
}

TEST(WatermarkStrategyTest, WithoutAssignerKeepsRecordTimestamps) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(env->FromElements<Event>({}).AssignTimestampsAndWatermarks(
      WatermarkStrategy<Event>::ForMonotonousTimestamps()));
  h.Open();
  h.ProcessElement(Ev(1, 0), 42);
  h.SetProcessingTime(200);
  EXPECT_EQ(h.Output().at(0).second, 42);
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{41});
}

TEST(WatermarkStrategyTest, IdlenessMarksIdleAfterTimeoutAndActiveOnNextRecord) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForMonotonousTimestamps().WithIdleness(Duration(500))));
  h.Open();
  h.ProcessElement(Ev(1, 10));  // processing time 0
  h.SetProcessingTime(200);
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{9});
  h.SetProcessingTime(400);
  EXPECT_TRUE(h.WatermarkStatuses().empty());
  h.SetProcessingTime(600);  // 600 ms without records
  EXPECT_EQ(h.WatermarkStatuses(), std::vector<bool>{true});
  h.SetProcessingTime(800);
  h.SetProcessingTime(1000);
  EXPECT_EQ(h.WatermarkStatuses(), std::vector<bool>{true}) << "idle is reported once";
  h.SetProcessingTime(1100);
  h.ProcessElement(Ev(1, 50));
  EXPECT_EQ(h.WatermarkStatuses(), (std::vector<bool>{true, false}));
  h.SetProcessingTime(1200);
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{9, 49}));
  h.SetProcessingTime(1400);
  EXPECT_EQ(h.WatermarkStatuses(), (std::vector<bool>{true, false}));
  h.SetProcessingTime(1600);  // 500 ms after the last record
  EXPECT_EQ(h.WatermarkStatuses(), (std::vector<bool>{true, false, true}));
}

TEST(WatermarkStrategyTest, IdlenessWithoutAnyRecord) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(Assigned(*env, WatermarkStrategy<Event>::ForMonotonousTimestamps().WithIdleness(Duration(300))));
  h.Open();
  h.SetProcessingTime(200);  // the idleness clock starts here
  h.SetProcessingTime(400);
  EXPECT_TRUE(h.WatermarkStatuses().empty());
  h.SetProcessingTime(600);
  EXPECT_EQ(h.WatermarkStatuses(), std::vector<bool>{true});
  EXPECT_TRUE(h.Watermarks().empty());
}

TEST(WatermarkStrategyTest, WatermarksPassThroughDownstreamOperators) {
  auto env = StreamExecutionEnvironment::Create();
  auto mapped = env->FromElements<Event>({}).Map([](const Event& e) { return Ev(e.key, e.ts, e.value + 1); });
  Harness h(mapped);
  h.Open();
  h.ProcessWatermark(5);
  h.ProcessWatermarkStatus(true);
  h.ProcessWatermarkStatus(false);
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{5});
  EXPECT_EQ(h.WatermarkStatuses(), (std::vector<bool>{true, false}));
}

// ---- keyed process functions and timers ---------------------------------------------

struct Fired {
  int64_t key = 0;
  Timestamp time = 0;
  bool event_time = true;
  Timestamp watermark = 0;
  bool operator==(const Fired&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Fired& f) {
  return os << "{k" << f.key << " t" << f.time << (f.event_time ? " event" : " processing") << " wm" << f.watermark
            << "}";
}

/// value > 0: register an event-time timer at ts + value; value < 0: delete
/// the event-time timer at ts - value; value == 0: a processing-time timer
/// at ts. OnTimer reports key, time, domain and watermark.
class TimerFunction : public KeyedProcessFunction<int64_t, Event, Fired> {
 public:
  void ProcessElement(const Event& e, Context& ctx, Collector<Fired>&) override {
    if (e.value > 0) {
      ctx.GetTimerService().RegisterEventTimeTimer(e.ts + e.value);
    } else if (e.value < 0) {
      ctx.GetTimerService().DeleteEventTimeTimer(e.ts - e.value);
    } else {
      ctx.GetTimerService().RegisterProcessingTimeTimer(e.ts);
    }
  }
  void OnTimer(Timestamp t, OnTimerContext& ctx, Collector<Fired>& out) override {
    EXPECT_EQ(ctx.GetTimestamp(), t);
    out.Collect({ctx.GetCurrentKey(), t, ctx.GetTimeDomain() == TimeDomain::kEventTime,
                 ctx.GetTimerService().CurrentWatermark()});
  }
};

using TimerHarness = testing::OneInputOperatorHarness<Event, Fired>;

DataStream<Fired> Timers(StreamExecutionEnvironment& env) {
  return env.FromElements<Event>({}).KeyBy([](const Event& e) { return e.key; }).Process(TimerFunction{});
}

TEST(KeyedTimerTest, EventTimeTimersFireInTimestampOrderAcrossKeys) {
  auto env = StreamExecutionEnvironment::Create();
  TimerHarness h(Timers(*env));
  h.Open();
  h.ProcessElement(Ev(1, 0, 30), 0);
  h.ProcessElement(Ev(1, 0, 10), 0);
  h.ProcessElement(Ev(2, 0, 15), 0);
  h.ProcessElement(Ev(1, 0, 20), 0);
  h.ProcessWatermark(9);
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(100);
  std::vector<Fired> expected = {{1, 10, true, 100}, {2, 15, true, 100}, {1, 20, true, 100}, {1, 30, true, 100}};
  EXPECT_EQ(h.OutputValues(), expected);
  // Timer output carries the timer's timestamp; the watermark follows the timers.
  EXPECT_EQ(h.Output()[1].second, 15);
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{9, 100}));
}

TEST(KeyedTimerTest, TimerFiresOncePerKeyAndTimestamp) {
  auto env = StreamExecutionEnvironment::Create();
  TimerHarness h(Timers(*env));
  h.Open();
  for (int i = 0; i < 3; ++i) h.ProcessElement(Ev(1, 5, 5), 5);
  h.ProcessElement(Ev(2, 5, 5), 5);
  h.ProcessElement(Ev(1, 0, 10), 0);  // the same time 10 from another record
  h.ProcessWatermark(10);
  ASSERT_EQ(h.Output().size(), 2u);
  std::set<int64_t> keys = {h.OutputValues()[0].key, h.OutputValues()[1].key};
  EXPECT_EQ(keys, (std::set<int64_t>{1, 2}));
}

TEST(KeyedTimerTest, DeletedTimerDoesNotFire) {
  auto env = StreamExecutionEnvironment::Create();
  TimerHarness h(Timers(*env));
  h.Open();
  h.ProcessElement(Ev(1, 0, 10), 0);
  h.ProcessElement(Ev(1, 0, 20), 0);
  h.ProcessElement(Ev(2, 0, 10), 0);
  h.ProcessElement(Ev(1, 0, -10), 0);  // deletes key 1's timer at 10 only
  h.ProcessElement(Ev(1, 0, -99), 0);  // deleting a timer never set is harmless
  h.ProcessWatermark(50);
  EXPECT_EQ(h.OutputValues(), (std::vector<Fired>{{2, 10, true, 50}, {1, 20, true, 50}}));
}

TEST(KeyedTimerTest, TimerAtOrBeforeWatermarkFiresOnNextWatermark) {
  auto env = StreamExecutionEnvironment::Create();
  TimerHarness h(Timers(*env));
  h.Open();
  h.ProcessWatermark(100);
  h.ProcessElement(Ev(1, 50, 1), 50);  // timer at 51, already passed
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(101);
  EXPECT_EQ(h.OutputValues(), (std::vector<Fired>{{1, 51, true, 101}}));
}

TEST(KeyedTimerTest, ProcessingTimeTimersFireOnProcessingTime) {
  auto env = StreamExecutionEnvironment::Create();
  TimerHarness h(Timers(*env));
  h.Open();
  h.ProcessElement(Ev(1, 300, 0), 1);
  h.ProcessElement(Ev(2, 100, 0), 1);
  h.ProcessElement(Ev(2, 100, 0), 1);  // duplicate
  h.ProcessWatermark(kMaxWatermark - 1);  // watermarks do not fire processing-time timers
  EXPECT_TRUE(h.Output().empty());
  h.SetProcessingTime(99);
  EXPECT_TRUE(h.Output().empty());
  h.SetProcessingTime(250);
  ASSERT_EQ(h.Output().size(), 1u);
  EXPECT_EQ(h.Output()[0].first.key, 2);
  EXPECT_FALSE(h.Output()[0].first.event_time);
  EXPECT_EQ(h.Output()[0].second, kNoTimestamp) << "processing-time timer output has no timestamp";
  h.ProcessElement(Ev(3, 200, 0), 1);  // already due
  h.SetProcessingTime(1000);
  std::vector<int64_t> keys;
  for (const Fired& f : h.OutputValues()) keys.push_back(f.key);
  EXPECT_EQ(keys, (std::vector<int64_t>{2, 3, 1}));
}

/// Re-registers a timer from OnTimer: a chain every 10 ms until 50.
class ChainedTimers : public KeyedProcessFunction<int64_t, Event, Timestamp> {
 public:
  void ProcessElement(const Event& e, Context& ctx, Collector<Timestamp>&) override {
    ctx.GetTimerService().RegisterEventTimeTimer(e.ts);
  }
  void OnTimer(Timestamp t, OnTimerContext& ctx, Collector<Timestamp>& out) override {
    out.Collect(t);
    if (t < 50) ctx.GetTimerService().RegisterEventTimeTimer(t + 10);
  }
};

TEST(KeyedTimerTest, TimerRegisteredInOnTimerFiresInSameAdvance) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy([](const Event& e) { return e.key; }).Process(ChainedTimers{});
  testing::OneInputOperatorHarness<Event, Timestamp> h(out);
  h.Open();
  h.ProcessElement(Ev(7, 10), 10);
  h.ProcessWatermark(35);
  EXPECT_EQ(h.OutputValues(), (std::vector<Timestamp>{10, 20, 30}));
  h.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(h.OutputValues(), (std::vector<Timestamp>{10, 20, 30, 40, 50}));
}

/// Routes odd values to a side output, even ones to the main output, and
/// reports the record's timestamp and the watermark.
const OutputTag<std::string> kOddTag("odd");
class SplitOdd : public ProcessFunction<Event, Event> {
 public:
  void ProcessElement(const Event& e, Context& ctx, Collector<Event>& out) override {
    if (e.value % 2 != 0) {
      ctx.Output(kOddTag, "odd-" + std::to_string(e.value));
    } else {
      out.Collect(Ev(e.key, ctx.GetTimestamp(), ctx.GetTimerService().CurrentWatermark()));
    }
  }
};

TEST(ProcessFunctionTest, SideOutputsCarryTheRecordTimestamp) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(env->FromElements<Event>({}).Process(SplitOdd{}));
  h.CollectSideOutput(kOddTag);
  h.Open();
  h.ProcessElement(Ev(1, 0, 1), 100);
  h.ProcessWatermark(150);
  h.ProcessElement(Ev(1, 0, 2), 200);
  h.ProcessElement(Ev(1, 0, 3), 300);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<Event, Timestamp>>{{Ev(1, 200, 150), 200}}));
  EXPECT_EQ(h.SideOutput(kOddTag),
            (std::vector<std::pair<std::string, Timestamp>>{{"odd-1", 100}, {"odd-3", 300}}));
}

TEST(ProcessFunctionTest, UnconsumedSideOutputIsDropped) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(env->FromElements<Event>({}).Process(SplitOdd{}));
  h.Open();
  h.ProcessElement(Ev(1, 0, 1), 100);
  h.ProcessElement(Ev(1, 0, 4), 100);
  EXPECT_EQ(h.Output().size(), 1u);
}

class TimerOnNonKeyed : public ProcessFunction<Event, Event> {
 public:
  void ProcessElement(const Event& e, Context& ctx, Collector<Event>&) override {
    ctx.GetTimerService().RegisterEventTimeTimer(e.ts);
  }
};

TEST(ProcessFunctionTest, TimersOnNonKeyedStreamFail) {
  auto env = StreamExecutionEnvironment::Create();
  Harness h(env->FromElements<Event>({}).Process(TimerOnNonKeyed{}));
  h.Open();
  EXPECT_THROW(h.ProcessElement(Ev(1, 5), 5), std::exception);
}

// ---- a two-input operator harness ------------------------------------------------------

/// Drives the two-input operator producing `stream`, like OneInputOperatorHarness.
template <class IN1, class IN2, class OUT>
class TwoInputHarness {
 public:
  explicit TwoInputHarness(const DataStream<OUT>& stream) : runtime_("harness", 0, 1, 128, 0) {
    const internal::Transformation& t = stream.Env()->GetTransformation(stream.Id());
    ctx_.name = t.name;
    ctx_.runtime = &runtime_;
    ctx_.max_parallelism = 128;
    ctx_.key_groups = KeyGroupRangeForSubtask(0, 1, 128);
    ctx_.records_in = &records_;
    ctx_.records_out = &records_;
    ctx_.accumulators = &accumulators_;
    ctx_.processing_time = &time_;
    ctx_.counters = &counters_;
    op_ = t.factory(ctx_, &output_);
    in1_ = static_cast<internal::Input<IN1>*>(op_->InputAt(1));
    in2_ = static_cast<internal::Input<IN2>*>(op_->InputAt(2));
    op_->Open();
  }
  ~TwoInputHarness() { op_->Close(); }
  void Element1(const IN1& v, Timestamp ts) { in1_->ProcessElement(v, ts); }
  void Element2(const IN2& v, Timestamp ts) { in2_->ProcessElement(v, ts); }
  void Watermark1(Timestamp wm) { op_->ProcessWatermark(1, wm); }
  void Watermark2(Timestamp wm) { op_->ProcessWatermark(2, wm); }
  void Status1(bool idle) { op_->ProcessWatermarkStatus(1, idle); }
  void Status2(bool idle) { op_->ProcessWatermarkStatus(2, idle); }
  std::vector<OUT> OutputValues() const {
    std::vector<OUT> v;
    for (const auto& [value, ts] : output_.records) v.push_back(value);
    return v;
  }
  const std::vector<std::pair<OUT, Timestamp>>& Output() const { return output_.records; }
  const std::vector<Timestamp>& Watermarks() const { return output_.watermarks; }
  const std::vector<bool>& Statuses() const { return output_.statuses; }
  int64_t Counter(const std::string& name) const {
    auto it = counters_.find(name);
    return it == counters_.end() ? 0 : it->second;
  }

 private:
  RuntimeContext runtime_;
  internal::OperatorContext ctx_;
  testing::ManualProcessingTimeService time_;
  testing::CollectingOutput<OUT> output_;
  std::map<std::string, std::string> accumulators_;
  std::map<std::string, int64_t> counters_;
  int64_t records_ = 0;
  std::unique_ptr<internal::StreamOperator> op_;
  internal::Input<IN1>* in1_ = nullptr;
  internal::Input<IN2>* in2_ = nullptr;
};

struct Pair {
  int64_t key = 0;
  int64_t left = 0;   // left value
  int64_t right = 0;  // right value
  bool operator==(const Pair&) const = default;
  auto operator<=>(const Pair&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Pair& p) {
  return os << "{k" << p.key << " " << p.left << "-" << p.right << "}";
}

class PairUp : public ProcessJoinFunction<Event, Event, Pair> {
 public:
  void ProcessElement(const Event& l, const Event& r, Context& ctx, Collector<Pair>& out) override {
    EXPECT_EQ(ctx.GetLeftTimestamp(), l.ts);
    EXPECT_EQ(ctx.GetRightTimestamp(), r.ts);
    EXPECT_EQ(ctx.GetTimestamp(), std::max(l.ts, r.ts));
    out.Collect({l.key, l.value, r.value});
  }
};

struct KeyOfEvent {
  int64_t operator()(const Event& e) const { return e.key; }
};

DataStream<Pair> IntervalJoined(StreamExecutionEnvironment& env, DataStream<Event> left, DataStream<Event> right,
                                int64_t lo, int64_t hi) {
  (void)env;
  return left.KeyBy(KeyOfEvent{}).IntervalJoin(right.KeyBy(KeyOfEvent{})).Between(Duration(lo), Duration(hi)).Process(
      PairUp{});
}

TEST(IntervalJoinTest, HarnessJoinsWithinBoundsAndDropsLateRecords) {
  auto env = StreamExecutionEnvironment::Create();
  auto a = env->FromElements<Event>({});
  auto b = env->FromElements<Event>({});
  TwoInputHarness<Event, Event, Pair> h(IntervalJoined(*env, a, b, -5, 10));
  // right.ts in [left.ts - 5, left.ts + 10]
  h.Element1(Ev(1, 100, 1), 100);
  h.Element2(Ev(1, 94, 10), 94);   // too early
  h.Element2(Ev(1, 95, 11), 95);   // lower bound, inclusive
  h.Element2(Ev(1, 110, 12), 110);  // upper bound, inclusive
  h.Element2(Ev(1, 111, 13), 111);  // too late
  h.Element2(Ev(2, 100, 14), 100);  // another key
  h.Element1(Ev(1, 105, 2), 105);   // joins 110 and 111 (in [100, 115]) after the fact
  auto got = h.OutputValues();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<Pair>{{1, 1, 11}, {1, 1, 12}, {1, 2, 12}, {1, 2, 13}}));
  EXPECT_EQ(h.Output()[0].second, 100);  // max of both timestamps

  h.Watermark1(200);
  h.Watermark2(150);  // combined watermark 150
  EXPECT_EQ(h.Watermarks(), std::vector<Timestamp>{150});
  h.Element1(Ev(1, 149, 3), 149);  // late: dropped
  h.Element2(Ev(1, 140, 15), 140);  // late: dropped
  h.Element2(Ev(1, 150, 16), 150);  // not late
  EXPECT_EQ(h.Counter("Interval Join.numLateRecordsDropped"), 2);
  EXPECT_EQ(h.Output().size(), 4u);
  h.Element1(Ev(1, 151, 4), 151);
  EXPECT_EQ(h.OutputValues().back(), (Pair{1, 4, 16}));
}

TEST(IntervalJoinTest, ExclusiveBounds) {
  auto env = StreamExecutionEnvironment::Create();
  auto a = env->FromElements<Event>({});
  auto b = env->FromElements<Event>({});
  auto joined = a.KeyBy(KeyOfEvent{})
                    .IntervalJoin(b.KeyBy(KeyOfEvent{}))
                    .Between(Duration(-2), Duration(2))
                    .LowerBoundExclusive()
                    .UpperBoundExclusive()
                    .Process(PairUp{});
  TwoInputHarness<Event, Event, Pair> h(joined);
  h.Element1(Ev(1, 10, 1), 10);
  for (int64_t t = 7; t <= 13; ++t) h.Element2(Ev(1, t, t), t);
  auto got = h.OutputValues();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<Pair>{{1, 1, 9}, {1, 1, 10}, {1, 1, 11}}));
  EXPECT_THROW(a.KeyBy(KeyOfEvent{}).IntervalJoin(b.KeyBy(KeyOfEvent{})).Between(Duration(3), Duration(2)),
               std::invalid_argument);
}

TEST(IntervalJoinTest, RandomInputMatchesNestedLoopOracleUnderWatermarks) {
  // In-order input per side with watermarks just below each side's newest
  // record: nothing is late, every pair must be found even though buffers
  // are cleaned as the watermark advances.
  for (auto [lo, hi] : std::vector<std::pair<int64_t, int64_t>>{{-5, 10}, {0, 0}, {3, 20}, {-30, -4}}) {
    SCOPED_TRACE(::testing::Message() << "between " << lo << " and " << hi);
    auto env = StreamExecutionEnvironment::Create();
    auto a = env->FromElements<Event>({});
    auto b = env->FromElements<Event>({});
    TwoInputHarness<Event, Event, Pair> h(IntervalJoined(*env, a, b, lo, hi));
    std::mt19937_64 rng(static_cast<uint64_t>(lo * 100 + hi));
    std::vector<Event> left, right;
    Timestamp tl = 0, tr = 0;
    for (int i = 0; i < 2000; ++i) {
      if (rng() % 2 == 0) {
        tl += static_cast<int64_t>(rng() % 5);
        Event e = Ev(static_cast<int64_t>(rng() % 3), tl, i);
        left.push_back(e);
        h.Element1(e, e.ts);
        h.Watermark1(tl - 1);
      } else {
        tr += static_cast<int64_t>(rng() % 5);
        Event e = Ev(static_cast<int64_t>(rng() % 3), tr, i);
        right.push_back(e);
        h.Element2(e, e.ts);
        h.Watermark2(tr - 1);
      }
    }
    std::vector<Pair> expected;
    for (const Event& l : left) {
      for (const Event& r : right) {
        if (l.key == r.key && r.ts >= l.ts + lo && r.ts <= l.ts + hi) expected.push_back({l.key, l.value, r.value});
      }
    }
    auto got = h.OutputValues();
    std::sort(got.begin(), got.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_GT(expected.size(), 10u);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(h.Counter("Interval Join.numLateRecordsDropped"), 0);
  }
}

TEST(TwoInputWatermarkTest, CombinedWatermarkIsMinimumAndIdleInputDoesNotHoldBack) {
  auto env = StreamExecutionEnvironment::Create();
  auto a = env->FromElements<Event>({});
  auto b = env->FromElements<Event>({});
  TwoInputHarness<Event, Event, Pair> h(IntervalJoined(*env, a, b, 0, 0));
  h.Watermark1(10);
  EXPECT_TRUE(h.Watermarks().empty());
  h.Watermark2(5);
  h.Watermark2(20);
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{5, 10}));
  h.Status1(true);  // input 1 idle: input 2 alone decides
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{5, 10, 20}));
  h.Status2(true);
  EXPECT_EQ(h.Statuses(), std::vector<bool>{true});
  h.Status1(false);
  EXPECT_EQ(h.Statuses(), (std::vector<bool>{true, false}));
}

// ---- whole jobs on the embedded cluster ----------------------------------------------------

/// Emits max_ts - delay - 1 after every record: deterministic watermarks in jobs.
class EagerBoundedGenerator final : public WatermarkGenerator<Event> {
 public:
  explicit EagerBoundedGenerator(int64_t delay) : delay_(delay) {}
  void OnEvent(const Event&, Timestamp ts, WatermarkOutput& out) override {
    max_ = std::max(max_, ts);
    out.EmitWatermark(max_ - delay_ - 1);
  }
  void OnPeriodicEmit(WatermarkOutput&) override {}

 private:
  int64_t delay_;
  Timestamp max_ = std::numeric_limits<int64_t>::min() / 2;
};

WatermarkStrategy<Event> Eager(int64_t delay) {
  return WatermarkStrategy<Event>::ForGenerator([delay] { return std::make_unique<EagerBoundedGenerator>(delay); })
      .WithTimestampAssigner([](const Event& e) { return e.ts; });
}

struct Observation {
  int64_t kind = 0;  // 0: element, 1: timer
  int64_t key = 0;
  Timestamp ts = 0;
  Timestamp watermark = 0;
};

/// Records each element's timestamp with the watermark current at that
/// moment and sets an event-time timer at the element's timestamp.
class WatermarkRecorder : public KeyedProcessFunction<int64_t, Event, Observation> {
 public:
  void ProcessElement(const Event& e, Context& ctx, Collector<Observation>& out) override {
    out.Collect({0, e.key, e.ts, ctx.GetTimerService().CurrentWatermark()});
    ctx.GetTimerService().RegisterEventTimeTimer(e.ts);
  }
  void OnTimer(Timestamp t, OnTimerContext& ctx, Collector<Observation>& out) override {
    out.Collect({1, ctx.GetCurrentKey(), t, ctx.GetTimerService().CurrentWatermark()});
  }
};

TEST(EventTimeJobTest, WatermarkIsMinimumOverInputChannels) {
  constexpr int64_t kPerSubtask = 3000;
  constexpr int64_t kFastBase = 1'000'000;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  env->SetBufferTimeout(Duration(0));
  // Subtask 0 produces timestamps 0.., subtask 1 timestamps 1,000,000..
  auto source = env->FromGenerator(
      [](int64_t i) {
        Timestamp ts = i < kPerSubtask ? i : kFastBase + (i - kPerSubtask);
        return Ev(i % 5, ts, i);
      },
      2 * kPerSubtask);
  source.SetParallelism(2);
  auto stamped = source.AssignTimestampsAndWatermarks(Eager(0));
  stamped.SetParallelism(2);
  auto observed = stamped.KeyBy(KeyOfEvent{}).Process(WatermarkRecorder{}).ExecuteAndCollect();

  int64_t slow_seen = 0, fast_seen = 0, elements_with_watermark = 0;
  Timestamp slow_max = kNoTimestamp, fast_max = kNoTimestamp;
  std::set<std::pair<int64_t, Timestamp>> timers_expected, timers_fired;
  for (const Observation& o : observed) {
    if (o.kind == 0) {
      if (o.ts < kFastBase) {
        ++slow_seen;
        slow_max = std::max(slow_max, o.ts);
      } else {
        ++fast_seen;
        fast_max = std::max(fast_max, o.ts);
      }
      timers_expected.insert({o.key, o.ts});
      if (slow_seen < kPerSubtask && fast_seen < kPerSubtask) {
        // Both channels still open: neither may be overtaken.
        ASSERT_LE(o.watermark, std::min(slow_max, fast_max)) << "element " << o.ts;
      }
      if (o.watermark != kNoTimestamp) ++elements_with_watermark;
    } else {
      ASSERT_GE(o.watermark, o.ts) << "a timer fires only once the watermark passes it";
      ASSERT_TRUE(timers_fired.insert({o.key, o.ts}).second) << "timer fired twice";
    }
  }
  EXPECT_EQ(slow_seen, kPerSubtask);
  EXPECT_EQ(fast_seen, kPerSubtask);
  // The final maximum watermark fires every timer.
  EXPECT_EQ(timers_fired, timers_expected);
}

/// An unbounded source: subtask 0 emits `burst` records with timestamps
/// 0.. then `continuous` more per poll forever (or nothing when 0);
/// subtask 1 never emits anything.
class SkewedSource final : public Source<Event> {
 public:
  SkewedSource(int64_t burst, int64_t continuous) : burst_(burst), continuous_(continuous) {}
  Boundedness GetBoundedness() const override { return Boundedness::kContinuousUnbounded; }
  std::unique_ptr<SourceReader<Event>> CreateReader(SourceReaderContext& ctx) const override {
    return std::make_unique<Reader>(ctx.SubtaskIndex() == 0 ? burst_ : 0, ctx.SubtaskIndex() == 0 ? continuous_ : 0);
  }

 private:
  class Reader final : public SourceReader<Event> {
   public:
    Reader(int64_t burst, int64_t continuous) : burst_(burst), continuous_(continuous) {}
    Result<InputStatus> PollNext(ReaderOutput<Event>& out) override {
      if (next_ < burst_) {
        for (; next_ < burst_; ++next_) out.Collect(Ev(next_ % 3, next_, 1));
        return InputStatus::kNothingAvailable;
      }
      for (int64_t i = 0; i < continuous_; ++i, ++next_) out.Collect(Ev(next_ % 3, next_, 1));
      return InputStatus::kNothingAvailable;
    }
    Duration PollDelay() const override { return Duration(2); }

   private:
    int64_t burst_;
    int64_t continuous_;
    int64_t next_ = 0;
  };
  int64_t burst_;
  int64_t continuous_;
};

struct WindowCount {
  int64_t key = 0;
  int64_t end = 0;
  int64_t count = 0;
};

class CountPerWindow : public ProcessWindowFunction<Event, WindowCount, int64_t, TimeWindow> {
 public:
  void Process(const int64_t& key, Context& ctx, const std::vector<Event>& elements,
               Collector<WindowCount>& out) override {
    out.Collect({key, ctx.Window().end, static_cast<int64_t>(elements.size())});
  }
};

/// Runs an unbounded job writing window counts into a shared vector until
/// the first window [0,100) of every key has been emitted (or a deadline).
std::vector<WindowCount> RunUntilFirstWindows(int64_t burst, int64_t continuous) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  env->SetBufferTimeout(Duration(0));
  env->GetOptions().auto_watermark_interval_ms = 5;
  auto results = std::make_shared<std::vector<WindowCount>>();
  auto mutex = std::make_shared<std::mutex>();
  auto source = env->FromSource(SkewedSource(burst, continuous), "Skewed");
  source.SetParallelism(2);
  auto stamped = source.AssignTimestampsAndWatermarks(WatermarkStrategy<Event>::ForMonotonousTimestamps()
                                                          .WithTimestampAssigner([](const Event& e) { return e.ts; })
                                                          .WithIdleness(Duration(30)));
  stamped.SetParallelism(2);
  stamped.KeyBy(KeyOfEvent{})
      .Window(TumblingEventTimeWindows::Of(Duration(100)))
      .Process(CountPerWindow{})
      .SinkTo([results, mutex](const WindowCount& c) {
        std::lock_guard<std::mutex> lock(*mutex);
        results->push_back(c);
      });
  auto client = env->ExecuteAsync("idle source").ValueOrThrow();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::vector<WindowCount> snapshot;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(*mutex);
      snapshot = *results;
    }
    if (std::count_if(snapshot.begin(), snapshot.end(), [](const WindowCount& c) { return c.end == 100; }) >= 3) break;
    // Wait for the job's progress, bounded by the deadline.
    auto done = client->WaitFor(Duration(10));
    if (done.has_value()) break;
  }
  EXPECT_NE(client->GetJobStatus(), JobStatus::kFinished) << "the job is unbounded";
  client->Cancel();
  (void)client->Wait();
  std::sort(snapshot.begin(), snapshot.end(),
            [](const WindowCount& a, const WindowCount& b) { return std::tie(a.end, a.key) < std::tie(b.end, b.key); });
  return snapshot;
}

TEST(EventTimeJobTest, IdleSourceSubtaskDoesNotHoldBackWindows) {
  // Subtask 0 keeps producing; subtask 1 never does and is marked idle.
  std::vector<WindowCount> got = RunUntilFirstWindows(0, 20);
  ASSERT_GE(got.size(), 3u) << "windows must fire while the job runs";
  int64_t total = 0;
  for (const WindowCount& c : got) {
    if (c.end == 100) total += c.count;
  }
  EXPECT_EQ(total, 100);
}

TEST(EventTimeJobTest, WatermarkOfSourceThatWentIdleIsNotLost) {
  // Subtask 0 emits timestamps 0..249 once and goes idle; subtask 1 never
  // emits. Once every channel is idle nothing holds back subtask 0's last
  // watermark (249), so window [0,100) fires while the job still runs.
  std::vector<WindowCount> got = RunUntilFirstWindows(250, 0);
  int64_t total = 0;
  for (const WindowCount& c : got) {
    if (c.end == 100) total += c.count;
  }
  EXPECT_EQ(total, 100);
}

struct KeyWindowSum {
  int64_t key = 0;
  int64_t end = 0;
  int64_t sum = 0;
  bool operator==(const KeyWindowSum&) const = default;
  auto operator<=>(const KeyWindowSum&) const = default;
};
std::ostream& operator<<(std::ostream& os, const KeyWindowSum& s) {
  return os << "{k" << s.key << " end " << s.end << " sum " << s.sum << "}";
}

class SumPerWindow : public ProcessWindowFunction<Event, KeyWindowSum, int64_t, TimeWindow> {
 public:
  void Process(const int64_t& key, Context& ctx, const std::vector<Event>& elements,
               Collector<KeyWindowSum>& out) override {
    int64_t sum = 0;
    for (const Event& e : elements) sum += e.value;
    out.Collect({key, ctx.Window().end, sum});
  }
};

TEST(EventTimeJobTest, OutOfOrderInputWithinBoundGivesSortedResults) {
  constexpr int64_t kDelay = 40;
  std::mt19937_64 rng(42);
  std::vector<Event> sorted;
  for (int64_t i = 0; i < 5000; ++i) sorted.push_back(Ev(static_cast<int64_t>(rng() % 4), i / 2, static_cast<int64_t>(rng() % 100)));
  // Shuffle within blocks so no record is more than kDelay behind the maximum.
  std::vector<Event> shuffled = sorted;
  for (size_t b = 0; b < shuffled.size(); b += 60) {
    std::shuffle(shuffled.begin() + static_cast<long>(b),
                 shuffled.begin() + static_cast<long>(std::min(shuffled.size(), b + 60)), rng);
  }
  std::map<std::pair<int64_t, int64_t>, int64_t> oracle;
  for (const Event& e : sorted) oracle[{e.key, (e.ts / 50 + 1) * 50}] += e.value;
  std::vector<KeyWindowSum> expected;
  for (const auto& [kw, sum] : oracle) expected.push_back({kw.first, kw.second, sum});

  for (bool eager : {true, false}) {
    SCOPED_TRACE(eager ? "watermark after every record" : "periodic watermarks every 1 ms");
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(2);
    env->GetOptions().auto_watermark_interval_ms = 1;
    auto strategy = eager ? Eager(kDelay)
                          : WatermarkStrategy<Event>::ForBoundedOutOfOrderness(Duration(kDelay))
                                .WithTimestampAssigner([](const Event& e) { return e.ts; });
    JobExecutionResult result;
    auto out = env->FromCollection(shuffled)
                   .AssignTimestampsAndWatermarks(strategy)
                   .KeyBy(KeyOfEvent{})
                   .Window(TumblingEventTimeWindows::Of(Duration(50)))
                   .Process(SumPerWindow{})
                   .ExecuteAndCollect("out of order", &result);
    std::sort(out.begin(), out.end());
    EXPECT_EQ(out, expected);
    int64_t late = 0;
    for (const auto& [name, value] : result.counters) {
      if (name.find("numLateRecordsDropped") != std::string::npos) late += value;
    }
    EXPECT_EQ(late, 0);
  }
}

TEST(EventTimeJobTest, TooLateRecordsAreCountedInTheJobResult) {
  auto env = StreamExecutionEnvironment::Create();
  JobExecutionResult result;
  auto out = env->FromElements<Event>({Ev(1, 5, 1), Ev(1, 30, 2), Ev(1, 6, 4), Ev(1, 31, 8)})
                 .AssignTimestampsAndWatermarks(Eager(0))
                 .KeyBy(KeyOfEvent{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Process(SumPerWindow{})
                 .ExecuteAndCollect("late", &result);
  EXPECT_EQ(out, (std::vector<KeyWindowSum>{{1, 10, 1}, {1, 40, 10}}));
  EXPECT_EQ(result.counters["Window(Process).numLateRecordsDropped"], 1);
}

struct Left {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t id = 0;
};
struct Right {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t id = 0;
};

template <class T>
WatermarkStrategy<T> MonotonousOn() {
  return WatermarkStrategy<T>::ForMonotonousTimestamps().WithTimestampAssigner([](const T& v) { return v.ts; });
}

struct JoinInput {
  std::vector<Left> left;
  std::vector<Right> right;
};

JoinInput MakeJoinInput(uint64_t seed) {
  std::mt19937_64 rng(seed);
  JoinInput in;
  int64_t t = 0;
  for (int64_t i = 0; i < 400; ++i) {
    t += static_cast<int64_t>(rng() % 3);
    in.left.push_back({static_cast<int64_t>(rng() % 4), t, i});
  }
  t = 0;
  for (int64_t i = 0; i < 300; ++i) {
    t += static_cast<int64_t>(rng() % 4);
    in.right.push_back({static_cast<int64_t>(rng() % 4), t, 1000 + i});
  }
  return in;
}

TEST(EventTimeJobTest, WindowJoinMatchesOracle) {
  JoinInput in = MakeJoinInput(7);
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto left = env->FromCollection(in.left).AssignTimestampsAndWatermarks(MonotonousOn<Left>());
  auto right = env->FromCollection(in.right).AssignTimestampsAndWatermarks(MonotonousOn<Right>());
  using Out = std::tuple<int64_t, int64_t, int64_t>;
  auto got = left.Join(right)
                 .Where([](const Left& l) { return l.key; })
                 .EqualTo([](const Right& r) { return r.key; })
                 .Window(TumblingEventTimeWindows::Of(Duration(20)))
                 .Apply<Out>([](const Left& l, const Right& r) { return Out{l.key, l.id, r.id}; })
                 .ExecuteAndCollect();
  std::vector<Out> expected;
  for (const Left& l : in.left) {
    for (const Right& r : in.right) {
      if (l.key == r.key && l.ts / 20 == r.ts / 20) expected.emplace_back(l.key, l.id, r.id);
    }
  }
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_GT(expected.size(), 100u);
  EXPECT_EQ(got, expected);
}

TEST(EventTimeJobTest, WindowJoinWithCollectorAndSlidingWindows) {
  JoinInput in = MakeJoinInput(8);
  auto env = StreamExecutionEnvironment::Create();
  auto left = env->FromCollection(in.left).AssignTimestampsAndWatermarks(MonotonousOn<Left>());
  auto right = env->FromCollection(in.right).AssignTimestampsAndWatermarks(MonotonousOn<Right>());
  using Out = std::tuple<int64_t, int64_t>;
  auto got = left.Join(right)
                 .Where([](const Left& l) { return l.key; })
                 .EqualTo([](const Right& r) { return r.key; })
                 .Window(SlidingEventTimeWindows::Of(Duration(20), Duration(10)))
                 .Apply<Out>([](const Left& l, const Right& r, Collector<Out>& out) {
                   if ((l.id + r.id) % 2 == 0) out.Collect(Out{l.id, r.id});
                 })
                 .ExecuteAndCollect();
  std::vector<Out> expected;
  for (const Left& l : in.left) {
    for (const Right& r : in.right) {
      if (l.key != r.key || (l.id + r.id) % 2 != 0) continue;
      // Each sliding window holding both emits the pair.
      for (int64_t start = (std::max(l.ts, r.ts) / 10) * 10 - 10; start <= std::min(l.ts, r.ts); start += 10) {
        if (l.ts >= start && l.ts < start + 20 && r.ts >= start && r.ts < start + 20) expected.emplace_back(l.id, r.id);
      }
    }
  }
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_GT(expected.size(), 50u);
  EXPECT_EQ(got, expected);
}

TEST(EventTimeJobTest, CoGroupMatchesOracle) {
  JoinInput in = MakeJoinInput(9);
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  auto left = env->FromCollection(in.left).AssignTimestampsAndWatermarks(MonotonousOn<Left>());
  auto right = env->FromCollection(in.right).AssignTimestampsAndWatermarks(MonotonousOn<Right>());
  // (key, window index, number of lefts, number of rights, sum of ids)
  using Out = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;
  auto got = left.CoGroup(right)
                 .Where([](const Left& l) { return l.key; })
                 .EqualTo([](const Right& r) { return r.key; })
                 .Window(TumblingEventTimeWindows::Of(Duration(25)))
                 .Apply<Out>([](const std::vector<Left>& ls, const std::vector<Right>& rs, Collector<Out>& out) {
                   int64_t key = ls.empty() ? rs.front().key : ls.front().key;
                   int64_t window = ls.empty() ? rs.front().ts / 25 : ls.front().ts / 25;
                   int64_t ids = 0;
                   for (const Left& l : ls) ids += l.id;
                   for (const Right& r : rs) ids += r.id;
                   out.Collect(Out{key, window, static_cast<int64_t>(ls.size()), static_cast<int64_t>(rs.size()), ids});
                 })
                 .ExecuteAndCollect();
  std::map<std::pair<int64_t, int64_t>, Out> oracle;
  for (const Left& l : in.left) {
    Out& o = oracle.try_emplace({l.key, l.ts / 25}, Out{l.key, l.ts / 25, 0, 0, 0}).first->second;
    ++std::get<2>(o);
    std::get<4>(o) += l.id;
  }
  for (const Right& r : in.right) {
    Out& o = oracle.try_emplace({r.key, r.ts / 25}, Out{r.key, r.ts / 25, 0, 0, 0}).first->second;
    ++std::get<3>(o);
    std::get<4>(o) += r.id;
  }
  std::vector<Out> expected;
  for (const auto& [k, o] : oracle) expected.push_back(o);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected);
}

TEST(EventTimeJobTest, IntervalJoinMatchesNestedLoopOracle) {
  std::mt19937_64 rng(11);
  std::vector<Event> left, right;
  Timestamp t = 0;
  for (int64_t i = 0; i < 500; ++i) left.push_back(Ev(static_cast<int64_t>(rng() % 5), t += static_cast<int64_t>(rng() % 4), i));
  t = 0;
  for (int64_t i = 0; i < 500; ++i) right.push_back(Ev(static_cast<int64_t>(rng() % 5), t += static_cast<int64_t>(rng() % 4), 10000 + i));
  for (auto [lo, hi] : std::vector<std::pair<int64_t, int64_t>>{{-7, 3}, {2, 15}}) {
    SCOPED_TRACE(::testing::Message() << "between " << lo << " and " << hi);
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(2);
    auto a = env->FromCollection(left).AssignTimestampsAndWatermarks(MonotonousOn<Event>());
    auto b = env->FromCollection(right).AssignTimestampsAndWatermarks(MonotonousOn<Event>());
    JobExecutionResult result;
    auto got = IntervalJoined(*env, a, b, lo, hi).ExecuteAndCollect("interval", &result);
    std::vector<Pair> expected;
    for (const Event& l : left) {
      for (const Event& r : right) {
        if (l.key == r.key && r.ts >= l.ts + lo && r.ts <= l.ts + hi) expected.push_back({l.key, l.value, r.value});
      }
    }
    std::sort(got.begin(), got.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_GT(expected.size(), 50u);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(result.counters["Interval Join.numLateRecordsDropped"], 0);
  }
}

/// Splits by parity and stamps records with their timestamp in the side output.
const OutputTag<Event> kOddEvents("odd-events");
class SplitEvents : public ProcessFunction<Event, Event> {
 public:
  void ProcessElement(const Event& e, Context& ctx, Collector<Event>& out) override {
    if (e.value % 2 != 0) {
      ctx.Output(kOddEvents, e);
    } else {
      out.Collect(e);
    }
  }
};

/// Checks that a record's timestamp survived the network.
class TimestampCheck : public ProcessFunction<Event, Event> {
 public:
  void ProcessElement(const Event& e, Context& ctx, Collector<Event>& out) override {
    out.Collect(Ev(e.key, ctx.GetTimestamp(), e.value));
  }
};

TEST(EventTimeJobTest, SideOutputAcrossNetworkBoundary) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  std::vector<Event> input;
  for (int64_t i = 0; i < 1000; ++i) input.push_back(Ev(i % 7, i, i));
  auto split = env->FromCollection(input)
                   .AssignTimestampsAndWatermarks(MonotonousOn<Event>())
                   .Rebalance()
                   .Process(SplitEvents{});
  auto main_results = std::make_shared<std::vector<Event>>();
  auto mutex = std::make_shared<std::mutex>();
  split.SinkTo([main_results, mutex](const Event& e) {
    std::lock_guard<std::mutex> lock(*mutex);
    main_results->push_back(e);
  });
  auto side = split.GetSideOutput(kOddEvents).Rebalance().Process(TimestampCheck{});
  side.SetParallelism(3);
  auto odd = side.ExecuteAndCollect();
  std::sort(odd.begin(), odd.end());
  std::vector<Event> expected_odd, expected_even;
  for (const Event& e : input) (e.value % 2 != 0 ? expected_odd : expected_even).push_back(e);
  std::sort(expected_odd.begin(), expected_odd.end());
  std::sort(expected_even.begin(), expected_even.end());
  EXPECT_EQ(odd, expected_odd) << "side records keep their timestamps across the network";
  std::sort(main_results->begin(), main_results->end());
  EXPECT_EQ(*main_results, expected_even);
}

}  // namespace
}  // namespace freshet
