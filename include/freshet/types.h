#pragma once
/// Basic value types shared by the API and the runtime: timestamps and strong ids.

#include <chrono>
#include <compare>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

namespace freshet {

/// Event or processing time in milliseconds since the epoch (Flink's convention).
using Timestamp = int64_t;
/// A record without a timestamp carries this value.
inline constexpr Timestamp kNoTimestamp = std::numeric_limits<int64_t>::min();
/// The watermark emitted at the end of a bounded input.
inline constexpr Timestamp kMaxWatermark = std::numeric_limits<int64_t>::max();

using Duration = std::chrono::milliseconds;

/// A strongly typed integer id: ids of different kinds cannot be mixed up.
template <class Tag, class Rep = int32_t>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep value) : value_(value) {}
  constexpr Rep Value() const { return value_; }
  constexpr auto operator<=>(const StrongId&) const = default;

 private:
  Rep value_ = -1;
};

using NodeId = StrongId<struct NodeIdTag>;            // a node of the stream graph
using VertexId = StrongId<struct VertexIdTag>;        // a vertex of the job graph
using SubtaskIndex = StrongId<struct SubtaskIndexTag>;
using KeyGroup = StrongId<struct KeyGroupTag>;

}  // namespace freshet

namespace std {
template <class Tag, class Rep>
struct hash<freshet::StrongId<Tag, Rep>> {
  size_t operator()(const freshet::StrongId<Tag, Rep>& id) const noexcept { return std::hash<Rep>()(id.Value()); }
};
}  // namespace std
