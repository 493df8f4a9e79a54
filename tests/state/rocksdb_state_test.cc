// The RocksDB keyed-state backend: every state kind, TTL, snapshots in the
// backend-independent format (compared against the heap backend, which
// serves as the reference), restores across backends and parallelisms,
// snapshot isolation, corrupt input, and the instance's directory.
#include <freshet/freshet.h>
#include <freshet/internal/keyed_state.h>
#include <freshet/internal/rocksdb_keyed_state.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "support/state_helpers.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

using internal::HeapKeyedStateBackend;
using internal::KeyedStateBackend;
using internal::RocksDBKeyedStateBackend;
using test_support::TempDir;

constexpr int kMaxParallelism = 32;

using test_support::Bytes;

StateBackendOptions RocksOptions(const std::string& dir) {
  StateBackendOptions o;
  o.type = StateBackendOptions::Type::kRocksDB;
  o.rocksdb_local_dir = dir;
  return o;
}

using test_support::KeyOf;

using test_support::Average;

using test_support::WriteAll;

// The heap writes a key group's entries in slot order and a map's entries
// in hash-table order; the RocksDB backend writes both in key-byte order.
// Canonical() puts a heap block in that order (the map states' user keys
// are int64, their values strings): the RocksDB block must equal it byte
// for byte.
std::string CanonicalMap(const std::string& bytes) {
  std::unordered_map<int64_t, std::string> map;
  EXPECT_TRUE(DeserializeFromBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), map));
  std::map<std::string, std::string> by_key;  // user key bytes -> value bytes
  for (const auto& [k, v] : map) {
    ByteWriter kb, vb;
    TypeSerializer<int64_t>::Serialize(k, kb);
    TypeSerializer<std::string>::Serialize(v, vb);
    by_key.emplace(Bytes(kb), Bytes(vb));
  }
  ByteWriter out;
  uint32_t n = static_cast<uint32_t>(by_key.size());
  out.Write(&n, sizeof(n));
  for (const auto& [k, v] : by_key) {
    out.Write(k.data(), k.size());
    out.Write(v.data(), v.size());
  }
  return Bytes(out);
}

template <class K>
std::string Canonical(const std::string& block) {
  ByteReader r(reinterpret_cast<const uint8_t*>(block.data()), block.size());
  ByteWriter out;
  uint32_t num_states = 0;
  r.Read(&num_states, sizeof(num_states));
  out.Write(&num_states, sizeof(num_states));
  for (uint32_t i = 0; i < num_states && !r.Failed(); ++i) {
    std::string name;
    TypeSerializer<std::string>::Deserialize(r, name);
    TypeSerializer<std::string>::Serialize(name, out);
    uint64_t n = 0;
    r.Read(&n, sizeof(n));
    std::map<std::string, std::string> entries;
    for (uint64_t e = 0; e < n && !r.Failed(); ++e) {
      K key{};
      TypeSerializer<K>::Deserialize(r, key);
      uint32_t len = 0;
      r.Read(&len, sizeof(len));
      const uint8_t* value = r.Take(len);
      if (value == nullptr) break;
      ByteWriter kb;
      TypeSerializer<K>::Serialize(key, kb);
      std::string v(reinterpret_cast<const char*>(value), len);
      if (name.rfind("map", 0) == 0) v = CanonicalMap(v);
      EXPECT_TRUE(entries.emplace(Bytes(kb), v).second) << "key written twice";
    }
    out.Write(&n, sizeof(n));
    for (const auto& [k, v] : entries) {
      out.Write(k.data(), k.size());
      uint32_t len = static_cast<uint32_t>(v.size());
      out.Write(&len, sizeof(len));
      out.Write(v.data(), v.size());
    }
  }
  EXPECT_FALSE(r.Failed());
  EXPECT_EQ(r.Remaining(), 0u);
  return Bytes(out);
}

template <class K>
std::map<int, std::string> Canonical(const std::map<int, std::string>& blocks) {
  std::map<int, std::string> out;
  for (const auto& [kg, block] : blocks) out.emplace(kg, Canonical<K>(block));
  return out;
}

// Equality of two sets of blocks, naming the first difference.
::testing::AssertionResult SameBlocks(const std::map<int, std::string>& actual,
                                      const std::map<int, std::string>& expected) {
  for (const auto& [kg, block] : expected) {
    auto it = actual.find(kg);
    if (it == actual.end()) return ::testing::AssertionFailure() << "key group " << kg << " is missing";
    if (it->second != block) {
      return ::testing::AssertionFailure() << "key group " << kg << " differs: " << it->second.size() << " bytes, "
                                           << block.size() << " expected";
    }
  }
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << actual.size() << " key groups, " << expected.size() << " expected";
  }
  return ::testing::AssertionSuccess();
}

// The states of one backend, through a RuntimeContext as user functions
// get them: every kind, with TTL on a value, a list and a map.
struct States {
  static constexpr int64_t kTtl = 40;

