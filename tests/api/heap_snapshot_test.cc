// Copy-on-write snapshots of the heap keyed-state backend: a snapshot taken
// on the task thread is written on another thread while the task keeps
// changing the state, and what it writes is the state at the snapshot (as
// an eager serialization taken at the same moment, from the live states,
// shows); restores round-trip, also into 2 and 4 subtasks.
#include <freshet/freshet.h>
#include <freshet/testing/operator_harness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "support/state_helpers.h"

namespace freshet {
namespace {

constexpr int kMaxParallelism = 64;
constexpr int64_t kTtl = 50;

using test_support::Bytes;

// One key group's block, decoded: the state names in order and, per state
// with entries, its entries as (key bytes -> value bytes).
struct DecodedGroup {
  std::vector<std::string> names;
  std::map<std::string, std::map<std::string, std::string>> entries;
  bool operator==(const DecodedGroup&) const = default;
};
// Key group -> block, for groups with at least one entry.
using DecodedSnapshot = std::map<int, DecodedGroup>;

// Map state values serialize in hash-table order, which a restore does not
// keep: compare them as sorted maps.
std::string Canonical(const std::string& state, std::string bytes) {
  if (state != "map") return bytes;
  std::unordered_map<int64_t, std::string> map;
  EXPECT_TRUE(DeserializeFromBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), map));
  ByteWriter w;
  TypeSerializer<std::map<int64_t, std::string>>::Serialize(std::map<int64_t, std::string>(map.begin(), map.end()), w);
  return Bytes(w);
}

template <class K>
DecodedGroup Decode(const std::string& block) {
  DecodedGroup out;
  ByteReader r(reinterpret_cast<const uint8_t*>(block.data()), block.size());
  uint32_t num_states = 0;
  r.Read(&num_states, sizeof(num_states));
  for (uint32_t i = 0; i < num_states && !r.Failed(); ++i) {
    std::string name;
    TypeSerializer<std::string>::Deserialize(r, name);
    out.names.push_back(name);
    uint64_t n = 0;
    r.Read(&n, sizeof(n));
    for (uint64_t e = 0; e < n && !r.Failed(); ++e) {
      K key{};
      TypeSerializer<K>::Deserialize(r, key);
      uint32_t len = 0;
      r.Read(&len, sizeof(len));
      const uint8_t* value = r.Take(len);
      if (value == nullptr) break;
      ByteWriter key_bytes;
      TypeSerializer<K>::Serialize(key, key_bytes);
      bool fresh = out.entries[name].emplace(Bytes(key_bytes), Canonical(name, std::string(reinterpret_cast<const char*>(value), len))).second;
      EXPECT_TRUE(fresh) << "key written twice for state " << name;
    }
  }
  EXPECT_FALSE(r.Failed());
  EXPECT_EQ(r.Remaining(), 0u);
  return out;
}

// The eager reference: the live states read through HasValue / Serialize
// (what the eager snapshot wrote), at this moment.
template <class K>
DecodedSnapshot EagerReference(internal::HeapKeyedStateBackend<K>& backend) {
  std::vector<std::string> names;
  for (const auto& [name, state] : backend.States()) names.push_back(name);
  DecodedSnapshot out;
  backend.ForEachKey([&](const K& key, int key_group, uint32_t slot) {
    ByteWriter key_bytes;
    TypeSerializer<K>::Serialize(key, key_bytes);
    for (const auto& [name, state] : backend.States()) {
      if (!state->HasValue(slot)) continue;
      ByteWriter value;
      state->Serialize(slot, value);
      DecodedGroup& group = out[key_group];
      group.names = names;
      group.entries[name].emplace(Bytes(key_bytes), Canonical(name, Bytes(value)));
    }
  });
  return out;
}

