// Checkpoints of window and join operators: a restored operator continues
// exactly as an uninterrupted one would. Each test runs a random
// out-of-order input (with late records) once without interruption and
// again with snapshots in the middle, restored at the same parallelism and
// split across two subtasks (then merged back), and compares everything
// emitted, results and late data, as multisets.
//
// A restored operator has no watermark until one arrives (as in Flink):
// the restored instances get the last watermark before the snapshot again
// before the input goes on, as upstream watermark generators re-emit theirs
// after a restart. Snapshots are taken right after a watermark.

#include <freshet/freshet.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace freshet {
namespace {

using internal::MemorySnapshotOutput;
using internal::OperatorRestore;

constexpr int kMaxParallelism = 128;

struct Event {
  std::string key;
  int64_t value = 0;
  bool operator==(const Event&) const = default;
  auto operator<=>(const Event&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Event& e) { return os << e.key << ":" << e.value; }

struct KeyOf {
  std::string operator()(const Event& e) const { return e.key; }
};
struct SumValues {
  Event operator()(const Event& a, const Event& b) const { return {a.key, a.value + b.value}; }
};

struct SumCount {
  int64_t sum = 0;
  int64_t count = 0;
  bool operator==(const SumCount&) const = default;
  auto operator<=>(const SumCount&) const = default;
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

/// One firing of a ProcessWindowFunction, with how often the key and the
/// window had fired before (kept in the function's keyed state).
struct Firing {
  std::string key;
  int64_t start = 0;
  int64_t end = 0;
  int64_t count = 0;
  int64_t sum = 0;
  int64_t key_firings = 0;     // GlobalState()
  int64_t window_firings = 0;  // WindowState(): late firings of a window see earlier ones
  bool operator==(const Firing&) const = default;
  auto operator<=>(const Firing&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Firing& f) {
  return os << f.key << "[" << f.start << "," << f.end << ") n=" << f.count << " sum=" << f.sum
            << " key#=" << f.key_firings << " window#=" << f.window_firings;
}

ValueStateDescriptor<int64_t> KeyFirings() { return ValueStateDescriptor<int64_t>("key-firings", 0); }
ValueStateDescriptor<int64_t> WindowFirings() { return ValueStateDescriptor<int64_t>("window-firings", 0); }

/// Reports each firing with counters kept in GlobalState() and WindowState().
template <class W>
class CountFirings : public ProcessWindowFunction<Event, Firing, std::string, W> {
 public:
  using Context = typename ProcessWindowFunction<Event, Firing, std::string, W>::Context;
  void Process(const std::string& key, Context& ctx, const std::vector<Event>& elements,
               Collector<Firing>& out) override {
    ValueState<int64_t>& key_firings = ctx.GlobalState().GetState(KeyFirings());
    ValueState<int64_t>& window_firings = ctx.WindowState().GetState(WindowFirings());
    Firing f{key, 0, 0, static_cast<int64_t>(elements.size()), 0, key_firings.Value(), window_firings.Value()};
    for (const Event& e : elements) f.sum += e.value;
    if constexpr (std::is_same_v<W, TimeWindow>) {
      f.start = ctx.Window().start;
      f.end = ctx.Window().end;
    }
    key_firings.Update(f.key_firings + 1);
    window_firings.Update(f.window_firings + 1);
    out.Collect(f);
  }
  void Clear(Context& ctx) override { ctx.WindowState().GetState(WindowFirings()).Clear(); }
};

/// Keeps its count in an int32 state of the same name as CountFirings' int64 one.
class CountFiringsInInt32 : public ProcessWindowFunction<Event, Firing, std::string, TimeWindow> {
 public:
  void Process(const std::string& key, Context& ctx, const std::vector<Event>&, Collector<Firing>& out) override {
    ValueState<int32_t>& n = ctx.GlobalState().GetState(ValueStateDescriptor<int32_t>("key-firings", 0));
    n.Update(n.Value() + 1);
    out.Collect({key, 0, 0, 0, 0, n.Value(), 0});
  }
};

/// Counts elements in trigger state: fires at the second, fires and purges
/// for a value of 45 or more; at the window's end fires when it saw three
/// or more, else purges.
class ThresholdTrigger final : public Trigger<Event, TimeWindow> {
 public:
  TriggerResult OnElement(const Event& e, Timestamp, const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    int64_t& n = ctx.State("n", 0);
    ++n;
    ctx.RegisterEventTimeTimer(w.MaxTimestamp());
    if (e.value >= 45) return TriggerResult::kFireAndPurge;
    return n == 2 ? TriggerResult::kFire : TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    if (time != w.MaxTimestamp()) return TriggerResult::kContinue;
    return ctx.State("n", 0) >= 3 ? TriggerResult::kFire : TriggerResult::kPurge;
  }
  TriggerResult OnProcessingTime(Timestamp, const TimeWindow&, TriggerContext<TimeWindow>&) override {
    return TriggerResult::kContinue;
  }
  void Clear(const TimeWindow& w, TriggerContext<TimeWindow>& ctx) override {
    ctx.ClearState("n");
    ctx.DeleteEventTimeTimer(w.MaxTimestamp());
  }
};

/// A pair of joined records.
struct Joined {
  std::string key;
  int64_t left = 0;
  int64_t right = 0;
  bool operator==(const Joined&) const = default;
  auto operator<=>(const Joined&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Joined& j) { return os << j.key << ":" << j.left << "-" << j.right; }

class JoinEvents : public ProcessJoinFunction<Event, Event, Joined> {
 public:
  void ProcessElement(const Event& l, const Event& r, Context&, Collector<Joined>& out) override {
    out.Collect({l.key, l.value, r.value});
  }
};

/// Another left type for the interval join (a changed type on restore).
struct Reading {
  std::string key;
  double value = 0;
};
struct ReadingKey {
  std::string operator()(const Reading& r) const { return r.key; }
};
class JoinReadings : public ProcessJoinFunction<Reading, Event, Joined> {
 public:
  void ProcessElement(const Reading& l, const Event& r, Context&, Collector<Joined>& out) override {
    out.Collect({l.key, static_cast<int64_t>(l.value), r.value});
  }
};

// ---- the input -------------------------------------------------------------------

/// "k00".."k15" (a table: building them with operator+ trips a GCC -O3 false positive).
const std::string& KeyName(uint64_t i) {
  static const std::vector<std::string> names = {"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07",
                                                 "k08", "k09", "k10", "k11", "k12", "k13", "k14", "k15"};
  return names.at(i % names.size());
}

struct Step {
  enum class Kind { kTime, kRecord, kWatermark };
  Kind kind = Kind::kRecord;
  Event event;
  Timestamp time = 0;  // processing time, record timestamp or watermark
};
Step Time(Timestamp t) { return {Step::Kind::kTime, {}, t}; }
Step Record(const std::string& key, int64_t value, Timestamp ts) { return {Step::Kind::kRecord, {key, value}, ts}; }
Step Watermark(Timestamp wm) { return {Step::Kind::kWatermark, {}, wm}; }

struct Input {
  std::vector<Step> steps;
  /// Where a snapshot may be taken: right after a watermark, before the
  /// next processing-time step.
  std::vector<size_t> cut_points;
};

/// Ticks of processing time, each with a few records whose timestamps lag
/// the highest so far by up to `disorder` (mostly by little), then the
/// watermark highest - disorder / 2 when it advances: some records are
/// late, some within allowed lateness. Ends with the final watermark and
/// a processing time past every window.
Input RandomInput(uint64_t seed, int ticks = 150, int64_t disorder = 30) {
  std::mt19937_64 rng(seed);
  Input in;
  Timestamp now = 1000;
  Timestamp max_ts = 0;
  Timestamp watermark = kNoTimestamp;
  for (int t = 0; t < ticks; ++t) {
    now += 1 + static_cast<int64_t>(rng() % 6);
    in.steps.push_back(Time(now));
    int records = static_cast<int>(rng() % 5);
    for (int i = 0; i < records; ++i) {
      max_ts += static_cast<int64_t>(rng() % 4);
      uint64_t r = rng() % 8;
      uint64_t max_lag = r < 5 ? 3 : static_cast<uint64_t>(disorder);
      int64_t lag = static_cast<int64_t>(rng() % (max_lag + 1));
      in.steps.push_back(Record(KeyName(rng()), 1 + static_cast<int64_t>(rng() % 50), max_ts - lag));
    }
    Timestamp wm = max_ts - disorder / 2;
    if (wm > watermark) {
      watermark = wm;
      in.steps.push_back(Watermark(wm));
      in.cut_points.push_back(in.steps.size());
    }
  }
  in.steps.push_back(Watermark(kMaxWatermark));
  in.steps.push_back(Time(now + 100000));
  return in;
}

// ---- operator instances ------------------------------------------------------------

/// One subtask of the operator under test, fed Events.
template <class OUT>
class Instance {
 public:
  virtual ~Instance() = default;
  virtual void Record(const Event& e, Timestamp ts) = 0;
  virtual void Watermark(Timestamp wm) = 0;
  virtual void Time(Timestamp t) = 0;
  virtual MemorySnapshotOutput Snapshot(CheckpointId id) = 0;
  virtual std::vector<std::pair<OUT, Timestamp>> Output() const = 0;
  virtual std::vector<std::pair<Event, Timestamp>> Late() const = 0;
};

/// Creates subtask `subtask` of `parallelism`, restored from `restore` when not null, and opens it.
template <class OUT>
using Factory = std::function<std::unique_ptr<Instance<OUT>>(int subtask, int parallelism, const OperatorRestore*)>;

/// A one-input operator; `convert` turns Events into its input type.
template <class IN, class OUT>
class OneInputInstance final : public Instance<OUT> {
 public:
  OneInputInstance(const DataStream<OUT>& stream, std::function<IN(const Event&)> convert,
                   const std::optional<OutputTag<Event>>& late, int subtask, int parallelism,
                   const OperatorRestore* restore)
      : h_(stream, subtask, parallelism, kMaxParallelism), convert_(std::move(convert)), late_(late) {
    if constexpr (std::is_same_v<IN, Event>) {
      if (late_) h_.CollectSideOutput(*late_);
    }
    if (restore != nullptr) h_.InitializeState(*restore);
    h_.Open();
  }
  void Record(const Event& e, Timestamp ts) override { h_.ProcessElement(convert_(e), ts); }
  void Watermark(Timestamp wm) override { h_.ProcessWatermark(wm); }
  void Time(Timestamp t) override { h_.SetProcessingTime(t); }
  MemorySnapshotOutput Snapshot(CheckpointId id) override { return h_.Snapshot(id); }
  std::vector<std::pair<OUT, Timestamp>> Output() const override { return h_.Output(); }
  std::vector<std::pair<Event, Timestamp>> Late() const override {
    if constexpr (std::is_same_v<IN, Event>) {
      if (late_) return h_.SideOutput(*late_);
    }
    return {};
  }