  explicit States(internal::KeyedStateStore* store, int max_parallelism = kMaxParallelism)
      : rc("t", 0, 1, max_parallelism, 0) {
    rc.SetKeyedStateStore(store);
  }
  void Register() {
    value = &rc.GetState(ValueStateDescriptor<int64_t>("value", -1));
    list = &rc.GetListState(ListStateDescriptor<std::string>("list"));
    map = &rc.GetMapState(MapStateDescriptor<int64_t, std::string>("map"));
    sum = &rc.GetReducingState(ReducingStateDescriptor<int64_t>("sum", [](int64_t a, int64_t b) { return a + b; }));
    avg = &rc.GetAggregatingState(AggregatingStateDescriptor<Average>("avg", Average{}));
    ValueStateDescriptor<int64_t> ttl_value_d("ttl_value");
    ttl_value_d.EnableTimeToLive(StateTtlConfig::Of(Duration(kTtl)));
    ttl_value = &rc.GetState(ttl_value_d);
    ListStateDescriptor<std::string> ttl_list_d("ttl_list");
    ttl_list_d.EnableTimeToLive(StateTtlConfig::Of(Duration(kTtl), StateTtlConfig::UpdateType::kOnReadAndWrite));
    ttl_list = &rc.GetListState(ttl_list_d);
    MapStateDescriptor<int64_t, std::string> ttl_map_d("map_ttl");
    ttl_map_d.EnableTimeToLive(StateTtlConfig::Of(Duration(kTtl), StateTtlConfig::UpdateType::kOnReadAndWrite));
    ttl_map = &rc.GetMapState(ttl_map_d);
  }

  RuntimeContext rc;
  ValueState<int64_t>* value = nullptr;
  ListState<std::string>* list = nullptr;
  MapState<int64_t, std::string>* map = nullptr;
  ReducingState<int64_t>* sum = nullptr;
  AggregatingState<int64_t, double>* avg = nullptr;
  ValueState<int64_t>* ttl_value = nullptr;
  ListState<std::string>* ttl_list = nullptr;
  MapState<int64_t, std::string>* ttl_map = nullptr;
};

std::string Show(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; }
std::string Show(const std::vector<std::string>& v) {
  std::string s = "[";
  for (const auto& e : v) s += e + ",";
  return s + "]";
}
std::string Show(std::vector<std::pair<int64_t, std::string>> v) {
  std::sort(v.begin(), v.end());
  std::string s = "{";
  for (const auto& [k, e] : v) s += std::to_string(k) + ":" + e + ",";
  return s + "}";
}

// One random operation on the current key of `s`; returns what it read.
std::string RandomOp(States& s, uint64_t r, int op) {
  const int64_t uk = static_cast<int64_t>((r >> 8) % 6);
  const std::string text = std::to_string(op);
  switch (r % 24) {
    case 0: s.value->Update(s.value->Value() + 1); return "";
    case 1: return Show(s.value->Get()) + std::to_string(s.value->Value());
    case 2: s.value->Clear(); return "";
    case 3: s.list->Add("a" + text); return "";
    case 4: s.list->AddAll({"b" + text, "c" + text}); return "";
    case 5: s.list->Update(op % 3 == 0 ? std::vector<std::string>{} : std::vector<std::string>{"u" + text}); return "";
    case 6: return Show(s.list->Get());
    case 7: s.map->Put(uk, "p" + text); return "";
    case 8: s.map->Remove(uk); return "";
    case 9:
      return Show(s.map->Entries()) + (s.map->Contains(uk) ? "y" : "n") + (s.map->IsEmpty() ? "e" : "f") +
             s.map->Get(uk).value_or("none");
    case 10: s.map->Clear(); return "";
    case 11: s.sum->Add(op); return Show(s.sum->Get());
    case 12: s.avg->Add(op % 17); return s.avg->Get() ? std::to_string(*s.avg->Get()) : "-";
    case 13: s.ttl_value->Update(op); return "";
    case 14: return Show(s.ttl_value->Get());
    case 15: s.ttl_list->Add("t" + text); return "";
    case 16: return Show(s.ttl_list->Get());
    case 17: s.ttl_map->Put(uk, "q" + text); return "";
    case 18: {
      std::vector<std::pair<int64_t, std::string>> seen;
      s.ttl_map->ForEach([&](const int64_t& k, const std::string& v) { seen.emplace_back(k, v); });
      return Show(seen) + s.ttl_map->Get(uk).value_or("none");
    }
    case 19: s.ttl_map->Remove(uk); return "";
    case 20: s.sum->Clear(); s.avg->Clear(); return "";
    case 21: s.ttl_list->Clear(); s.ttl_map->Clear(); return "";
    case 22: return Show(s.sum->Get()) + (s.map->IsEmpty() ? "e" : "f") + Show(s.ttl_map->Entries());
    default:
      s.value->Clear(); s.list->Clear(); s.map->Clear(); s.sum->Clear(); s.avg->Clear();
      s.ttl_value->Clear(); s.ttl_list->Clear(); s.ttl_map->Clear();
      return "";
  }
}

