// Whole jobs on the embedded mini-cluster: every operator and partitioner
// compared with a sequential reference computed in plain C++.

#include <fmt/format.h>
#include <freshet/freshet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace freshet {
namespace {

template <class T>
std::vector<T> Sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<int64_t> Iota(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

// ---- subtask tagging ------------------------------------------------------

/// A record with the producer subtask and the consumer subtask it passed.
struct Routed {
  int64_t value;
  int producer;
  int consumer;
};

class TagProducer : public RichMapFunction<int64_t, Routed> {
 public:
  Routed Map(const int64_t& v) override { return Routed{v, GetRuntimeContext().GetIndexOfThisSubtask(), -1}; }
};

class TagConsumer : public RichMapFunction<Routed, Routed> {
 public:
  Routed Map(const Routed& r) override {
    Routed out = r;
    out.consumer = GetRuntimeContext().GetIndexOfThisSubtask();
    return out;
  }
};

/// Tags any record with the index of the subtask that maps it.
template <class T>
class TagSubtask : public RichMapFunction<T, std::pair<T, int>> {
 public:
  std::pair<T, int> Map(const T& v) override { return {v, this->GetRuntimeContext().GetIndexOfThisSubtask()}; }
};

using PartitionFn = std::function<DataStream<Routed>(DataStream<Routed>)>;

/// Runs sequence 0..n-1 at `producer_p`, tags the producer, partitions with
/// `partition`, tags the consumer (its own task, `consumer_p` wide).
std::vector<Routed> RunRouted(int producer_p, int consumer_p, int64_t n, const PartitionFn& partition,
                              int max_parallelism = 128) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(consumer_p).SetMaxParallelism(max_parallelism);
  DataStream<int64_t> source = env->FromSequence(0, n - 1);
  source.SetParallelism(producer_p);
  DataStream<Routed> produced = source.Map(TagProducer());
  produced.SetParallelism(producer_p).Name("Tag Producer");
  DataStream<Routed> consumed = partition(produced).Map(TagConsumer());
  consumed.SetParallelism(consumer_p).Name("Tag Consumer").DisableChaining();
  return consumed.ExecuteAndCollect("routing");
}

/// Records of each producer in emission (= value) order.
std::map<int, std::vector<Routed>> ByProducer(const std::vector<Routed>& records) {
  std::map<int, std::vector<Routed>> out;
  for (const Routed& r : records) out[r.producer].push_back(r);
  for (auto& [p, v] : out) {
    std::sort(v.begin(), v.end(), [](const Routed& a, const Routed& b) { return a.value < b.value; });
  }
  return out;
}

std::vector<int64_t> Values(const std::vector<Routed>& records) {
  std::vector<int64_t> out;
  for (const Routed& r : records) out.push_back(r.value);
  return Sorted(std::move(out));
}

/// The subtask of `producer_p` that FromSequence(0, n-1) assigns `value` to.
int SequenceOwner(int64_t value, int64_t n, int producer_p) {
  for (int s = 0; s < producer_p; ++s) {
    auto [begin, end] = SplitRange(n, s, producer_p);
    if (value >= begin && value < end) return s;
  }
  return -1;
}

class ParallelOperatorsTest : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(Parallelism, ParallelOperatorsTest, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& info) { return "P" + std::to_string(info.param); });

// ---- stateless operators ----------------------------------------------------

TEST_P(ParallelOperatorsTest, MapMatchesReference) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromSequence(-500, 9499).Map([](int64_t x) { return x * 3 + 1; }).ExecuteAndCollect();
  std::vector<int64_t> expected;
  for (int64_t x = -500; x <= 9499; ++x) expected.push_back(x * 3 + 1);
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

TEST_P(ParallelOperatorsTest, MapChangesTypeToString) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromSequence(0, 999).Map([](int64_t x) { return "n" + std::to_string(x); }).ExecuteAndCollect();
  std::vector<std::string> expected;
  for (int64_t x = 0; x <= 999; ++x) expected.push_back(fmt::format("n{}", x));
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

TEST_P(ParallelOperatorsTest, FlatMapLambdaWithCollector) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromSequence(0, 2999)
                 .FlatMap([](int64_t x, Collector<std::string>& c) {
                   for (int64_t k = 0; k < x % 4; ++k) c.Collect(std::to_string(x) + "/" + std::to_string(k));
                 })
                 .ExecuteAndCollect();
  std::vector<std::string> expected;
  for (int64_t x = 0; x <= 2999; ++x) {
    for (int64_t k = 0; k < x % 4; ++k) expected.push_back(std::to_string(x) + "/" + std::to_string(k));
  }
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

/// Splits sentences into words, numbering each word with the subtask.
class Tokenizer : public RichFlatMapFunction<std::string, std::pair<std::string, int>> {
 public:
  void Open() override { subtask_ = GetRuntimeContext().GetIndexOfThisSubtask(); }
  void FlatMap(const std::string& line, Collector<std::pair<std::string, int>>& out) override {
    size_t pos = 0;
    while (pos < line.size()) {
      size_t end = line.find(' ', pos);
      if (end == std::string::npos) end = line.size();
      if (end > pos) out.Collect({line.substr(pos, end - pos), subtask_});
      pos = end + 1;
    }
  }

 private:
  int subtask_ = -1;
};

