// Operator state and broadcast state: CheckpointedFunction list and union
// list state redistributed across parallelism changes on the operator
// harness, type checks on restore, the hooks' call order and checkpoint
// ids, and the broadcast pattern (rules broadcast, events matched) run as
// whole jobs against a sequential reference and snapshotted and restored at
// another parallelism.
#include <freshet/freshet.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include "support/temp_dir.h"

namespace freshet {
namespace {

// ---- list state: split and union redistribution ------------------------------------

/// What the buffering map reports for each record: whether its state was
/// restored, and the buffer before the record was added.
struct Probe {
  bool restored = false;
  std::vector<int64_t> buffer;
};

/// Keeps every non-negative record in operator list state (split or union);
/// a negative record only reports the buffer.
class BufferingMap : public RichMapFunction<int64_t, Probe>, public CheckpointedFunction {
 public:
  explicit BufferingMap(bool union_state) : union_(union_state) {}
  void InitializeState(FunctionInitializationContext& ctx) override {
    ListStateDescriptor<int64_t> d("buffer");
    OperatorStateStore& store = ctx.GetOperatorStateStore();
    buffer_ = union_ ? &store.GetUnionListState(d) : &store.GetListState(d);
    restored_ = ctx.IsRestored();
  }
  void SnapshotState(const FunctionSnapshotContext&) override {}
  Probe Map(const int64_t& v) override {
    Probe p{restored_, buffer_->Get()};
    if (v >= 0) buffer_->Add(v);
    return p;
  }