// The same random operations on a heap and a RocksDB backend.
template <class K>
class Twin {
 public:
  explicit Twin(const std::string& dir)
      : heap_(KeyGroupRange{0, kMaxParallelism - 1}, kMaxParallelism, &time_),
        rocks_(KeyGroupRange{0, kMaxParallelism - 1}, kMaxParallelism, &time_, RocksOptions(dir)),
        heap_states_(&heap_),
        rocks_states_(&rocks_) {
    heap_states_.Register();
    rocks_states_.Register();
  }
  // `ops` operations over `keys` keys; reads must agree.
  void Run(uint64_t seed, int ops, int64_t keys) {
    uint64_t x = seed * 2654435761u + 7;
    for (int op = 0; op < ops; ++op) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      uint64_t r = x >> 20;
      if (op % 97 == 0) time_.SetTime(time_.CurrentProcessingTime() + 7);
      key_ = KeyOf<K>(static_cast<int64_t>((r >> 16) % static_cast<uint64_t>(keys)));
      heap_.SetCurrentKey(key_);
      rocks_.SetCurrentKey(key_);
      std::string expected = RandomOp(heap_states_, r, op);
      std::string actual = RandomOp(rocks_states_, r, op);
      ASSERT_EQ(actual, expected) << "op " << op << " kind " << r % 24;
    }
  }
  // Both backends' snapshots: RocksDB's blocks must be the heap's in
  // canonical order.
  void ExpectSameSnapshots() {
    auto heap_blocks = WriteAll(*heap_.Snapshot());
    auto rocks_blocks = WriteAll(*rocks_.Snapshot());
    EXPECT_FALSE(heap_blocks.empty());
    EXPECT_TRUE(SameBlocks(rocks_blocks, Canonical<K>(heap_blocks)));
    // SnapshotKeyGroup, for every key group, listed or not.
    for (int kg = 0; kg < kMaxParallelism; ++kg) {
      ByteWriter h, r;
      heap_.SnapshotKeyGroup(kg, h);
      rocks_.SnapshotKeyGroup(kg, r);
      EXPECT_EQ(Bytes(r), Canonical<K>(Bytes(h))) << "key group " << kg;
    }
  }

  testing::ManualProcessingTimeService& Time() { return time_; }
  HeapKeyedStateBackend<K>& Heap() { return heap_; }
  RocksDBKeyedStateBackend<K>& Rocks() { return rocks_; }
  States& HeapStates() { return heap_states_; }
  States& RocksStates() { return rocks_states_; }

 private:
  testing::ManualProcessingTimeService time_;
  HeapKeyedStateBackend<K> heap_;
  RocksDBKeyedStateBackend<K> rocks_;
  States heap_states_;
  States rocks_states_;
  K key_{};
};

// ---- the state kinds -----------------------------------------------------------------

class RocksDBStateTest : public ::testing::Test {
 protected:
  TempDir dir_{"freshet-rocksdb-test"};
  testing::ManualProcessingTimeService time_;
};

TEST_F(RocksDBStateTest, ValueStateKeepsOneValuePerKeyWithDefaults) {
  RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_,
                                            RocksOptions(dir_.Path()));
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&backend);
  auto& with_default = rc.GetState(ValueStateDescriptor<int64_t>("d", 42));
  auto& plain = rc.GetState(ValueStateDescriptor<std::string>("s"));
  EXPECT_EQ(&with_default, &rc.GetState(ValueStateDescriptor<int64_t>("d", 42)));
  EXPECT_NE(dynamic_cast<internal::RocksDBValueState<int64_t>*>(&with_default), nullptr);
  for (int64_t k = 0; k < 200; ++k) {
    backend.SetCurrentKey(k);
    EXPECT_EQ(with_default.Value(), 42);
    EXPECT_FALSE(with_default.Get().has_value());
    EXPECT_EQ(plain.Value(), "");
    with_default.Update(k * 10);
    plain.Update("v" + std::to_string(k));
  }
  for (int64_t k = 0; k < 200; ++k) {
    backend.SetCurrentKey(k);
    EXPECT_EQ(with_default.Value(), k * 10);
    EXPECT_EQ(plain.Get(), std::optional<std::string>("v" + std::to_string(k)));
    if (k % 2 == 0) with_default.Clear();
  }
  for (int64_t k = 0; k < 200; ++k) {
    backend.SetCurrentKey(k);
    EXPECT_EQ(with_default.Value(), k % 2 == 0 ? 42 : k * 10);
  }
  EXPECT_EQ(backend.NumKeys(), 200u);
  std::set<int64_t> odd;
  backend.ForEachKeyWithState("d", [&](const int64_t& key) {
    odd.insert(key);
    EXPECT_EQ(with_default.Value(), key * 10);  // the key is current
  });
  EXPECT_EQ(odd.size(), 100u);
  EXPECT_EQ(*odd.begin() % 2, 1);
}