// Equality of two decoded snapshots, naming the first difference (the
// snapshots are too large to print).
::testing::AssertionResult Same(const DecodedSnapshot& actual, const DecodedSnapshot& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  for (const auto& [kg, group] : expected) {
    auto it = actual.find(kg);
    if (it == actual.end()) return ::testing::AssertionFailure() << "key group " << kg << " is missing";
    if (it->second.names != group.names) return ::testing::AssertionFailure() << "key group " << kg << ": other states";
    for (const auto& [name, entries] : group.entries) {
      auto e = it->second.entries.find(name);
      size_t have = e == it->second.entries.end() ? 0 : e->second.size();
      if (e == it->second.entries.end() || e->second != entries) {
        return ::testing::AssertionFailure() << "key group " << kg << ", state " << name << ": " << have
                                             << " entries, expected " << entries.size() << " (or other values)";
      }
    }
    if (it->second.entries.size() != group.entries.size()) {
      return ::testing::AssertionFailure() << "key group " << kg << " holds states it should not";
    }
  }
  return ::testing::AssertionFailure() << "extra key groups: " << actual.size() << " instead of " << expected.size();
}

using test_support::WriteAll;

template <class K>
DecodedSnapshot DecodeAll(const std::map<int, std::string>& blocks) {
  DecodedSnapshot out;
  for (const auto& [kg, block] : blocks) {
    DecodedGroup group = Decode<K>(block);
    EXPECT_FALSE(group.entries.empty()) << "key group " << kg << " is listed but holds nothing";
    out.emplace(kg, std::move(group));
  }
  return out;
}

using test_support::KeyOf;

using test_support::Average;

// A backend with the five state kinds (and a TTL value state), and a
// workload that changes it in every way a task can.
template <class K>
class Workload {
 public:
  explicit Workload(KeyGroupRange range = {0, kMaxParallelism - 1}, int subtask = 0, int parallelism = 1,
                    bool register_states = true)
      : backend_(range, kMaxParallelism, &time_), rc_("t", subtask, parallelism, kMaxParallelism, 0) {
    rc_.SetKeyedStateStore(&backend_);
    if (register_states) RegisterStates();
  }

  // Operators register their states in Open(), after the restore.
  void RegisterStates() {
    value_ = &rc_.GetState(ValueStateDescriptor<int64_t>("value"));
    list_ = &rc_.GetListState(ListStateDescriptor<std::string>("list"));
    map_ = &rc_.GetMapState(MapStateDescriptor<int64_t, std::string>("map"));
    sum_ = &rc_.GetReducingState(ReducingStateDescriptor<int64_t>("sum", [](int64_t a, int64_t b) { return a + b; }));
    avg_ = &rc_.GetAggregatingState(AggregatingStateDescriptor<Average>("avg", Average{}));
    ValueStateDescriptor<int64_t> ttl("ttl");
    ttl.EnableTimeToLive(StateTtlConfig::Of(Duration(kTtl)));
    ttl_ = &rc_.GetState(ttl);
  }

