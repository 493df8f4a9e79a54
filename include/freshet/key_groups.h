#pragma once
/// Key groups: the unit of keyed state and of rescaling.
///
/// A key's group is `Mix(KeyHash(key)) % max_parallelism`, where Mix is the
/// murmur3 64-bit finalizer, so poor `std::hash` values (identity for
/// integers) still spread evenly. Subtask `i` of `p` owns the contiguous
/// range of key groups computed by `KeyGroupRangeForSubtask`, and a key group
/// is routed to `key_group * p / max_parallelism`.

#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <utility>

namespace freshet {

/// Inclusive range [start, end] of key groups; empty when end < start.
struct KeyGroupRange {
  int start = 0;
  int end = -1;
  int Size() const { return end >= start ? end - start + 1 : 0; }
  bool Contains(int key_group) const { return key_group >= start && key_group <= end; }
  bool operator==(const KeyGroupRange&) const = default;
};

/// Hash of a key used for key-group assignment. Specialize for user key
/// types that have no std::hash.
template <class K, class Enable = void>
struct KeyHash {
  uint64_t operator()(const K& key) const { return static_cast<uint64_t>(std::hash<K>()(key)); }
};

namespace internal {
inline uint64_t CombineHash(uint64_t seed, uint64_t h) {
  return seed ^ (h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
}
}  // namespace internal

template <class A, class B>
struct KeyHash<std::pair<A, B>> {
  uint64_t operator()(const std::pair<A, B>& k) const {
    return internal::CombineHash(KeyHash<A>()(k.first), KeyHash<B>()(k.second));
  }
};

template <class... Ts>
struct KeyHash<std::tuple<Ts...>> {
  uint64_t operator()(const std::tuple<Ts...>& k) const {
    uint64_t h = 0;
    std::apply([&h](const auto&... f) { ((h = internal::CombineHash(h, KeyHash<std::decay_t<decltype(f)>>()(f))), ...); },
               k);
    return h;
  }
};

/// murmur3's 64-bit finalizer.
inline uint64_t MurmurMix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

inline int KeyGroupForHash(uint64_t key_hash, int max_parallelism) {
  return static_cast<int>(MurmurMix(key_hash) % static_cast<uint64_t>(max_parallelism));
}

template <class K>
int AssignToKeyGroup(const K& key, int max_parallelism) {
  return KeyGroupForHash(KeyHash<K>()(key), max_parallelism);
}

/// The subtask that owns `key_group` at parallelism `parallelism`.
inline int SubtaskForKeyGroup(int key_group, int parallelism, int max_parallelism) {
  return static_cast<int>(static_cast<int64_t>(key_group) * parallelism / max_parallelism);
}

/// The key groups owned by `subtask` (consistent with SubtaskForKeyGroup).
inline KeyGroupRange KeyGroupRangeForSubtask(int subtask, int parallelism, int max_parallelism) {
  int64_t start = (static_cast<int64_t>(subtask) * max_parallelism + parallelism - 1) / parallelism;
  int64_t end = (static_cast<int64_t>(subtask + 1) * max_parallelism - 1) / parallelism;
  return KeyGroupRange{static_cast<int>(start), static_cast<int>(end)};
}

}  // namespace freshet
