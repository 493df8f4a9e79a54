// Keyed state: every state kind through a KeyedProcessFunction on the
// operator harness, TTL with a manual clock, and keyed state in whole jobs
// compared with a sequential computation; each on the heap and on the
// RocksDB backend (the heap's slot reuse and incremental TTL cleanup are
// heap-only).
#include <freshet/freshet.h>
#include <freshet/internal/keyed_state.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "support/state_helpers.h"

namespace freshet {
namespace {

using BackendType = StateBackendOptions::Type;

std::string NameOf(BackendType type) { return type == BackendType::kHeap ? "Heap" : "RocksDB"; }
std::string BackendName(const ::testing::TestParamInfo<BackendType>& info) { return NameOf(info.param); }

/// An environment whose keyed operators (in jobs and in the harness) use `type`.
std::unique_ptr<StreamExecutionEnvironment> NewEnv(BackendType type) {
  auto env = StreamExecutionEnvironment::Create();
  StateBackendOptions backend;
  backend.type = type;
  env->SetStateBackend(backend);
  return env;
}

/// A keyed backend of `type` on its own.
template <class K>
std::unique_ptr<internal::KeyedStateBackend<K>> MakeBackend(BackendType type, KeyGroupRange range,
                                                            int max_parallelism,
                                                            internal::ProcessingTimeService* time = nullptr) {
  if (type == BackendType::kRocksDB) {
    StateBackendOptions options;
    options.type = type;
    return std::make_unique<internal::RocksDBKeyedStateBackend<K>>(range, max_parallelism, time, options);
  }
  return std::make_unique<internal::HeapKeyedStateBackend<K>>(range, max_parallelism, time);
}

class KeyedStateTest : public ::testing::TestWithParam<BackendType> {};
class StateTtlTest : public ::testing::TestWithParam<BackendType> {};
class KeyedStateSnapshotTest : public ::testing::TestWithParam<BackendType> {};

struct Event {
  int64_t key;
  int64_t value;
};

// Applies one command per record to the state kinds and reports what it sees.
class StateProbe : public KeyedProcessFunction<int64_t, Event, std::string> {
 public:
  void Open() override {
    auto& rc = GetRuntimeContext();
    value_ = &rc.GetState(ValueStateDescriptor<int64_t>("value", -1));
    list_ = &rc.GetListState(ListStateDescriptor<int64_t>("list"));
    map_ = &rc.GetMapState(MapStateDescriptor<int64_t, std::string>("map"));
    sum_ = &rc.GetReducingState(ReducingStateDescriptor<int64_t>("sum", [](int64_t a, int64_t b) { return a + b; }));
    avg_ = &rc.GetAggregatingState(AggregatingStateDescriptor<Average>("avg", Average{}));
  }
  void ProcessElement(const Event& e, Context&, Collector<std::string>& out) override {
    if (e.value < 0) {  // clear everything of the key
      value_->Clear();
      list_->Clear();
      map_->Clear();
      sum_->Clear();
      avg_->Clear();
    } else {
      value_->Update(e.value);
      list_->Add(e.value);
      map_->Put(e.value % 3, "v" + std::to_string(e.value));
      sum_->Add(e.value);
      avg_->Add(e.value);
    }
    std::vector<std::pair<int64_t, std::string>> entries = map_->Entries();
    std::sort(entries.begin(), entries.end());
    std::string m;
    for (const auto& [k, v] : entries) m += std::to_string(k) + "=" + v + ";";
    out.Collect("key " + std::to_string(e.key) + " value " + std::to_string(value_->Value()) + " list " +
                std::to_string(list_->Get().size()) + " map " + m + " sum " +
                (sum_->Get() ? std::to_string(*sum_->Get()) : "none") + " avg " +
                (avg_->Get() ? std::to_string(*avg_->Get()) : "none"));
  }

  using Average = test_support::Average;