TEST_F(RocksDBStateTest, ListStateAddsUpdatesAndClears) {
  RocksDBKeyedStateBackend<std::string> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_,
                                                RocksOptions(dir_.Path()));
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&backend);
  auto& strings = rc.GetListState(ListStateDescriptor<std::string>("l"));
  auto& numbers = rc.GetListState(ListStateDescriptor<int32_t>("n"));
  std::string a = "alpha", b = "beta";
  backend.SetCurrentKey(a);
  EXPECT_TRUE(strings.Get().empty());
  strings.Add("x");
  strings.AddAll({"y", "z"});
  strings.AddAll({});
  numbers.Add(1);
  numbers.Add(2);
  backend.SetCurrentKey(b);
  strings.Add("other");
  backend.SetCurrentKey(a);
  EXPECT_EQ(strings.Get(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(numbers.Get(), (std::vector<int32_t>{1, 2}));
  strings.Update({"u", "v"});
  EXPECT_EQ(strings.Get(), (std::vector<std::string>{"u", "v"}));
  strings.Update({});
  EXPECT_TRUE(strings.Get().empty());
  numbers.Clear();
  EXPECT_TRUE(numbers.Get().empty());
  backend.SetCurrentKey(b);
  EXPECT_EQ(strings.Get(), (std::vector<std::string>{"other"}));
  EXPECT_EQ(backend.NumKeys(), 1u);
}

// Appends to lists without TTL are RocksDB merges: they must read back in
// order after the memtables were flushed (merge operands in table files,
// combined by reads and compactions), in snapshots, and after a restore.
TEST_F(RocksDBStateTest, ListAppendsReadBackInOrderAfterFlushesAndRestores) {
  StateBackendOptions options = RocksOptions(dir_.Path());
  options.rocksdb_memory_per_slot = uint64_t{1} << 20;  // small memtables: many flushes
  RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_, options);
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&backend);
  auto& lists = rc.GetListState(ListStateDescriptor<std::string>("l"));
  std::map<int64_t, std::vector<std::string>> expected;
  for (int i = 0; i < 30000; ++i) {
    int64_t key = i % 37;
    std::string value = std::to_string(i) + std::string(static_cast<size_t>(i % 200), 'x');
    backend.SetCurrentKey(key);
    if (i % 1000 == 999) {
      lists.AddAll({value, value + "!"});
      expected[key].push_back(value);
      expected[key].push_back(value + "!");
    } else {
      lists.Add(value);
      expected[key].push_back(value);
    }
    if (i == 15000) {  // a clear between appends: later merges start afresh
      lists.Clear();
      expected[key].clear();
    }
  }
  for (const auto& [key, values] : expected) {
    backend.SetCurrentKey(key);
    ASSERT_EQ(lists.Get(), values) << "key " << key;
  }
  // Snapshot, then restore into a fresh RocksDB and a heap backend.
  const auto blocks = WriteAll(*backend.Snapshot());
  RocksDBKeyedStateBackend<int64_t> rocks({0, kMaxParallelism - 1}, kMaxParallelism, &time_, options);
  HeapKeyedStateBackend<int64_t> heap({0, kMaxParallelism - 1}, kMaxParallelism, &time_);
  for (const auto& [kg, block] : blocks) {
    ASSERT_TRUE(rocks.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size()).IsOk());
    ASSERT_TRUE(heap.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size()).IsOk());
  }
  for (KeyedStateBackend<int64_t>* restored : {static_cast<KeyedStateBackend<int64_t>*>(&rocks),
                                               static_cast<KeyedStateBackend<int64_t>*>(&heap)}) {
    RuntimeContext rrc("t", 0, 1, kMaxParallelism, 0);
    rrc.SetKeyedStateStore(restored);
    auto& restored_lists = rrc.GetListState(ListStateDescriptor<std::string>("l"));
    for (const auto& [key, values] : expected) {
      restored->SetCurrentKey(key);
      ASSERT_EQ(restored_lists.Get(), values) << "key " << key;
    }
  }
}

TEST_F(RocksDBStateTest, MapStateHoldsOneEntryPerUserKey) {
  RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_,
                                            RocksOptions(dir_.Path()));
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&backend);
  auto& map = rc.GetMapState(MapStateDescriptor<std::string, int64_t>("m"));
  for (int64_t k = 0; k < 50; ++k) {
    backend.SetCurrentKey(k);
    EXPECT_TRUE(map.IsEmpty());
    for (int64_t i = 0; i <= k % 5; ++i) map.Put("e" + std::to_string(i), k * 100 + i);
  }
  for (int64_t k = 0; k < 50; ++k) {
    backend.SetCurrentKey(k);
    EXPECT_FALSE(map.IsEmpty());
    EXPECT_EQ(map.Get("e0"), std::optional<int64_t>(k * 100));
    EXPECT_FALSE(map.Get("e9").has_value());
    EXPECT_TRUE(map.Contains("e0"));
    EXPECT_FALSE(map.Contains("e9"));
    auto entries = map.Entries();
    EXPECT_EQ(entries.size(), static_cast<size_t>(k % 5 + 1));
    std::map<std::string, int64_t> seen;
    map.ForEach([&](const std::string& key, const int64_t& v) { seen.emplace(key, v); });
    EXPECT_EQ(seen.size(), entries.size());
    for (const auto& [key, v] : entries) EXPECT_EQ(seen.at(key), v);
  }
  int64_t four = 4, zero = 0;
  backend.SetCurrentKey(four);
  map.Put("e0", -1);  // overwrite
  EXPECT_EQ(map.Get("e0"), std::optional<int64_t>(-1));
  map.Remove("e0");
  map.Remove("absent");
  EXPECT_FALSE(map.Contains("e0"));
  EXPECT_EQ(map.Entries().size(), 4u);
  map.Clear();
  EXPECT_TRUE(map.IsEmpty());
  EXPECT_TRUE(map.Entries().empty());
  backend.SetCurrentKey(zero);
  map.Remove("e0");
  EXPECT_TRUE(map.IsEmpty());
  EXPECT_EQ(backend.NumKeys(), 48u);
}

TEST_F(RocksDBStateTest, ReducingAndAggregatingStateFoldValuesIn) {
  RocksDBKeyedStateBackend<int32_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_,
                                            RocksOptions(dir_.Path()));
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&backend);
  auto& max = rc.GetReducingState(
      ReducingStateDescriptor<int64_t>("max", [](int64_t a, int64_t b) { return std::max(a, b); }));
  auto& avg = rc.GetAggregatingState(AggregatingStateDescriptor<Average>("avg", Average{}));
  for (int32_t k = 0; k < 20; ++k) {
    backend.SetCurrentKey(k);
    EXPECT_FALSE(max.Get().has_value());
    EXPECT_FALSE(avg.Get().has_value());
    for (int64_t v : {3, 9, 1}) {
      max.Add(v + k);
      avg.Add(v + k);
    }
  }
  for (int32_t k = 0; k < 20; ++k) {
    backend.SetCurrentKey(k);
    EXPECT_EQ(max.Get(), std::optional<int64_t>(9 + k));
    EXPECT_DOUBLE_EQ(*avg.Get(), 13.0 / 3 + k);
  }
  int32_t three = 3;
  backend.SetCurrentKey(three);
  max.Clear();
  avg.Clear();
  EXPECT_FALSE(max.Get().has_value());
  EXPECT_FALSE(avg.Get().has_value());
  max.Add(-5);
  EXPECT_EQ(max.Get(), std::optional<int64_t>(-5));
}