 private:
  testing::OneInputOperatorHarness<IN, OUT> h_;
  std::function<IN(const Event&)> convert_;
  std::optional<OutputTag<Event>> late_;
};

/// An interval join of Events: odd values are left records, even ones right records.
class IntervalJoinInstance final : public Instance<Joined> {
 public:
  IntervalJoinInstance(const DataStream<Joined>& stream, int subtask, int parallelism, const OperatorRestore* restore)
      : h_(stream, subtask, parallelism, kMaxParallelism) {
    if (restore != nullptr) h_.InitializeState(*restore);
    h_.Open();
  }
  void Record(const Event& e, Timestamp ts) override {
    if (e.value % 2 != 0) {
      h_.ProcessElement1(e, ts);
    } else {
      h_.ProcessElement2(e, ts);
    }
  }
  void Watermark(Timestamp wm) override {
    h_.ProcessWatermark1(wm);
    h_.ProcessWatermark2(wm);
  }
  void Time(Timestamp t) override { h_.SetProcessingTime(t); }
  MemorySnapshotOutput Snapshot(CheckpointId id) override { return h_.Snapshot(id); }
  std::vector<std::pair<Joined, Timestamp>> Output() const override { return h_.Output(); }
  std::vector<std::pair<Event, Timestamp>> Late() const override { return {}; }