  // Keys [0, n) with every state; the TTL values are written over time, so
  // that part of them has expired by the end.
  void Fill(int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      if (i % 100 == 0) time_.SetTime(time_.CurrentProcessingTime() + 1);
      Use(i);
      value_->Update(i);
      list_->Add("a" + std::to_string(i));
      if (i % 3 == 0) list_->Add("b" + std::to_string(i));
      map_->Put(i % 5, "m" + std::to_string(i));
      map_->Put(i % 7 + 10, "n" + std::to_string(i));
      sum_->Add(i);
      avg_->Add(i);
      if (i % 2 == 0) ttl_->Update(i);
    }
    next_key_ = n;
    key_space_ = n;
  }

  // `ops` random changes: updates, read-modify-writes through every kind,
  // clears of whole keys (freeing slots), new keys (reusing them), reads of
  // TTL values (dropping expired ones) and time moving on.
  void Mutate(uint64_t seed, int ops) {
    uint64_t x = seed * 2654435761u + 1;
    for (int op = 0; op < ops; ++op) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      uint64_t r = x >> 24;
      int64_t k = static_cast<int64_t>(r % static_cast<uint64_t>(key_space_));
      if (op % 500 == 499) time_.SetTime(time_.CurrentProcessingTime() + 3);
      switch (r % 13) {
        case 0:
          Use(k);
          value_->Update(value_->Value() + 1);
          break;
        case 1:
          Use(k);
          list_->Add("c" + std::to_string(op));
          break;
        case 2:
          Use(k);
          map_->Put(k % 5, "p" + std::to_string(op));
          break;
        case 3:
          Use(k);
          map_->Remove(k % 5);
          map_->Remove(k % 7 + 10);
          break;
        case 4:
          Use(k);
          sum_->Add(op);
          break;
        case 5:
          Use(k);
          avg_->Add(op);
          break;
        case 6:
        case 7:
          Use(k);
          ClearKey();
          break;
        case 8: {
          Use(next_key_++);  // a new key: takes a freed slot if there is one
          value_->Update(op);
          sum_->Add(op);
          if (op % 2 == 0) ttl_->Update(op);
          break;
        }
        case 9:
          Use(k);
          ttl_->Update(op);
          break;
        case 10:
          Use(k);
          (void)ttl_->Value();  // drops the value when expired
          break;
        case 11:
          Use(k);
          if (op % 2 == 0) {
            list_->Update({"u" + std::to_string(op)});
          } else {
            list_->Clear();
          }
          break;
        default:
          Use(k);
          value_->Clear();
          break;
      }
    }
  }

  void ClearKey() {
    value_->Clear();
    list_->Clear();
    map_->Clear();
    sum_->Clear();
    avg_->Clear();
    ttl_->Clear();
  }
  void Use(int64_t i) {
    key_ = KeyOf<K>(i);
    backend_.SetCurrentKey(key_);
  }
  // Every key's slot.
  std::map<K, uint32_t> Slots() {
    std::map<K, uint32_t> out;
    backend_.ForEachKey([&](const K& key, int, uint32_t slot) { out.emplace(key, slot); });
    return out;
  }

  testing::ManualProcessingTimeService& Time() { return time_; }
  internal::HeapKeyedStateBackend<K>& Backend() { return backend_; }
  ValueState<int64_t>& Value() { return *value_; }
  ListState<std::string>& List() { return *list_; }
  MapState<int64_t, std::string>& Map() { return *map_; }
  ReducingState<int64_t>& Sum() { return *sum_; }
  AggregatingState<int64_t, double>& Avg() { return *avg_; }
  ValueState<int64_t>& Ttl() { return *ttl_; }

 private:
  testing::ManualProcessingTimeService time_;
  internal::HeapKeyedStateBackend<K> backend_;
  RuntimeContext rc_;
  ValueState<int64_t>* value_ = nullptr;
  ListState<std::string>* list_ = nullptr;
  MapState<int64_t, std::string>* map_ = nullptr;
  ReducingState<int64_t>* sum_ = nullptr;
  AggregatingState<int64_t, double>* avg_ = nullptr;
  ValueState<int64_t>* ttl_ = nullptr;
  K key_{};
  int64_t next_key_ = 0;
  int64_t key_space_ = 1;
};

// Restores blocks into a backend owning `range` (registering the states
// afterwards, as operators do).
template <class K>
void Restore(Workload<K>& target, const std::map<int, std::string>& blocks, KeyGroupRange range) {
  for (const auto& [kg, block] : blocks) {
    if (!range.Contains(kg)) continue;
    Status s = target.Backend().RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size());
    ASSERT_TRUE(s.IsOk()) << s.ToString();
  }
  target.RegisterStates();
}

size_t CountEntries(const DecodedSnapshot& s) {
  size_t n = 0;
  for (const auto& [kg, group] : s) {
    for (const auto& [name, entries] : group.entries) n += entries.size();
  }
  return n;
}

template <class K>
class HeapSnapshotTest : public ::testing::Test {};
using KeyTypes = ::testing::Types<int64_t, std::string>;
TYPED_TEST_SUITE(HeapSnapshotTest, KeyTypes);

constexpr int64_t kKeys = 20000;

