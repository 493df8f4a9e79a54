// Window assigners, triggers, evictors, window functions, session merging,
// lateness and state cleanup, mostly through OneInputOperatorHarness on
// operators built with the normal API.

#include <freshet/freshet.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace freshet {
namespace {

struct Event {
  std::string key;
  int64_t value = 0;
  bool operator==(const Event&) const = default;
  auto operator<=>(const Event&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Event& e) { return os << "{" << e.key << "," << e.value << "}"; }

struct KeyOf {
  std::string operator()(const Event& e) const { return e.key; }
};
struct SumValues {
  Event operator()(const Event& a, const Event& b) const { return {a.key, a.value + b.value}; }
};

/// What a ProcessWindowFunction saw for one firing.
struct WindowResult {
  std::string key;
  int64_t start = 0;
  int64_t end = 0;
  int64_t count = 0;
  int64_t sum = 0;
  bool operator==(const WindowResult&) const = default;
  auto operator<=>(const WindowResult&) const = default;
};
std::ostream& operator<<(std::ostream& os, const WindowResult& r) {
  return os << r.key << "[" << r.start << "," << r.end << ") n=" << r.count << " sum=" << r.sum;
}

class DescribeWindow : public ProcessWindowFunction<Event, WindowResult, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<Event>& elements,
               Collector<WindowResult>& out) override {
    int64_t sum = 0;
    for (const Event& e : elements) sum += e.value;
    out.Collect({key, ctx.Window().start, ctx.Window().end, static_cast<int64_t>(elements.size()), sum});
  }
};

/// Sums the values of a global window; records how many elements it saw.
class SumGlobal : public ProcessWindowFunction<Event, std::vector<int64_t>, std::string, GlobalWindow> {
 public:
  void Process(const std::string&, Context&, const std::vector<Event>& elements,
               Collector<std::vector<int64_t>>& out) override {
    std::vector<int64_t> values;
    for (const Event& e : elements) values.push_back(e.value);
    out.Collect(values);
  }
};

struct SumCount {
  int64_t sum = 0;
  int64_t count = 0;
  bool operator==(const SumCount&) const = default;
};
std::ostream& operator<<(std::ostream& os, const SumCount& s) { return os << "sum=" << s.sum << " n=" << s.count; }

class SumCountAggregate : public AggregateFunction<Event, SumCount, SumCount> {
 public:
  SumCount CreateAccumulator() override { return {}; }
  SumCount Add(const Event& v, SumCount acc) override {
    acc.sum += v.value;
    ++acc.count;
    return acc;
  }
  SumCount GetResult(const SumCount& acc) override { return acc; }
  SumCount Merge(SumCount a, SumCount b) override { return {a.sum + b.sum, a.count + b.count}; }
};

class SumAggregate : public AggregateFunction<Event, int64_t, int64_t> {
 public:
  int64_t CreateAccumulator() override { return 0; }
  int64_t Add(const Event& v, int64_t acc) override { return acc + v.value; }
  int64_t GetResult(const int64_t& acc) override { return acc; }
  int64_t Merge(int64_t a, int64_t b) override { return a + b; }
};

/// Reduce+Process and Aggregate+Process: one pre-aggregated value per window.
class LabelReduced : public ProcessWindowFunction<Event, WindowResult, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<Event>& elements,
               Collector<WindowResult>& out) override {
    for (const Event& e : elements) {
      out.Collect({key, ctx.Window().start, ctx.Window().end, static_cast<int64_t>(elements.size()), e.value});
    }
  }
};
class LabelAggregated : public ProcessWindowFunction<SumCount, WindowResult, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<SumCount>& elements,
               Collector<WindowResult>& out) override {
    for (const SumCount& s : elements) out.Collect({key, ctx.Window().start, ctx.Window().end, s.count, s.sum});
  }
};

Event E(std::string key, int64_t value) { return Event{std::move(key), value}; }

/// "k0".."k9" (a table: building them with operator+ trips a GCC -O3 false positive).
const std::string& KeyName(uint64_t i) {
  static const std::vector<std::string> names = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};
  return names.at(i % names.size());
}

template <class OUT>
using Harness = testing::OneInputOperatorHarness<Event, OUT>;

std::vector<std::pair<Event, Timestamp>> Sorted(std::vector<std::pair<Event, Timestamp>> v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second, a.first) < std::tie(b.second, b.first);
  });
  return v;
}

// ---- tumbling event time: the seed example ----------------------------------

TEST(TumblingEventTimeWindowsTest, FiresWhenWatermarkReachesWindowEndAndDropsLaterRecord) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(20))).Reduce(
      SumValues{});
  Harness<Event> h(out);
  h.Open();
  // Watermark = highest timestamp - 4 (bounded out-of-orderness of 3).
  Timestamp max_ts = kNoTimestamp;
  for (Timestamp ts : {7, 11, 16}) {
    h.ProcessElement(E("a", ts), ts);
    max_ts = std::max(max_ts, ts);
    h.ProcessWatermark(max_ts - 4);
  }
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(18);
  EXPECT_TRUE(h.Output().empty()) << "window [0,20) must not fire before the watermark reaches 19";
  h.ProcessElement(E("a", 24), 24);
  h.ProcessWatermark(24 - 4);
  ASSERT_EQ(h.Output().size(), 1u);
  EXPECT_EQ(h.Output()[0].first, E("a", 7 + 11 + 16));
  EXPECT_EQ(h.Output()[0].second, 19);

  h.ProcessElement(E("a", 19), 19);  // its only window [0,20) is gone
  EXPECT_EQ(h.Counter("Window(Reduce).numLateRecordsDropped"), 1);
  h.ProcessWatermark(kMaxWatermark);
  ASSERT_EQ(h.Output().size(), 2u);
  EXPECT_EQ(h.Output()[1].first, E("a", 24));
  EXPECT_EQ(h.Output()[1].second, 39);
}

TEST(TumblingEventTimeWindowsTest, FiresExactlyAtWatermarkNineteen) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(20))).Reduce(
      SumValues{});
  Harness<Event> h(out);
  h.Open();
  for (Timestamp ts : {7, 11, 16, 24}) h.ProcessElement(E("a", ts), ts);
  h.ProcessWatermark(18);
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(19);
  ASSERT_EQ(h.Output().size(), 1u);
  EXPECT_EQ(h.Output()[0], std::make_pair(E("a", 34), Timestamp{19}));
  // A record of an already fired window at watermark == its max timestamp is late.
  h.ProcessElement(E("a", 19), 19);
  EXPECT_EQ(h.Counter("Window(Reduce).numLateRecordsDropped"), 1);
  EXPECT_EQ(h.Output().size(), 1u);
}

TEST(TumblingEventTimeWindowsTest, LateRecordGoesToSideOutputWhenSet) {
  auto env = StreamExecutionEnvironment::Create();
  OutputTag<Event> late("late");
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(20)))
                 .SideOutputLateData(late)
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.CollectSideOutput(late);
  h.Open();
  for (Timestamp ts : {7, 11, 16, 24}) h.ProcessElement(E("a", ts), ts);
  h.ProcessWatermark(20);
  ASSERT_EQ(h.Output().size(), 1u);
  h.ProcessElement(E("a", 19), 19);
  ASSERT_EQ(h.SideOutput(late).size(), 1u);
  EXPECT_EQ(h.SideOutput(late)[0], std::make_pair(E("a", 19), Timestamp{19}));
  EXPECT_EQ(h.Counter("Window(Reduce).numLateRecordsDropped"), 0);
  // A record that is not late does not go to the side output.
  h.ProcessElement(E("a", 21), 21);
  EXPECT_EQ(h.SideOutput(late).size(), 1u);
}