TEST_F(RocksDBStateTest, TtlNeverReturnsExpiredValuesAndRefreshesAsConfigured) {
  for (auto update : {StateTtlConfig::UpdateType::kOnCreateAndWrite, StateTtlConfig::UpdateType::kOnReadAndWrite}) {
    const bool refreshed = update == StateTtlConfig::UpdateType::kOnReadAndWrite;
    testing::ManualProcessingTimeService time;
    RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time,
                                              RocksOptions(dir_.Path()));
    RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
    rc.SetKeyedStateStore(&backend);
    auto ttl = StateTtlConfig::Of(Duration(100), update);
    ValueStateDescriptor<int64_t> vd("v", 0);
    vd.EnableTimeToLive(ttl);
    ListStateDescriptor<int64_t> ld("l");
    ld.EnableTimeToLive(ttl);
    MapStateDescriptor<int64_t, int64_t> md("m");
    md.EnableTimeToLive(ttl);
    ReducingStateDescriptor<int64_t> rd("r", [](int64_t a, int64_t b) { return a + b; });
    rd.EnableTimeToLive(ttl);
    AggregatingStateDescriptor<Average> ad("a", Average{});
    ad.EnableTimeToLive(ttl);
    auto& v = rc.GetState(vd);
    auto& l = rc.GetListState(ld);
    auto& m = rc.GetMapState(md);
    auto& r = rc.GetReducingState(rd);
    auto& a = rc.GetAggregatingState(ad);
    auto write_all = [&] {
      v.Update(7);
      l.Add(1);
      m.Put(1, 10);
      r.Add(5);
      a.Add(4);
    };
    int64_t k1 = 1, k2 = 2;
    time.SetTime(1000);
    backend.SetCurrentKey(k1);
    write_all();
    backend.SetCurrentKey(k2);
    write_all();
    time.SetTime(1099);
    backend.SetCurrentKey(k1);  // read at 1099: refreshes under kOnReadAndWrite
    EXPECT_EQ(v.Value(), 7);
    EXPECT_EQ(l.Get().size(), 1u);
    EXPECT_EQ(m.Get(1), std::optional<int64_t>(10));
    EXPECT_EQ(r.Get(), std::optional<int64_t>(5));
    EXPECT_TRUE(a.Get().has_value());
    time.SetTime(1100);
    // Key 2, never read, has expired whatever the update type.
    backend.SetCurrentKey(k2);
    EXPECT_EQ(v.Value(), 0);  // the default
    EXPECT_FALSE(v.Get().has_value());
    EXPECT_TRUE(l.Get().empty());
    EXPECT_TRUE(m.IsEmpty());
    EXPECT_FALSE(r.Get().has_value());
    EXPECT_FALSE(a.Get().has_value());
    // Writes after expiry start afresh.
    r.Add(1);
    EXPECT_EQ(r.Get(), std::optional<int64_t>(1));
    l.Add(2);
    EXPECT_EQ(l.Get(), (std::vector<int64_t>{2}));
    m.Put(2, 20);
    EXPECT_EQ(m.Entries().size(), 1u);
    backend.SetCurrentKey(k1);
    EXPECT_EQ(v.Get().has_value(), refreshed);
    EXPECT_EQ(m.Contains(1), refreshed);
    EXPECT_EQ(r.Get().has_value(), refreshed);
    EXPECT_EQ(l.Get().size(), refreshed ? 1u : 0u);
    // A snapshot leaves expired values out.
    time.SetTime(5000);
    auto snapshot = backend.Snapshot();
    EXPECT_TRUE(snapshot->KeyGroups().empty());
    ByteWriter empty;
    snapshot->WriteKeyGroup(AssignToKeyGroup(k2, kMaxParallelism), empty);
    auto blocks = WriteAll(*snapshot);
    EXPECT_TRUE(blocks.empty());
  }
}

// ---- against the heap backend ----------------------------------------------------------

template <class K>
void DifferentialRun(const std::string& dir, uint64_t seed) {
  Twin<K> twin(dir);
  twin.Time().SetTime(100);
  twin.Run(seed, 6000, 300);
  ASSERT_FALSE(::testing::Test::HasFailure());
  twin.ExpectSameSnapshots();
  // Later, with part of the TTL values expired at the snapshot.
  twin.Time().SetTime(twin.Time().CurrentProcessingTime() + States::kTtl / 2);
  twin.Run(seed + 1, 3000, 300);
  ASSERT_FALSE(::testing::Test::HasFailure());
  twin.ExpectSameSnapshots();
}

TEST_F(RocksDBStateTest, RandomOperationsMatchTheHeapBackendInt64Keys) {
  DifferentialRun<int64_t>(dir_.Path(), 1);
  DifferentialRun<int64_t>(dir_.Path(), 2);
}

TEST_F(RocksDBStateTest, RandomOperationsMatchTheHeapBackendStringKeys) {
  DifferentialRun<std::string>(dir_.Path(), 3);
}

