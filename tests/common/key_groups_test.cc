#include "freshet/key_groups.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace freshet {
namespace {

std::vector<std::pair<int, int>> ParallelismPairs() {
  std::vector<std::pair<int, int>> pairs;
  for (int max_parallelism : {1, 2, 3, 7, 10, 16, 100, 127, 128, 129, 1000, 4096, 32768}) {
    for (int parallelism : {1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 64, 100, 127, 128, 1000, 32768}) {
      if (parallelism <= max_parallelism) pairs.emplace_back(parallelism, max_parallelism);
    }
  }
  return pairs;
}

TEST(KeyGroupRangeTest, SizeAndContains) {
  KeyGroupRange empty;
  EXPECT_EQ(empty.Size(), 0);
  EXPECT_FALSE(empty.Contains(0));
  EXPECT_FALSE(empty.Contains(-1));
  KeyGroupRange r{3, 7};
  EXPECT_EQ(r.Size(), 5);
  EXPECT_TRUE(r.Contains(3));
  EXPECT_TRUE(r.Contains(7));
  EXPECT_FALSE(r.Contains(2));
  EXPECT_FALSE(r.Contains(8));
  EXPECT_EQ(r, (KeyGroupRange{3, 7}));
  EXPECT_NE(r, (KeyGroupRange{3, 6}));
  EXPECT_EQ((KeyGroupRange{4, 4}).Size(), 1);
}

TEST(KeyGroupRangeTest, RangesAreContiguousDisjointAndCoverAllGroups) {
  for (auto [parallelism, max_parallelism] : ParallelismPairs()) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism) + ", max " + std::to_string(max_parallelism));
    int next = 0;
    int smallest = max_parallelism;
    int largest = 0;
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      KeyGroupRange r = KeyGroupRangeForSubtask(subtask, parallelism, max_parallelism);
      ASSERT_EQ(r.start, next) << "subtask " << subtask;
      ASSERT_GE(r.Size(), 1) << "subtask " << subtask << " owns no key group";
      next = r.end + 1;
      smallest = std::min(smallest, r.Size());
      largest = std::max(largest, r.Size());
    }
    EXPECT_EQ(next, max_parallelism);
    EXPECT_LE(largest - smallest, 1) << "ranges are unbalanced";
  }
}

TEST(KeyGroupRangeTest, SubtaskForKeyGroupAgreesWithRanges) {
  for (auto [parallelism, max_parallelism] : ParallelismPairs()) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism) + ", max " + std::to_string(max_parallelism));
    std::vector<KeyGroupRange> ranges;
    for (int s = 0; s < parallelism; ++s) ranges.push_back(KeyGroupRangeForSubtask(s, parallelism, max_parallelism));
    for (int kg = 0; kg < max_parallelism; ++kg) {
      int subtask = SubtaskForKeyGroup(kg, parallelism, max_parallelism);
      ASSERT_GE(subtask, 0);
      ASSERT_LT(subtask, parallelism);
      ASSERT_TRUE(ranges[static_cast<size_t>(subtask)].Contains(kg)) << "key group " << kg;
    }
  }
}

TEST(KeyGroupRangeTest, MatchesFlinkAssignmentForKnownValues) {
  // Flink: 128 key groups over 3 subtasks -> [0,42], [43,85], [86,127].
  EXPECT_EQ(KeyGroupRangeForSubtask(0, 3, 128), (KeyGroupRange{0, 42}));
  EXPECT_EQ(KeyGroupRangeForSubtask(1, 3, 128), (KeyGroupRange{43, 85}));
  EXPECT_EQ(KeyGroupRangeForSubtask(2, 3, 128), (KeyGroupRange{86, 127}));
  EXPECT_EQ(KeyGroupRangeForSubtask(0, 1, 128), (KeyGroupRange{0, 127}));
  EXPECT_EQ(KeyGroupRangeForSubtask(5, 128, 128), (KeyGroupRange{5, 5}));
  EXPECT_EQ(SubtaskForKeyGroup(42, 3, 128), 0);
  EXPECT_EQ(SubtaskForKeyGroup(43, 3, 128), 1);
  EXPECT_EQ(SubtaskForKeyGroup(127, 3, 128), 2);
}

TEST(KeyGroupRangeTest, LargestSettingsDoNotOverflow) {
  KeyGroupRange last = KeyGroupRangeForSubtask(32767, 32768, 32768);
  EXPECT_EQ(last, (KeyGroupRange{32767, 32767}));
  EXPECT_EQ(SubtaskForKeyGroup(32767, 32768, 32768), 32767);
  EXPECT_EQ(SubtaskForKeyGroup(32767, 7, 32768), 6);
  EXPECT_EQ(KeyGroupRangeForSubtask(6, 7, 32768).end, 32767);
}

TEST(AssignToKeyGroupTest, IsDeterministicAndInRange) {
  for (int max_parallelism : {1, 2, 7, 128, 32768}) {
    for (int64_t key = -1000; key < 1000; ++key) {
      int kg = AssignToKeyGroup(key, max_parallelism);
      ASSERT_GE(kg, 0);
      ASSERT_LT(kg, max_parallelism);
      ASSERT_EQ(kg, AssignToKeyGroup(key, max_parallelism));
    }
  }
}