TEST(TumblingEventTimeWindowsTest, SeedExampleAsWholeJobWithBoundedOutOfOrderness) {
  // A generator emitting max_ts - 3 - 1 after every event makes the job's
  // watermarks deterministic; the late record 19 goes to the side output.
  class EveryEvent final : public WatermarkGenerator<Event> {
   public:
    void OnEvent(const Event&, Timestamp ts, WatermarkOutput& out) override {
      max_ = std::max(max_, ts);
      out.EmitWatermark(max_ - 3 - 1);
    }
    void OnPeriodicEmit(WatermarkOutput&) override {}

   private:
    Timestamp max_ = -1000;
  };
  auto env = StreamExecutionEnvironment::Create();
  OutputTag<Event> late("late");
  auto windowed = env->FromElements<Event>({E("a", 7), E("a", 11), E("a", 16), E("a", 24), E("a", 19)})
                      .AssignTimestampsAndWatermarks(WatermarkStrategy<Event>::ForGenerator([] {
                                                       return std::make_unique<EveryEvent>();
                                                     }).WithTimestampAssigner([](const Event& e) { return e.value; }))
                      .KeyBy(KeyOf{})
                      .Window(TumblingEventTimeWindows::Of(Duration(20)))
                      .SideOutputLateData(late)
                      .Reduce(SumValues{});
  auto results = std::make_shared<std::vector<Event>>();
  auto mutex = std::make_shared<std::mutex>();
  windowed.SinkTo([results, mutex](const Event& e) {
    std::lock_guard<std::mutex> lock(*mutex);
    results->push_back(e);
  });
  auto side = windowed.GetSideOutput(late).ExecuteAndCollect();
  EXPECT_EQ(*results, (std::vector<Event>{E("a", 34), E("a", 24)}));
  EXPECT_EQ(side, (std::vector<Event>{E("a", 19)}));
}

TEST(TumblingEventTimeWindowsTest, OffsetShiftsWindowBoundaries) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(20), Duration(5)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  for (Timestamp ts : {4, 5, 24, 25, -3}) h.ProcessElement(E("a", ts), ts);
  h.ProcessWatermark(kMaxWatermark);
  std::vector<std::pair<WindowResult, Timestamp>> expected = {
      {{"a", -15, 5, 2, 1}, 4}, {{"a", 5, 25, 2, 29}, 24}, {{"a", 25, 45, 1, 25}, 44}};
  EXPECT_EQ(h.Output(), expected);
}

TEST(TumblingEventTimeWindowsTest, KeysAreIndependentAndNegativeTimestampsWork) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(10))).Reduce(
      SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), -3);
  h.ProcessElement(E("b", 2), -1);
  h.ProcessElement(E("a", 4), 0);
  h.ProcessElement(E("b", 8), 9);
  h.ProcessWatermark(-1);
  EXPECT_EQ(Sorted(h.Output()), (std::vector<std::pair<Event, Timestamp>>{{E("a", 1), -1}, {E("b", 2), -1}}));
  h.ClearOutput();
  h.ProcessWatermark(9);
  EXPECT_EQ(Sorted(h.Output()), (std::vector<std::pair<Event, Timestamp>>{{E("a", 4), 9}, {E("b", 8), 9}}));
  EXPECT_EQ(h.Watermarks(), (std::vector<Timestamp>{-1, 9}));
}

TEST(TumblingEventTimeWindowsTest, RecordWithoutTimestampFails) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(10))).Reduce(
      SumValues{});
  Harness<Event> h(out);
  h.Open();
  EXPECT_THROW(h.ProcessElement(E("a", 1)), std::exception);
}

TEST(TumblingEventTimeWindowsTest, InvalidSizesAreRejected) {
  EXPECT_THROW(TumblingEventTimeWindows::Of(Duration(0)), std::invalid_argument);
  EXPECT_THROW(SlidingEventTimeWindows::Of(Duration(10), Duration(0)), std::invalid_argument);
  EXPECT_THROW(EventTimeSessionWindows::WithGap(Duration(0)), std::invalid_argument);
}

TEST(WindowedStreamTest, FieldAggregationsOverWindows) {
  auto env = StreamExecutionEnvironment::Create();
  auto in = env->FromElements<Event>({});
  auto sum = in.KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(10))).Sum(&Event::value);
  auto max = in.KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(10))).Max(&Event::value);
  auto min = in.KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(10))).MinBy(&Event::value);
  Harness<Event> hs(sum), hx(max), hn(min);
  for (auto* h : {&hs, &hx, &hn}) {
    h->Open();
    for (int64_t v : {5, 2, 9, 4}) h->ProcessElement(E("a", v), v);
    h->ProcessWatermark(9);
  }
  EXPECT_EQ(hs.OutputValues(), std::vector<Event>{E("a", 20)});
  EXPECT_EQ(hx.OutputValues(), std::vector<Event>{E("a", 9)});
  EXPECT_EQ(hn.OutputValues(), std::vector<Event>{E("a", 2)});
}

// ---- sliding event time ---------------------------------------------------------

TEST(SlidingEventTimeWindowsTest, RecordBelongsToSizeOverSlideWindows) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(SlidingEventTimeWindows::Of(Duration(10), Duration(5)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 7), 7);  // [0,10) and [5,15)
  h.ProcessElement(E("a", 3), 3);  // [-5,5) and [0,10)
  h.ProcessWatermark(3);
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(8);
  std::vector<std::pair<WindowResult, Timestamp>> expected = {{{"a", -5, 5, 1, 3}, 4}};
  EXPECT_EQ(h.Output(), expected);
  h.ProcessWatermark(9);
  expected.push_back({{"a", 0, 10, 2, 10}, 9});
  EXPECT_EQ(h.Output(), expected);
  h.ProcessWatermark(14);
  expected.push_back({{"a", 5, 15, 1, 7}, 14});
  EXPECT_EQ(h.Output(), expected);
}

TEST(SlidingEventTimeWindowsTest, OffsetShiftsWindowStarts) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(SlidingEventTimeWindows::Of(Duration(10), Duration(5), Duration(2)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 7);
  h.ProcessWatermark(kMaxWatermark);
  std::vector<std::pair<WindowResult, Timestamp>> expected = {{{"a", 2, 12, 1, 1}, 11}, {{"a", 7, 17, 1, 1}, 16}};
  EXPECT_EQ(h.Output(), expected);
}

TEST(SlidingEventTimeWindowsTest, PaneOperatorEmitsEachWindowOnceWithItsMaxTimestamp) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10)))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 5);
  h.ProcessElement(E("a", 10), 15);
  h.ProcessElement(E("a", 100), 25);
  h.ProcessWatermark(kMaxWatermark);
  std::vector<std::pair<Event, Timestamp>> expected = {{E("a", 1), 9},   {E("a", 11), 19}, {E("a", 111), 29},
                                                        {E("a", 110), 39}, {E("a", 100), 49}};
  EXPECT_EQ(h.Output(), expected);
}

// ---- processing time ------------------------------------------------------------