// The task mutates heavily while another thread writes the snapshot.
TYPED_TEST(HeapSnapshotTest, ConcurrentWriteSeesTheStateAtTheSnapshot) {
  using K = TypeParam;
  Workload<K> w;
  w.Fill(kKeys);
  w.Mutate(1, 20000);  // some freed slots and expired TTL values before the snapshot
  for (int round = 0; round < 3; ++round) {
    DecodedSnapshot expected = EagerReference(w.Backend());
    std::map<K, uint32_t> slots_before = w.Slots();
    std::unique_ptr<internal::KeyedStateSnapshot> snapshot = w.Backend().Snapshot();
    std::atomic<bool> written{false};
    std::map<int, std::string> blocks;
    std::thread writer([&] {
      blocks = WriteAll(*snapshot);
      snapshot.reset();  // drops the chunk references on this thread, as the checkpoint writer does
      written.store(true, std::memory_order_release);
    });
    // Keep changing the state at least until the writer is done.
    int batches = 0;
    while (!written.load(std::memory_order_acquire) || batches < 4) {
      w.Mutate(100 + static_cast<uint64_t>(round * 1000 + batches), 2000);
      ++batches;
    }
    writer.join();
    DecodedSnapshot written_state = DecodeAll<K>(blocks);
    EXPECT_TRUE(Same(written_state, expected)) << "round " << round;
    EXPECT_GT(CountEntries(expected), static_cast<size_t>(kKeys)) << "round " << round;
    EXPECT_FALSE(EagerReference(w.Backend()) == expected) << "the state changed meanwhile";
    // New keys took freed slots while the snapshot was being written.
    std::map<K, uint32_t> slots_after = w.Slots();
    std::map<uint32_t, K> key_of_slot;
    for (const auto& [key, slot] : slots_before) key_of_slot.emplace(slot, key);
    size_t reused = 0;
    for (const auto& [key, slot] : slots_after) {
      auto it = key_of_slot.find(slot);
      if (it != key_of_slot.end() && it->second != key) ++reused;
    }
    EXPECT_GT(reused, 0u) << "round " << round;
  }
}

// Deterministic interleaving: changes between the writes of two key groups,
// a second snapshot taken meanwhile (chunks shared by two snapshots), and
// the first snapshot outliving the second.
TYPED_TEST(HeapSnapshotTest, ChangesBetweenKeyGroupWritesDoNotReachTheSnapshot) {
  using K = TypeParam;
  Workload<K> w;
  w.Fill(kKeys);
  DecodedSnapshot expected1 = EagerReference(w.Backend());
  auto snapshot1 = w.Backend().Snapshot();
  const std::vector<int>& groups = snapshot1->KeyGroups();
  ASSERT_TRUE(std::is_sorted(groups.begin(), groups.end()));
  ASSERT_EQ(std::adjacent_find(groups.begin(), groups.end()), groups.end());
  std::map<int, std::string> blocks1;
  ByteWriter out;
  size_t half = groups.size() / 2;
  for (size_t i = 0; i < half; ++i) {
    out.Reset();
    snapshot1->WriteKeyGroup(groups[i], out);
    blocks1.emplace(groups[i], Bytes(out));
  }
  w.Mutate(7, 30000);
  DecodedSnapshot expected2 = EagerReference(w.Backend());
  auto snapshot2 = w.Backend().Snapshot();
  // Clear everything, then add new keys in the freed slots; let all TTL values expire.
  for (int64_t i = 0; i < kKeys * 2; ++i) {
    w.Use(i);
    w.ClearKey();
  }
  w.Time().SetTime(w.Time().CurrentProcessingTime() + 10 * kTtl);
  for (int64_t i = 0; i < kKeys / 2; ++i) {
    w.Use(1'000'000 + i);
    w.Value().Update(-i);
    w.List().Add("new");
  }
  w.Mutate(8, 10000);
  for (size_t i = half; i < groups.size(); ++i) {
    out.Reset();
    snapshot1->WriteKeyGroup(groups[i], out);
    blocks1.emplace(groups[i], Bytes(out));
  }
  std::map<int, std::string> blocks2 = WriteAll(*snapshot2);
  snapshot2.reset();
  w.Mutate(9, 10000);
  EXPECT_TRUE(Same(DecodeAll<K>(blocks1), expected1));
  EXPECT_TRUE(Same(DecodeAll<K>(blocks2), expected2));
  EXPECT_FALSE(expected1 == expected2);
}