 private:
  bool union_;
  bool restored_ = false;
  ListState<int64_t>* buffer_ = nullptr;
};

using BufferHarness = testing::OneInputOperatorHarness<int64_t, Probe>;

DataStream<Probe> Buffering(StreamExecutionEnvironment& env, bool union_state) {
  return env.FromElements<int64_t>({}).Map(BufferingMap(union_state));
}

/// The buffer of an opened harness's operator (through a probe record).
std::vector<int64_t> BufferOf(BufferHarness& h) {
  h.ClearOutput();
  h.ProcessElement(-1);
  return h.OutputValues().at(0).buffer;
}

/// Snapshots of `parallelism` harnesses restored from `old` and opened.
std::vector<internal::MemorySnapshotOutput> Rescale(StreamExecutionEnvironment& env, bool union_state,
                                                    const std::vector<internal::MemorySnapshotOutput>& old,
                                                    int parallelism, std::vector<std::vector<int64_t>>* buffers,
                                                    CheckpointId id) {
  std::vector<internal::MemorySnapshotOutput> out;
  buffers->clear();
  for (int i = 0; i < parallelism; ++i) {
    BufferHarness h(Buffering(env, union_state), i, parallelism);
    h.InitializeState(testing::RestoreFromSnapshots(old, i, parallelism));
    h.Open();
    h.ProcessElement(-1);
    EXPECT_TRUE(h.OutputValues().at(0).restored);
    buffers->push_back(BufferOf(h));
    out.push_back(h.Snapshot(id));
  }
  return out;
}

TEST(OperatorListStateTest, SplitListIsCutIntoContiguousPartsFrom2To3And3To1) {
  auto env = StreamExecutionEnvironment::Create();
  std::vector<internal::MemorySnapshotOutput> two;
  for (int i = 0; i < 2; ++i) {
    BufferHarness h(Buffering(*env, false), i, 2);
    h.Open();
    // Subtask 0 holds 1..5, subtask 1 holds 6..9.
    for (int64_t v = i == 0 ? 1 : 6; v <= (i == 0 ? 5 : 9); ++v) h.ProcessElement(v);
    EXPECT_FALSE(h.OutputValues().at(0).restored);
    two.push_back(h.Snapshot(1));
  }
  ASSERT_EQ(two[0].operator_state.at("buffer").mode, internal::OperatorStateMode::kSplit);
  EXPECT_EQ(two[0].operator_state.at("buffer").entries.size(), 5u) << "one entry per element";
  ASSERT_EQ(two[0].state_info.size(), 1u);
  EXPECT_EQ(two[0].state_info[0].name, "buffer");
  EXPECT_EQ(two[0].state_info[0].kind, "operator-list");
  EXPECT_EQ(two[0].state_info[0].type_name, internal::TypeNameOf<int64_t>());

  std::vector<std::vector<int64_t>> buffers;
  std::vector<internal::MemorySnapshotOutput> three = Rescale(*env, false, two, 3, &buffers, 2);
  EXPECT_EQ(buffers, (std::vector<std::vector<int64_t>>{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}));

  Rescale(*env, false, three, 1, &buffers, 3);
  EXPECT_EQ(buffers, (std::vector<std::vector<int64_t>>{{1, 2, 3, 4, 5, 6, 7, 8, 9}}));
}

TEST(OperatorListStateTest, UnevenSplitGivesTheFirstSubtasksOneMore) {
  auto env = StreamExecutionEnvironment::Create();
  BufferHarness h(Buffering(*env, false));
  h.Open();
  for (int64_t v = 1; v <= 5; ++v) h.ProcessElement(v);
  std::vector<std::vector<int64_t>> buffers;
  Rescale(*env, false, {h.Snapshot(1)}, 3, &buffers, 2);
  EXPECT_EQ(buffers, (std::vector<std::vector<int64_t>>{{1, 2}, {3, 4}, {5}}));
}

TEST(OperatorListStateTest, UnionListGivesEverySubtaskAllElements) {
  auto env = StreamExecutionEnvironment::Create();
  std::vector<internal::MemorySnapshotOutput> two;
  for (int i = 0; i < 2; ++i) {
    BufferHarness h(Buffering(*env, true), i, 2);
    h.Open();
    h.ProcessElement(10 * (i + 1));
    h.ProcessElement(10 * (i + 1) + 1);
    two.push_back(h.Snapshot(1));
  }
  EXPECT_EQ(two[0].operator_state.at("buffer").mode, internal::OperatorStateMode::kUnion);
  EXPECT_EQ(two[0].state_info.at(0).kind, "operator-union");
  std::vector<std::vector<int64_t>> buffers;
  std::vector<internal::MemorySnapshotOutput> three = Rescale(*env, true, two, 3, &buffers, 2);
  for (const auto& b : buffers) EXPECT_EQ(b, (std::vector<int64_t>{10, 11, 20, 21}));
  // Back to one subtask: the union of the three copies.
  Rescale(*env, true, three, 1, &buffers, 3);
  EXPECT_EQ(buffers.at(0).size(), 12u);
}

// ---- type and kind checks on restore -----------------------------------------------

class StringBuffer : public RichMapFunction<int64_t, int64_t>, public CheckpointedFunction {
 public:
  void InitializeState(FunctionInitializationContext& ctx) override {
    ctx.GetOperatorStateStore().GetListState(ListStateDescriptor<std::string>("buffer"));
  }
  void SnapshotState(const FunctionSnapshotContext&) override {}
  int64_t Map(const int64_t& v) override { return v; }
};

internal::MemorySnapshotOutput SnapshotWithInt64Buffer(StreamExecutionEnvironment& env) {
  BufferHarness h(Buffering(env, false));
  h.Open();
  h.ProcessElement(1);
  return h.Snapshot(1);
}

TEST(OperatorStateRestoreTest, ChangedTypeFailsNamingTheStateAndBothTypes) {
  auto env = StreamExecutionEnvironment::Create();
  internal::MemorySnapshotOutput old = SnapshotWithInt64Buffer(*env);
  testing::OneInputOperatorHarness<int64_t, int64_t> h(env->FromElements<int64_t>({}).Map(StringBuffer()));
  try {
    h.InitializeState(old.AsRestore());
    FAIL() << "expected a type conflict";
  } catch (const internal::NonRecoverableError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'buffer'"), std::string::npos) << m;
    EXPECT_NE(m.find(internal::TypeNameOf<int64_t>()), std::string::npos) << m;
    EXPECT_NE(m.find(internal::TypeNameOf<std::string>()), std::string::npos) << m;
  }
}

TEST(OperatorStateRestoreTest, ChangedRedistributionModeFails) {
  auto env = StreamExecutionEnvironment::Create();
  internal::MemorySnapshotOutput old = SnapshotWithInt64Buffer(*env);
  BufferHarness h(Buffering(*env, true));
  try {
    h.InitializeState(old.AsRestore());
    FAIL() << "expected a kind conflict";
  } catch (const internal::NonRecoverableError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("operator-list"), std::string::npos) << m;
    EXPECT_NE(m.find("operator-union"), std::string::npos) << m;
  }
}

TEST(OperatorStateRestoreTest, TwoKindsForOneNameInOneRunAreAUserError) {
  class Conflicting : public RichMapFunction<int64_t, int64_t>, public CheckpointedFunction {
   public:
    void InitializeState(FunctionInitializationContext& ctx) override {
      ctx.GetOperatorStateStore().GetListState(ListStateDescriptor<int64_t>("x"));
      ctx.GetOperatorStateStore().GetUnionListState(ListStateDescriptor<int64_t>("x"));
    }
    void SnapshotState(const FunctionSnapshotContext&) override {}
    int64_t Map(const int64_t& v) override { return v; }
  };
  auto env = StreamExecutionEnvironment::Create();
  testing::OneInputOperatorHarness<int64_t, int64_t> h(env->FromElements<int64_t>({}).Map(Conflicting()));
  EXPECT_THROW(h.Open(), internal::OperatorException);
}

TEST(OperatorStateRestoreTest, StateNotAskedForAgainIsKeptForLaterSnapshots) {
  class Stateless : public RichMapFunction<int64_t, int64_t>, public CheckpointedFunction {
   public:
    void InitializeState(FunctionInitializationContext&) override {}
    void SnapshotState(const FunctionSnapshotContext&) override {}
    int64_t Map(const int64_t& v) override { return v; }
  };
  auto env = StreamExecutionEnvironment::Create();
  internal::MemorySnapshotOutput old = SnapshotWithInt64Buffer(*env);
  testing::OneInputOperatorHarness<int64_t, int64_t> h(env->FromElements<int64_t>({}).Map(Stateless()));
  h.InitializeState(old.AsRestore());
  h.Open();
  internal::MemorySnapshotOutput again = h.Snapshot(2);
  EXPECT_EQ(again.operator_state.at("buffer").entries, old.operator_state.at("buffer").entries);
  EXPECT_EQ(again.state_info.at(0).type_name, internal::TypeNameOf<int64_t>());
}

// Functions that are not CheckpointedFunction cost nothing: no member, no calls.
struct PlainMap {
  int64_t operator()(int64_t v) const { return v; }
};
static_assert(!internal::FunctionOperatorState<PlainMap>::kEnabled);
static_assert(std::is_empty_v<internal::FunctionOperatorState<PlainMap>>);
static_assert(internal::FunctionOperatorState<PlainMap, BufferingMap>::kEnabled);

// ---- the hooks: order, ids, keyed state ------------------------------------------------

using CallLog = std::shared_ptr<std::vector<std::string>>;

/// Logs every hook; counts records in operator list state.
class LoggingMap : public RichMapFunction<int64_t, int64_t>, public CheckpointedFunction, public CheckpointListener {
 public:
  explicit LoggingMap(CallLog log) : log_(std::move(log)) {}
  void InitializeState(FunctionInitializationContext& ctx) override {
    count_ = &ctx.GetOperatorStateStore().GetListState(ListStateDescriptor<int64_t>("count"));
    for (int64_t c : count_->Get()) seen_ += c;
    log_->push_back(std::string("init restored=") + (ctx.IsRestored() ? "1" : "0") +
                    " keyed=" + (ctx.GetKeyedStateStore() != nullptr ? "1" : "0"));
  }
  void Open() override { log_->push_back("open"); }
  void SnapshotState(const FunctionSnapshotContext& ctx) override {
    log_->push_back("snapshot " + std::to_string(ctx.GetCheckpointId()) +
                    (ctx.GetCheckpointTimestamp() == kNoTimestamp ? "" : " with time"));
    count_->Update({seen_});
  }
  void NotifyCheckpointComplete(CheckpointId id) override { log_->push_back("complete " + std::to_string(id)); }
  int64_t Map(const int64_t& v) override {
    ++seen_;
    return v;
  }