TEST_P(ParallelOperatorsTest, FlatMapRichFunctionClass) {
  const int p = GetParam();
  std::vector<std::string> lines;
  for (int i = 0; i < 500; ++i) {
    lines.push_back(fmt::format("w{}  w{} tail{}", i % 13, i % 7, i % 3 ? " x" : ""));
  }
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p);
  auto out = env->FromCollection(lines).Rebalance().FlatMap(Tokenizer()).ExecuteAndCollect();
  std::vector<std::string> expected;
  for (const std::string& line : lines) {
    size_t pos = 0;
    while (pos < line.size()) {
      size_t end = line.find(' ', pos);
      if (end == std::string::npos) end = line.size();
      if (end > pos) expected.push_back(line.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  std::vector<std::string> words;
  std::set<int> subtasks;
  for (const auto& [word, subtask] : out) {
    words.push_back(word);
    subtasks.insert(subtask);
    EXPECT_GE(subtask, 0);
    EXPECT_LT(subtask, p);
  }
  EXPECT_EQ(Sorted(words), Sorted(expected));
  EXPECT_EQ(static_cast<int>(subtasks.size()), p) << "rebalance feeds every tokenizer subtask";
}

TEST_P(ParallelOperatorsTest, FilterMatchesReference) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromSequence(0, 9999).Filter([](int64_t x) { return x % 7 == 3 || x % 11 == 0; }).ExecuteAndCollect();
  std::vector<int64_t> expected;
  for (int64_t x = 0; x <= 9999; ++x) {
    if (x % 7 == 3 || x % 11 == 0) expected.push_back(x);
  }
  EXPECT_EQ(Sorted(out), expected);
}

class EvenFilter : public RichFilterFunction<int64_t> {
 public:
  bool Filter(const int64_t& x) override { return x % 2 == 0; }
};

TEST_P(ParallelOperatorsTest, ChainOfMapFilterFlatMapWithFunctionClasses) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromSequence(1, 3000)
                 .Filter(EvenFilter())
                 .Map([](int64_t x) { return x / 2; })
                 .FlatMap([](int64_t x, Collector<int64_t>& c) {
                   c.Collect(x);
                   c.Collect(-x);
                 })
                 .ExecuteAndCollect();
  std::vector<int64_t> expected;
  for (int64_t x = 1; x <= 3000; ++x) {
    if (x % 2 == 0) {
      expected.push_back(x / 2);
      expected.push_back(-x / 2);
    }
  }
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

// ---- keyed reduce and aggregations ---------------------------------------------

struct Reading {
  std::string sensor;
  int64_t seq;
  int64_t value;
  bool operator==(const Reading&) const = default;
};

bool ReadingLess(const Reading& a, const Reading& b) {
  return std::tie(a.sensor, a.seq, a.value) < std::tie(b.sensor, b.seq, b.value);
}

std::vector<Reading> SortedReadings(std::vector<Reading> v) {
  std::sort(v.begin(), v.end(), ReadingLess);
  return v;
}

std::vector<Reading> MakeReadings(int n) {
  std::vector<Reading> out;
  for (int i = 0; i < n; ++i) {
    // Few distinct values per sensor: ties exercise the earliest-record rule.
    out.push_back(Reading{"sensor-" + std::to_string((i * 7) % 5), i, static_cast<int64_t>((i * 37) % 11) - 5});
  }
  return out;
}

/// Sequential rolling aggregation: emits the key's aggregate after each record.
std::vector<Reading> RollingReference(const std::vector<Reading>& input,
                                      const std::function<Reading(const Reading&, const Reading&)>& step,
                                      std::map<std::string, Reading>* final_out) {
  std::map<std::string, Reading> acc;
  std::vector<Reading> emitted;
  for (const Reading& r : input) {
    auto it = acc.find(r.sensor);
    if (it == acc.end()) {
      it = acc.emplace(r.sensor, r).first;
    } else {
      it->second = step(it->second, r);
    }
    emitted.push_back(it->second);
  }
  if (final_out != nullptr) *final_out = acc;
  return emitted;
}

/// The last record per sensor in output order (each key lives in one subtask,
/// whose output keeps its order).
std::map<std::string, Reading> LastPerKey(const std::vector<Reading>& out) {
  std::map<std::string, Reading> last;
  for (const Reading& r : out) last.insert_or_assign(r.sensor, r);
  return last;
}

enum class Aggregation { kReduce, kSum, kMin, kMax, kMinBy, kMaxBy };

void CheckAggregation(int p, Aggregation kind) {
  std::vector<Reading> input = MakeReadings(400);
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p);
  auto keyed = env->FromCollection(input).KeyBy([](const Reading& r) { return r.sensor; });
  std::function<Reading(const Reading&, const Reading&)> step;
  std::optional<DataStream<Reading>> result;
  switch (kind) {
    case Aggregation::kReduce:
      result = keyed.Reduce([](const Reading& a, const Reading& b) {
        // Order sensitive; wraps in unsigned arithmetic (no signed overflow).
        return Reading{a.sensor, b.seq,
                       static_cast<int64_t>(static_cast<uint64_t>(a.value) * 3 + static_cast<uint64_t>(b.value))};
      });
      step = [](const Reading& a, const Reading& b) {
        return Reading{a.sensor, b.seq,
                       static_cast<int64_t>(static_cast<uint64_t>(a.value) * 3 + static_cast<uint64_t>(b.value))};
      };
      break;
    case Aggregation::kSum:
      result = keyed.Sum(&Reading::value);
      step = [](const Reading& a, const Reading& b) { return Reading{a.sensor, a.seq, a.value + b.value}; };
      break;
    case Aggregation::kMin:
      result = keyed.Min(&Reading::value);
      step = [](const Reading& a, const Reading& b) { return Reading{a.sensor, a.seq, std::min(a.value, b.value)}; };
      break;
    case Aggregation::kMax:
      result = keyed.Max(&Reading::value);
      step = [](const Reading& a, const Reading& b) { return Reading{a.sensor, a.seq, std::max(a.value, b.value)}; };
      break;
    case Aggregation::kMinBy:
      result = keyed.MinBy(&Reading::value);
      step = [](const Reading& a, const Reading& b) { return b.value < a.value ? b : a; };
      break;
    case Aggregation::kMaxBy:
      result = keyed.MaxBy(&Reading::value);
      step = [](const Reading& a, const Reading& b) { return b.value > a.value ? b : a; };
      break;
  }
  std::vector<Reading> out = result->ExecuteAndCollect();
  std::map<std::string, Reading> expected_final;
  std::vector<Reading> expected = RollingReference(input, step, &expected_final);
  EXPECT_EQ(SortedReadings(out), SortedReadings(expected));
  EXPECT_EQ(LastPerKey(out), expected_final);
}

TEST_P(ParallelOperatorsTest, KeyByReduceRollingMatchesReference) { CheckAggregation(GetParam(), Aggregation::kReduce); }
TEST_P(ParallelOperatorsTest, KeyBySumOnStructField) { CheckAggregation(GetParam(), Aggregation::kSum); }
TEST_P(ParallelOperatorsTest, KeyByMinOnStructField) { CheckAggregation(GetParam(), Aggregation::kMin); }
TEST_P(ParallelOperatorsTest, KeyByMaxOnStructField) { CheckAggregation(GetParam(), Aggregation::kMax); }
TEST_P(ParallelOperatorsTest, KeyByMinByKeepsEarliestMinimalRecord) { CheckAggregation(GetParam(), Aggregation::kMinBy); }
TEST_P(ParallelOperatorsTest, KeyByMaxByKeepsEarliestMaximalRecord) { CheckAggregation(GetParam(), Aggregation::kMaxBy); }

/// Concatenates values: the result shows the order in which a key's records arrived.
class ConcatReducer : public RichReduceFunction<std::pair<int, std::string>> {
 public:
  std::pair<int, std::string> Reduce(const std::pair<int, std::string>& a,
                                     const std::pair<int, std::string>& b) override {
    return {a.first, a.second + "," + b.second};
  }
};