// A snapshot written while the task changes the state restores to exactly
// what it holds, with the states registered before or after the restore.
TYPED_TEST(HeapSnapshotTest, RestoreRoundTrip) {
  using K = TypeParam;
  Workload<K> w;
  w.Fill(kKeys);
  w.Mutate(3, 20000);
  DecodedSnapshot expected = EagerReference(w.Backend());
  auto snapshot = w.Backend().Snapshot();
  std::map<int, std::string> blocks;
  std::thread writer([&] { blocks = WriteAll(*snapshot); });
  w.Mutate(4, 20000);
  writer.join();
  snapshot.reset();
  ASSERT_TRUE(Same(DecodeAll<K>(blocks), expected));

  for (bool register_first : {false, true}) {
    Workload<K> restored({0, kMaxParallelism - 1}, 0, 1, /*register_states=*/register_first);
    restored.Time().SetTime(w.Time().CurrentProcessingTime());
    for (const auto& [kg, block] : blocks) {
      Status s = restored.Backend().RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size());
      ASSERT_TRUE(s.IsOk()) << s.ToString();
    }
    if (!register_first) restored.RegisterStates();
    EXPECT_TRUE(Same(EagerReference(restored.Backend()), expected)) << "register first: " << register_first;
    // And a snapshot of the restored backend writes the same.
    auto again = restored.Backend().Snapshot();
    EXPECT_TRUE(Same(DecodeAll<K>(WriteAll(*again)), expected));
  }
}

// Restoring into 2 and 4 subtasks (each reading its key groups) gives every
// key exactly once, with all its values.
TYPED_TEST(HeapSnapshotTest, RestoreIntoTwoAndFourSubtasks) {
  using K = TypeParam;
  Workload<K> w;
  w.Fill(kKeys);
  w.Mutate(5, 20000);
  auto snapshot = w.Backend().Snapshot();
  DecodedSnapshot expected = EagerReference(w.Backend());
  std::map<int, std::string> blocks;
  std::thread writer([&] { blocks = WriteAll(*snapshot); });
  w.Mutate(6, 20000);
  writer.join();
  snapshot.reset();
  std::set<std::string> expected_keys;
  for (const auto& [kg, group] : expected) {
    for (const auto& [name, entries] : group.entries) {
      for (const auto& [key, value] : entries) expected_keys.insert(key);
    }
  }
  for (int parallelism : {2, 4}) {
    std::map<std::string, int> seen;
    DecodedSnapshot merged;
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, kMaxParallelism);
      Workload<K> target(range, subtask, parallelism, /*register_states=*/false);
      Restore(target, blocks, range);
      target.Backend().ForEachKey([&](const K& key, int kg, uint32_t) {
        EXPECT_TRUE(range.Contains(kg));
        ByteWriter key_bytes;
        TypeSerializer<K>::Serialize(key, key_bytes);
        ++seen[Bytes(key_bytes)];
      });
      for (auto& [kg, group] : EagerReference(target.Backend())) {
        EXPECT_TRUE(merged.emplace(kg, std::move(group)).second) << "key group " << kg << " restored twice";
      }
    }
    EXPECT_TRUE(Same(merged, expected)) << "parallelism " << parallelism;
    EXPECT_EQ(seen.size(), expected_keys.size()) << "parallelism " << parallelism;
    for (const auto& [key, n] : seen) {
      EXPECT_EQ(n, 1) << "parallelism " << parallelism;
      EXPECT_TRUE(expected_keys.count(key) > 0);
    }
  }
}