 private:
  testing::TwoInputOperatorHarness<Event, Event, Joined> h_;
};

template <class OUT>
Factory<OUT> WindowFactory(DataStream<OUT> stream, std::optional<OutputTag<Event>> late = std::nullopt) {
  return [stream, late](int subtask, int parallelism,
                        const OperatorRestore* restore) -> std::unique_ptr<Instance<OUT>> {
    return std::make_unique<OneInputInstance<Event, OUT>>(stream, [](const Event& e) { return e; }, late, subtask,
                                                          parallelism, restore);
  };
}

// ---- running inputs ------------------------------------------------------------------

template <class OUT>
using Instances = std::vector<std::unique_ptr<Instance<OUT>>>;

/// Skips the watermark of step `index` for `subtask` (a lagging subtask).
using SkipWatermark = std::function<bool(int subtask, size_t index)>;

/// Feeds steps [begin, end): each record to the subtask owning its key's
/// group, watermarks and processing time to all.
template <class OUT>
void Feed(Instances<OUT>& instances, const std::vector<Step>& steps, size_t begin, size_t end,
          const SkipWatermark& skip = nullptr) {
  const int parallelism = static_cast<int>(instances.size());
  for (size_t i = begin; i < end; ++i) {
    const Step& s = steps[i];
    switch (s.kind) {
      case Step::Kind::kRecord: {
        int kg = AssignToKeyGroup(s.event.key, kMaxParallelism);
        for (int subtask = 0; subtask < parallelism; ++subtask) {
          if (KeyGroupRangeForSubtask(subtask, parallelism, kMaxParallelism).Contains(kg)) {
            instances[static_cast<size_t>(subtask)]->Record(s.event, s.time);
          }
        }
        break;
      }
      case Step::Kind::kWatermark:
        for (int subtask = 0; subtask < parallelism; ++subtask) {
          if (!skip || !skip(subtask, i)) instances[static_cast<size_t>(subtask)]->Watermark(s.time);
        }
        break;
      case Step::Kind::kTime:
        for (auto& instance : instances) instance->Time(s.time);
        break;
    }
  }
}

/// Gives restored instances the last watermark before step `index` again.
template <class OUT>
void ReplayWatermark(Instances<OUT>& instances, const std::vector<Step>& steps, size_t index) {
  for (size_t i = index; i-- > 0;) {
    if (steps[i].kind != Step::Kind::kWatermark) continue;
    for (auto& instance : instances) instance->Watermark(steps[i].time);
    return;
  }
}

template <class OUT>
struct Results {
  std::vector<std::pair<OUT, Timestamp>> records;
  std::vector<std::pair<Event, Timestamp>> late;
  void Add(const Instance<OUT>& instance) {
    auto r = instance.Output();
    records.insert(records.end(), r.begin(), r.end());
    auto l = instance.Late();
    late.insert(late.end(), l.begin(), l.end());
  }
};

template <class OUT>
Instances<OUT> Create(const Factory<OUT>& make, int parallelism,
                      const std::vector<MemorySnapshotOutput>* restore_from) {
  Instances<OUT> instances;
  for (int subtask = 0; subtask < parallelism; ++subtask) {
    if (restore_from == nullptr) {
      instances.push_back(make(subtask, parallelism, nullptr));
    } else {
      OperatorRestore restore = testing::RestoreFromSnapshots(*restore_from, subtask, parallelism, kMaxParallelism);
      instances.push_back(make(subtask, parallelism, &restore));
    }
  }
  return instances;
}

/// Runs the input in stages (first step, parallelism): the first stage
/// starts empty, each later one is restored from the snapshots that the
/// previous stage's subtasks took when it ended (or starts empty again
/// when `lose_state`).
template <class OUT>
Results<OUT> RunInStages(const Factory<OUT>& make, const Input& in, const std::vector<std::pair<size_t, int>>& stages,
                         bool lose_state = false) {
  Results<OUT> results;
  std::vector<MemorySnapshotOutput> snapshots;
  for (size_t k = 0; k < stages.size(); ++k) {
    const auto [begin, parallelism] = stages[k];
    const size_t end = k + 1 < stages.size() ? stages[k + 1].first : in.steps.size();
    Instances<OUT> instances = Create(make, parallelism, k == 0 || lose_state ? nullptr : &snapshots);
    if (k > 0) ReplayWatermark(instances, in.steps, begin);
    Feed(instances, in.steps, begin, end);
    snapshots.clear();
    for (auto& instance : instances) {
      results.Add(*instance);
      if (k + 1 < stages.size()) snapshots.push_back(instance->Snapshot(static_cast<CheckpointId>(k + 1)));
    }
  }
  return results;
}

template <class T>
std::string Show(const std::vector<std::pair<T, Timestamp>>& v) {
  std::ostringstream os;
  for (size_t i = 0; i < v.size() && i < 8; ++i) os << " {" << v[i].first << " @" << v[i].second << "}";
  if (v.size() > 8) os << " ... (" << v.size() << ")";
  return os.str();
}

/// Compares as multisets and shows what is missing and what is unexpected.
template <class T>
void ExpectSameMultiset(std::vector<std::pair<T, Timestamp>> expected, std::vector<std::pair<T, Timestamp>> got,
                        const std::string& what) {
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  if (expected == got) return;
  std::vector<std::pair<T, Timestamp>> missing;
  std::vector<std::pair<T, Timestamp>> unexpected;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(), std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(), std::back_inserter(unexpected));
  ADD_FAILURE() << what << ": " << expected.size() << " expected, " << got.size() << " emitted; missing"
                << Show(missing) << "; unexpected" << Show(unexpected);
}

template <class T>
bool SameMultiset(std::vector<T> a, std::vector<T> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

template <class OUT>
void ExpectSameResults(const Results<OUT>& expected, const Results<OUT>& got, const std::string& what) {
  ExpectSameMultiset(expected.records, got.records, what + " (results)");
  ExpectSameMultiset(expected.late, got.late, what + " (late data)");
}

/// The uninterrupted run against runs restored at the same parallelism,
/// split across two subtasks, and split then merged back.
template <class OUT>
void ExpectRestoresContinueExactly(const Factory<OUT>& make, const Input& in) {
  Results<OUT> expected = RunInStages(make, in, {{0, 1}});
  ASSERT_GT(expected.records.size(), 20u);
  ASSERT_GE(in.cut_points.size(), 6u);
  const size_t a = in.cut_points[in.cut_points.size() / 3];
  const size_t b = in.cut_points[2 * in.cut_points.size() / 3];
  // The input exercises the state: losing it at the snapshot changes the output.
  Results<OUT> lost = RunInStages(make, in, {{0, 1}, {a, 1}}, /*lose_state=*/true);
  EXPECT_FALSE(SameMultiset(expected.records, lost.records) && SameMultiset(expected.late, lost.late))
      << "the output does not depend on the restored state";
  ExpectSameResults(expected, RunInStages(make, in, {{0, 1}, {a, 1}}), "restored at parallelism 1");
  ExpectSameResults(expected, RunInStages(make, in, {{0, 1}, {b, 2}}), "restored across 2 subtasks");
  ExpectSameResults(expected, RunInStages(make, in, {{0, 1}, {a, 1}, {b, 1}}), "restored twice");
  ExpectSameResults(expected, RunInStages(make, in, {{0, 1}, {a, 2}, {b, 1}}),
                    "split across 2 subtasks, then merged back into 1");
}

/// Two subtasks whose watermarks differ at the snapshot (subtask 1 misses
/// the last watermarks before it) merge into one: the merged operator
/// emits what the two would have, without firing a window twice for the
/// keys of the subtask that was ahead.
template <class OUT>
void ExpectMergeOfSubtasksAtDifferentWatermarks(const Factory<OUT>& make, const Input& in) {
  const size_t mid = in.cut_points.size() / 2;
  ASSERT_GE(mid, 8u);
  const size_t cut = in.cut_points[mid];
  const size_t lag_begin = in.cut_points[mid - 8];
  SkipWatermark lagging = [&](int subtask, size_t i) { return subtask == 1 && i >= lag_begin && i < cut; };

  Results<OUT> expected;
  Instances<OUT> reference = Create<OUT>(make, 2, nullptr);
  Feed(reference, in.steps, 0, cut, lagging);
  ReplayWatermark(reference, in.steps, cut);
  Feed(reference, in.steps, cut, in.steps.size());
  for (auto& instance : reference) expected.Add(*instance);

  Results<OUT> got;
  std::vector<MemorySnapshotOutput> snapshots;
  {
    Instances<OUT> old = Create<OUT>(make, 2, nullptr);
    Feed(old, in.steps, 0, cut, lagging);
    for (auto& instance : old) {
      got.Add(*instance);
      snapshots.push_back(instance->Snapshot(CheckpointId(1)));
    }
  }
  Instances<OUT> merged = Create(make, 1, &snapshots);
  ReplayWatermark(merged, in.steps, cut);
  Feed(merged, in.steps, cut, in.steps.size());
  got.Add(*merged[0]);
  ExpectSameResults(expected, got, "merged from subtasks at different watermarks");
}

// ---- tumbling and sliding event-time windows ---------------------------------------------

class WindowSnapshotTest : public ::testing::Test {
 protected:
  std::unique_ptr<StreamExecutionEnvironment> env_ = StreamExecutionEnvironment::Create();
  auto Keyed() { return env_->FromElements<Event>({}).KeyBy(KeyOf{}); }
};

TEST_F(WindowSnapshotTest, TumblingReduce) {
  auto out = Keyed().Window(TumblingEventTimeWindows::Of(Duration(20))).Reduce(SumValues{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(1));
}

TEST_F(WindowSnapshotTest, TumblingAggregate) {
  auto out = Keyed().Window(TumblingEventTimeWindows::Of(Duration(20))).Aggregate(SumCountAggregate{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(2));
}

TEST_F(WindowSnapshotTest, TumblingProcessWithKeyedAndWindowState) {
  auto out = Keyed()
                 .Window(TumblingEventTimeWindows::Of(Duration(20)))
                 .AllowedLateness(Duration(15))
                 .Process(CountFirings<TimeWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(3));
}

TEST_F(WindowSnapshotTest, SlidingPanesReduce) {
  auto out = Keyed().Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10))).Reduce(SumValues{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(4));
}

TEST_F(WindowSnapshotTest, SlidingPanesAggregateWithLateness) {
  auto out = Keyed()
                 .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10)))
                 .AllowedLateness(Duration(12))
                 .Aggregate(SumCountAggregate{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(5));
}

TEST_F(WindowSnapshotTest, SlidingPanesReduceWithProcessState) {
  auto out = Keyed()
                 .Window(SlidingEventTimeWindows::Of(Duration(25), Duration(10), Duration(3)))
                 .Reduce(SumValues{}, CountFirings<TimeWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(6));
}

TEST_F(WindowSnapshotTest, SlidingProcess) {
  auto out = Keyed()
                 .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10)))
                 .AllowedLateness(Duration(10))
                 .Process(CountFirings<TimeWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(7));
}