TEST_P(ParallelOperatorsTest, KeyByReduceFunctionClassSeesPerKeyOrder) {
  std::vector<std::pair<int, std::string>> input;
  for (int i = 0; i < 600; ++i) input.emplace_back(i % 9, std::to_string(i));
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromCollection(input)
                 .KeyBy([](const std::pair<int, std::string>& r) { return r.first; })
                 .Reduce(ConcatReducer())
                 .ExecuteAndCollect();
  std::map<int, std::string> acc;
  std::vector<std::pair<int, std::string>> expected;
  for (const auto& [k, v] : input) {
    auto [it, inserted] = acc.try_emplace(k, v);
    if (!inserted) it->second += "," + v;
    expected.emplace_back(k, it->second);
  }
  EXPECT_EQ(Sorted(out), Sorted(expected));
  std::map<int, std::string> last;
  for (const auto& [k, v] : out) last[k] = v;
  EXPECT_EQ(last, acc);
}

TEST_P(ParallelOperatorsTest, KeyBySumOnTupleIndex) {
  using Row = std::tuple<std::string, int64_t, int32_t>;
  std::vector<Row> input;
  for (int i = 0; i < 500; ++i) input.emplace_back("k" + std::to_string(i % 6), i * 3 - 100, i);
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromCollection(input).KeyBy([](const Row& r) { return std::get<0>(r); }).Sum<1>().ExecuteAndCollect();
  std::map<std::string, Row> acc;
  std::vector<Row> expected;
  for (const Row& r : input) {
    auto [it, inserted] = acc.try_emplace(std::get<0>(r), r);
    if (!inserted) std::get<1>(it->second) += std::get<1>(r);  // other fields keep the first record's
    expected.push_back(it->second);
  }
  EXPECT_EQ(Sorted(out), Sorted(expected));
  std::map<std::string, Row> last;
  for (const Row& r : out) last.insert_or_assign(std::get<0>(r), r);
  EXPECT_EQ(last, acc);
}

TEST_P(ParallelOperatorsTest, KeyBySumOnPairMemberFromParallelSource) {
  // A parallel source interleaves keys from several producers; a sum's final
  // value does not depend on that order.
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  using KV = std::pair<int64_t, int64_t>;
  auto out = env->FromSequence(1, 5000)
                 .Map([](int64_t x) { return KV{x % 10, x}; })
                 .KeyBy([](const KV& kv) { return kv.first; })
                 .Sum(&KV::second)
                 .ExecuteAndCollect();
  std::map<int64_t, int64_t> expected;
  for (int64_t x = 1; x <= 5000; ++x) expected[x % 10] += x;
  EXPECT_EQ(out.size(), 5000u);
  std::map<int64_t, int64_t> final_sum;
  for (const auto& [k, v] : out) final_sum[k] = std::max(final_sum[k], v);  // sums only grow
  EXPECT_EQ(final_sum, expected);
}

TEST_P(ParallelOperatorsTest, KeyBySumOfWholeRecord) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  std::vector<int64_t> input;
  for (int64_t i = 0; i < 1000; ++i) input.push_back(i * 10 + i % 3);  // key: the last digit
  auto out = env->FromCollection(input).KeyBy([](int64_t x) { return x % 10; }).Sum().ExecuteAndCollect();
  std::map<int64_t, int64_t> acc;
  std::vector<int64_t> expected;
  for (int64_t x : input) expected.push_back(acc[x % 10] += x);
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

// ---- union and connect -----------------------------------------------------------

TEST_P(ParallelOperatorsTest, UnionOfThreeStreams) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto a = env->FromSequence(0, 999);
  auto b = env->FromElements<int64_t>({-1, -2, -3, 5, 5});
  auto c = env->FromGenerator([](int64_t i) { return 100000 + i * 2; }, 700);
  auto out = a.Union(b, c).Map([](int64_t x) { return x + 1; }).ExecuteAndCollect();
  std::vector<int64_t> expected;
  for (int64_t x = 0; x <= 999; ++x) expected.push_back(x + 1);
  for (int64_t x : {-1, -2, -3, 5, 5}) expected.push_back(x + 1);
  for (int64_t i = 0; i < 700; ++i) expected.push_back(100000 + i * 2 + 1);
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

TEST_P(ParallelOperatorsTest, ConnectCoMapWithLambdas) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto numbers = env->FromSequence(0, 499);
  auto words = env->FromCollection(std::vector<std::string>{"alpha", "beta", "gamma", ""});
  auto out = numbers.Connect(words)
                 .CoMap([](int64_t x) { return "n:" + std::to_string(x); },
                        [](const std::string& s) { return "s:" + s; })
                 .ExecuteAndCollect();
  std::vector<std::string> expected;
  for (int64_t x = 0; x <= 499; ++x) expected.push_back("n:" + std::to_string(x));
  for (const char* s : {"alpha", "beta", "gamma", ""}) expected.push_back(std::string("s:") + s);
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

TEST_P(ParallelOperatorsTest, ConnectCoFlatMapWithLambdas) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto numbers = env->FromSequence(0, 299);
  auto words = env->FromCollection(std::vector<std::string>{"a b", "c", "d e f"});
  auto out = numbers.Connect(words)
                 .CoFlatMap<std::string>(
                     [](const int64_t& x, Collector<std::string>& c) {
                       if (x % 3 == 0) {
                         c.Collect(std::to_string(x));
                         c.Collect(std::to_string(-x));
                       }
                     },
                     [](const std::string& s, Collector<std::string>& c) {
                       for (char ch : s) {
                         if (ch != ' ') c.Collect(std::string(1, ch));
                       }
                     })
                 .ExecuteAndCollect();
  std::vector<std::string> expected;
  for (int64_t x = 0; x <= 299; ++x) {
    if (x % 3 == 0) {
      expected.push_back(std::to_string(x));
      expected.push_back(std::to_string(-x));
    }
  }
  for (const char* s : {"a", "b", "c", "d", "e", "f"}) expected.emplace_back(s);
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

class Describer : public CoMapFunction<int64_t, std::string, std::string> {
 public:
  std::string Map1(const int64_t& x) override { return "number " + std::to_string(x); }
  std::string Map2(const std::string& s) override { return "word " + s; }
};