// Values expired at the snapshot are not written; values live at the
// snapshot are, even when they expire before the writer gets to them.
TEST(HeapSnapshotTtlTest, ExpiryIsJudgedAtTheSnapshot) {
  Workload<int64_t> w;
  w.Time().SetTime(0);
  for (int64_t i = 0; i < 1000; ++i) {
    w.Use(i);
    w.Ttl().Update(i);
    if (i % 10 == 0) w.Value().Update(i);  // these keys keep a value that does not expire
  }
  w.Time().SetTime(30);
  for (int64_t i = 1000; i < 2000; ++i) {
    w.Use(i);
    w.Ttl().Update(i);
  }
  w.Time().SetTime(kTtl + 10);  // the first 1000 TTL values have expired, the next 1000 not
  auto snapshot = w.Backend().Snapshot();
  w.Time().SetTime(1000);  // now all have expired
  for (int64_t i = 0; i < 2000; ++i) {
    w.Use(i);
    EXPECT_FALSE(w.Ttl().Get().has_value());
  }
  DecodedSnapshot written = DecodeAll<int64_t>(WriteAll(*snapshot));
  size_t ttl_entries = 0, value_entries = 0;
  for (const auto& [kg, group] : written) {
    if (auto it = group.entries.find("ttl"); it != group.entries.end()) {
      for (const auto& [key, value] : it->second) {
        int64_t k = 0;
        std::memcpy(&k, key.data(), sizeof(k));
        EXPECT_GE(k, 1000) << "expired at the snapshot";
        ++ttl_entries;
      }
    }
    if (auto it = group.entries.find("value"); it != group.entries.end()) value_entries += it->second.size();
  }
  EXPECT_EQ(ttl_entries, 1000u);
  EXPECT_EQ(value_entries, 100u);
  // Restored values are live again (their time is the restore's).
  std::map<int, std::string> blocks = WriteAll(*snapshot);
  Workload<int64_t> restored({0, kMaxParallelism - 1}, 0, 1, false);
  restored.Time().SetTime(2000);
  Restore(restored, blocks, {0, kMaxParallelism - 1});
  for (int64_t i = 0; i < 2000; ++i) {
    restored.Use(i);
    EXPECT_EQ(restored.Ttl().Get(), i >= 1000 ? std::optional<int64_t>(i) : std::nullopt) << i;
  }
  EXPECT_EQ(restored.Backend().NumKeys(), 1100u);
}

// An expired value overwritten by a write keeps its key's slot (the write
// must not use the slot its drop released).
TEST(HeapSnapshotTtlTest, WritingAnExpiredValueKeepsTheKey) {
  Workload<int64_t> w;
  for (int64_t i = 0; i < 100; ++i) {
    w.Use(i);
    w.Ttl().Update(i);
  }
  w.Time().SetTime(kTtl * 2);
  for (int64_t i = 0; i < 100; ++i) {
    w.Use(i);
    w.Ttl().Update(i + 1);
  }
  for (int64_t i = 100; i < 200; ++i) {
    w.Use(i);
    w.Ttl().Update(i + 1);
  }
  for (int64_t i = 0; i < 200; ++i) {
    w.Use(i);
    EXPECT_EQ(w.Ttl().Get(), std::optional<int64_t>(i + 1)) << i;
  }
  EXPECT_EQ(w.Backend().NumKeys(), 200u);
}