// ---- sessions, count windows, evictors, triggers ------------------------------------------

TEST_F(WindowSnapshotTest, SessionWindowsProcess) {
  auto out = Keyed().Window(EventTimeSessionWindows::WithGap(Duration(8))).Process(CountFirings<TimeWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(8, 150, 20));
}

TEST_F(WindowSnapshotTest, SessionWindowsAggregateWithLateness) {
  auto out = Keyed()
                 .Window(EventTimeSessionWindows::WithGap(Duration(6)))
                 .AllowedLateness(Duration(10))
                 .Aggregate(SumCountAggregate{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(9, 150, 20));
}

TEST_F(WindowSnapshotTest, CountWindowReduce) {
  auto out = Keyed().CountWindow(3).Reduce(SumValues{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(10));
}

TEST_F(WindowSnapshotTest, SlidingCountWindowProcess) {
  auto out = Keyed().CountWindow(4, 2).Process(CountFirings<GlobalWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(11));
}

TEST_F(WindowSnapshotTest, TimeEvictorWithLateness) {
  auto out = Keyed()
                 .Window(TumblingEventTimeWindows::Of(Duration(20)))
                 .AllowedLateness(Duration(10))
                 .Evictor(TimeEvictor<Event, TimeWindow>::Of(Duration(6)))
                 .Process(CountFirings<TimeWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(12));
}

TEST_F(WindowSnapshotTest, CountEvictorReduce) {
  auto out = Keyed()
                 .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(15)))
                 .Evictor(CountEvictor<Event, TimeWindow>::Of(3))
                 .Reduce(SumValues{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(13));
}

TEST_F(WindowSnapshotTest, CustomTriggerWithTriggerState) {
  auto out = Keyed()
                 .Window(TumblingEventTimeWindows::Of(Duration(20)))
                 .AllowedLateness(Duration(10))
                 .Trigger(std::make_shared<ThresholdTrigger>())
                 .Process(CountFirings<TimeWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(14));
}

TEST_F(WindowSnapshotTest, ContinuousEventTimeTrigger) {
  auto out = Keyed()
                 .Window(TumblingEventTimeWindows::Of(Duration(40)))
                 .Trigger(ContinuousEventTimeTrigger<Event, TimeWindow>::Of(Duration(10)))
                 .Reduce(SumValues{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(15));
}

// ---- processing time, late data --------------------------------------------------------

TEST_F(WindowSnapshotTest, TumblingProcessingTimeProcess) {
  auto out = Keyed().Window(TumblingProcessingTimeWindows::Of(Duration(15))).Process(CountFirings<TimeWindow>{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(16));
}

TEST_F(WindowSnapshotTest, SlidingProcessingTimeReduce) {
  auto out = Keyed().Window(SlidingProcessingTimeWindows::Of(Duration(20), Duration(5))).Reduce(SumValues{});
  ExpectRestoresContinueExactly(WindowFactory(out), RandomInput(17));
}

TEST_F(WindowSnapshotTest, LateDataWithAllowedLateness) {
  OutputTag<Event> late("late");
  auto out = Keyed()
                 .Window(TumblingEventTimeWindows::Of(Duration(20)))
                 .AllowedLateness(Duration(8))
                 .SideOutputLateData(late)
                 .Reduce(SumValues{});
  Input in = RandomInput(18);
  ExpectRestoresContinueExactly(WindowFactory(out, late), in);
  Results<Event> run = RunInStages(WindowFactory(out, late), in, {{0, 1}});
  EXPECT_FALSE(run.late.empty()) << "the input must have records behind the allowed lateness";
}

TEST_F(WindowSnapshotTest, LateDataOfSessionsAndSlidingWindows) {
  OutputTag<Event> late("late");
  auto sessions = Keyed()
                      .Window(EventTimeSessionWindows::WithGap(Duration(6)))
                      .AllowedLateness(Duration(5))
                      .SideOutputLateData(late)
                      .Reduce(SumValues{});
  ExpectRestoresContinueExactly(WindowFactory(sessions, late), RandomInput(19));
  auto panes = Keyed()
                   .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10)))
                   .AllowedLateness(Duration(5))
                   .SideOutputLateData(late)
                   .Aggregate(SumAggregate{});
  ExpectRestoresContinueExactly(WindowFactory(panes, late), RandomInput(20));
}