TEST_P(ParallelOperatorsTest, ConnectCoMapFunctionClass) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(GetParam());
  auto out = env->FromSequence(1, 200)
                 .Connect(env->FromCollection(std::vector<std::string>{"x", "y"}))
                 .CoMap(Describer())
                 .ExecuteAndCollect();
  std::vector<std::string> expected;
  for (int64_t x = 1; x <= 200; ++x) expected.push_back("number " + std::to_string(x));
  expected.emplace_back("word x");
  expected.emplace_back("word y");
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

/// Emits both inputs with the side and the subtask; opens once per subtask.
class SideTagger : public RichCoFlatMapFunction<int64_t, int64_t, std::tuple<int, int64_t, int>> {
 public:
  void Open() override { subtask_ = GetRuntimeContext().GetIndexOfThisSubtask(); }
  void FlatMap1(const int64_t& v, Collector<std::tuple<int, int64_t, int>>& out) override {
    out.Collect({1, v, subtask_});
  }
  void FlatMap2(const int64_t& v, Collector<std::tuple<int, int64_t, int>>& out) override {
    out.Collect({2, v, subtask_});
  }

 private:
  int subtask_ = -1;
};

TEST_P(ParallelOperatorsTest, ConnectedKeyedStreamsMeetInOneSubtask) {
  const int p = GetParam();
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p);
  auto left = env->FromSequence(0, 999);
  auto right = env->FromGenerator([](int64_t i) { return i * 3; }, 400);
  auto out = left.Connect(right)
                 .KeyBy([](int64_t x) { return x % 17; }, [](int64_t x) { return x % 17; })
                 .CoFlatMap(SideTagger())
                 .ExecuteAndCollect();
  ASSERT_EQ(out.size(), 1400u);
  std::map<int64_t, std::set<int>> subtasks_of_key;
  std::vector<int64_t> left_values, right_values;
  for (const auto& [side, v, subtask] : out) {
    (side == 1 ? left_values : right_values).push_back(v);
    subtasks_of_key[v % 17].insert(subtask);
    EXPECT_EQ(subtask, SubtaskForKeyGroup(AssignToKeyGroup<int64_t>(v % 17, 128), p, 128));
  }
  for (const auto& [key, subtasks] : subtasks_of_key) EXPECT_EQ(subtasks.size(), 1u) << "key " << key;
  EXPECT_EQ(Sorted(left_values), Iota(0, 999));
  std::vector<int64_t> expected_right;
  for (int64_t i = 0; i < 400; ++i) expected_right.push_back(i * 3);
  EXPECT_EQ(Sorted(right_values), expected_right);
}

// ---- partitioners --------------------------------------------------------------

TEST_P(ParallelOperatorsTest, ForwardKeepsRecordsInTheProducingSubtask) {
  const int p = GetParam();
  const int64_t n = 3000;
  auto out = RunRouted(p, p, n, [](DataStream<Routed> s) { return s.Forward(); });
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  for (const Routed& r : out) {
    EXPECT_EQ(r.consumer, r.producer) << r.value;
    EXPECT_EQ(r.producer, SequenceOwner(r.value, n, p)) << r.value;
  }
}

void CheckRoundRobin(const std::vector<Routed>& out, int lo, int hi, int producer) {
  auto by_producer = ByProducer(out);
  const std::vector<Routed>& records = by_producer[producer];
  ASSERT_FALSE(records.empty());
  std::map<int, int> counts;
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_GE(records[i].consumer, lo);
    ASSERT_LT(records[i].consumer, hi);
    ++counts[records[i].consumer];
    if (i > 0) {
      int prev = records[i - 1].consumer;
      int next = prev + 1 == hi ? lo : prev + 1;
      ASSERT_EQ(records[i].consumer, next) << "producer " << producer << " record " << records[i].value;
    }
  }
  EXPECT_EQ(static_cast<int>(counts.size()), std::min<int>(hi - lo, static_cast<int>(records.size())));
}

struct Widths {
  int producer;
  int consumer;
};

class RedistributionTest : public ::testing::TestWithParam<Widths> {};

INSTANTIATE_TEST_SUITE_P(ProducerConsumer, RedistributionTest,
                         ::testing::Values(Widths{1, 1}, Widths{1, 4}, Widths{2, 2}, Widths{2, 4}, Widths{4, 2},
                                           Widths{2, 3}, Widths{4, 4}),
                         [](const ::testing::TestParamInfo<Widths>& info) {
                           return "From" + std::to_string(info.param.producer) + "To" +
                                  std::to_string(info.param.consumer);
                         });

TEST_P(RedistributionTest, RebalanceIsRoundRobinOverAllConsumers) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 4001;
  auto out = RunRouted(pp, cp, n, [](DataStream<Routed> s) { return s.Rebalance(); });
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  for (int producer = 0; producer < pp; ++producer) CheckRoundRobin(out, 0, cp, producer);
  for (const Routed& r : out) EXPECT_EQ(r.producer, SequenceOwner(r.value, n, pp));
}

TEST_P(RedistributionTest, RescaleIsRoundRobinOverTheProducersConsumers) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 4001;
  auto out = RunRouted(pp, cp, n, [](DataStream<Routed> s) { return s.Rescale(); });
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  for (int producer = 0; producer < pp; ++producer) {
    int lo, hi;
    if (cp >= pp) {
      lo = producer * cp / pp;
      hi = (producer + 1) * cp / pp;
    } else {
      lo = producer * cp / pp;
      hi = lo + 1;
    }
    CheckRoundRobin(out, lo, hi, producer);
  }
  // Every consumer is fed by some producer.
  std::set<int> consumers;
  for (const Routed& r : out) consumers.insert(r.consumer);
  EXPECT_EQ(static_cast<int>(consumers.size()), cp);
}

TEST_P(RedistributionTest, ShuffleDeliversEveryRecordOnceToSomeConsumer) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 8000;
  auto out = RunRouted(pp, cp, n, [](DataStream<Routed> s) { return s.Shuffle(); });
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  std::map<int, int> counts;
  for (const Routed& r : out) {
    ASSERT_GE(r.consumer, 0);
    ASSERT_LT(r.consumer, cp);
    ++counts[r.consumer];
  }
  ASSERT_EQ(static_cast<int>(counts.size()), cp);
  for (const auto& [consumer, count] : counts) EXPECT_GT(count, n / cp / 2) << "consumer " << consumer;
}

TEST_P(RedistributionTest, BroadcastDeliversEveryRecordToEveryConsumer) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 1500;
  auto out = RunRouted(pp, cp, n, [](DataStream<Routed> s) { return s.Broadcast(); });
  ASSERT_EQ(out.size(), static_cast<size_t>(n * cp));
  std::map<int64_t, std::multiset<int>> consumers;
  for (const Routed& r : out) consumers[r.value].insert(r.consumer);
  ASSERT_EQ(consumers.size(), static_cast<size_t>(n));
  std::multiset<int> all;
  for (int c = 0; c < cp; ++c) all.insert(c);
  for (const auto& [value, set] : consumers) ASSERT_EQ(set, all) << value;
}