TEST(TumblingProcessingTimeWindowsTest, FiresOnProcessingTime) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingProcessingTimeWindows::Of(Duration(10)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.SetProcessingTime(3);
  h.ProcessElement(E("a", 1));
  h.ProcessElement(E("b", 2), 12345);  // event timestamps do not matter
  h.SetProcessingTime(7);
  h.ProcessElement(E("a", 3));
  h.ProcessWatermark(1000000);  // watermarks do not fire processing-time windows
  EXPECT_TRUE(h.Output().empty());
  h.SetProcessingTime(9);
  ASSERT_EQ(h.Output().size(), 2u);
  std::vector<WindowResult> got = h.OutputValues();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<WindowResult>{{"a", 0, 10, 2, 4}, {"b", 0, 10, 1, 2}}));
  EXPECT_EQ(h.Output()[0].second, 9);
  h.ClearOutput();
  h.SetProcessingTime(12);
  h.ProcessElement(E("a", 5));
  h.SetProcessingTime(35);  // jumps past the end of [10,20)
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 10, 20, 1, 5}}));
  EXPECT_EQ(h.Counter("Window(Process).numLateRecordsDropped"), 0);
}

TEST(TumblingProcessingTimeWindowsTest, OffsetShiftsWindows) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingProcessingTimeWindows::Of(Duration(10), Duration(3)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.SetProcessingTime(2);
  h.ProcessElement(E("a", 1));  // window [-7,3)
  h.SetProcessingTime(3);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<WindowResult, Timestamp>>{{{"a", -7, 3, 1, 1}, 2}}));
  h.ProcessElement(E("a", 2));  // window [3,13)
  h.SetProcessingTime(11);
  EXPECT_EQ(h.Output().size(), 1u);
  h.SetProcessingTime(12);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", -7, 3, 1, 1}, {"a", 3, 13, 1, 2}}));
}

TEST(SlidingProcessingTimeWindowsTest, RecordGoesToEveryWindowOfItsArrivalTime) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(SlidingProcessingTimeWindows::Of(Duration(10), Duration(5)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.SetProcessingTime(6);
  h.ProcessElement(E("a", 1));
  h.SetProcessingTime(8);
  EXPECT_TRUE(h.Output().empty());
  h.SetProcessingTime(9);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 10, 1, 1}}));
  h.ProcessElement(E("a", 2));  // arrives at 9: windows [0,10) (already due) and [5,15)
  h.SetProcessingTime(14);
  std::vector<WindowResult> got = h.OutputValues();
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got.back(), (WindowResult{"a", 5, 15, 2, 3}));
}

// ---- session windows ----------------------------------------------------------------

TEST(EventTimeSessionWindowsTest, RecordsWithinGapFormOneSession) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithGap(Duration(10)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 0);
  h.ProcessElement(E("a", 2), 5);
  h.ProcessElement(E("a", 4), 30);
  h.ProcessElement(E("b", 8), 3);
  h.ProcessWatermark(12);
  std::vector<WindowResult> got = h.OutputValues();
  EXPECT_EQ(got, (std::vector<WindowResult>{{"b", 3, 13, 1, 8}}));
  h.ProcessWatermark(14);
  got = h.OutputValues();
  EXPECT_EQ(got.back(), (WindowResult{"a", 0, 15, 2, 3}));
  EXPECT_EQ(h.Output().back().second, 14);
  h.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(h.OutputValues().back(), (WindowResult{"a", 30, 40, 1, 4}));
}

TEST(EventTimeSessionWindowsTest, BridgingRecordMergesTwoSessions) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithGap(Duration(10)))
                 .Aggregate(SumCountAggregate{}, LabelAggregated{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 0);    // [0,10)
  h.ProcessElement(E("a", 100), 20);  // [20,30)
  h.ProcessWatermark(5);
  h.ProcessElement(E("a", 10), 10);  // [10,20) touches both
  h.ProcessWatermark(9);
  EXPECT_TRUE(h.Output().empty()) << "the first session was merged and must not fire at its old end";
  h.ProcessWatermark(28);
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(29);
  ASSERT_EQ(h.Output().size(), 1u);
  EXPECT_EQ(h.Output()[0].first, (WindowResult{"a", 0, 30, 3, 111}));
  EXPECT_EQ(h.Output()[0].second, 29);
  h.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(h.Output().size(), 1u);
}

TEST(EventTimeSessionWindowsTest, MergedAggregateWithoutProcessFunction) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithGap(Duration(5)))
                 .Aggregate(SumCountAggregate{});
  Harness<SumCount> h(out);
  h.Open();
  // 0, 12, 6 open three sessions [0,5), [12,17), [6,11); 3 joins the first
  // two into [0,11) and 9 joins that with [12,17).
  for (Timestamp ts : {0, 12, 6, 3, 9}) h.ProcessElement(E("k", ts), ts);
  h.ProcessWatermark(kMaxWatermark);
  ASSERT_EQ(h.Output().size(), 1u);
  EXPECT_EQ(h.Output()[0].first, (SumCount{30, 5}));
  EXPECT_EQ(h.Output()[0].second, 16);
}

TEST(EventTimeSessionWindowsTest, DynamicGapFromRecord) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithDynamicGap<Event>([](const Event& e) { return Duration(e.value); }))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 5), 0);    // [0,5)
  h.ProcessElement(E("a", 20), 10);  // [10,30): separate from [0,5)
  h.ProcessElement(E("a", 1), 29);   // [29,30): inside [10,30)
  h.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 5, 1, 5}, {"a", 10, 30, 2, 21}}));
  EXPECT_THROW(h.ProcessElement(E("a", 0), 100), std::exception);  // a gap must be positive
}

TEST(EventTimeSessionWindowsTest, CountTriggerKeepsCountsAcrossMerges) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithGap(Duration(10)))
                 .Trigger(CountTrigger<Event, TimeWindow>::Of(3))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 0);
  h.ProcessElement(E("a", 2), 20);
  EXPECT_TRUE(h.Output().empty());
  h.ProcessElement(E("a", 4), 10);  // merges into [0,30) holding three records
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 30, 3, 7}}));
}

TEST(EventTimeSessionWindowsTest, NonMergingTriggerIsRejected) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithGap(Duration(10)))
                 .Trigger(ContinuousEventTimeTrigger<Event, TimeWindow>::Of(Duration(5)))
                 .Process(DescribeWindow{});
  EXPECT_THROW(Harness<WindowResult> h(out), std::invalid_argument);
}

TEST(EventTimeSessionWindowsTest, LateRecordMergingIntoKeptSessionRefires) {
  auto env = StreamExecutionEnvironment::Create();
  OutputTag<Event> late("late");
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithGap(Duration(10)))
                 .AllowedLateness(Duration(20))
                 .SideOutputLateData(late)
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.CollectSideOutput(late);
  h.Open();
  h.ProcessElement(E("a", 1), 0);
  h.ProcessWatermark(9);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 10, 1, 1}}));
  h.ProcessElement(E("a", 2), 5);  // extends the fired session to [0,15), not yet due
  EXPECT_EQ(h.Output().size(), 1u);
  h.ProcessWatermark(14);
  EXPECT_EQ(h.OutputValues().back(), (WindowResult{"a", 0, 15, 2, 3}));
  h.ProcessElement(E("a", 4), 2);  // merges into [0,15), which is due: fires at once
  EXPECT_EQ(h.OutputValues().back(), (WindowResult{"a", 0, 15, 3, 7}));
  EXPECT_EQ(h.Output().back().second, 14);
  h.ProcessWatermark(33);
  h.ProcessElement(E("a", 8), 1);  // cleanup at 14 + 20 = 34 > 33: fires again
  EXPECT_EQ(h.OutputValues().back(), (WindowResult{"a", 0, 15, 4, 15}));
  h.ProcessWatermark(34);
  h.ProcessElement(E("a", 16), 3);  // its session [3,13) is late
  EXPECT_EQ(h.SideOutput(late), (std::vector<std::pair<Event, Timestamp>>{{E("a", 16), 3}}));
  EXPECT_EQ(h.Output().size(), 4u);
}