// ---- joins -----------------------------------------------------------------------------------

TEST_F(WindowSnapshotTest, IntervalJoin) {
  auto left = env_->FromElements<Event>({});
  auto right = env_->FromElements<Event>({});
  auto joined =
      left.KeyBy(KeyOf{}).IntervalJoin(right.KeyBy(KeyOf{})).Between(Duration(-10), Duration(15)).Process(JoinEvents{});
  Factory<Joined> make = [joined](int subtask, int parallelism, const OperatorRestore* restore) {
    return std::make_unique<IntervalJoinInstance>(joined, subtask, parallelism, restore);
  };
  ExpectRestoresContinueExactly(make, RandomInput(21));
}

using Tagged = internal::TaggedUnion<Event, Event>;

/// Odd values are left records, even ones right records.
Tagged ToTagged(const Event& e) {
  Tagged t;
  if (e.value % 2 != 0) {
    t.tag = 1;
    t.one = e;
  } else {
    t.tag = 2;
    t.two = e;
  }
  return t;
}

template <class Assigner>
Factory<Joined> WindowJoinFactory(StreamExecutionEnvironment& env, Assigner assigner) {
  auto left = env.FromElements<Event>({});
  auto right = env.FromElements<Event>({});
  auto joined = left.Join(right).Where(KeyOf{}).EqualTo(KeyOf{}).Window(assigner).template Apply<Joined>(
      [](const Event& l, const Event& r) { return Joined{l.key, l.value, r.value}; });
  return [joined](int subtask, int parallelism, const OperatorRestore* restore) -> std::unique_ptr<Instance<Joined>> {
    return std::make_unique<OneInputInstance<Tagged, Joined>>(joined, ToTagged, std::nullopt, subtask, parallelism,
                                                              restore);
  };
}