// The chunked array itself: reads share the chunk with a snapshot, the
// first write after a snapshot copies it once, once the snapshot is gone
// writes happen in place again, and later copies reuse its chunks.
TEST(SlotArrayTest, ReadsShareWritesCopyOncePerSnapshot) {
  internal::SlotArray<int64_t> array;
  constexpr uint32_t kSlots = internal::SlotArray<int64_t>::kSlots;
  bool added = false;
  for (uint32_t s = 0; s < 3 * kSlots; ++s) array.Set(s, &added) = s;
  const int64_t* before = &array.Get(5);
  auto snapshot = std::make_unique<internal::SlotArray<int64_t>::Snapshot>(array.Share());
  EXPECT_EQ(&array.Get(5), before) << "a read copied the chunk";
  EXPECT_EQ(&snapshot->Get(5), before);
  array.Mutable(5) = -5;
  const int64_t* copied = &array.Get(5);
  EXPECT_NE(copied, before);
  EXPECT_EQ(snapshot->Get(5), 5);
  EXPECT_EQ(array.Get(5), -5);
  array.Mutable(6) = -6;
  EXPECT_EQ(&array.Get(5), copied) << "the chunk was copied twice";
  EXPECT_EQ(&array.Get(kSlots + 1), &snapshot->Get(kSlots + 1)) << "an untouched chunk was copied";
  EXPECT_TRUE(array.Unset(kSlots + 1));
  EXPECT_FALSE(array.Has(kSlots + 1));
  EXPECT_TRUE(snapshot->Has(kSlots + 1));
  EXPECT_EQ(snapshot->Get(kSlots + 1), static_cast<int64_t>(kSlots + 1));
  const int64_t* third = &array.Get(2 * kSlots);
  const int64_t* kept0 = &snapshot->Get(5);
  const int64_t* kept1 = &snapshot->Get(kSlots + 5);
  snapshot.reset();
  array.Mutable(2 * kSlots) = 1;
  EXPECT_EQ(&array.Get(2 * kSlots), third) << "copied although no snapshot holds the chunk";
  EXPECT_FALSE(array.Has(10 * kSlots));
  EXPECT_FALSE(array.Unset(10 * kSlots));
  // The next snapshot's copies reuse the chunks the first one let go of.
  auto again = std::make_unique<internal::SlotArray<int64_t>::Snapshot>(array.Share());
  array.Mutable(5) = 50;
  array.Mutable(kSlots + 5) = 51;
  std::set<const int64_t*> kept = {kept0, kept1};
  std::set<const int64_t*> reused = {&array.Get(5), &array.Get(kSlots + 5)};
  EXPECT_EQ(reused, kept);
  EXPECT_EQ(array.Get(5), 50);
  EXPECT_EQ(array.Get(kSlots + 5), 51);
  EXPECT_EQ(again->Get(5), -5);
  EXPECT_EQ(again->Get(kSlots + 5), static_cast<int64_t>(kSlots + 5));
  EXPECT_EQ(array.Get(6), -6) << "the reused chunk holds a full copy";
  EXPECT_FALSE(array.Has(kSlots + 1));
}

// A slot array larger than its first slab: the chunks of later slabs
// (huge pages) are shared, copied and recycled like the first ones, and
// the items they hold (strings here) are destroyed with the array, also
// when a snapshot outlives it.
TEST(SlotArrayTest, ChunksBeyondTheFirstSlab) {
  using Array = internal::SlotArray<std::string>;
  constexpr uint32_t kSlots = Array::kSlots;
  const uint32_t n = static_cast<uint32_t>(Array::Recycler::kChunksPerSlab * 2 + 3) * kSlots;
  auto value = [](uint32_t s) { return "value of slot " + std::to_string(s) + " long enough to be on the heap"; };
  auto array = std::make_unique<Array>();
  bool added = false;
  for (uint32_t s = 0; s < n; s += 7) array->Set(s, &added) = value(s);
  auto snapshot = std::make_unique<Array::Snapshot>(array->Share());
  for (uint32_t s = 0; s < n; s += 7 * 5) array->Mutable(s) += " changed";
  for (uint32_t s = 1; s < n; s += 7 * 11) array->Set(s, &added) = "new";
  for (uint32_t s = 0; s < n; s += 7) {
    ASSERT_TRUE(snapshot->Has(s));
    ASSERT_EQ(snapshot->Get(s), value(s));
    ASSERT_EQ(array->Get(s), s % 35 == 0 ? value(s) + " changed" : value(s));
  }
  EXPECT_FALSE(snapshot->Has(1));
  EXPECT_TRUE(array->Has(1));
  // The snapshot outlives the array; its chunks go back to the recycler,
  // which frees them (and the slabs) when the snapshot goes.
  array.reset();
  EXPECT_EQ(snapshot->Get(n - n % 7 - (n % 7 == 0 ? 7 : 0)), value(n - n % 7 - (n % 7 == 0 ? 7 : 0)));
  snapshot.reset();
}