TEST(ProcessingTimeSessionWindowsTest, SessionsCloseAfterGapOfProcessingTime) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(ProcessingTimeSessionWindows::WithGap(Duration(10)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.SetProcessingTime(100);
  h.ProcessElement(E("a", 1));
  h.SetProcessingTime(105);
  h.ProcessElement(E("a", 2));
  h.SetProcessingTime(110);  // the first record's session [100,110) was extended to [100,115)
  EXPECT_TRUE(h.Output().empty());
  h.SetProcessingTime(114);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 100, 115, 2, 3}}));
  EXPECT_EQ(h.Output()[0].second, 114);
  h.SetProcessingTime(200);
  h.ProcessElement(E("a", 5));
  h.SetProcessingTime(209);
  EXPECT_EQ(h.OutputValues().back(), (WindowResult{"a", 200, 210, 1, 5}));
}

// ---- global and count windows -----------------------------------------------------

TEST(GlobalWindowsTest, CountTriggerFiresWithoutPurging) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(GlobalWindows::Create())
                 .Trigger(CountTrigger<Event, GlobalWindow>::Of(3))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  for (int64_t v = 1; v <= 7; ++v) h.ProcessElement(E("a", v));
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 6), E("a", 21)}));
  EXPECT_EQ(h.Output()[0].second, kMaxWatermark);
  h.ProcessWatermark(kMaxWatermark);  // the global window never fires by time
  EXPECT_EQ(h.Output().size(), 2u);
}

TEST(GlobalWindowsTest, PurgingTriggerPurgesOnFire) {
  auto env = StreamExecutionEnvironment::Create();
  auto out =
      env->FromElements<Event>({})
          .KeyBy(KeyOf{})
          .Window(GlobalWindows::Create())
          .Trigger(PurgingTrigger<Event, GlobalWindow>::Of(CountTrigger<Event, GlobalWindow>::Of(3)))
          .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  for (int64_t v = 1; v <= 7; ++v) h.ProcessElement(E(v % 2 == 0 ? "a" : "a", v));
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 6), E("a", 15)}));
}

TEST(GlobalWindowsTest, DefaultTriggerNeverFires) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).Window(GlobalWindows::Create()).Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  for (int64_t v = 1; v <= 5; ++v) h.ProcessElement(E("a", v), v);
  h.ProcessWatermark(kMaxWatermark);
  h.SetProcessingTime(1000000);
  EXPECT_TRUE(h.Output().empty());
}

TEST(CountWindowTest, TumblingCountWindowPerKey) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).CountWindow(3).Process(SumGlobal{});
  Harness<std::vector<int64_t>> h(out);
  h.Open();
  for (int64_t v = 1; v <= 8; ++v) h.ProcessElement(E(v % 2 == 0 ? "even" : "odd", v));
  // odd: 1 3 5 | 7 ; even: 2 4 6 | 8
  EXPECT_EQ(h.OutputValues(), (std::vector<std::vector<int64_t>>{{1, 3, 5}, {2, 4, 6}}));
  for (int64_t v = 9; v <= 12; ++v) h.ProcessElement(E(v % 2 == 0 ? "even" : "odd", v));
  EXPECT_EQ(h.OutputValues(), (std::vector<std::vector<int64_t>>{{1, 3, 5}, {2, 4, 6}, {7, 9, 11}, {8, 10, 12}}));
}

TEST(CountWindowTest, SlidingCountWindowKeepsLastSizeElements) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).CountWindow(4, 2).Process(SumGlobal{});
  Harness<std::vector<int64_t>> h(out);
  h.Open();
  for (int64_t v = 1; v <= 7; ++v) h.ProcessElement(E("a", v));
  EXPECT_EQ(h.OutputValues(), (std::vector<std::vector<int64_t>>{{1, 2}, {1, 2, 3, 4}, {3, 4, 5, 6}}));
}

TEST(CountWindowTest, SlidingCountWindowWithReduce) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({}).KeyBy(KeyOf{}).CountWindow(3, 1).Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  for (int64_t v = 1; v <= 5; ++v) h.ProcessElement(E("a", v));
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 1), E("a", 3), E("a", 6), E("a", 9), E("a", 12)}));
}

// ---- triggers ------------------------------------------------------------------------

TEST(TriggerTest, ContinuousEventTimeTriggerFiresEarlyAndAtEnd) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(100)))
                 .Trigger(ContinuousEventTimeTrigger<Event, TimeWindow>::Of(Duration(30)))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 5), 5);
  h.ProcessElement(E("a", 20), 20);
  h.ProcessWatermark(29);
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(30);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<Event, Timestamp>>{{E("a", 25), 99}}));
  h.ProcessElement(E("a", 40), 40);
  h.ProcessWatermark(60);
  EXPECT_EQ(h.OutputValues().back(), E("a", 65));
  h.ProcessWatermark(99);  // fire time 90, then the end of the window
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 25), E("a", 65), E("a", 65), E("a", 65)}));
  h.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(h.Output().size(), 4u);
}

TEST(TriggerTest, PurgingContinuousEventTimeTriggerEmitsIncrements) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(100)))
                 .Trigger(PurgingTrigger<Event, TimeWindow>::Of(
                     ContinuousEventTimeTrigger<Event, TimeWindow>::Of(Duration(50))))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 10);
  h.ProcessElement(E("a", 2), 20);
  h.ProcessWatermark(50);
  h.ProcessElement(E("a", 4), 60);
  h.ProcessWatermark(99);
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 3), E("a", 4)}));
}

TEST(TriggerTest, ContinuousProcessingTimeTriggerOnGlobalWindow) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(GlobalWindows::Create())
                 .Trigger(ContinuousProcessingTimeTrigger<Event, GlobalWindow>::Of(Duration(10)))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.SetProcessingTime(3);
  h.ProcessElement(E("a", 1));
  h.SetProcessingTime(9);
  EXPECT_TRUE(h.Output().empty());
  h.SetProcessingTime(10);
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 1)}));
  h.ProcessElement(E("a", 2));
  h.SetProcessingTime(20);
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 1), E("a", 3)}));
}

TEST(TriggerTest, ProcessingTimeTriggerOnEventTimeWindows) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Trigger(std::make_shared<ProcessingTimeTrigger<Event, TimeWindow>>())
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 5);
  h.ProcessWatermark(100);  // the cleanup of [0,10) drops it unfired
  EXPECT_TRUE(h.Output().empty());
  h.ProcessElement(E("a", 2), 105);
  h.SetProcessingTime(109);  // processing time reaches the window's max timestamp
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 2)}));
}

TEST(TriggerTest, EventTimeTriggerOnGlobalWindowsNeverFiresBeforeEnd) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(GlobalWindows::Create())
                 .Trigger(std::make_shared<EventTimeTrigger<Event, GlobalWindow>>())
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 5);
  h.ProcessWatermark(1000000);
  EXPECT_TRUE(h.Output().empty());
  h.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 1)}));
}