 private:
  ValueState<int64_t>* value_ = nullptr;
  ListState<int64_t>* list_ = nullptr;
  MapState<int64_t, std::string>* map_ = nullptr;
  ReducingState<int64_t>* sum_ = nullptr;
  AggregatingState<int64_t, double>* avg_ = nullptr;
};

DataStream<std::string> ProbeStream(StreamExecutionEnvironment& env) {
  return env.FromElements<Event>({}).KeyBy([](const Event& e) { return e.key; }).Process(StateProbe());
}

TEST_P(KeyedStateTest, EveryStateKindIsScopedToTheCurrentKey) {
  auto env = NewEnv(GetParam());
  testing::OneInputOperatorHarness<Event, std::string> h(ProbeStream(*env));
  h.Open();
  h.ProcessElement({1, 4});
  h.ProcessElement({2, 10});
  h.ProcessElement({1, 5});
  h.ProcessElement({1, 7});
  auto out = h.OutputValues();
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], "key 1 value 4 list 1 map 1=v4; sum 4 avg 4.000000");
  EXPECT_EQ(out[1], "key 2 value 10 list 1 map 1=v10; sum 10 avg 10.000000");
  EXPECT_EQ(out[2], "key 1 value 5 list 2 map 1=v4;2=v5; sum 9 avg 4.500000");
  EXPECT_EQ(out[3], "key 1 value 7 list 3 map 1=v7;2=v5; sum 16 avg 5.333333");
}

TEST_P(KeyedStateTest, ClearRemovesTheKeyAndDefaultsReturn) {
  auto env = NewEnv(GetParam());
  testing::OneInputOperatorHarness<Event, std::string> h(ProbeStream(*env));
  h.Open();
  h.ProcessElement({1, 4});
  h.ProcessElement({1, -1});
  h.ProcessElement({1, 6});
  auto out = h.OutputValues();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1], "key 1 value -1 list 0 map  sum none avg none");
  EXPECT_EQ(out[2], "key 1 value 6 list 1 map 0=v6; sum 6 avg 6.000000");
}

TEST(HeapKeyedStateTest, SlotsOfClearedKeysAreReused) {
  using Backend = internal::HeapKeyedStateBackend<int64_t>;
  RuntimeContext rc("t", 0, 1, 128, 0);
  Backend backend(KeyGroupRange{0, 127}, 128, nullptr);
  rc.SetKeyedStateStore(&backend);
  auto& v = rc.GetState(ValueStateDescriptor<int64_t>("v"));
  auto& l = rc.GetListState(ListStateDescriptor<int64_t>("l"));
  for (int64_t k = 0; k < 1000; ++k) {
    backend.SetCurrentKey(k);
    v.Update(k);
    l.Add(k);
  }
  EXPECT_EQ(backend.NumKeys(), 1000u);
  for (int64_t k = 0; k < 1000; k += 2) {
    backend.SetCurrentKey(k);
    v.Clear();
  }
  EXPECT_EQ(backend.NumKeys(), 1000u) << "list state still holds the even keys";
  for (int64_t k = 0; k < 1000; k += 2) {
    backend.SetCurrentKey(k);
    l.Clear();
  }
  EXPECT_EQ(backend.NumKeys(), 500u);
  for (int64_t k = 1000; k < 1500; ++k) {
    backend.SetCurrentKey(k);
    v.Update(k);
  }
  EXPECT_EQ(backend.NumKeys(), 1000u);
  for (int64_t k = 1; k < 1500; ++k) {
    backend.SetCurrentKey(k);
    if (k < 1000 && k % 2 == 0) {
      EXPECT_FALSE(v.Get().has_value()) << k;
    } else {
      EXPECT_EQ(v.Get(), std::optional<int64_t>(k));
    }
  }
}

TEST_P(KeyedStateTest, TypeConflictAndMissingKeyAreReported) {
  RuntimeContext rc("t", 0, 1, 128, 0);
  EXPECT_THROW(rc.GetState(ValueStateDescriptor<int64_t>("v")), std::logic_error);
  auto backend = MakeBackend<int64_t>(GetParam(), KeyGroupRange{0, 127}, 128);
  rc.SetKeyedStateStore(backend.get());
  rc.GetState(ValueStateDescriptor<int64_t>("v"));
  try {
    rc.GetListState(ListStateDescriptor<int64_t>("v"));
    FAIL() << "expected a conflict";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("'v'"), std::string::npos);
  }
}