// Blocks restored into `parallelism` backends of type B, their snapshots
// gathered again.
template <class Make>
std::map<int, std::string> RestoreAndSnapshot(const std::map<int, std::string>& blocks, int parallelism,
                                              bool register_first, Make make) {
  std::map<int, std::string> out;
  for (int subtask = 0; subtask < parallelism; ++subtask) {
    KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, kMaxParallelism);
    auto backend = make(range);
    States states(backend.get());
    if (register_first) states.Register();
    for (const auto& [kg, block] : blocks) {
      if (!range.Contains(kg)) continue;
      Status s = backend->RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size());
      EXPECT_TRUE(s.IsOk()) << s.ToString();
    }
    if (!register_first) states.Register();  // as operators do, in Open()
    for (auto& [kg, block] : WriteAll(*backend->Snapshot())) {
      EXPECT_TRUE(range.Contains(kg));
      out.emplace(kg, std::move(block));
    }
  }
  return out;
}

TEST_F(RocksDBStateTest, SnapshotsRestoreAcrossBackendsAndParallelisms) {
  Twin<int64_t> twin(dir_.Path());
  twin.Time().SetTime(100);
  twin.Run(11, 5000, 400);
  ASSERT_FALSE(HasFailure());
  const auto original = WriteAll(*twin.Heap().Snapshot());
  const auto canonical = Canonical<int64_t>(original);
  testing::ManualProcessingTimeService* time = &twin.Time();
  auto make_rocks = [&](KeyGroupRange range) {
    return std::make_unique<RocksDBKeyedStateBackend<int64_t>>(range, kMaxParallelism, time,
                                                               RocksOptions(dir_.Path()));
  };
  auto make_heap = [&](KeyGroupRange range) {
    return std::make_unique<HeapKeyedStateBackend<int64_t>>(range, kMaxParallelism, time);
  };
  for (int parallelism : {1, 2, 4}) {
    for (bool register_first : {false, true}) {
      SCOPED_TRACE("parallelism " + std::to_string(parallelism) + (register_first ? ", registered first" : ""));
      // heap -> RocksDB at `parallelism`: RocksDB writes the heap's state.
      auto in_rocks = RestoreAndSnapshot(original, parallelism, register_first, make_rocks);
      EXPECT_TRUE(SameBlocks(in_rocks, canonical));
      // -> heap at another parallelism -> the same state again.
      int back = parallelism == 1 ? 3 : 1;
      auto in_heap = RestoreAndSnapshot(in_rocks, back, !register_first, make_heap);
      EXPECT_TRUE(SameBlocks(Canonical<int64_t>(in_heap), canonical));
      // And RocksDB -> RocksDB.
      EXPECT_TRUE(SameBlocks(RestoreAndSnapshot(in_rocks, back, register_first, make_rocks), canonical));
    }
  }
  // Reads after a restore agree with the source.
  RocksDBKeyedStateBackend<int64_t> restored({0, kMaxParallelism - 1}, kMaxParallelism, time,
                                             RocksOptions(dir_.Path()));
  for (const auto& [kg, block] : original) {
    ASSERT_TRUE(restored.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size()).IsOk());
  }
  States states(&restored);
  states.Register();
  for (int64_t k = 0; k < 400; ++k) {
    twin.Heap().SetCurrentKey(k);
    restored.SetCurrentKey(k);
    States& heap = twin.HeapStates();
    ASSERT_EQ(states.value->Get(), heap.value->Get()) << k;
    ASSERT_EQ(states.list->Get(), heap.list->Get()) << k;
    ASSERT_EQ(Show(states.map->Entries()), Show(heap.map->Entries())) << k;
    ASSERT_EQ(states.sum->Get(), heap.sum->Get()) << k;
    ASSERT_EQ(states.avg->Get(), heap.avg->Get()) << k;
  }
}

TEST_F(RocksDBStateTest, CompactionDropsExpiredValuesButNotWhatASnapshotBeingWrittenHolds) {
  RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_,
                                            RocksOptions(dir_.Path()));
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&backend);
  ValueStateDescriptor<int64_t> with_ttl("ttl", 0);
  with_ttl.EnableTimeToLive(StateTtlConfig::Of(Duration(100)));
  auto& expiring = rc.GetState(with_ttl);
  auto& lasting = rc.GetState(ValueStateDescriptor<int64_t>("no-ttl", 0));
  time_.SetTime(1000);
  int64_t key = 0;
  for (key = 0; key < 1000; ++key) {
    backend.SetCurrentKey(key);
    expiring.Update(key);
    lasting.Update(key);
  }
  EXPECT_EQ(backend.NumKeys(), 1000u);  // counts stored entries, expired or not
  // A snapshot taken now, written while the values expire.
  auto snapshot = backend.Snapshot();
  time_.SetTime(1200);
  key = 0;
  backend.SetCurrentKey(key);
  EXPECT_EQ(expiring.Get(), std::nullopt);  // the read also tells the store the time
  backend.Rocks()->CompactAll();
  auto blocks = WriteAll(*snapshot);
  int64_t in_snapshot = 0;
  HeapKeyedStateBackend<int64_t> heap({0, kMaxParallelism - 1}, kMaxParallelism, &time_);
  for (const auto& [kg, block] : blocks) {
    ASSERT_TRUE(heap.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size()).IsOk());
  }
  RuntimeContext heap_rc("t", 0, 1, kMaxParallelism, 0);
  heap_rc.SetKeyedStateStore(&heap);
  heap_rc.GetState(with_ttl);  // restored values start a new time to live
  heap.ForEachKeyWithState("ttl", [&](const int64_t&) { ++in_snapshot; });
  EXPECT_EQ(in_snapshot, 1000) << "every value was live when the snapshot was taken";
  snapshot.reset();
  // Without the snapshot, a compaction drops the expired values: only the
  // state without TTL keeps its 1000 keys.
  backend.Rocks()->CompactAll();
  EXPECT_EQ(backend.NumKeys(), 1000u);
  int64_t with_ttl_left = 0;
  backend.ForEachKeyWithState("ttl", [&](const int64_t&) { ++with_ttl_left; });
  EXPECT_EQ(with_ttl_left, 0);
  size_t stored = 0;
  backend.Rocks()->Scan(0, std::string_view(), [&](std::string_view, std::string_view) {
    ++stored;
    return true;
  });
  EXPECT_EQ(stored, 0u) << "expired values left the disk";
  for (key = 0; key < 1000; key += 97) {
    backend.SetCurrentKey(key);
    EXPECT_EQ(lasting.Value(), key);
  }
}