 private:
  CallLog log_;
  ListState<int64_t>* count_ = nullptr;
  int64_t seen_ = 0;
};

TEST(CheckpointedFunctionTest, MapIsInitializedBeforeOpenAndSnapshottedWithTheCheckpointIds) {
  auto env = StreamExecutionEnvironment::Create();
  auto log = std::make_shared<std::vector<std::string>>();
  testing::OneInputOperatorHarness<int64_t, int64_t> h(env->FromElements<int64_t>({}).Map(LoggingMap(log)));
  h.InitializeState({});
  h.Open();
  h.ProcessElement(1);
  h.ProcessElement(2);
  internal::MemorySnapshotOutput s3 = h.Snapshot(3);
  h.ProcessElement(3);
  internal::MemorySnapshotOutput s7 = h.Snapshot(7);
  h.NotifyCheckpointComplete(7);
  EXPECT_EQ(*log, (std::vector<std::string>{"init restored=0 keyed=0", "open", "snapshot 3", "snapshot 7",
                                            "complete 7"}));
  EXPECT_EQ(s3.operator_state.at("count").entries.size(), 1u);

  // Restored from checkpoint 3: the count it held is back.
  auto log2 = std::make_shared<std::vector<std::string>>();
  testing::OneInputOperatorHarness<int64_t, int64_t> restored(env->FromElements<int64_t>({}).Map(LoggingMap(log2)));
  restored.InitializeState(s3.AsRestore());
  restored.Open();
  EXPECT_EQ(log2->at(0), "init restored=1 keyed=0");
  internal::MemorySnapshotOutput again = restored.Snapshot(4);
  EXPECT_EQ(again.operator_state.at("count").entries, s3.operator_state.at("count").entries);
}

TEST(CheckpointedFunctionTest, OpenWithoutInitializeStateStillInitializesOnce) {
  auto env = StreamExecutionEnvironment::Create();
  auto log = std::make_shared<std::vector<std::string>>();
  testing::OneInputOperatorHarness<int64_t, int64_t> h(env->FromElements<int64_t>({}).Map(LoggingMap(log)));
  h.Open();
  EXPECT_EQ(*log, (std::vector<std::string>{"init restored=0 keyed=0", "open"}));
}

TEST(CheckpointedFunctionTest, MapOnAKeyedStreamSeesTheKeyedStateStoreAndKeepsBothStates) {
  auto env = StreamExecutionEnvironment::Create();
  auto log = std::make_shared<std::vector<std::string>>();
  auto mapped = env->FromElements<int64_t>({}).KeyBy([](int64_t v) { return v % 4; }).Map(LoggingMap(log));
  testing::OneInputOperatorHarness<int64_t, int64_t> h(mapped);
  h.InitializeState({});
  h.Open();
  h.ProcessElement(5);
  internal::MemorySnapshotOutput s = h.Snapshot(2);
  EXPECT_EQ(log->front(), "init restored=0 keyed=1");
  EXPECT_EQ(s.operator_state.count("count"), 1u);
}

/// A sink function keeping the records since the last checkpoint, as a
/// buffering sink does.
class BufferingSink : public CheckpointedFunction, public CheckpointListener {
 public:
  explicit BufferingSink(CallLog log) : log_(std::move(log)) {}
  void InitializeState(FunctionInitializationContext& ctx) override {
    pending_ = &ctx.GetOperatorStateStore().GetListState(ListStateDescriptor<int64_t>("pending"));
    log_->push_back("init pending=" + std::to_string(pending_->Get().size()));
  }
  void SnapshotState(const FunctionSnapshotContext& ctx) override {
    log_->push_back("snapshot " + std::to_string(ctx.GetCheckpointId()) + " pending=" +
                    std::to_string(pending_->Get().size()));
  }
  void NotifyCheckpointComplete(CheckpointId id) override {
    log_->push_back("complete " + std::to_string(id));
    pending_->Clear();
  }
  void Invoke(const int64_t& v) { pending_->Add(v); }