TEST_P(RedistributionTest, GlobalSendsEverythingToTheFirstConsumer) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 2500;
  auto out = RunRouted(pp, cp, n, [](DataStream<Routed> s) { return s.Global(); });
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  for (const Routed& r : out) ASSERT_EQ(r.consumer, 0) << r.value;
}

TEST_P(RedistributionTest, PartitionCustomUsesTheUserPartitioner) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 3000;
  auto partitioner = [](int64_t key, int num_partitions) { return static_cast<int>((key * 7 + key / 5) % num_partitions); };
  auto out = RunRouted(pp, cp, n, [&](DataStream<Routed> s) {
    return s.PartitionCustom(partitioner, [](const Routed& r) { return r.value; });
  });
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  for (const Routed& r : out) ASSERT_EQ(r.consumer, partitioner(r.value, cp)) << r.value;
}

TEST_P(RedistributionTest, KeyByRoutesByKeyGroup) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 4000;
  auto key_of = [](const Routed& r) { return r.value % 53; };
  auto out = RunRouted(pp, cp, n, [&](DataStream<Routed> s) -> DataStream<Routed> { return s.KeyBy(key_of); });
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  std::map<int64_t, std::set<int>> subtasks_of_key;
  for (const Routed& r : out) {
    int64_t key = key_of(r);
    subtasks_of_key[key].insert(r.consumer);
    ASSERT_EQ(r.consumer, SubtaskForKeyGroup(AssignToKeyGroup(key, 128), cp, 128)) << "key " << key;
  }
  for (const auto& [key, subtasks] : subtasks_of_key) EXPECT_EQ(subtasks.size(), 1u) << key;
}

TEST_P(RedistributionTest, KeyByHonoursTheMaxParallelism) {
  const auto [pp, cp] = GetParam();
  const int64_t n = 2000;
  const int maxp = 7 + cp;  // few key groups: the range split shows
  auto out = RunRouted(
      pp, cp, n, [](DataStream<Routed> s) -> DataStream<Routed> { return s.KeyBy([](const Routed& r) { return r.value; }); },
      maxp);
  ASSERT_EQ(Values(out), Iota(0, n - 1));
  for (const Routed& r : out) {
    int kg = AssignToKeyGroup(r.value, maxp);
    ASSERT_EQ(r.consumer, SubtaskForKeyGroup(kg, cp, maxp)) << r.value;
    ASSERT_TRUE(KeyGroupRangeForSubtask(r.consumer, cp, maxp).Contains(kg));
  }
}

TEST_P(ParallelOperatorsTest, KeyByStringKeysGoToTheKeyGroupOwner) {
  const int p = GetParam();
  std::vector<std::string> words;
  for (int i = 0; i < 2000; ++i) words.push_back("word-" + std::to_string((i * 31) % 97));
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p);
  auto out = env->FromCollection(words)
                 .KeyBy([](const std::string& w) { return w; })
                 .Map(TagSubtask<std::string>())
                 .ExecuteAndCollect();
  ASSERT_EQ(out.size(), words.size());
  std::vector<std::string> seen;
  for (const auto& [w, subtask] : out) {
    seen.push_back(w);
    ASSERT_EQ(subtask, SubtaskForKeyGroup(AssignToKeyGroup(w, 128), p, 128)) << w;
  }
  EXPECT_EQ(Sorted(seen), Sorted(words));
}

TEST_P(ParallelOperatorsTest, KeyByCompositeKeyGoesToTheKeyGroupOwner) {
  const int p = GetParam();
  using Key = std::pair<std::string, int64_t>;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p);
  auto out = env->FromSequence(0, 1999)
                 .KeyBy([](int64_t x) { return Key{"k" + std::to_string(x % 5), x % 7}; })
                 .Map(TagSubtask<int64_t>())
                 .ExecuteAndCollect();
  ASSERT_EQ(out.size(), 2000u);
  std::vector<int64_t> values;
  for (const auto& [x, subtask] : out) {
    values.push_back(x);
    Key key{"k" + std::to_string(x % 5), x % 7};
    ASSERT_EQ(subtask, SubtaskForKeyGroup(AssignToKeyGroup(key, 128), p, 128)) << x;
  }
  EXPECT_EQ(Sorted(values), Iota(0, 1999));
}

TEST(OperatorsTest, DefaultEdgeBetweenDifferentParallelismsRedistributes) {
  // Without an explicit partitioner, a wider consumer still gets every record
  // exactly once and all of its subtasks take part.
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(4);
  auto source = env->FromSequence(0, 3999);
  source.SetParallelism(1);
  auto out = source.Map(TagSubtask<int64_t>()).ExecuteAndCollect();
  std::vector<int64_t> values;
  std::set<int> subtasks;
  for (const auto& [v, s] : out) {
    values.push_back(v);
    subtasks.insert(s);
  }
  EXPECT_EQ(Sorted(values), Iota(0, 3999));
  EXPECT_EQ(subtasks, (std::set<int>{0, 1, 2, 3}));
}

TEST(OperatorsTest, UnionOfAStreamWithItselfDeliversEveryRecordTwice) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto a = env->FromSequence(0, 499);
  auto out = a.Union(a).Map([](int64_t x) { return x; }).ExecuteAndCollect();
  std::vector<int64_t> expected;
  for (int64_t x = 0; x <= 499; ++x) {
    expected.push_back(x);
    expected.push_back(x);
  }
  EXPECT_EQ(Sorted(out), expected);
}

TEST(OperatorsTest, PartitioningInsideAUnionAppliesToThatInputOnly) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  auto broadcast = env->FromElements<int64_t>({1, 2, 3});
  auto global = env->FromElements<int64_t>({100, 200});
  auto out = broadcast.Broadcast().Union(global.Global()).Map(TagSubtask<int64_t>()).ExecuteAndCollect();
  std::map<int64_t, std::multiset<int>> subtasks;
  for (const auto& [v, s] : out) subtasks[v].insert(s);
  for (int64_t v : {1, 2, 3}) EXPECT_EQ(subtasks[v], (std::multiset<int>{0, 1, 2})) << v;
  for (int64_t v : {100, 200}) EXPECT_EQ(subtasks[v], (std::multiset<int>{0})) << v;
  EXPECT_EQ(out.size(), 11u);
}

