#pragma once
// Small pieces the keyed-state tests share: keys of either key type by
// number, an aggregate function for aggregating state, and snapshots
// written out as the checkpoint writer writes them.

#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>

#include "freshet/internal/heap_keyed_state.h"

namespace freshet::test_support {

/// Key number i as an int64 key, or as the string "key-<i>".
template <class K>
K KeyOf(int64_t i) {
  if constexpr (std::is_same_v<K, std::string>) {
    return "key-" + std::to_string(i);
  } else {
    return static_cast<K>(i);
  }
}

/// The average of int64 values (sum and count).
struct Average {
  using InputType = int64_t;
  using AccumulatorType = std::pair<int64_t, int64_t>;
  using OutputType = double;
  AccumulatorType CreateAccumulator() const { return {0, 0}; }
  AccumulatorType Add(int64_t v, AccumulatorType acc) const { return {acc.first + v, acc.second + 1}; }
  double GetResult(const AccumulatorType& acc) const {
    return static_cast<double>(acc.first) / static_cast<double>(acc.second);
  }
  AccumulatorType Merge(AccumulatorType a, AccumulatorType b) const { return {a.first + b.first, a.second + b.second}; }
};

/// The bytes a ByteWriter holds.
inline std::string Bytes(const ByteWriter& w) { return std::string(reinterpret_cast<const char*>(w.Data()), w.Size()); }

/// The blocks of every key group a snapshot lists (KeyGroups(), then each).
inline std::map<int, std::string> WriteAll(const internal::KeyedStateSnapshot& snapshot) {
  std::map<int, std::string> out;
  ByteWriter w;
  for (int kg : snapshot.KeyGroups()) {
    w.Reset();
    snapshot.WriteKeyGroup(kg, w);
    out.emplace(kg, Bytes(w));
  }
  return out;
}

}  // namespace freshet::test_support