 private:
  CallLog log_;
  ListState<int64_t>* pending_ = nullptr;
};

TEST(CheckpointedFunctionTest, FunctionSinkIsSnapshottedWithTheCheckpointIds) {
  auto env = StreamExecutionEnvironment::Create();
  auto log = std::make_shared<std::vector<std::string>>();
  DataStreamSink<int64_t> sink = env->FromElements<int64_t>({}).SinkTo(BufferingSink(log));
  // The harness drives the operator of any transformation id.
  testing::OneInputOperatorHarness<int64_t, int64_t> h(DataStream<int64_t>(env.get(), sink.Id()));
  h.InitializeState({});
  h.Open();
  h.ProcessElement(1);
  h.ProcessElement(2);
  internal::MemorySnapshotOutput s5 = h.Snapshot(5);
  h.NotifyCheckpointComplete(5);
  h.ProcessElement(3);
  h.Snapshot(6);
  EXPECT_EQ(*log, (std::vector<std::string>{"init pending=0", "snapshot 5 pending=2", "complete 5",
                                            "snapshot 6 pending=1"}));
  EXPECT_EQ(s5.operator_state.at("pending").entries.size(), 2u);

  auto log2 = std::make_shared<std::vector<std::string>>();
  DataStreamSink<int64_t> sink2 = env->FromElements<int64_t>({}).SinkTo(BufferingSink(log2));
  testing::OneInputOperatorHarness<int64_t, int64_t> restored(DataStream<int64_t>(env.get(), sink2.Id()));
  restored.InitializeState(s5.AsRestore());
  restored.Open();
  EXPECT_EQ(log2->front(), "init pending=2");
}

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("freshet-opstate") {}
};

struct SinkCalls {
  std::mutex mu;
  std::map<int, std::vector<CheckpointId>> snapshots;  // per subtask, in call order
  std::map<int, std::vector<CheckpointId>> completed;
  bool timestamps_set = true;
  std::atomic<int64_t> records{0};
};
SinkCalls* g_sink_calls = nullptr;