TEST_F(WindowSnapshotTest, WindowJoin) {
  ExpectRestoresContinueExactly(WindowJoinFactory(*env_, TumblingEventTimeWindows::Of(Duration(20))),
                                RandomInput(22));
}

TEST_F(WindowSnapshotTest, WindowJoinOverSessions) {
  ExpectRestoresContinueExactly(WindowJoinFactory(*env_, EventTimeSessionWindows::WithGap(Duration(25))),
                                RandomInput(23, 150, 20));
}

// ---- rescaling from subtasks at different watermarks --------------------------------------

TEST_F(WindowSnapshotTest, MergingSubtasksAtDifferentWatermarks) {
  Input in = RandomInput(24, 200);
  {
    // Lateness beyond the lag: windows that fired on subtask 0 only are kept.
    SCOPED_TRACE("bucketed windows");
    auto out = Keyed()
                   .Window(TumblingEventTimeWindows::Of(Duration(20)))
                   .AllowedLateness(Duration(25))
                   .Process(CountFirings<TimeWindow>{});
    ExpectMergeOfSubtasksAtDifferentWatermarks(WindowFactory(out), in);
  }
  {
    SCOPED_TRACE("sliding panes");
    auto out = Keyed()
                   .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10)))
                   .AllowedLateness(Duration(12))
                   .Aggregate(SumCountAggregate{});
    ExpectMergeOfSubtasksAtDifferentWatermarks(WindowFactory(out), in);
  }
  {
    SCOPED_TRACE("sliding panes without lateness");
    auto out = Keyed().Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10))).Reduce(SumValues{});
    ExpectMergeOfSubtasksAtDifferentWatermarks(WindowFactory(out), in);
  }
  {
    SCOPED_TRACE("generic window operator");
    auto out = Keyed()
                   .Window(TumblingEventTimeWindows::Of(Duration(20)))
                   .AllowedLateness(Duration(10))
                   .Evictor(CountEvictor<Event, TimeWindow>::Of(100))
                   .Process(CountFirings<TimeWindow>{});
    ExpectMergeOfSubtasksAtDifferentWatermarks(WindowFactory(out), in);
  }
  {
    SCOPED_TRACE("sessions");
    auto out = Keyed().Window(EventTimeSessionWindows::WithGap(Duration(8))).Process(CountFirings<TimeWindow>{});
    ExpectMergeOfSubtasksAtDifferentWatermarks(WindowFactory(out), in);
  }
}