/// Fires and purges when a record's value reaches a threshold; counts
/// elements in trigger state; records Clear calls.
class ThresholdTrigger final : public Trigger<Event, TimeWindow> {
 public:
  explicit ThresholdTrigger(std::shared_ptr<int> clears) : clears_(std::move(clears)) {}
  TriggerResult OnElement(const Event& e, Timestamp, const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    int64_t& n = ctx.State("n", 0);
    ++n;
    ctx.RegisterEventTimeTimer(w.MaxTimestamp());
    if (e.value >= 100) return TriggerResult::kFireAndPurge;
    if (n == 2) return TriggerResult::kFire;
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    if (time != w.MaxTimestamp()) return TriggerResult::kContinue;
    // Purge without firing when fewer than 3 elements arrived in total.
    return ctx.State("n", 0) >= 3 ? TriggerResult::kFire : TriggerResult::kPurge;
  }
  TriggerResult OnProcessingTime(Timestamp, const TimeWindow&, TriggerContext<TimeWindow>&) override {
    return TriggerResult::kContinue;
  }
  void Clear(const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    ++*clears_;
    ctx.ClearState("n");
    ctx.DeleteEventTimeTimer(w.MaxTimestamp());
  }

 private:
  std::shared_ptr<int> clears_;
};

TEST(TriggerTest, CustomTriggerFireVersusFireAndPurge) {
  auto clears = std::make_shared<int>(0);
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Trigger(std::make_shared<ThresholdTrigger>(clears))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 1);
  h.ProcessElement(E("a", 2), 2);  // second element: FIRE keeps contents
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 10, 2, 3}}));
  h.ProcessElement(E("a", 100), 3);  // FIRE_AND_PURGE
  EXPECT_EQ(h.OutputValues().back(), (WindowResult{"a", 0, 10, 3, 103}));
  h.ProcessElement(E("a", 7), 4);
  h.ProcessWatermark(9);  // n = 4 >= 3: FIRE with what is left after the purge
  EXPECT_EQ(h.OutputValues().back(), (WindowResult{"a", 0, 10, 1, 7}));
  EXPECT_EQ(h.Output().size(), 3u);
  EXPECT_EQ(*clears, 1);  // the window's cleanup clears the trigger

  h.ProcessElement(E("b", 5), 15);
  h.ProcessWatermark(19);  // n = 1: PURGE only, nothing emitted
  EXPECT_EQ(h.Output().size(), 3u);
  EXPECT_EQ(*clears, 2);
}

// ---- evictors ------------------------------------------------------------------------

TEST(EvictorTest, CountEvictorBeforeKeepsLastElements) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(GlobalWindows::Create())
                 .Trigger(CountTrigger<Event, GlobalWindow>::Of(3))
                 .Evictor(CountEvictor<Event, GlobalWindow>::Of(2))
                 .Process(SumGlobal{});
  Harness<std::vector<int64_t>> h(out);
  h.Open();
  for (int64_t v = 1; v <= 6; ++v) h.ProcessElement(E("a", v));
  // Evicted elements are gone for good: the second firing sees 2, 3 kept + 4, 5, 6 -> last two.
  EXPECT_EQ(h.OutputValues(), (std::vector<std::vector<int64_t>>{{2, 3}, {5, 6}}));
}

TEST(EvictorTest, CountEvictorAfterEvictsOnlyAfterTheFunction) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(GlobalWindows::Create())
                 .Trigger(CountTrigger<Event, GlobalWindow>::Of(3))
                 .Evictor(CountEvictor<Event, GlobalWindow>::Of(2, true))
                 .Process(SumGlobal{});
  Harness<std::vector<int64_t>> h(out);
  h.Open();
  for (int64_t v = 1; v <= 6; ++v) h.ProcessElement(E("a", v));
  EXPECT_EQ(h.OutputValues(), (std::vector<std::vector<int64_t>>{{1, 2, 3}, {2, 3, 4, 5, 6}}));
}

TEST(EvictorTest, TimeEvictorKeepsElementsNearTheNewest) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(100)))
                 .Evictor(TimeEvictor<Event, TimeWindow>::Of(Duration(10)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  for (Timestamp ts : {95, 5, 50, 85, 86}) h.ProcessElement(E("a", ts), ts);
  h.ProcessWatermark(99);
  // cut = 95 - 10 = 85: elements with timestamp <= 85 are evicted.
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 100, 2, 95 + 86}}));
}

TEST(EvictorTest, DeltaEvictorKeepsElementsCloseToTheNewest) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(GlobalWindows::Create())
                 .Trigger(CountTrigger<Event, GlobalWindow>::Of(5))
                 .Evictor(DeltaEvictor<Event, GlobalWindow>::Of(
                     5.0, [](const Event& a, const Event& b) { return static_cast<double>(std::abs(a.value - b.value)); }))
                 .Process(SumGlobal{});
  Harness<std::vector<int64_t>> h(out);
  h.Open();
  for (int64_t v : {1, 18, 10, 16, 20}) h.ProcessElement(E("a", v));
  EXPECT_EQ(h.OutputValues(), (std::vector<std::vector<int64_t>>{{18, 16, 20}}));
}

/// Evicts odd values before the function runs.
class OddEvictor final : public Evictor<Event, TimeWindow> {
 public:
  void EvictBefore(std::vector<TimestampedValue<Event>>& elements, const TimeWindow&) override {
    std::erase_if(elements, [](const TimestampedValue<Event>& e) { return e.value.value % 2 != 0; });
  }
  void EvictAfter(std::vector<TimestampedValue<Event>>&, const TimeWindow&) override {}
};

TEST(EvictorTest, CustomEvictorWithReduce) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Evictor(std::make_shared<OddEvictor>())
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  for (int64_t v = 1; v <= 6; ++v) h.ProcessElement(E("a", v), v);
  h.ProcessElement(E("b", 3), 3);  // every element evicted: nothing to reduce
  h.ProcessWatermark(9);
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 12)}));
}

// ---- window functions ----------------------------------------------------------------

TEST(WindowFunctionTest, ProcessSeesKeyWindowAndAllElements) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  for (int64_t v : {1, 2, 3}) h.ProcessElement(E("x", v), v + 10);
  h.ProcessWatermark(19);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<WindowResult, Timestamp>>{{{"x", 10, 20, 3, 6}, 19}}));
}

TEST(WindowFunctionTest, ReduceThenProcessGetsOneValue) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Reduce(SumValues{}, LabelReduced{});
  Harness<WindowResult> h(out);
  h.Open();
  for (int64_t v : {1, 2, 3}) h.ProcessElement(E("x", v), v);
  h.ProcessWatermark(9);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<WindowResult, Timestamp>>{{{"x", 0, 10, 1, 6}, 9}}));
}

TEST(WindowFunctionTest, AggregateThenProcessGetsTheResult) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Aggregate(SumCountAggregate{}, LabelAggregated{});
  Harness<WindowResult> h(out);
  h.Open();
  for (int64_t v : {1, 2, 3, 4}) h.ProcessElement(E("x", v), v);
  h.ProcessWatermark(9);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<WindowResult, Timestamp>>{{{"x", 0, 10, 4, 10}, 9}}));
}

TEST(WindowFunctionTest, SlidingReduceThenProcessSeesEachWindow) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(SlidingEventTimeWindows::Of(Duration(20), Duration(10)))
                 .Reduce(SumValues{}, LabelReduced{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("x", 1), 5);
  h.ProcessElement(E("x", 2), 15);
  h.ProcessWatermark(kMaxWatermark);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"x", -10, 10, 1, 1}, {"x", 0, 20, 1, 3}, {"x", 10, 30, 1, 2}}));
}