TEST(KeyedStateErrorTest, StateOnANonKeyedStreamFailsTheJobWithAClearMessage) {
  class Bad : public RichMapFunction<int64_t, int64_t> {
   public:
    void Open() override { GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("x")); }
    int64_t Map(const int64_t& v) override { return v; }
  };
  auto env = StreamExecutionEnvironment::Create();
  env->FromSequence(1, 10).Map(Bad()).Name("Stateful").SinkTo([](const int64_t&) {});
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_NE(result.GetStatus().Message().find("keyed streams"), std::string::npos) << result.GetStatus().Message();
}

// ---- TTL -------------------------------------------------------------------

class TtlProbe : public KeyedProcessFunction<int64_t, Event, std::string> {
 public:
  explicit TtlProbe(StateTtlConfig ttl) : ttl_(ttl) {}
  void Open() override {
    ValueStateDescriptor<int64_t> d("v");
    d.EnableTimeToLive(ttl_);
    value_ = &GetRuntimeContext().GetState(d);
  }
  void ProcessElement(const Event& e, Context&, Collector<std::string>& out) override {
    if (e.value > 0) {
      value_->Update(e.value);
    } else {
      auto v = value_->Get();
      out.Collect(v ? std::to_string(*v) : "expired");
    }
  }

 private:
  StateTtlConfig ttl_;
  ValueState<int64_t>* value_ = nullptr;
};

TEST_P(StateTtlTest, ExpiredValuesAreNeverReturned) {
  auto env = NewEnv(GetParam());
  auto s = env->FromElements<Event>({}).KeyBy([](const Event& e) { return e.key; }).Process(TtlProbe(
      StateTtlConfig::Of(Duration(100))));
  testing::OneInputOperatorHarness<Event, std::string> h(s);
  h.Open();
  h.SetProcessingTime(1000);
  h.ProcessElement({1, 7});
  h.SetProcessingTime(1099);
  h.ProcessElement({1, 0});
  h.SetProcessingTime(1100);
  h.ProcessElement({1, 0});
  EXPECT_EQ(h.OutputValues(), (std::vector<std::string>{"7", "expired"}));
}

TEST_P(StateTtlTest, ReadsRefreshOnlyWhenConfigured) {
  for (auto update : {StateTtlConfig::UpdateType::kOnCreateAndWrite, StateTtlConfig::UpdateType::kOnReadAndWrite}) {
    auto env = NewEnv(GetParam());
    auto s = env->FromElements<Event>({}).KeyBy([](const Event& e) { return e.key; }).Process(TtlProbe(
        StateTtlConfig::Of(Duration(100), update)));
    testing::OneInputOperatorHarness<Event, std::string> h(s);
    h.Open();
    h.SetProcessingTime(0);
    h.ProcessElement({1, 7});
    h.SetProcessingTime(80);
    h.ProcessElement({1, 0});  // a read at 80
    h.SetProcessingTime(150);
    h.ProcessElement({1, 0});  // expired unless the read refreshed it
    bool refreshed = update == StateTtlConfig::UpdateType::kOnReadAndWrite;
    EXPECT_EQ(h.OutputValues(), (std::vector<std::string>{"7", refreshed ? "7" : "expired"}));
  }
}

TEST(HeapStateTtlTest, IncrementalCleanupReleasesKeysThatAreNeverReadAgain) {
  using Backend = internal::HeapKeyedStateBackend<int64_t>;
  testing::ManualProcessingTimeService time;
  RuntimeContext rc("t", 0, 1, 128, 0);
  Backend backend(KeyGroupRange{0, 127}, 128, &time);
  rc.SetKeyedStateStore(&backend);
  ValueStateDescriptor<int64_t> d("v");
  d.EnableTimeToLive(StateTtlConfig::Of(Duration(10)));
  auto& v = rc.GetState(d);
  time.SetTime(0);
  for (int64_t k = 0; k < 1000; ++k) {
    backend.SetCurrentKey(k);
    v.Update(k);
  }
  EXPECT_EQ(backend.NumKeys(), 1000u);
  time.SetTime(100);
  // Accesses of one live key sweep the expired ones a few at a time.
  const int64_t live_key = 5000;
  backend.SetCurrentKey(live_key);
  v.Update(1);
  for (int i = 0; i < 1000; ++i) v.Value();
  EXPECT_EQ(backend.NumKeys(), 1u);
}