// The allocator of the key index and other large arrays: large
// allocations start at 2 MiB boundaries, small ones come from
// std::allocator, and containers grow across the boundary intact.
TEST(HugePageAllocatorTest, LargeAllocationsStartAtHugePageBoundaries) {
  std::vector<uint64_t, internal::HugePageAllocator<uint64_t>> v;
  for (uint64_t i = 0; i < (uint64_t{3} << 20); ++i) v.push_back(i * 3);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % internal::kHugePageBytes, 0u);
  for (uint64_t i = 0; i < v.size(); i += 4099) ASSERT_EQ(v[i], i * 3);
  v.resize(10);
  v.shrink_to_fit();
  EXPECT_EQ(v[9], 27u);
  internal::HugePageAllocator<char> bytes;
  char* odd = bytes.allocate(internal::kHugePageBytes + 12345);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(odd) % internal::kHugePageBytes, 0u);
  odd[internal::kHugePageBytes + 12344] = 'x';  // the whole length is usable
  bytes.deallocate(odd, internal::kHugePageBytes + 12345);
}

// The key index orders keys by key group (with a power-of-two max
// parallelism) or not at all (otherwise); either way lookups, updates,
// clears, the key groups ForEachKey reports and restores into subtasks
// work for any max parallelism.
TEST(HeapKeyIndexTest, AnyMaxParallelism) {
  for (int max_parallelism : {1, 7, 100, 128, 4096}) {
    internal::HeapKeyedStateBackend<int64_t> source({0, max_parallelism - 1}, max_parallelism, nullptr);
    RuntimeContext rc("t", 0, 1, max_parallelism, 0);
    rc.SetKeyedStateStore(&source);
    auto& state = rc.GetState(ValueStateDescriptor<int64_t>("v"));
    constexpr int64_t kN = 30000;
    for (int64_t k = 0; k < kN; ++k) {
      source.SetCurrentKey(k);
      state.Update(k * 2);
    }
    for (int64_t k = 0; k < kN; k += 3) {
      source.SetCurrentKey(k);
      state.Clear();
    }
    for (int64_t k = 0; k < kN; ++k) {
      source.SetCurrentKey(k);
      if (k % 3 == 0) {
        ASSERT_FALSE(state.Get().has_value()) << "max parallelism " << max_parallelism << " key " << k;
      } else {
        ASSERT_EQ(state.Value(), k * 2) << "max parallelism " << max_parallelism << " key " << k;
        state.Update(state.Value() + 1);
      }
    }
    EXPECT_EQ(source.NumKeys(), static_cast<size_t>(kN - (kN + 2) / 3));
    source.ForEachKey([&](const int64_t& key, int kg, uint32_t) {
      EXPECT_EQ(kg, AssignToKeyGroup(key, max_parallelism));
    });
    std::map<int, std::string> blocks;
    auto snapshot = source.Snapshot();
    for (int kg : snapshot->KeyGroups()) {
      ByteWriter w;
      snapshot->WriteKeyGroup(kg, w);
      blocks.emplace(kg, Bytes(w));
    }
    const int parallelism = std::min(3, max_parallelism);
    size_t restored_keys = 0;
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, max_parallelism);
      internal::HeapKeyedStateBackend<int64_t> target(range, max_parallelism, nullptr);
      for (const auto& [kg, block] : blocks) {
        if (!range.Contains(kg)) continue;
        Status s = target.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(block.data()), block.size());
        ASSERT_TRUE(s.IsOk()) << s.ToString();
      }
      RuntimeContext target_rc("t", subtask, parallelism, max_parallelism, 0);
      target_rc.SetKeyedStateStore(&target);
      auto& restored = target_rc.GetState(ValueStateDescriptor<int64_t>("v"));
      restored_keys += target.NumKeys();
      for (int64_t k = 0; k < kN; ++k) {
        if (!range.Contains(AssignToKeyGroup(k, max_parallelism))) continue;
        target.SetCurrentKey(k);
        if (k % 3 == 0) {
          ASSERT_FALSE(restored.Get().has_value()) << "max parallelism " << max_parallelism << " key " << k;
        } else {
          ASSERT_EQ(restored.Get(), std::optional<int64_t>(k * 2 + 1))
              << "max parallelism " << max_parallelism << " key " << k;
        }
      }
    }
    EXPECT_EQ(restored_keys, source.NumKeys()) << "max parallelism " << max_parallelism;
  }
}

}  // namespace
}  // namespace freshet