/// Emits to a side output from a window function and counts Open/Close.
class SideEmittingWindow : public ProcessWindowFunction<Event, int64_t, std::string, TimeWindow> {
 public:
  explicit SideEmittingWindow(std::shared_ptr<int> opens) : opens_(std::move(opens)) {}
  void Open() override { ++*opens_; }
  void Process(const std::string& key, Context& ctx, const std::vector<Event>& elements,
               Collector<int64_t>& out) override {
    out.Collect(static_cast<int64_t>(elements.size()));
    ctx.Output(OutputTag<std::string>("keys"), key);
  }

 private:
  std::shared_ptr<int> opens_;
};

TEST(WindowFunctionTest, ProcessWindowFunctionSideOutputAndOpen) {
  auto opens = std::make_shared<int>(0);
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .Process(SideEmittingWindow(opens));
  testing::OneInputOperatorHarness<Event, int64_t> h(out);
  OutputTag<std::string> keys("keys");
  h.CollectSideOutput(keys);
  h.Open();
  EXPECT_EQ(*opens, 1);
  h.ProcessElement(E("k", 1), 3);
  h.ProcessWatermark(9);
  EXPECT_EQ(h.OutputValues(), std::vector<int64_t>{1});
  ASSERT_EQ(h.SideOutput(keys).size(), 1u);
  EXPECT_EQ(h.SideOutput(keys)[0], std::make_pair(std::string("k"), Timestamp{9}));
}

// ---- lateness --------------------------------------------------------------------------

TEST(AllowedLatenessTest, LateRecordsRefireUntilCleanupThenDrop) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .AllowedLateness(Duration(5))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 1);
  h.ProcessElement(E("a", 2), 2);
  h.ProcessWatermark(9);
  EXPECT_EQ(h.Output(), (std::vector<std::pair<Event, Timestamp>>{{E("a", 3), 9}}));
  h.ProcessElement(E("a", 4), 3);  // late but within lateness: fires again with the update
  EXPECT_EQ(h.Output().back(), std::make_pair(E("a", 7), Timestamp{9}));
  h.ProcessWatermark(13);
  h.ProcessElement(E("a", 8), 0);  // cleanup time 14 > 13: still kept
  EXPECT_EQ(h.Output().back(), std::make_pair(E("a", 15), Timestamp{9}));
  // A late record of a window never seen before but still within lateness fires at once.
  h.ProcessElement(E("b", 1), 4);
  EXPECT_EQ(h.Output().back(), std::make_pair(E("b", 1), Timestamp{9}));
  h.ProcessWatermark(14);
  h.ProcessElement(E("a", 16), 5);
  EXPECT_EQ(h.Output().size(), 4u);
  EXPECT_EQ(h.Counter("Window(Reduce).numLateRecordsDropped"), 1);
  // Windows that are due at once still wait for their own time.
  h.ProcessElement(E("b", 2), 12);
  EXPECT_EQ(h.Output().size(), 4u);
  h.ProcessWatermark(19);
  EXPECT_EQ(h.Output().back(), std::make_pair(E("b", 2), Timestamp{19}));
}

TEST(AllowedLatenessTest, SideOutputAfterLateness) {
  auto env = StreamExecutionEnvironment::Create();
  OutputTag<Event> late("late-data");
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingEventTimeWindows::Of(Duration(10)))
                 .AllowedLateness(Duration(10))
                 .SideOutputLateData(late)
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.CollectSideOutput(late);
  h.Open();
  h.ProcessElement(E("a", 1), 5);
  h.ProcessWatermark(15);
  h.ProcessElement(E("a", 2), 6);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 10, 1, 1}, {"a", 0, 10, 2, 3}}));
  h.ProcessWatermark(19);
  h.ProcessElement(E("a", 3), 7);
  EXPECT_EQ(h.SideOutput(late), (std::vector<std::pair<Event, Timestamp>>{{E("a", 3), 7}}));
  EXPECT_EQ(h.Output().size(), 2u);
}

TEST(AllowedLatenessTest, SlidingRecordIsLateOnlyWhenAllWindowsAreGone) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(SlidingEventTimeWindows::Of(Duration(20), Duration(10)))
                 .Process(DescribeWindow{});
  Harness<WindowResult> h(out);
  h.Open();
  h.ProcessElement(E("a", 1), 12);
  h.ProcessWatermark(19);  // fires [0,20)
  h.ProcessElement(E("a", 2), 15);  // [0,20) gone, [10,30) still open: not late
  EXPECT_EQ(h.Counter("Window(Process).numLateRecordsDropped"), 0);
  h.ProcessWatermark(29);
  EXPECT_EQ(h.OutputValues(), (std::vector<WindowResult>{{"a", 0, 20, 1, 1}, {"a", 10, 30, 2, 3}}));
  h.ProcessElement(E("a", 4), 15);
  EXPECT_EQ(h.Counter("Window(Process).numLateRecordsDropped"), 1);
}

// ---- state cleanup ------------------------------------------------------------------------

using TumblingSumOperator = internal::WindowOperator<std::string, Event, Event, TumblingEventTimeWindows, KeyOf,
                                                     internal::ReducePolicy<Event, SumValues>, internal::EmitValues>;
using SessionSumOperator =
    internal::WindowOperator<std::string, Event, SumCount, EventTimeSessionWindows, KeyOf,
                             internal::AggregatePolicy<Event, SumCountAggregate>, internal::EmitValues>;
using ProcessingTimeSumOperator =
    internal::WindowOperator<std::string, Event, Event, TumblingProcessingTimeWindows, KeyOf,
                             internal::ReducePolicy<Event, SumValues>, internal::EmitValues>;
using SlidingPaneSumOperator =
    internal::SlidingPaneWindowOperator<std::string, Event, Event, KeyOf, internal::ReducePolicy<Event, SumValues>,
                                        internal::EmitValues>;

/// Fires like EventTimeTrigger but is a user trigger, so the generic window
/// operator runs it through the trigger interface.
class EndOfWindowTrigger final : public Trigger<Event, TimeWindow> {
 public:
  TriggerResult OnElement(const Event&, Timestamp, const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    if (w.MaxTimestamp() <= ctx.GetCurrentWatermark()) return TriggerResult::kFire;
    ctx.RegisterEventTimeTimer(w.MaxTimestamp());
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const TimeWindow& w, TriggerContext<TimeWindow>&) override {
    return time == w.MaxTimestamp() ? TriggerResult::kFire : TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const TimeWindow&, TriggerContext<TimeWindow>&) override {
    return TriggerResult::kContinue;
  }
  void Clear(const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    ctx.DeleteEventTimeTimer(w.MaxTimestamp());
  }
};

/// Open windows (and pending timers) of the operator behind a default-trigger
/// tumbling Reduce, whichever implementation the API picked.
size_t OpenTumblingState(internal::StreamOperator& op) {
  if (auto* w = dynamic_cast<TumblingSumOperator*>(&op)) return w->NumWindowStates() + w->NumTimers();
#if __has_include("freshet/internal/bucketed_window_operator.h")
  using Bucketed = internal::BucketedWindowOperator<std::string, Event, Event, TumblingEventTimeWindows, KeyOf,
                                                    internal::ReducePolicy<Event, SumValues>, internal::EmitValues>;
  if (auto* b = dynamic_cast<Bucketed*>(&op)) return b->NumWindows();
#endif
  ADD_FAILURE() << "unexpected operator type behind a tumbling Reduce";
  return 0;
}