// ---- keyed state in whole jobs --------------------------------------------------

// Emits the running count of each key using ValueState in a flat map after KeyBy.
class RunningCount : public RichFlatMapFunction<Event, std::pair<int64_t, int64_t>> {
 public:
  void Open() override { count_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("count", 0)); }
  void FlatMap(const Event& e, Collector<std::pair<int64_t, int64_t>>& out) override {
    int64_t c = count_->Value() + 1;
    count_->Update(c);
    out.Collect({e.key, c});
  }

 private:
  ValueState<int64_t>* count_ = nullptr;
};

class KeyedStateJobTest : public ::testing::TestWithParam<std::tuple<BackendType, int>> {};

TEST_P(KeyedStateJobTest, RunningCountsMatchASequentialComputation) {
  auto env = NewEnv(std::get<0>(GetParam()));
  env->SetParallelism(std::get<1>(GetParam()));
  auto out = env->FromGenerator([](int64_t i) { return Event{(i * 7919) % 97, i}; }, 20000)
                 .KeyBy([](const Event& e) { return e.key; })
                 .FlatMap(RunningCount())
                 .ExecuteAndCollect();
  std::map<int64_t, std::vector<int64_t>> per_key;
  for (const auto& [k, c] : out) per_key[k].push_back(c);
  std::map<int64_t, int64_t> expected;
  for (int64_t i = 0; i < 20000; ++i) ++expected[(i * 7919) % 97];
  ASSERT_EQ(per_key.size(), expected.size());
  for (auto& [k, counts] : per_key) {
    std::sort(counts.begin(), counts.end());
    std::vector<int64_t> want(static_cast<size_t>(expected[k]));
    std::iota(want.begin(), want.end(), 1);
    EXPECT_EQ(counts, want) << "key " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(BackendsAndParallelism, KeyedStateJobTest,
                         ::testing::Combine(::testing::Values(BackendType::kHeap, BackendType::kRocksDB),
                                            ::testing::Values(1, 2, 4)),
                         [](const ::testing::TestParamInfo<std::tuple<BackendType, int>>& info) {
                           return NameOf(std::get<0>(info.param)) + "P" + std::to_string(std::get<1>(info.param));
                         });

// Timers and state together: emit each key's sum when its timer fires.
class SumOnTimer : public KeyedProcessFunction<int64_t, Event, std::pair<int64_t, int64_t>> {
 public:
  void Open() override { sum_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("sum", 0)); }
  void ProcessElement(const Event& e, Context& ctx, Collector<std::pair<int64_t, int64_t>>&) override {
    sum_->Update(sum_->Value() + e.value);
    ctx.GetTimerService().RegisterEventTimeTimer(1000);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<std::pair<int64_t, int64_t>>& out) override {
    out.Collect({ctx.GetCurrentKey(), sum_->Value()});
    sum_->Clear();
  }

 private:
  ValueState<int64_t>* sum_ = nullptr;
};

TEST_P(KeyedStateTest, TimersSeeTheStateOfTheirKeyInAJob) {
  auto env = NewEnv(GetParam());
  env->SetParallelism(3);
  auto out = env->FromGenerator([](int64_t i) { return Event{i % 13, i}; }, 5000)
                 .AssignTimestampsAndWatermarks(WatermarkStrategy<Event>::ForMonotonousTimestamps().WithTimestampAssigner(
                     [](const Event& e) { return e.value % 500; }))
                 .KeyBy([](const Event& e) { return e.key; })
                 .Process(SumOnTimer())
                 .ExecuteAndCollect();
  std::map<int64_t, int64_t> expected;
  for (int64_t i = 0; i < 5000; ++i) expected[i % 13] += i;
  std::map<int64_t, int64_t> got(out.begin(), out.end());
  EXPECT_EQ(out.size(), 13u);
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace freshet

namespace freshet {
namespace {

// Snapshots per key group restore into backends of another parallelism.
TEST_P(KeyedStateSnapshotTest, KeyGroupsRestoreAtAnotherParallelism) {
  constexpr int kMaxParallelism = 16;
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  auto source_backend = MakeBackend<std::string>(GetParam(), KeyGroupRange{0, kMaxParallelism - 1}, kMaxParallelism);
  internal::KeyedStateBackend<std::string>& source = *source_backend;
  rc.SetKeyedStateStore(&source);
  auto& count = rc.GetState(ValueStateDescriptor<int64_t>("count"));
  auto& items = rc.GetListState(ListStateDescriptor<std::string>("items"));
  std::map<std::string, int64_t> expected;
  for (int i = 0; i < 500; ++i) {
    std::string key = "key-" + std::to_string(i % 123);
    source.SetCurrentKey(key);
    count.Update(count.Value() + 1);
    items.Add(std::to_string(i));
    ++expected[key];
  }
  std::vector<std::string> groups(kMaxParallelism);
  for (int kg = 0; kg < kMaxParallelism; ++kg) {
    ByteWriter w;
    source.SnapshotKeyGroup(kg, w);
    groups[static_cast<size_t>(kg)].assign(reinterpret_cast<const char*>(w.Data()), w.Size());
  }
  // Restore into 3 subtasks, each reading only its key groups; states are
  // registered after the restore, as operators do in Open().
  std::map<std::string, int64_t> restored;
  size_t total_keys = 0;
  for (int subtask = 0; subtask < 3; ++subtask) {
    KeyGroupRange range = KeyGroupRangeForSubtask(subtask, 3, kMaxParallelism);
    // Restored into the other backend: the format is the same.
    auto target_backend = MakeBackend<std::string>(
        GetParam() == BackendType::kHeap ? BackendType::kRocksDB : BackendType::kHeap, range, kMaxParallelism);
    internal::KeyedStateBackend<std::string>& target = *target_backend;
    for (int kg = range.start; kg <= range.end; ++kg) {
      const std::string& bytes = groups[static_cast<size_t>(kg)];
      ASSERT_TRUE(target.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()).IsOk());
    }
    RuntimeContext trc("t", subtask, 3, kMaxParallelism, 0);
    trc.SetKeyedStateStore(&target);
    auto& c = trc.GetState(ValueStateDescriptor<int64_t>("count"));
    auto& l = trc.GetListState(ListStateDescriptor<std::string>("items"));
    total_keys += target.NumKeys();
    for (const auto& [key, n] : expected) {
      if (!range.Contains(AssignToKeyGroup(key, kMaxParallelism))) continue;
      target.SetCurrentKey(key);
      restored[key] = c.Value();
      EXPECT_EQ(static_cast<int64_t>(l.Get().size()), n) << key;
    }
  }
  EXPECT_EQ(total_keys, expected.size());
  EXPECT_EQ(restored, expected);
}

TEST_P(KeyedStateSnapshotTest, CorruptSnapshotIsRejected) {
  auto backend = MakeBackend<int64_t>(GetParam(), KeyGroupRange{0, 127}, 128);
  const uint8_t garbage[] = {5, 0, 0, 0, 200, 1, 2};
  Status s = backend->RestoreKeyGroup(garbage, sizeof(garbage));
  EXPECT_EQ(s.Code(), StatusCode::kCorruption);
}

INSTANTIATE_TEST_SUITE_P(Backends, KeyedStateTest, ::testing::Values(BackendType::kHeap, BackendType::kRocksDB),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, StateTtlTest, ::testing::Values(BackendType::kHeap, BackendType::kRocksDB),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, KeyedStateSnapshotTest,
                         ::testing::Values(BackendType::kHeap, BackendType::kRocksDB), BackendName);

}  // namespace
}  // namespace freshet