class RecordingSink : public RichFunction, public CheckpointedFunction, public CheckpointListener {
 public:
  void InitializeState(FunctionInitializationContext& ctx) override {
    count_ = &ctx.GetOperatorStateStore().GetListState(ListStateDescriptor<int64_t>("count"));
  }
  void SnapshotState(const FunctionSnapshotContext& ctx) override {
    std::lock_guard lock(g_sink_calls->mu);
    g_sink_calls->snapshots[GetRuntimeContext().GetIndexOfThisSubtask()].push_back(ctx.GetCheckpointId());
    if (ctx.GetCheckpointTimestamp() <= 0) g_sink_calls->timestamps_set = false;
    count_->Update({seen_});
  }
  void NotifyCheckpointComplete(CheckpointId id) override {
    std::lock_guard lock(g_sink_calls->mu);
    g_sink_calls->completed[GetRuntimeContext().GetIndexOfThisSubtask()].push_back(id);
  }
  void Invoke(const int64_t&) {
    ++seen_;
    g_sink_calls->records.fetch_add(1);
  }

 private:
  ListState<int64_t>* count_ = nullptr;
  int64_t seen_ = 0;
};

TEST(CheckpointedFunctionTest, SinkInACheckpointedJobIsCalledWithIncreasingIdsAndItsCompletions) {
  TempDir dir;
  SinkCalls calls;
  g_sink_calls = &calls;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->EnableCheckpointing(Duration(20));
  env->GetCheckpointConfig().directory = dir.Path();
  env->FromGenerator([](int64_t i) { return i; }, 4000, 20000).SinkTo(RecordingSink());
  Result<JobExecutionResult> r = env->Execute("checkpointed sink");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(calls.records.load(), 4000);
  EXPECT_TRUE(calls.timestamps_set);
  ASSERT_EQ(calls.snapshots.size(), 2u);
  for (const auto& [subtask, ids] : calls.snapshots) {
    ASSERT_FALSE(ids.empty()) << subtask;
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()) &&
                std::adjacent_find(ids.begin(), ids.end()) == ids.end())
        << "subtask " << subtask << ": " << ::testing::PrintToString(ids);
    for (CheckpointId done : calls.completed[subtask]) {
      EXPECT_NE(std::find(ids.begin(), ids.end(), done), ids.end()) << "completed " << done << " never snapshotted";
    }
  }
  EXPECT_GE(r->checkpoints_completed, 1);
}

// ---- broadcast state: rules broadcast, events matched -------------------------------------

struct Rule {
  int64_t id = 0;
  int64_t kind = 0;
  int64_t threshold = 0;
};
struct Event {
  int64_t id = 0;
  int64_t kind = 0;
  int64_t value = 0;
};
struct Match {
  int64_t rule = 0;
  int64_t event = 0;
  bool operator==(const Match&) const = default;
  auto operator<=>(const Match&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Match& m) { return os << "{r" << m.rule << " e" << m.event << "}"; }

bool Matches(const Rule& r, const Event& e) { return r.kind == e.kind && e.value >= r.threshold; }

const MapStateDescriptor<int64_t, Rule>& RulesDescriptor() {
  static const MapStateDescriptor<int64_t, Rule> d("rules");
  return d;
}

/// Every (rule, event) pair is matched by whichever of the two arrives
/// second: an event against the rules present, a rule against the events
/// seen (kept in keyed list state). The result does not depend on how the
/// two inputs interleave.
class KeyedRuleMatcher : public KeyedBroadcastProcessFunction<int64_t, Event, Rule, Match> {
 public:
  void Open() override { events_ = &GetRuntimeContext().GetListState(EventsDescriptor()); }
  void ProcessElement(const Event& e, ReadOnlyContext& ctx, Collector<Match>& out) override {
    EXPECT_EQ(ctx.GetCurrentKey(), e.kind);
    ctx.GetBroadcastState(RulesDescriptor()).ForEach([&](const int64_t&, const Rule& r) {
      if (Matches(r, e)) out.Collect({r.id, e.id});
    });
    events_->Add(e);
  }
  void ProcessBroadcastElement(const Rule& r, Context& ctx, Collector<Match>& out) override {
    ctx.GetBroadcastState(RulesDescriptor()).Put(r.id, r);
    ctx.ApplyToKeyedState(EventsDescriptor(), [&](const int64_t& kind, ListState<Event>& events) {
      for (const Event& e : events.Get()) {
        EXPECT_EQ(e.kind, kind) << "the visited key's own state";
        if (Matches(r, e)) out.Collect({r.id, e.id});
      }
    });
  }
  static ListStateDescriptor<Event> EventsDescriptor() { return ListStateDescriptor<Event>("events"); }