TEST(WindowStateCleanupTest, TumblingWindowsLeaveNoStateAfterFiring) {
  for (bool user_trigger : {false, true}) {
    for (int64_t lateness : {0, 250}) {
      SCOPED_TRACE(::testing::Message() << "user trigger " << user_trigger << ", lateness " << lateness);
      auto env = StreamExecutionEnvironment::Create();
      auto windowed = env->FromElements<Event>({}).KeyBy(KeyOf{}).Window(TumblingEventTimeWindows::Of(Duration(100)));
      windowed.AllowedLateness(Duration(lateness));
      if (user_trigger) windowed.Trigger(std::make_shared<EndOfWindowTrigger>());
      auto out = windowed.Reduce(SumValues{});
      Harness<Event> h(out);
      auto* generic = dynamic_cast<TumblingSumOperator*>(&h.Operator());
      if (user_trigger) {
        ASSERT_NE(generic, nullptr);
      }
      h.Open();
      const std::vector<std::string> keys = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};
      size_t max_states = 0;
      for (int64_t i = 0; i < 100000; ++i) {
        h.ProcessElement(E(keys[static_cast<size_t>(i % 10)], 1), i);
        if (i % 100 == 99) {
          h.ProcessWatermark(i);
          if (generic != nullptr) max_states = std::max(max_states, generic->NumWindowStates());
        }
      }
      EXPECT_LE(max_states, static_cast<size_t>(10 * (1 + lateness / 100 + 1)));
      h.ProcessWatermark(100000 + lateness);
      EXPECT_EQ(h.Output().size(), 10000u);
      for (const auto& [e, ts] : h.Output()) ASSERT_EQ(e.value, 10);
      EXPECT_EQ(OpenTumblingState(h.Operator()), 0u);
      if (generic != nullptr) {
        EXPECT_EQ(generic->NumWindowStates(), 0u);
        EXPECT_EQ(generic->NumTimers(), 0u);
        EXPECT_EQ(generic->LateRecordsDropped(), 0);
      }
      EXPECT_EQ(h.Counter("Window(Reduce).numLateRecordsDropped"), 0);
    }
  }
}

TEST(WindowStateCleanupTest, SessionWindowsLeaveNoState) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(EventTimeSessionWindows::WithGap(Duration(5)))
                 .Aggregate(SumCountAggregate{});
  Harness<SumCount> h(out);
  auto* op = dynamic_cast<SessionSumOperator*>(&h.Operator());
  ASSERT_NE(op, nullptr);
  h.Open();
  // Sessions of 10 records 1 ms apart, separated by 20 ms, for 5 keys.
  int64_t sessions = 0;
  for (int64_t s = 0; s < 1000; ++s) {
    Timestamp base = s * 30;
    for (int64_t k = 0; k < 5; ++k) {
      for (int64_t j = 9; j >= 0; --j) h.ProcessElement(E(KeyName(static_cast<uint64_t>(k)), 1), base + j);  // out of order
      ++sessions;
    }
    h.ProcessWatermark(base + 20);
  }
  h.ProcessWatermark(kMaxWatermark);
  ASSERT_EQ(h.Output().size(), static_cast<size_t>(sessions));
  for (const auto& [r, ts] : h.Output()) ASSERT_EQ(r, (SumCount{10, 10}));
  EXPECT_EQ(op->NumWindowStates(), 0u);
  EXPECT_EQ(op->NumTimers(), 0u);
}

TEST(WindowStateCleanupTest, ProcessingTimeWindowsLeaveNoState) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .KeyBy(KeyOf{})
                 .Window(TumblingProcessingTimeWindows::Of(Duration(10)))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  auto* op = dynamic_cast<ProcessingTimeSumOperator*>(&h.Operator());
  ASSERT_NE(op, nullptr);
  h.Open();
  for (int64_t t = 0; t < 10000; ++t) {
    h.SetProcessingTime(t);
    // A record arriving at a window's last millisecond after it fired would
    // fire it again; keep to one firing per window and key.
    if (t % 10 != 9) h.ProcessElement(E(t % 2 == 0 ? "a" : "b", 1));
  }
  h.SetProcessingTime(10009);
  EXPECT_EQ(h.Output().size(), 2000u);
  EXPECT_EQ(op->NumWindowStates(), 0u);
  EXPECT_EQ(op->NumTimers(), 0u);
}

TEST(WindowStateCleanupTest, SlidingPaneOperatorLeavesNoState) {
  for (int64_t lateness : {0, 35}) {
    auto env = StreamExecutionEnvironment::Create();
    auto out = env->FromElements<Event>({})
                   .KeyBy(KeyOf{})
                   .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10)))
                   .AllowedLateness(Duration(lateness))
                   .Reduce(SumValues{});
    Harness<Event> h(out);
    auto* op = dynamic_cast<SlidingPaneSumOperator*>(&h.Operator());
    ASSERT_NE(op, nullptr) << "sliding event-time Reduce uses the shared-pane operator";
    h.Open();
    for (int64_t i = 0; i < 20000; ++i) {
      h.ProcessElement(E(i % 4 == 0 ? "a" : "b", 1), i);
      if (i % 10 == 9) h.ProcessWatermark(i);
    }
    EXPECT_LE(op->NumPanes(), 2u * (3 + static_cast<size_t>(lateness) / 10 + 2));
    h.ProcessWatermark(20000 + 30 + lateness);
    // 2002 windows per key cover [0, 20000).
    EXPECT_EQ(h.Output().size(), 2u * 2002u) << "lateness " << lateness;
    EXPECT_EQ(op->NumPanes(), 0u) << "lateness " << lateness;
  }
}

// ---- the shared-pane sliding operator against the generic one ---------------------------

struct DifferentialCase {
  int64_t size;
  int64_t slide;
  int64_t offset;
  int64_t lateness;
  bool side_output;
  uint64_t seed;
};

class SlidingPaneEquivalenceTest : public ::testing::TestWithParam<DifferentialCase> {};