TEST(AssignToKeyGroupTest, UsesTheMixedHashModuloMaxParallelism) {
  for (uint64_t h : {0ULL, 1ULL, 42ULL, 0xdeadbeefULL, ~0ULL}) {
    EXPECT_EQ(KeyGroupForHash(h, 128), static_cast<int>(MurmurMix(h) % 128));
  }
  EXPECT_EQ(MurmurMix(0), 0u);
  EXPECT_NE(MurmurMix(1), 1u);
  EXPECT_EQ(AssignToKeyGroup(int64_t{12345}, 1000), KeyGroupForHash(std::hash<int64_t>()(12345), 1000));
}

// Integer keys have identity std::hash; the mixing step must still spread
// consecutive keys evenly.
TEST(AssignToKeyGroupTest, SpreadsConsecutiveIntegersEvenly) {
  constexpr int kGroups = 128;
  constexpr int kKeys = 10000;
  std::vector<int> counts(kGroups, 0);
  for (int key = 0; key < kKeys; ++key) ++counts[static_cast<size_t>(AssignToKeyGroup(key, kGroups))];
  double expected = static_cast<double>(kKeys) / kGroups;
  double chi_square = 0;
  for (int c : counts) chi_square += (c - expected) * (c - expected) / expected;
  // 127 degrees of freedom: mean 127, standard deviation about 16.
  EXPECT_LT(chi_square, 127 + 6 * 16) << "chi-square " << chi_square;
  auto [min_it, max_it] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_GT(*min_it, 0);
  EXPECT_LT(static_cast<double>(*max_it) / *min_it, 2.5) << "max " << *max_it << ", min " << *min_it;
}

TEST(AssignToKeyGroupTest, SpreadsStridedIntegersEvenly) {
  // Multiples of the group count would all land in one group without mixing.
  constexpr int kGroups = 128;
  std::vector<int> counts(kGroups, 0);
  for (int64_t i = 0; i < 10000; ++i) ++counts[static_cast<size_t>(AssignToKeyGroup(i * kGroups, kGroups))];
  auto [min_it, max_it] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_GT(*min_it, 30);
  EXPECT_LT(*max_it, 140);
}

TEST(AssignToKeyGroupTest, SpreadsStringKeysEvenly) {
  constexpr int kGroups = 128;
  std::vector<int> counts(kGroups, 0);
  for (int i = 0; i < 10000; ++i) {
    std::string key = "user-";
    key += std::to_string(i);
    ++counts[static_cast<size_t>(AssignToKeyGroup(key, kGroups))];
  }
  auto [min_it, max_it] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_GT(*min_it, 30);
  EXPECT_LT(*max_it, 140);
  EXPECT_EQ(AssignToKeyGroup(std::string("word"), kGroups), AssignToKeyGroup(std::string("word"), kGroups));
}

TEST(AssignToKeyGroupTest, PairKeysCombineBothFields) {
  using Key = std::pair<std::string, int32_t>;
  EXPECT_EQ(KeyHash<Key>()(Key{"a", 1}), KeyHash<Key>()(Key{"a", 1}));
  std::set<uint64_t> hashes;
  for (int i = 0; i < 100; ++i) {
    hashes.insert(KeyHash<Key>()(Key{"a", i}));
    std::string b = "b";
    b += std::to_string(i);
    hashes.insert(KeyHash<Key>()(Key{b, 0}));
  }
  EXPECT_EQ(hashes.size(), 200u) << "pair hashes collide";
  // Order of fields matters.
  using IntPair = std::pair<int32_t, int32_t>;
  EXPECT_NE(KeyHash<IntPair>()(IntPair{1, 2}), KeyHash<IntPair>()(IntPair{2, 1}));
  std::vector<int> counts(64, 0);
  for (int i = 0; i < 100; ++i) {
    for (int j = 0; j < 64; ++j) ++counts[static_cast<size_t>(AssignToKeyGroup(IntPair{i, j}, 64))];
  }
  auto [min_it, max_it] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_GT(*min_it, 50);
  EXPECT_LT(*max_it, 150);
}

TEST(AssignToKeyGroupTest, TupleKeysCombineEveryField) {
  using Key = std::tuple<int32_t, std::string, int64_t>;
  Key k{1, "x", 2};
  EXPECT_EQ(KeyHash<Key>()(k), KeyHash<Key>()(Key{1, "x", 2}));
  EXPECT_NE(KeyHash<Key>()(k), KeyHash<Key>()(Key{2, "x", 2}));
  EXPECT_NE(KeyHash<Key>()(k), KeyHash<Key>()(Key{1, "y", 2}));
  EXPECT_NE(KeyHash<Key>()(k), KeyHash<Key>()(Key{1, "x", 3}));
  int kg = AssignToKeyGroup(k, 128);
  EXPECT_GE(kg, 0);
  EXPECT_LT(kg, 128);
  EXPECT_EQ(kg, AssignToKeyGroup(Key{1, "x", 2}, 128));
  std::set<int> groups;
  for (int i = 0; i < 1000; ++i) groups.insert(AssignToKeyGroup(Key{i, "k", i * 3}, 128));
  EXPECT_GT(groups.size(), 120u);
}

struct UserKey {
  int32_t id;
};
}  // namespace

template <>
struct KeyHash<UserKey> {
  uint64_t operator()(const UserKey& k) const { return static_cast<uint64_t>(k.id) * 31; }
};

namespace {
TEST(AssignToKeyGroupTest, UsesUserKeyHashSpecialization) {
  for (int32_t id = 0; id < 100; ++id) {
    EXPECT_EQ(AssignToKeyGroup(UserKey{id}, 128), KeyGroupForHash(static_cast<uint64_t>(id) * 31, 128));
  }
}

}  // namespace
}  // namespace freshet