// ---- right after a restore, before any watermark ---------------------------------------------

/// A record within allowed lateness for a window that fired before the
/// snapshot arrives before the restored operator has seen a watermark: it
/// must fire the window at once, as the uninterrupted operator does, and
/// the window must not fire again when the watermark comes.
template <class OUT>
void ExpectLateFiringRightAfterRestore(const Factory<OUT>& make) {
  const std::vector<Step> before = {Time(1), Record("a", 1, 5), Record("b", 2, 6), Record("a", 4, 30),
                                    Watermark(25)};
  const std::vector<Step> after = {Record("a", 8, 7), Record("b", 16, 12), Record("a", 32, 11), Watermark(40),
                                   Watermark(kMaxWatermark)};
  Instances<OUT> reference = Create<OUT>(make, 1, nullptr);
  Feed(reference, before, 0, before.size());
  const size_t emitted_before = reference[0]->Output().size();
  std::vector<MemorySnapshotOutput> snapshots;
  {
    Instances<OUT> old = Create<OUT>(make, 1, nullptr);
    Feed(old, before, 0, before.size());
    snapshots.push_back(old[0]->Snapshot(CheckpointId(1)));
  }
  Instances<OUT> restored = Create(make, 1, &snapshots);
  for (size_t i = 0; i < after.size(); ++i) {
    Feed(reference, after, i, i + 1);
    Feed(restored, after, i, i + 1);
    auto expected = reference[0]->Output();
    expected.erase(expected.begin(), expected.begin() + static_cast<std::ptrdiff_t>(emitted_before));
    ExpectSameMultiset(expected, restored[0]->Output(), "after step " + std::to_string(i) + " since the restore");
  }
}

TEST_F(WindowSnapshotTest, LateRecordRightAfterRestoreFiresItsWindowOnce) {
  {
    SCOPED_TRACE("bucketed windows");
    auto out = Keyed().Window(TumblingEventTimeWindows::Of(Duration(20))).AllowedLateness(Duration(10)).Reduce(
        SumValues{});
    ExpectLateFiringRightAfterRestore(WindowFactory(out));
  }
  {
    SCOPED_TRACE("sliding panes");
    auto out = Keyed()
                   .Window(SlidingEventTimeWindows::Of(Duration(20), Duration(10)))
                   .AllowedLateness(Duration(10))
                   .Aggregate(SumCountAggregate{});
    ExpectLateFiringRightAfterRestore(WindowFactory(out));
  }
  {
    SCOPED_TRACE("generic window operator");
    auto out = Keyed()
                   .Window(TumblingEventTimeWindows::Of(Duration(20)))
                   .AllowedLateness(Duration(10))
                   .Evictor(CountEvictor<Event, TimeWindow>::Of(100))
                   .Process(CountFirings<TimeWindow>{});
    ExpectLateFiringRightAfterRestore(WindowFactory(out));
  }
}

// ---- changed types ------------------------------------------------------------------------

/// Restoring `snapshot` into `stream`'s operator fails, naming the state and both types.
template <class IN, class OUT>
void ExpectRestoreFails(const DataStream<OUT>& stream, const MemorySnapshotOutput& snapshot, const std::string& state,
                        const std::string& old_type, const std::string& new_type) {
  testing::OneInputOperatorHarness<IN, OUT> h(stream);
  try {
    h.InitializeState(snapshot.AsRestore());
    ADD_FAILURE() << "restoring '" << state << "' with a changed type must fail";
  } catch (const internal::NonRecoverableError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("'" + state + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + old_type + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + new_type + "'"), std::string::npos) << message;
  }
}

/// A snapshot of `stream`'s operator holding a few windows.
template <class OUT>
MemorySnapshotOutput SnapshotWithWindows(const DataStream<OUT>& stream) {
  testing::OneInputOperatorHarness<Event, OUT> h(stream);
  h.Open();
  for (Timestamp ts : {1, 5, 22, 27}) h.ProcessElement(Event{"a", ts}, ts);
  return h.Snapshot(CheckpointId(1));
}