TEST_P(SlidingPaneEquivalenceTest, SameResultsAsGenericOperator) {
  const DifferentialCase c = GetParam();
  auto env = StreamExecutionEnvironment::Create();
  OutputTag<Event> late("late");
  auto in = env->FromElements<Event>({});
  auto assigner = SlidingEventTimeWindows::Of(Duration(c.size), Duration(c.slide), Duration(c.offset));
  auto pane_windowed = in.KeyBy(KeyOf{}).Window(assigner);
  auto generic_windowed = in.KeyBy(KeyOf{}).Window(assigner);
  generic_windowed.Evictor(CountEvictor<Event, TimeWindow>::Of(int64_t{1} << 40));
  pane_windowed.AllowedLateness(Duration(c.lateness));
  generic_windowed.AllowedLateness(Duration(c.lateness));
  if (c.side_output) {
    pane_windowed.SideOutputLateData(late);
    generic_windowed.SideOutputLateData(late);
  }
  auto pane_reduce = pane_windowed.Reduce(SumValues{});
  auto generic_reduce = generic_windowed.Reduce(SumValues{});
  auto pane_agg = pane_windowed.Aggregate(SumCountAggregate{}, LabelAggregated{});
  auto generic_agg = generic_windowed.Aggregate(SumCountAggregate{}, LabelAggregated{});
  // A full window function with the default trigger: neither panes nor an evictor.
  auto full = pane_windowed.Process(DescribeWindow{});

  Harness<Event> pr(pane_reduce), gr(generic_reduce);
  Harness<WindowResult> pa(pane_agg), ga(generic_agg), fp(full);
  ASSERT_NE(dynamic_cast<SlidingPaneSumOperator*>(&pr.Operator()), nullptr);
  ASSERT_EQ(dynamic_cast<SlidingPaneSumOperator*>(&gr.Operator()), nullptr);
  if (c.side_output) {
    pr.CollectSideOutput(late);
    gr.CollectSideOutput(late);
    pa.CollectSideOutput(late);
    ga.CollectSideOutput(late);
    fp.CollectSideOutput(late);
  }
  pr.Open();
  gr.Open();
  pa.Open();
  ga.Open();
  fp.Open();

  std::mt19937_64 rng(c.seed);
  Timestamp base = -200;
  Timestamp wm = kNoTimestamp;
  Timestamp max_ts = kNoTimestamp;
  for (int i = 0; i < 3000; ++i) {
    base += static_cast<int64_t>(rng() % 4);
    Timestamp ts = base - static_cast<int64_t>(rng() % 60);  // up to 60 ms out of order
    Event e{KeyName(rng() % 5), static_cast<int64_t>(rng() % 1000)};
    pr.ProcessElement(e, ts);
    gr.ProcessElement(e, ts);
    pa.ProcessElement(e, ts);
    ga.ProcessElement(e, ts);
    fp.ProcessElement(e, ts);
    max_ts = std::max(max_ts, ts);
    if (rng() % 8 == 0) {
      Timestamp next = max_ts - static_cast<int64_t>(rng() % 30);
      if (next > wm) {
        wm = next;
        pr.ProcessWatermark(wm);
        gr.ProcessWatermark(wm);
        pa.ProcessWatermark(wm);
        ga.ProcessWatermark(wm);
        fp.ProcessWatermark(wm);
        // All must have emitted as many results by now.
        ASSERT_EQ(pr.Output().size(), gr.Output().size()) << "after watermark " << wm;
        ASSERT_EQ(pa.Output().size(), ga.Output().size()) << "after watermark " << wm;
        ASSERT_EQ(pa.Output().size(), fp.Output().size()) << "after watermark " << wm;
      }
    }
  }
  pr.ProcessWatermark(kMaxWatermark);
  gr.ProcessWatermark(kMaxWatermark);
  pa.ProcessWatermark(kMaxWatermark);
  ga.ProcessWatermark(kMaxWatermark);
  fp.ProcessWatermark(kMaxWatermark);

  EXPECT_GT(pr.Output().size(), 100u);
  EXPECT_EQ(Sorted(pr.Output()), Sorted(gr.Output()));
  auto pa_out = pa.Output();
  auto ga_out = ga.Output();
  auto by_value = [](const auto& a, const auto& b) { return std::tie(a.second, a.first) < std::tie(b.second, b.first); };
  std::sort(pa_out.begin(), pa_out.end(), by_value);
  std::sort(ga_out.begin(), ga_out.end(), by_value);
  EXPECT_EQ(pa_out, ga_out);
  auto fp_out = fp.Output();
  std::sort(fp_out.begin(), fp_out.end(), by_value);
  EXPECT_EQ(pa_out, fp_out);
  for (const auto& [r, ts] : pa_out) {
    ASSERT_EQ(r.end - r.start, c.size);
    ASSERT_EQ(ts, r.end - 1);
    ASSERT_EQ(((r.start - c.offset) % c.slide + c.slide) % c.slide, 0);
  }
  if (c.side_output) {
    EXPECT_EQ(Sorted(pr.SideOutput(late)), Sorted(gr.SideOutput(late)));
    EXPECT_EQ(pr.SideOutput(late).size(), pa.SideOutput(late).size());
    EXPECT_EQ(pa.SideOutput(late).size(), ga.SideOutput(late).size());
    EXPECT_EQ(Sorted(fp.SideOutput(late)), Sorted(gr.SideOutput(late)));
    EXPECT_EQ(pr.Counter("Window(Reduce).numLateRecordsDropped"), 0);
  } else {
    EXPECT_EQ(pr.Counter("Window(Reduce).numLateRecordsDropped"), gr.Counter("Window(Reduce).numLateRecordsDropped"));
    EXPECT_EQ(pa.Counter("Window(Aggregate, Process).numLateRecordsDropped"),
              ga.Counter("Window(Aggregate, Process).numLateRecordsDropped"));
    EXPECT_EQ(fp.Counter("Window(Process).numLateRecordsDropped"), gr.Counter("Window(Reduce).numLateRecordsDropped"));
  }
  if (c.lateness == 0) {
    // With this input some records are always late.
    int64_t late_count = c.side_output ? static_cast<int64_t>(gr.SideOutput(late).size())
                                       : gr.Counter("Window(Reduce).numLateRecordsDropped");
    EXPECT_GT(late_count, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    RandomOutOfOrderInput, SlidingPaneEquivalenceTest,
    ::testing::Values(DifferentialCase{30, 10, 0, 0, false, 1}, DifferentialCase{30, 10, 0, 0, true, 2},
                      DifferentialCase{30, 10, 0, 25, true, 3}, DifferentialCase{25, 10, 0, 0, true, 4},
                      DifferentialCase{25, 10, 3, 17, false, 5}, DifferentialCase{20, 20, 0, 0, true, 6},
                      DifferentialCase{40, 15, 7, 40, true, 7}, DifferentialCase{100, 1, 0, 5, true, 8},
                      DifferentialCase{7, 3, 1, 0, false, 9}, DifferentialCase{50, 10, 0, 100, true, 10}));

// ---- WindowAll -------------------------------------------------------------------------------

TEST(WindowAllTest, RunsAtParallelismOneOverTheWholeStream) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(4);
  std::vector<Event> input;
  for (int64_t i = 0; i < 1000; ++i) input.push_back(E(KeyName(static_cast<uint64_t>(i % 7)), i));
  auto out = env->FromCollection(input)
                 .Rebalance()
                 .Map([](const Event& e) { return e; })
                 .AssignTimestampsAndWatermarks(WatermarkStrategy<Event>::ForMonotonousTimestamps().WithTimestampAssigner(
                     [](const Event& e) { return e.value; }))
                 .WindowAll(TumblingEventTimeWindows::Of(Duration(100)))
                 .Reduce([](const Event& a, const Event& b) { return Event{"all", a.value + b.value}; });
  const internal::Transformation& t = env->GetTransformation(out.Id());
  EXPECT_EQ(t.parallelism, 1);
  auto results = out.ExecuteAndCollect();
  std::sort(results.begin(), results.end(), [](const Event& a, const Event& b) { return a.value < b.value; });
  ASSERT_EQ(results.size(), 10u);
  for (int64_t w = 0; w < 10; ++w) {
    int64_t sum = 0;
    for (int64_t i = w * 100; i < w * 100 + 100; ++i) sum += i;
    EXPECT_EQ(results[static_cast<size_t>(w)].value, sum);
  }
}

TEST(WindowAllTest, HarnessCountWindowAll) {
  auto env = StreamExecutionEnvironment::Create();
  auto out = env->FromElements<Event>({})
                 .WindowAll(GlobalWindows::Create())
                 .Trigger(PurgingTrigger<Event, GlobalWindow>::Of(CountTrigger<Event, GlobalWindow>::Of(2)))
                 .Reduce(SumValues{});
  Harness<Event> h(out);
  h.Open();
  h.ProcessElement(E("a", 1));
  h.ProcessElement(E("b", 2));
  h.ProcessElement(E("c", 4));
  h.ProcessElement(E("d", 8));
  EXPECT_EQ(h.OutputValues(), (std::vector<Event>{E("a", 3), E("c", 12)}));
}

}  // namespace
}  // namespace freshet