TEST(OperatorsTest, OneStreamFeedsSeveralConsumersOverChainsAndNetwork) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto sum_chained = std::make_shared<std::atomic<int64_t>>(0);
  auto sum_network = std::make_shared<std::atomic<int64_t>>(0);
  auto count_keyed = std::make_shared<std::atomic<int64_t>>(0);
  auto source = env->FromSequence(1, 10000);
  source.Map([](int64_t x) { return x * 2; }).SinkTo([sum_chained](const int64_t& x) { sum_chained->fetch_add(x); });
  source.Rebalance().Map([](int64_t x) { return -x; }).SinkTo([sum_network](const int64_t& x) {
    sum_network->fetch_add(x);
  });
  source.KeyBy([](int64_t x) { return x % 3; }).Reduce([](int64_t a, int64_t b) { return a + b; }).SinkTo(
      [count_keyed](const int64_t&) { count_keyed->fetch_add(1); });
  auto result = env->Execute();
  ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
  const int64_t total = int64_t{10000} * 10001 / 2;
  EXPECT_EQ(sum_chained->load(), 2 * total);
  EXPECT_EQ(sum_network->load(), -total);
  EXPECT_EQ(count_keyed->load(), 10000);
  EXPECT_EQ(result->records_in, 10000);
  EXPECT_EQ(result->records_out, 30000);
}

TEST(OperatorsTest, ConnectAStreamWithItself) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto a = env->FromSequence(0, 99);
  auto out = a.Connect(a)
                 .CoMap([](int64_t x) { return std::make_pair(1, x); }, [](int64_t x) { return std::make_pair(2, x); })
                 .ExecuteAndCollect();
  std::vector<std::pair<int, int64_t>> expected;
  for (int64_t x = 0; x <= 99; ++x) {
    expected.emplace_back(1, x);
    expected.emplace_back(2, x);
  }
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

TEST(OperatorsTest, KeyedStreamSpelledWithTypeErasedSelector) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  KeyedStream<int64_t, int64_t> keyed = env->FromSequence(1, 100).KeyBy([](int64_t x) { return x % 2; });
  auto out = keyed.Max(internal::IdentityField{}).ExecuteAndCollect();
  std::map<int64_t, int64_t> last;
  for (int64_t v : out) last[v % 2] = std::max(last[v % 2], v);
  EXPECT_EQ(last, (std::map<int64_t, int64_t>{{0, 100}, {1, 99}}));
  EXPECT_EQ(out.size(), 100u);
}

TEST(OperatorsTest, SlotSharingGroupsAndChainingSettingsKeepResults) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto mapped = env->FromSequence(0, 2999).Map([](int64_t x) { return x + 1; });
  mapped.SetParallelism(3).SlotSharingGroup("other");
  auto filtered = mapped.Filter([](int64_t x) { return x % 2 == 0; });
  filtered.StartNewChain();
  auto out = filtered.Map([](int64_t x) { return x / 2; }).ExecuteAndCollect();
  EXPECT_EQ(Sorted(out), Iota(1, 1500));
}

TEST(OperatorsTest, BufferTimeoutSettingsKeepResults) {
  for (int64_t timeout : {-1, 0, 1, 100}) {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(2).SetBufferTimeout(Duration(timeout));
    auto out = env->FromSequence(0, 20000).Rebalance().Map([](int64_t x) { return x; }).ExecuteAndCollect();
    EXPECT_EQ(Sorted(out), Iota(0, 20000)) << "buffer timeout " << timeout;
  }
}

TEST(OperatorsTest, SlowSourceRecordsReachTheSinkWithinTheBufferTimeout) {
  // A trickle of records must not wait for full buffers.
  auto env = StreamExecutionEnvironment::Create();
  env->SetBufferTimeout(Duration(20));
  auto seen = std::make_shared<std::atomic<int64_t>>(0);
  env->FromGenerator([](int64_t i) { return i; }, -1, 50.0).Rebalance().Map([](int64_t x) { return x; }).SinkTo(
      [seen](const int64_t&) { seen->fetch_add(1); });
  auto client = env->ExecuteAsync();
  ASSERT_TRUE(client.IsOk());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (seen->load() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(seen->load(), 3) << "records arrive while the source is slow";
  (*client)->Cancel();
  EXPECT_EQ((*client)->Wait().GetStatus().Code(), StatusCode::kCancelled);
}

TEST(OperatorsTest, CustomPartitionerOutOfRangeFailsTheJob) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(0, 9).PartitionCustom([](int64_t, int n) { return n; }, [](int64_t x) { return x; }).SinkTo(
      [](const int64_t&) {});
  auto result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_NE(result.GetStatus().Message().find("partition"), std::string::npos) << result.GetStatus().Message();
  EXPECT_NE(result.GetStatus().Message().find("[0, 2)"), std::string::npos) << result.GetStatus().Message();
}

// ---- record types across task boundaries ------------------------------------------

struct Inner {
  std::string label;
  std::optional<int32_t> weight;
  bool operator==(const Inner&) const = default;
};

struct Complex {
  int64_t id;
  std::string name;
  std::vector<std::vector<int32_t>> matrix;
  std::optional<std::string> note;
  std::map<std::string, std::vector<Inner>> groups;
  std::vector<std::optional<double>> samples;
  std::unordered_map<int32_t, std::string> index;
  std::optional<std::map<int32_t, std::vector<std::string>>> nested;
  std::pair<int16_t, std::string> tag;
  bool operator==(const Complex&) const = default;
};

Complex MakeComplex(int64_t i) {
  Complex c;
  c.id = i;
  c.name = std::string(static_cast<size_t>(i % 40), static_cast<char>('a' + i % 26)) + "#" + std::to_string(i);
  for (int64_t r = 0; r < i % 4; ++r) {
    std::vector<int32_t> row;
    for (int64_t k = 0; k <= r + i % 3; ++k) row.push_back(static_cast<int32_t>(i * 10 + r * 3 + k));
    c.matrix.push_back(std::move(row));
  }
  if (i % 3 == 0) c.note = "note " + std::to_string(i);
  for (int64_t g = 0; g < i % 3; ++g) {
    std::vector<Inner> members;
    for (int64_t m = 0; m <= g; ++m) {
      members.push_back(Inner{"m" + std::to_string(m), (i + m) % 2 ? std::optional<int32_t>(static_cast<int32_t>(m))
                                                                   : std::nullopt});
    }
    c.groups["g" + std::to_string(g)] = std::move(members);
  }
  for (int64_t s = 0; s < i % 5; ++s) {
    c.samples.push_back(s % 2 ? std::optional<double>(static_cast<double>(i) / 4.0 + static_cast<double>(s))
                              : std::nullopt);
  }
  for (int64_t k = 0; k < i % 4; ++k) c.index[static_cast<int32_t>(k * 100)] = std::string(static_cast<size_t>(k), 'z');
  if (i % 2 == 0) {
    std::map<int32_t, std::vector<std::string>> n;
    n[static_cast<int32_t>(i)] = {"", "x", std::to_string(i)};
    c.nested = std::move(n);
  }
  c.tag = {static_cast<int16_t>(i % 1000), i % 7 == 0 ? "" : "t"};
  return c;
}