TEST_F(WindowSnapshotTest, ChangedContentsTypeFailsWithStateAndBothTypes) {
  using internal::TypeNameOf;
  const std::string old_type = TypeNameOf<std::optional<int64_t>>();
  const std::string new_type = TypeNameOf<std::optional<SumCount>>();
  {
    SCOPED_TRACE("bucketed windows");
    auto tumbling = Keyed().Window(TumblingEventTimeWindows::Of(Duration(20)));
    auto snapshot = SnapshotWithWindows(tumbling.Aggregate(SumAggregate{}));
    ExpectRestoreFails<Event>(tumbling.Aggregate(SumCountAggregate{}), snapshot, "window-buckets", old_type, new_type);
  }
  {
    SCOPED_TRACE("sliding panes");
    auto sliding = Keyed().Window(SlidingEventTimeWindows::Of(Duration(20), Duration(10)));
    auto snapshot = SnapshotWithWindows(sliding.Aggregate(SumAggregate{}));
    ExpectRestoreFails<Event>(sliding.Aggregate(SumCountAggregate{}), snapshot, "window-panes", old_type, new_type);
  }
  {
    SCOPED_TRACE("generic window operator");
    auto sessions = Keyed().Window(EventTimeSessionWindows::WithGap(Duration(10)));
    auto snapshot = SnapshotWithWindows(sessions.Aggregate(SumAggregate{}));
    ExpectRestoreFails<Event>(sessions.Aggregate(SumCountAggregate{}), snapshot, "window-contents", old_type,
                              new_type);
  }
}

TEST_F(WindowSnapshotTest, ChangedIntervalJoinTypeFailsWithStateAndBothTypes) {
  auto events = env_->FromElements<Event>({});
  auto readings = env_->FromElements<Reading>({});
  auto before = events.KeyBy(KeyOf{}).IntervalJoin(events.KeyBy(KeyOf{})).Between(Duration(-5), Duration(5)).Process(
      JoinEvents{});
  auto after = readings.KeyBy(ReadingKey{})
                   .IntervalJoin(events.KeyBy(KeyOf{}))
                   .Between(Duration(-5), Duration(5))
                   .Process(JoinReadings{});
  testing::TwoInputOperatorHarness<Event, Event, Joined> old(before);
  old.Open();
  old.ProcessElement1(Event{"a", 1}, 10);
  old.ProcessElement2(Event{"a", 2}, 12);
  MemorySnapshotOutput snapshot = old.Snapshot(CheckpointId(1));
  testing::TwoInputOperatorHarness<Reading, Event, Joined> h(after);
  try {
    h.InitializeState(snapshot.AsRestore());
    ADD_FAILURE() << "restoring interval join buffers of a changed type must fail";
  } catch (const internal::NonRecoverableError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("'interval-join-left'"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + internal::TypeNameOf<Event>() + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + internal::TypeNameOf<Reading>() + "'"), std::string::npos) << message;
  }
}

TEST_F(WindowSnapshotTest, ChangedWindowFunctionStateTypeFailsWhenTheStateIsUsed) {
  auto tumbling = Keyed().Window(TumblingEventTimeWindows::Of(Duration(20)));
  MemorySnapshotOutput snapshot;
  {
    testing::OneInputOperatorHarness<Event, Firing> h(tumbling.Process(CountFirings<TimeWindow>{}));
    h.Open();
    h.ProcessElement(Event{"a", 1}, 1);
    h.ProcessWatermark(19);  // fires: the key's state holds a count
    h.ProcessElement(Event{"a", 2}, 22);
    snapshot = h.Snapshot(CheckpointId(1));
  }
  testing::OneInputOperatorHarness<Event, Firing> h(tumbling.Process(CountFiringsInInt32{}));
  h.InitializeState(snapshot.AsRestore());
  h.Open();
  try {
    h.ProcessWatermark(39);
    ADD_FAILURE() << "using keyed state of a changed type must fail";
  } catch (const internal::NonRecoverableError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("'key-firings'"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + internal::TypeNameOf<int64_t>() + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + internal::TypeNameOf<int32_t>() + "'"), std::string::npos) << message;
  }
}

TEST_F(WindowSnapshotTest, RestoredKeyGroupsFollowTheKeys) {
  // Every block a snapshot writes belongs to the key group of the keys in it:
  // a subtask of another parallelism restores exactly its own keys.
  auto out = Keyed()
                 .Window(SlidingEventTimeWindows::Of(Duration(30), Duration(10)))
                 .AllowedLateness(Duration(10))
                 .Process(CountFirings<TimeWindow>{});
  testing::OneInputOperatorHarness<Event, Firing> h(out);
  h.Open();
  for (uint64_t i = 0; i < 16; ++i) h.ProcessElement(Event{KeyName(i), 1}, static_cast<Timestamp>(i));
  h.ProcessWatermark(9);  // fires [-20, 10) for keys 0..9: their window and key states exist
  MemorySnapshotOutput snapshot = h.Snapshot(CheckpointId(1));
  std::vector<int> expected_groups;
  for (uint64_t i = 0; i < 16; ++i) expected_groups.push_back(AssignToKeyGroup(KeyName(i), kMaxParallelism));
  std::sort(expected_groups.begin(), expected_groups.end());
  expected_groups.erase(std::unique(expected_groups.begin(), expected_groups.end()), expected_groups.end());
  std::vector<int> groups;
  for (const auto& [kg, bytes] : snapshot.key_groups) groups.push_back(kg);
  EXPECT_EQ(groups, expected_groups);
}

}  // namespace
}  // namespace freshet