 private:
  ListState<Event>* events_ = nullptr;
};

/// The same without keys: the events seen are kept in operator list state
/// (each subtask matches the events it received against every rule).
class RuleMatcher : public BroadcastProcessFunction<Event, Rule, Match>, public CheckpointedFunction {
 public:
  void InitializeState(FunctionInitializationContext& ctx) override {
    events_ = &ctx.GetOperatorStateStore().GetListState(ListStateDescriptor<Event>("events"));
  }
  void SnapshotState(const FunctionSnapshotContext&) override {}
  void ProcessElement(const Event& e, ReadOnlyContext& ctx, Collector<Match>& out) override {
    for (const auto& [id, r] : ctx.GetBroadcastState(RulesDescriptor()).Entries()) {
      if (Matches(r, e)) out.Collect({id, e.id});
    }
    events_->Add(e);
  }
  void ProcessBroadcastElement(const Rule& r, Context& ctx, Collector<Match>& out) override {
    ctx.GetBroadcastState(RulesDescriptor()).Put(r.id, r);
    for (const Event& e : events_->Get()) {
      if (Matches(r, e)) out.Collect({r.id, e.id});
    }
  }

 private:
  ListState<Event>* events_ = nullptr;
};

std::vector<Rule> MakeRules() {
  std::vector<Rule> rules;
  for (int64_t i = 0; i < 12; ++i) rules.push_back({i, i % 5, (i * 7) % 40});
  return rules;
}
std::vector<Event> MakeEvents() {
  std::vector<Event> events;
  std::mt19937_64 rng(7);
  for (int64_t i = 0; i < 3000; ++i) {
    events.push_back({i, static_cast<int64_t>(rng() % 6), static_cast<int64_t>(rng() % 50)});
  }
  return events;
}

/// The sequential reference: every matching pair once.
std::vector<Match> ReferenceMatches(const std::vector<Rule>& rules, const std::vector<Event>& events) {
  std::vector<Match> out;
  for (const Rule& r : rules) {
    for (const Event& e : events) {
      if (Matches(r, e)) out.push_back({r.id, e.id});
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Match> RunMatcherJob(int parallelism, bool keyed) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(parallelism);
  auto results = std::make_shared<std::vector<Match>>();
  auto mutex = std::make_shared<std::mutex>();
  BroadcastStream<Rule> rules = env->FromCollection(MakeRules()).Broadcast(RulesDescriptor());
  DataStream<Event> events = env->FromCollection(MakeEvents());
  DataStream<Match> matches = keyed ? events.KeyBy([](const Event& e) { return e.kind; })
                                          .Connect(rules)
                                          .Process(KeyedRuleMatcher())
                                    : events.Connect(rules).Process(RuleMatcher());
  matches.SinkTo([results, mutex](const Match& m) {
    std::lock_guard lock(*mutex);
    results->push_back(m);
  });
  Result<JobExecutionResult> r = env->Execute("rule matching");
  EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  std::sort(results->begin(), results->end());
  return *results;
}

TEST(BroadcastStateTest, KeyedRuleMatchingEqualsTheSequentialReferenceAtParallelism1And3) {
  std::vector<Match> expected = ReferenceMatches(MakeRules(), MakeEvents());
  ASSERT_GT(expected.size(), 1000u);
  EXPECT_EQ(RunMatcherJob(1, true), expected);
  EXPECT_EQ(RunMatcherJob(3, true), expected);
}

TEST(BroadcastStateTest, NonKeyedRuleMatchingEqualsTheSequentialReferenceAtParallelism1And3) {
  std::vector<Match> expected = ReferenceMatches(MakeRules(), MakeEvents());
  EXPECT_EQ(RunMatcherJob(1, false), expected);
  EXPECT_EQ(RunMatcherJob(3, false), expected);
}

// ---- broadcast state on the harness: snapshot and restore at 2 -> 4 ---------------------

using MatcherHarness = testing::TwoInputOperatorHarness<Event, Rule, Match>;

DataStream<Match> KeyedMatcher(StreamExecutionEnvironment& env) {
  return env.FromElements<Event>({})
      .KeyBy([](const Event& e) { return e.kind; })
      .Connect(env.FromElements<Rule>({}).Broadcast(RulesDescriptor()))
      .Process(KeyedRuleMatcher());
}

TEST(BroadcastStateTest, BroadcastStateIsRestoredWholeOnEverySubtaskFrom2To4) {
  auto env = StreamExecutionEnvironment::Create();
  std::vector<Rule> rules = MakeRules();
  std::vector<internal::MemorySnapshotOutput> two;
  for (int i = 0; i < 2; ++i) {
    MatcherHarness h(KeyedMatcher(*env), i, 2);
    h.Open();
    for (const Rule& r : rules) h.ProcessElement2(r);  // broadcast: every subtask sees every rule
    two.push_back(h.Snapshot(1));
  }
  const auto& state = two[0].operator_state.at("rules");
  EXPECT_EQ(state.mode, internal::OperatorStateMode::kBroadcast);
  EXPECT_EQ(state.entries.size(), rules.size()) << "one entry per map entry";
  bool declared = false;
  for (const auto& info : two[0].state_info) declared |= info.name == "rules" && info.kind == "broadcast";
  EXPECT_TRUE(declared);

  // At parallelism 4 every subtask matches its events against all rules
  // without seeing a rule again.
  std::vector<Event> events = MakeEvents();
  std::vector<Match> all;
  for (int i = 0; i < 4; ++i) {
    MatcherHarness h(KeyedMatcher(*env), i, 4);
    internal::OperatorRestore restore = testing::RestoreFromSnapshots(two, i, 4);
    EXPECT_EQ(restore.operator_state.at("rules").entries.size(), rules.size());
    h.InitializeState(restore);
    h.Open();
    KeyGroupRange range = KeyGroupRangeForSubtask(i, 4, 128);
    for (const Event& e : events) {
      if (range.Contains(AssignToKeyGroup(e.kind, 128))) h.ProcessElement1(e);
    }
    for (const Match& m : h.OutputValues()) all.push_back(m);
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, ReferenceMatches(rules, events));
}

TEST(BroadcastStateTest, KeyedStateAndBroadcastStateRestoreTogether) {
  auto env = StreamExecutionEnvironment::Create();
  std::vector<Rule> rules = MakeRules();
  std::vector<Event> events = MakeEvents();
  // Events first, snapshot, then the rules arrive after the restore: they
  // must find the restored events through ApplyToKeyedState.
  internal::MemorySnapshotOutput snap;
  {
    MatcherHarness h(KeyedMatcher(*env));
    h.Open();
    for (const Event& e : events) h.ProcessElement1(e);
    EXPECT_TRUE(h.OutputValues().empty());
    snap = h.Snapshot(1);
  }
  std::vector<Match> all;
  for (int i = 0; i < 2; ++i) {
    MatcherHarness h(KeyedMatcher(*env), i, 2);
    h.InitializeState(testing::RestoreFromSnapshots({snap}, i, 2));
    h.Open();
    for (const Rule& r : rules) h.ProcessElement2(r);
    for (const Match& m : h.OutputValues()) all.push_back(m);
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, ReferenceMatches(rules, events));
}

TEST(BroadcastStateTest, NonKeyedBroadcastAndListStateSnapshotTogether) {
  auto env = StreamExecutionEnvironment::Create();
  auto matched = env->FromElements<Event>({}).Connect(env->FromElements<Rule>({}).Broadcast(RulesDescriptor())).Process(
      RuleMatcher());
  testing::TwoInputOperatorHarness<Event, Rule, Match> h(matched);
  h.Open();
  h.ProcessElement2({1, 2, 10});
  h.ProcessElement1({100, 2, 15});
  h.ProcessElement1({101, 2, 5});
  h.ProcessElement1({102, 3, 50});
  EXPECT_EQ(h.OutputValues(), (std::vector<Match>{{1, 100}}));
  internal::MemorySnapshotOutput s = h.Snapshot(1);
  EXPECT_EQ(s.operator_state.at("rules").entries.size(), 1u);
  EXPECT_EQ(s.operator_state.at("events").entries.size(), 3u);
  EXPECT_EQ(s.operator_state.at("events").mode, internal::OperatorStateMode::kSplit);

  testing::TwoInputOperatorHarness<Event, Rule, Match> restored(matched);
  restored.InitializeState(s.AsRestore());
  restored.Open();
  restored.ProcessElement2({2, 3, 0});    // matches the restored event 102
  restored.ProcessElement1({103, 2, 20});  // matches the restored rule 1
  EXPECT_EQ(restored.OutputValues(), (std::vector<Match>{{2, 102}, {1, 103}}));
}

// ---- read-only access on the non-broadcast side --------------------------------------------

template <class State>
concept CanPut = requires(State& s) { s.Put(int64_t{1}, Rule{}); };
template <class State>
concept CanRemove = requires(State& s) { s.Remove(int64_t{1}); };

using ReadOnlyRules = std::remove_reference_t<decltype(std::declval<BroadcastProcessFunction<Event, Rule, Match>::ReadOnlyContext&>()
                                                          .GetBroadcastState(RulesDescriptor()))>;
using WritableRules = std::remove_reference_t<decltype(std::declval<BroadcastProcessFunction<Event, Rule, Match>::Context&>()
                                                          .GetBroadcastState(RulesDescriptor()))>;
using KeyedReadOnlyRules = std::remove_reference_t<
    decltype(std::declval<KeyedBroadcastProcessFunction<int64_t, Event, Rule, Match>::ReadOnlyContext&>()
                 .GetBroadcastState(RulesDescriptor()))>;
using KeyedTimerRules = std::remove_reference_t<
    decltype(std::declval<KeyedBroadcastProcessFunction<int64_t, Event, Rule, Match>::OnTimerContext&>()
                 .GetBroadcastState(RulesDescriptor()))>;

static_assert(!CanPut<ReadOnlyRules> && !CanRemove<ReadOnlyRules>, "the non-broadcast side must not write");
static_assert(!CanPut<KeyedReadOnlyRules> && !CanRemove<KeyedReadOnlyRules>, "the keyed side must not write");
static_assert(!CanPut<KeyedTimerRules>, "OnTimer must not write broadcast state");
static_assert(CanPut<WritableRules> && CanRemove<WritableRules>, "the broadcast side writes");

TEST(BroadcastStateTest, UndeclaredDescriptorIsReportedWithItsName) {
  class Undeclared : public BroadcastProcessFunction<Event, Rule, Match> {
   public:
    void ProcessElement(const Event&, ReadOnlyContext& ctx, Collector<Match>&) override {
      ctx.GetBroadcastState(MapStateDescriptor<int64_t, Rule>("other"));
    }
    void ProcessBroadcastElement(const Rule&, Context&, Collector<Match>&) override {}
  };
  auto env = StreamExecutionEnvironment::Create();
  testing::TwoInputOperatorHarness<Event, Rule, Match> h(
      env->FromElements<Event>({}).Connect(env->FromElements<Rule>({}).Broadcast(RulesDescriptor())).Process(
          Undeclared()));
  h.Open();
  try {
    h.ProcessElement1({1, 1, 1});
    FAIL() << "expected an error";
  } catch (const internal::OperatorException& e) {
    EXPECT_NE(std::string(e.what()).find("'other'"), std::string::npos) << e.what();
  }
}

TEST(BroadcastStateTest, BroadcastSideCannotSetTimers) {
  class TimerOnBroadcast : public KeyedBroadcastProcessFunction<int64_t, Event, Rule, Match> {
   public:
    void ProcessElement(const Event&, ReadOnlyContext&, Collector<Match>&) override {}
    void ProcessBroadcastElement(const Rule&, Context& ctx, Collector<Match>&) override {
      ctx.GetTimerService().RegisterEventTimeTimer(5);
    }
  };
  auto env = StreamExecutionEnvironment::Create();
  testing::TwoInputOperatorHarness<Event, Rule, Match> h(env->FromElements<Event>({})
                                                             .KeyBy([](const Event& e) { return e.kind; })
                                                             .Connect(env->FromElements<Rule>({}).Broadcast(RulesDescriptor()))
                                                             .Process(TimerOnBroadcast()));
  h.Open();
  EXPECT_THROW(h.ProcessElement2({1, 1, 1}), internal::OperatorException);
}

/// Keyed side timers fire with the key in scope and read the broadcast state.
class DelayedMatcher : public KeyedBroadcastProcessFunction<int64_t, Event, Rule, Match> {
 public:
  void Open() override { pending_ = &GetRuntimeContext().GetListState(ListStateDescriptor<Event>("pending")); }
  void ProcessElement(const Event& e, ReadOnlyContext& ctx, Collector<Match>&) override {
    pending_->Add(e);
    ctx.GetTimerService().RegisterEventTimeTimer(ctx.GetTimestamp());
  }
  void ProcessBroadcastElement(const Rule& r, Context& ctx, Collector<Match>&) override {
    ctx.GetBroadcastState(RulesDescriptor()).Put(r.id, r);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<Match>& out) override {
    for (const Event& e : pending_->Get()) {
      EXPECT_EQ(e.kind, ctx.GetCurrentKey());
      ctx.GetBroadcastState(RulesDescriptor()).ForEach([&](const int64_t&, const Rule& r) {
        if (Matches(r, e)) out.Collect({r.id, e.id});
      });
    }
    pending_->Clear();
  }

 private:
  ListState<Event>* pending_ = nullptr;
};

TEST(BroadcastStateTest, KeyedSideTimersSeeTheRulesAtFiringTime) {
  auto env = StreamExecutionEnvironment::Create();
  testing::TwoInputOperatorHarness<Event, Rule, Match> h(env->FromElements<Event>({})
                                                             .KeyBy([](const Event& e) { return e.kind; })
                                                             .Connect(env->FromElements<Rule>({}).Broadcast(RulesDescriptor()))
                                                             .Process(DelayedMatcher()));
  h.Open();
  h.ProcessElement1({10, 1, 30}, 5);
  h.ProcessElement1({11, 2, 30}, 8);
  h.ProcessElement2({1, 1, 20});  // arrives before the timers fire
  h.ProcessWatermark1(10);
  h.ProcessWatermark2(10);
  EXPECT_EQ(h.OutputValues(), (std::vector<Match>{{1, 10}}));
}

}  // namespace
}  // namespace freshet