/// Rewrites a record in a way the reference repeats.
Complex Touch(Complex c) {
  c.name += "!";
  if (!c.matrix.empty()) c.matrix.back().push_back(-1);
  c.groups["touched"].push_back(Inner{"by map", std::nullopt});
  return c;
}

TEST_P(ParallelOperatorsTest, NestedContainersAndStructsCrossTaskBoundaries) {
  const int p = GetParam();
  const int64_t n = 3000;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p);
  DataStream<Complex> generated = env->FromGenerator(MakeComplex, n);
  DataStream<Complex> touched = generated.Map([](const Complex& c) { return Touch(c); });
  touched.DisableChaining();  // network hop before and after
  auto out = touched.Rebalance()
                 .Filter([](const Complex&) { return true; })
                 .KeyBy([](const Complex& c) { return c.name; })
                 .Map([](const Complex& c) { return c; })
                 .ExecuteAndCollect();
  ASSERT_EQ(out.size(), static_cast<size_t>(n));
  std::sort(out.begin(), out.end(), [](const Complex& a, const Complex& b) { return a.id < b.id; });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], Touch(MakeComplex(i))) << "record " << i;
}

TEST(OperatorsTest, RecordsWithStringsCrossTaskBoundariesWithChainingDisabled) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3).DisableOperatorChaining();
  auto out = env->FromSequence(0, 4999)
                 .Map([](int64_t x) { return std::make_pair(std::string(static_cast<size_t>(x % 50), 'q'), x); })
                 .Filter([](const std::pair<std::string, int64_t>& r) { return r.second % 2 == 1; })
                 .Map([](const std::pair<std::string, int64_t>& r) { return r.first + ":" + std::to_string(r.second); })
                 .ExecuteAndCollect();
  std::vector<std::string> expected;
  for (int64_t x = 1; x < 5000; x += 2) expected.push_back(std::string(static_cast<size_t>(x % 50), 'q') + ":" + std::to_string(x));
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

// ---- records larger than a network buffer ---------------------------------------

struct Big {
  int64_t id;
  std::string payload;
  std::vector<int64_t> numbers;
  bool operator==(const Big&) const = default;
};

/// Every few records is far larger than one 32 KiB network buffer.
Big MakeBig(int64_t i) {
  size_t size = i % 3 == 0 ? 100 * 1000 + static_cast<size_t>(i) : static_cast<size_t>(i * 13 % 200);
  if (i % 17 == 5) size = 1000 * 1000;  // larger than the partition's whole buffer pool
  std::string payload(size, ' ');
  for (size_t k = 0; k < size; ++k) payload[k] = static_cast<char>('A' + (k * 7 + static_cast<size_t>(i)) % 26);
  std::vector<int64_t> numbers(static_cast<size_t>(i % 4 == 1 ? 9000 : i % 5), i);
  return Big{i, std::move(payload), std::move(numbers)};
}

TEST_P(ParallelOperatorsTest, RecordsLargerThanANetworkBufferCrossBoundaries) {
  const int p = GetParam();
  const int64_t n = 60;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p);
  auto out = env->FromGenerator(MakeBig, n)
                 .Rebalance()
                 .Map([](const Big& b) { return b; })
                 .KeyBy([](const Big& b) { return b.id % 5; })
                 .Filter([](const Big& b) { return b.id >= 0; })
                 .ExecuteAndCollect();
  ASSERT_EQ(out.size(), static_cast<size_t>(n));
  std::sort(out.begin(), out.end(), [](const Big& a, const Big& b) { return a.id < b.id; });
  for (int64_t i = 0; i < n; ++i) {
    const Big expected = MakeBig(i);
    ASSERT_EQ(out[static_cast<size_t>(i)].payload.size(), expected.payload.size()) << i;
    ASSERT_TRUE(out[static_cast<size_t>(i)] == expected) << "record " << i;
  }
}

TEST(OperatorsTest, LargeRecordsBroadcastInterleavedWithSmallOnes) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(4);
  auto source = env->FromGenerator(
      [](int64_t i) { return i % 4 == 0 ? std::string(100 * 1024 + static_cast<size_t>(i), 'x') : std::to_string(i); },
      40);
  source.SetParallelism(1);
  auto out = source.Broadcast().Map(TagSubtask<std::string>()).ExecuteAndCollect();
  ASSERT_EQ(out.size(), 160u);
  std::map<int, std::vector<std::string>> per_subtask;
  for (const auto& [s, subtask] : out) per_subtask[subtask].push_back(s);
  std::vector<std::string> expected;
  for (int64_t i = 0; i < 40; ++i) {
    expected.push_back(i % 4 == 0 ? std::string(100 * 1024 + static_cast<size_t>(i), 'x') : std::to_string(i));
  }
  ASSERT_EQ(per_subtask.size(), 4u);
  // One producer, one channel per consumer: each consumer sees the source order.
  for (const auto& [subtask, values] : per_subtask) EXPECT_TRUE(values == expected) << "subtask " << subtask;
}

TEST(OperatorsTest, TinyNetworkBuffersCarryRecordsSpanningManyBuffers) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->GetOptions().segment_size = 256;
  auto out = env->FromGenerator([](int64_t i) { return std::string(static_cast<size_t>(i * 97 % 5000), static_cast<char>('a' + i % 26)); },
                                300)
                 .Rebalance()
                 .Map([](const std::string& s) { return s.size(); })
                 .ExecuteAndCollect();
  std::vector<size_t> expected;
  for (int64_t i = 0; i < 300; ++i) expected.push_back(static_cast<size_t>(i * 97 % 5000));
  EXPECT_EQ(Sorted(out), Sorted(expected));
}

// ---- runtime context and life cycle of rich functions ------------------------------

struct ContextLog {
  std::mutex mu;
  struct OpenEvent {
    int subtask;
    int parallelism;
    int max_parallelism;
    std::string task_name;
    std::string with_subtasks;
  };
  std::vector<OpenEvent> opens;
  std::vector<std::pair<int, int64_t>> closes;  // subtask, records seen
};