TEST_F(RocksDBStateTest, ChangedStateKindOrTypeIsRejectedOnRestore) {
  RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_,
                                            RocksOptions(dir_.Path()));
  backend.SetRestoredInfo({{"v", "value", typeid(int64_t).name()}});
  RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
  rc.SetKeyedStateStore(&backend);
  try {
    rc.GetListState(ListStateDescriptor<int64_t>("v"));
    FAIL() << "no error";
  } catch (const internal::NonRecoverableError& e) {
    EXPECT_NE(std::string(e.what()).find("keyed state 'v' was saved as value state"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(rc.GetState(ValueStateDescriptor<int64_t>("v")));
}

// ---- snapshots -----------------------------------------------------------------------------

TEST_F(RocksDBStateTest, SnapshotShowsTheStateWhenItWasTaken) {
  Twin<int64_t> twin(dir_.Path());
  twin.Time().SetTime(100);
  twin.Run(21, 3000, 200);
  ASSERT_FALSE(HasFailure());
  auto heap_snapshot = twin.Heap().Snapshot();
  auto rocks_snapshot = twin.Rocks().Snapshot();
  // The snapshot is written on another thread while the task changes the
  // state, registers a new state and moves time on.
  std::map<int, std::string> written;
  std::thread writer([&] { written = WriteAll(*rocks_snapshot); });
  twin.Run(22, 3000, 300);
  States& s = twin.RocksStates();
  auto& late = s.rc.GetState(ValueStateDescriptor<int64_t>("late"));
  for (int64_t k = 0; k < 300; ++k) {
    twin.Rocks().SetCurrentKey(k);
    s.value->Update(-k);
    late.Update(k);
    if (k % 3 == 0) s.map->Clear();
  }
  writer.join();
  rocks_snapshot.reset();  // released on this thread; the writer could as well
  EXPECT_TRUE(SameBlocks(written, Canonical<int64_t>(WriteAll(*heap_snapshot))));
  // A snapshot taken, the state changed, then the snapshot written.
  int64_t key = 5;
  twin.Rocks().SetCurrentKey(key);
  s.value->Update(111);
  s.list->Update({"before"});
  auto snapshot = twin.Rocks().Snapshot();
  s.value->Update(222);
  s.list->Add("after");
  s.map->Put(1, "after");
  ByteWriter block;
  snapshot->WriteKeyGroup(AssignToKeyGroup(key, kMaxParallelism), block);
  RocksDBKeyedStateBackend<int64_t> restored({0, kMaxParallelism - 1}, kMaxParallelism, &twin.Time(),
                                             RocksOptions(dir_.Path()));
  ASSERT_TRUE(restored.RestoreKeyGroup(block.Data(), block.Size()).IsOk());
  States r(&restored);
  r.Register();
  restored.SetCurrentKey(key);
  EXPECT_EQ(r.value->Get(), std::optional<int64_t>(111));
  EXPECT_EQ(r.list->Get(), (std::vector<std::string>{"before"}));
  EXPECT_NE(r.map->Get(1), std::optional<std::string>("after"));
  EXPECT_EQ(snapshot->Info().size(), 9u);  // the eight states and "late"
}

TEST_F(RocksDBStateTest, CorruptBlocksFailWithAStatusAndApplyNothing) {
  Twin<int64_t> twin(dir_.Path());
  twin.Time().SetTime(100);
  twin.Run(31, 2000, 100);
  ASSERT_FALSE(HasFailure());
  auto blocks = WriteAll(*twin.Rocks().Snapshot());
  ASSERT_FALSE(blocks.empty());
  const auto& [kg, block] = *blocks.begin();
  auto restore = [&](KeyGroupRange range, const std::string& bytes, bool registered) {
    RocksDBKeyedStateBackend<int64_t> target(range, kMaxParallelism, &twin.Time(), RocksOptions(dir_.Path()));
    States states(&target);
    if (registered) states.Register();
    Status s = target.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    EXPECT_EQ(target.NumKeys(), 0u) << "a failed restore applied entries";
    return s;
  };
  KeyGroupRange all{0, kMaxParallelism - 1};
  for (bool registered : {false, true}) {
    // Truncated.
    Status truncated = restore(all, block.substr(0, block.size() - 3), registered);
    EXPECT_EQ(truncated.Code(), StatusCode::kCorruption) << truncated.ToString();
    // Trailing bytes.
    Status trailing = restore(all, block + "xy", registered);
    EXPECT_EQ(trailing.Code(), StatusCode::kCorruption) << trailing.ToString();
    // A key outside the range.
    Status outside = restore(KeyGroupRange{kg == 0 ? 1 : 0, kg == 0 ? 1 : 0}, block, registered);
    EXPECT_EQ(outside.Code(), StatusCode::kCorruption);
    EXPECT_NE(outside.Message().find("outside this operator's range"), std::string::npos) << outside.ToString();
  }
  // A value that does not decode as its state's type, in a well-framed
  // block: state "value" (int64) with a 3-byte value.
  ByteWriter bad;
  uint32_t one = 1;
  bad.Write(&one, sizeof(one));
  TypeSerializer<std::string>::Serialize(std::string("value"), bad);
  uint64_t n = 1;
  bad.Write(&n, sizeof(n));
  int64_t key = 0;
  TypeSerializer<int64_t>::Serialize(key, bad);
  uint32_t len = 3;
  bad.Write(&len, sizeof(len));
  bad.Write("abc", 3);
  Status undecodable = restore(all, Bytes(bad), true);
  EXPECT_EQ(undecodable.Code(), StatusCode::kCorruption);
  EXPECT_NE(undecodable.Message().find("'value' does not decode"), std::string::npos) << undecodable.ToString();
}

// ---- the instance's directory ---------------------------------------------------------------

TEST_F(RocksDBStateTest, DirectoryIsRemovedWithTheBackendAndItsLastSnapshot) {
  std::string path;
  std::unique_ptr<internal::KeyedStateSnapshot> snapshot;
  {
    RocksDBKeyedStateBackend<int64_t> backend({0, kMaxParallelism - 1}, kMaxParallelism, &time_,
                                              RocksOptions(dir_.Sub("nested/local")));
    path = backend.Path();
    EXPECT_EQ(path.rfind(dir_.Sub("nested/local"), 0), 0u) << path;
    EXPECT_TRUE(std::filesystem::is_directory(path));
    RuntimeContext rc("t", 0, 1, kMaxParallelism, 0);
    rc.SetKeyedStateStore(&backend);
    auto& v = rc.GetState(ValueStateDescriptor<int64_t>("v"));
    int64_t key = 9;
    backend.SetCurrentKey(key);
    v.Update(99);
    snapshot = backend.Snapshot();
  }
  // The snapshot outlives the backend and still writes its state.
  EXPECT_TRUE(std::filesystem::is_directory(path));
  auto blocks = WriteAll(*snapshot);
  EXPECT_EQ(blocks.size(), 1u);
  snapshot.reset();
  EXPECT_FALSE(std::filesystem::exists(path));
  {
    RocksDBKeyedStateBackend<int64_t> backend({0, 0}, 1, nullptr, RocksOptions(dir_.Path()));
    path = backend.Path();
    EXPECT_TRUE(std::filesystem::is_directory(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  // Two instances never share a directory.
  RocksDBKeyedStateBackend<int64_t> a({0, 0}, 1, nullptr, RocksOptions(dir_.Path()));
  RocksDBKeyedStateBackend<int64_t> b({0, 0}, 1, nullptr, RocksOptions(dir_.Path()));
  EXPECT_NE(a.Path(), b.Path());
}

TEST_F(RocksDBStateTest, UnusableLocalDirectoryIsAClearError) {
  // A path below a regular file cannot be made (even by root).
  std::string file = dir_.Sub("file");
  std::ofstream(file) << "x";
  std::string local = file + "/rocks";
  try {
    RocksDBKeyedStateBackend<int64_t> backend({0, 0}, 1, nullptr, RocksOptions(local));
    FAIL() << "no error";
  } catch (const internal::RocksDBStateError& e) {
    EXPECT_NE(std::string(e.what()).find(local), std::string::npos) << e.what();
  }
  // Through the factory keyed operators use.
  internal::OperatorContext ctx;
  ctx.key_groups = {0, 127};
  ctx.state_backend = RocksOptions(local);
  EXPECT_THROW(internal::CreateKeyedStateBackend<int64_t>(ctx), internal::RocksDBStateError);
}

TEST_F(RocksDBStateTest, FactoryMakesTheConfiguredBackend) {
  internal::OperatorContext ctx;
  ctx.key_groups = {0, 127};
  ctx.processing_time = &time_;
  auto heap = internal::CreateKeyedStateBackend<int64_t>(ctx);
  EXPECT_EQ(heap->Rocks(), nullptr);
  EXPECT_NE(heap->Slots(), nullptr);
  ctx.state_backend = RocksOptions(dir_.Path());
  auto rocks = internal::CreateKeyedStateBackend<int64_t>(ctx);
  ASSERT_NE(rocks->Rocks(), nullptr);
  EXPECT_EQ(rocks->Slots(), nullptr);
  RuntimeContext rc("t", 0, 1, 128, 0);
  rc.SetKeyedStateStore(rocks.get());
  auto& v = rc.GetState(ValueStateDescriptor<int64_t>("v"));
  EXPECT_NE(dynamic_cast<internal::RocksDBValueState<int64_t>*>(&v), nullptr);
  int64_t key = 1;
  rocks->SetCurrentKey(key);
  v.Update(5);
  EXPECT_EQ(v.Value(), 5);
  // A state made for one backend is refused by the other.
  EXPECT_THROW(heap->Register("x", std::make_unique<internal::RocksDBValueState<int64_t>>(
                                       rocks->Rocks(), ValueStateDescriptor<int64_t>("x"))),
               std::logic_error);
}

}  // namespace
}  // namespace freshet