class ContextProbe : public RichMapFunction<int64_t, int64_t> {
 public:
  explicit ContextProbe(std::shared_ptr<ContextLog> log) : log_(std::move(log)) {}
  void Open() override {
    const RuntimeContext& c = GetRuntimeContext();
    std::lock_guard lock(log_->mu);
    log_->opens.push_back({c.GetIndexOfThisSubtask(), c.GetNumberOfParallelSubtasks(),
                           c.GetMaxNumberOfParallelSubtasks(), c.GetTaskName(), c.GetTaskNameWithSubtasks()});
  }
  int64_t Map(const int64_t& v) override {
    ++seen_;
    return v;
  }
  void Close() override {
    std::lock_guard lock(log_->mu);
    log_->closes.emplace_back(GetRuntimeContext().GetIndexOfThisSubtask(), seen_);
  }

 private:
  std::shared_ptr<ContextLog> log_;
  int64_t seen_ = 0;
};

TEST_P(ParallelOperatorsTest, RuntimeContextAndOpenCloseOncePerSubtask) {
  const int p = GetParam();
  const int64_t n = 5000;
  auto log = std::make_shared<ContextLog>();
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(p).SetMaxParallelism(64);
  auto out = env->FromSequence(0, n - 1).Map(ContextProbe(log)).Name("Probe").ExecuteAndCollect();
  EXPECT_EQ(Sorted(out), Iota(0, n - 1));
  ASSERT_EQ(log->opens.size(), static_cast<size_t>(p));
  ASSERT_EQ(log->closes.size(), static_cast<size_t>(p));
  std::set<int> opened, closed;
  int64_t total = 0;
  for (const auto& o : log->opens) {
    opened.insert(o.subtask);
    EXPECT_EQ(o.parallelism, p);
    EXPECT_EQ(o.max_parallelism, 64);
    EXPECT_NE(o.task_name.find("Probe"), std::string::npos) << o.task_name;
    EXPECT_NE(o.with_subtasks.find("(" + std::to_string(o.subtask + 1) + "/" + std::to_string(p) + ")#0"),
              std::string::npos)
        << o.with_subtasks;
  }
  for (const auto& [subtask, seen] : log->closes) {
    closed.insert(subtask);
    auto [begin, end] = SplitRange(n, subtask, p);  // chained to the sequence source
    EXPECT_EQ(seen, end - begin) << "subtask " << subtask;
    total += seen;
  }
  std::set<int> all;
  for (int s = 0; s < p; ++s) all.insert(s);
  EXPECT_EQ(opened, all);
  EXPECT_EQ(closed, all);
  EXPECT_EQ(total, n);
}

TEST(OperatorsTest, RuntimeContextOfAnOperatorWithItsOwnParallelism) {
  auto log = std::make_shared<ContextLog>();
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto mapped = env->FromSequence(1, 100).Map(ContextProbe(log));
  mapped.SetParallelism(3).SetMaxParallelism(9);
  auto out = mapped.ExecuteAndCollect();
  EXPECT_EQ(Sorted(out), Iota(1, 100));
  ASSERT_EQ(log->opens.size(), 3u);
  for (const auto& o : log->opens) {
    EXPECT_EQ(o.parallelism, 3);
    EXPECT_EQ(o.max_parallelism, 9);
  }
  int64_t total = 0;
  for (const auto& [subtask, seen] : log->closes) total += seen;
  EXPECT_EQ(total, 100);
}

// ---- asynchronous execution ------------------------------------------------------

TEST(OperatorsTest, ExecuteAsyncThenWaitReportsCountsAndStatus) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto sum = std::make_shared<std::atomic<int64_t>>(0);
  env->FromSequence(1, 10000).Filter([](int64_t x) { return x % 2 == 0; }).SinkTo([sum](const int64_t& x) {
    sum->fetch_add(x);
  });
  auto client_or = env->ExecuteAsync("async job");
  ASSERT_TRUE(client_or.IsOk()) << client_or.GetStatus().ToString();
  std::unique_ptr<JobClient> client = std::move(client_or).Value();
  EXPECT_EQ(client->GetJobId().size(), 32u);
  JobStatus early = client->GetJobStatus();
  EXPECT_TRUE(early == JobStatus::kRunning || early == JobStatus::kFinished) << JobStatusName(early);
  Result<JobExecutionResult> result = client->Wait();
  ASSERT_TRUE(result.IsOk()) << result.GetStatus().ToString();
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kFinished);
  EXPECT_EQ(result->job_name, "async job");
  EXPECT_EQ(result->job_id, client->GetJobId());
  EXPECT_EQ(result->records_in, 10000);  // emitted by the source
  EXPECT_EQ(result->records_out, 5000);  // taken by the sink
  EXPECT_GE(result->net_runtime.count(), 0);
  EXPECT_EQ(sum->load(), 2 * (5000 * 5001 / 2));
  // A finished job stays finished.
  client->Cancel();
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kFinished);
  auto again = client->WaitFor(Duration(10));
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->IsOk());
}

TEST(OperatorsTest, TwoJobsRunConcurrentlyFromTwoEnvironments) {
  auto env1 = StreamExecutionEnvironment::Create();
  auto env2 = StreamExecutionEnvironment::Create();
  env1->SetParallelism(2);
  env2->SetParallelism(3);
  auto a = std::make_shared<std::atomic<int64_t>>(0);
  auto b = std::make_shared<std::atomic<int64_t>>(0);
  env1->FromSequence(1, 20000).Rebalance().SinkTo([a](const int64_t& x) { a->fetch_add(x); });
  env2->FromSequence(1, 30000).KeyBy([](int64_t x) { return x % 3; }).SinkTo([b](const int64_t&) { b->fetch_add(1); });
  auto c1 = env1->ExecuteAsync("one");
  auto c2 = env2->ExecuteAsync("two");
  ASSERT_TRUE(c1.IsOk());
  ASSERT_TRUE(c2.IsOk());
  auto r2 = (*c2)->Wait();
  auto r1 = (*c1)->Wait();
  ASSERT_TRUE(r1.IsOk()) << r1.GetStatus().ToString();
  ASSERT_TRUE(r2.IsOk()) << r2.GetStatus().ToString();
  EXPECT_EQ(a->load(), int64_t{20000} * 20001 / 2);
  EXPECT_EQ(b->load(), 30000);
  EXPECT_NE((*c1)->GetJobId(), (*c2)->GetJobId());
}

}  // namespace
}  // namespace freshet
