#pragma once
/// Windows: window types, assigners, triggers, evictors and window
/// functions, with Flink's semantics.
///
/// A window of an event-time assigner fires when the watermark passes its
/// max timestamp (end - 1); its state is dropped when the watermark passes
/// max timestamp + allowed lateness. Records for windows already dropped are
/// late: counted in "numLateRecordsDropped" or sent to the late-data side
/// output. Results carry the window's max timestamp.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "freshet/functions.h"
#include "freshet/internal/timer_service.h"
#include "freshet/process_function.h"
#include "freshet/types.h"

namespace freshet {

// ---- windows --------------------------------------------------------------

/// [start, end) in milliseconds.
struct TimeWindow {
  Timestamp start = 0;
  Timestamp end = 0;
  Timestamp MaxTimestamp() const { return end - 1; }
  bool Intersects(const TimeWindow& o) const { return start <= o.end && end >= o.start; }
  TimeWindow Cover(const TimeWindow& o) const { return {std::min(start, o.start), std::max(end, o.end)}; }
  bool operator==(const TimeWindow&) const = default;
  auto operator<=>(const TimeWindow&) const = default;

  /// Start of the window of size `size` with `offset` containing `ts`.
  static Timestamp StartWithOffset(Timestamp ts, int64_t offset, int64_t size) {
    int64_t r = (ts - offset) % size;
    if (r < 0) r += size;
    return ts - r;
  }
};

/// The single window of GlobalWindows.
struct GlobalWindow {
  Timestamp MaxTimestamp() const { return std::numeric_limits<int64_t>::max(); }
  bool operator==(const GlobalWindow&) const = default;
  auto operator<=>(const GlobalWindow&) const = default;
};

template <>
struct KeyHash<TimeWindow> {
  uint64_t operator()(const TimeWindow& w) const {
    return internal::CombineHash(static_cast<uint64_t>(w.start), static_cast<uint64_t>(w.end));
  }
};
template <>
struct KeyHash<GlobalWindow> {
  uint64_t operator()(const GlobalWindow&) const { return 0; }
};

namespace internal {
template <>
struct NamespaceHash<TimeWindow> {
  size_t operator()(const TimeWindow& w) const {
    return static_cast<size_t>(CombineHash(static_cast<uint64_t>(w.start), static_cast<uint64_t>(w.end)));
  }
};
template <>
struct NamespaceHash<GlobalWindow> {
  size_t operator()(const GlobalWindow&) const { return 0; }
};
[[noreturn]] inline void ThrowNoTimestamp() {
  throw std::runtime_error(
      "a record has no timestamp: event-time windows need timestamps; use AssignTimestampsAndWatermarks(...) or a "
      "source with a WatermarkStrategy");
}
}  // namespace internal

// ---- triggers -------------------------------------------------------------

enum class TriggerResult { kContinue, kFire, kPurge, kFireAndPurge };
inline bool IsFire(TriggerResult r) { return r == TriggerResult::kFire || r == TriggerResult::kFireAndPurge; }
inline bool IsPurge(TriggerResult r) { return r == TriggerResult::kPurge || r == TriggerResult::kFireAndPurge; }

/// What a trigger may do for the current key and window. Trigger state is a
/// set of named integers per key and window.
template <class W>
class TriggerContext {
 public:
  virtual ~TriggerContext() = default;
  virtual Timestamp GetCurrentProcessingTime() const = 0;
  virtual Timestamp GetCurrentWatermark() const = 0;
  virtual void RegisterEventTimeTimer(Timestamp time) = 0;
  virtual void RegisterProcessingTimeTimer(Timestamp time) = 0;
  virtual void DeleteEventTimeTimer(Timestamp time) = 0;
  virtual void DeleteProcessingTimeTimer(Timestamp time) = 0;
  /// The named value of the current key and window, created with `initial`.
  virtual int64_t& State(std::string_view name, int64_t initial) = 0;
  virtual bool HasState(std::string_view name) const = 0;
  virtual void ClearState(std::string_view name) = 0;
  /// In OnMerge: the values of `name` in the windows being merged.
  virtual std::vector<int64_t> MergedState(std::string_view name) const = 0;
};

/// Decides when a window fires and purges. One instance per subtask, shared
/// by all keys and windows: keep per-window data in the context's state.
template <class T, class W>
class Trigger {
 public:
  virtual ~Trigger() = default;
  virtual TriggerResult OnElement(const T& element, Timestamp ts, const W& window, TriggerContext<W>& ctx) = 0;
  virtual TriggerResult OnEventTime(Timestamp time, const W& window, TriggerContext<W>& ctx) = 0;
  virtual TriggerResult OnProcessingTime(Timestamp time, const W& window, TriggerContext<W>& ctx) = 0;
  /// Triggers usable with merging (session) windows return true.
  virtual bool CanMerge() const { return false; }
  /// The context's window is the merge result; MergedState reads the old windows.
  virtual void OnMerge(const W& /*window*/, TriggerContext<W>& /*ctx*/) {}
  /// The window is being dropped: remove timers and state.
  virtual void Clear(const W& window, TriggerContext<W>& ctx) = 0;
};

/// Fires when the watermark passes the window's max timestamp (and at once
/// for a late record of a window still kept for allowed lateness).
template <class T, class W>
class EventTimeTrigger final : public Trigger<T, W> {
 public:
  TriggerResult OnElement(const T&, Timestamp, const W& w, TriggerContext<W>& ctx) override {
    if (w.MaxTimestamp() <= ctx.GetCurrentWatermark()) return TriggerResult::kFire;
    ctx.RegisterEventTimeTimer(w.MaxTimestamp());
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const W& w, TriggerContext<W>&) override {
    return time == w.MaxTimestamp() ? TriggerResult::kFire : TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  bool CanMerge() const override { return true; }
  void OnMerge(const W& w, TriggerContext<W>& ctx) override {
    if (w.MaxTimestamp() > ctx.GetCurrentWatermark()) ctx.RegisterEventTimeTimer(w.MaxTimestamp());
  }
  void Clear(const W& w, TriggerContext<W>& ctx) override { ctx.DeleteEventTimeTimer(w.MaxTimestamp()); }
};

/// Fires when processing time passes the window's max timestamp.
template <class T, class W>
class ProcessingTimeTrigger final : public Trigger<T, W> {
 public:
  TriggerResult OnElement(const T&, Timestamp, const W& w, TriggerContext<W>& ctx) override {
    ctx.RegisterProcessingTimeTimer(w.MaxTimestamp());
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kFire; }
  bool CanMerge() const override { return true; }
  void OnMerge(const W& w, TriggerContext<W>& ctx) override {
    if (w.MaxTimestamp() > ctx.GetCurrentProcessingTime()) ctx.RegisterProcessingTimeTimer(w.MaxTimestamp());
  }
  void Clear(const W& w, TriggerContext<W>& ctx) override { ctx.DeleteProcessingTimeTimer(w.MaxTimestamp()); }
};

/// Fires every `count` elements of a window.
template <class T, class W>
class CountTrigger final : public Trigger<T, W> {
 public:
  explicit CountTrigger(int64_t count) : count_(count) {}
  static std::shared_ptr<Trigger<T, W>> Of(int64_t count) { return std::make_shared<CountTrigger>(count); }
  TriggerResult OnElement(const T&, Timestamp, const W&, TriggerContext<W>& ctx) override {
    int64_t& n = ctx.State("count", 0);
    if (++n >= count_) {
      n = 0;
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  bool CanMerge() const override { return true; }
  void OnMerge(const W&, TriggerContext<W>& ctx) override {
    auto parts = ctx.MergedState("count");
    ctx.State("count", 0) = std::accumulate(parts.begin(), parts.end(), int64_t{0});
  }
  void Clear(const W&, TriggerContext<W>& ctx) override { ctx.ClearState("count"); }

 private:
  int64_t count_;
};

/// Fires every `interval` of event time while the window is open, and at
/// its end.
template <class T, class W>
class ContinuousEventTimeTrigger final : public Trigger<T, W> {
 public:
  explicit ContinuousEventTimeTrigger(Duration interval) : interval_(interval.count()) {}
  static std::shared_ptr<Trigger<T, W>> Of(Duration interval) {
    return std::make_shared<ContinuousEventTimeTrigger>(interval);
  }
  TriggerResult OnElement(const T&, Timestamp ts, const W& w, TriggerContext<W>& ctx) override {
    if (w.MaxTimestamp() <= ctx.GetCurrentWatermark()) return TriggerResult::kFire;
    ctx.RegisterEventTimeTimer(w.MaxTimestamp());
    if (!ctx.HasState("fire-time")) {
      Timestamp start = ts - (((ts % interval_) + interval_) % interval_);
      Timestamp next = start + interval_;
      ctx.State("fire-time", next) = next;
      ctx.RegisterEventTimeTimer(next);
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp time, const W& w, TriggerContext<W>& ctx) override {
    if (time == w.MaxTimestamp()) return TriggerResult::kFire;
    if (ctx.HasState("fire-time") && ctx.State("fire-time", 0) == time) {
      ctx.State("fire-time", 0) = time + interval_;
      ctx.RegisterEventTimeTimer(time + interval_);
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  void Clear(const W& w, TriggerContext<W>& ctx) override {
    if (ctx.HasState("fire-time")) {
      ctx.DeleteEventTimeTimer(ctx.State("fire-time", 0));
      ctx.ClearState("fire-time");
    }
    ctx.DeleteEventTimeTimer(w.MaxTimestamp());
  }

 private:
  int64_t interval_;
};

/// Fires every `interval` of processing time while the window has data.
template <class T, class W>
class ContinuousProcessingTimeTrigger final : public Trigger<T, W> {
 public:
  explicit ContinuousProcessingTimeTrigger(Duration interval) : interval_(interval.count()) {}
  static std::shared_ptr<Trigger<T, W>> Of(Duration interval) {
    return std::make_shared<ContinuousProcessingTimeTrigger>(interval);
  }
  TriggerResult OnElement(const T&, Timestamp, const W&, TriggerContext<W>& ctx) override {
    if (!ctx.HasState("fire-time")) {
      Timestamp now = ctx.GetCurrentProcessingTime();
      Timestamp next = now - (((now % interval_) + interval_) % interval_) + interval_;
      ctx.State("fire-time", next) = next;
      ctx.RegisterProcessingTimeTimer(next);
    }
    return TriggerResult::kContinue;
  }
  TriggerResult OnEventTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  TriggerResult OnProcessingTime(Timestamp time, const W&, TriggerContext<W>& ctx) override {
    if (ctx.HasState("fire-time") && ctx.State("fire-time", 0) == time) {
      ctx.State("fire-time", 0) = time + interval_;
      ctx.RegisterProcessingTimeTimer(time + interval_);
      return TriggerResult::kFire;
    }
    return TriggerResult::kContinue;
  }
  void Clear(const W&, TriggerContext<W>& ctx) override {
    if (ctx.HasState("fire-time")) {
      ctx.DeleteProcessingTimeTimer(ctx.State("fire-time", 0));
      ctx.ClearState("fire-time");
    }
  }

 private:
  int64_t interval_;
};

/// Turns every FIRE of the wrapped trigger into FIRE_AND_PURGE.
template <class T, class W>
class PurgingTrigger final : public Trigger<T, W> {
 public:
  explicit PurgingTrigger(std::shared_ptr<Trigger<T, W>> inner) : inner_(std::move(inner)) {}
  static std::shared_ptr<Trigger<T, W>> Of(std::shared_ptr<Trigger<T, W>> inner) {
    return std::make_shared<PurgingTrigger>(std::move(inner));
  }
  TriggerResult OnElement(const T& e, Timestamp ts, const W& w, TriggerContext<W>& ctx) override {
    return Purging(inner_->OnElement(e, ts, w, ctx));
  }
  TriggerResult OnEventTime(Timestamp t, const W& w, TriggerContext<W>& ctx) override {
    return Purging(inner_->OnEventTime(t, w, ctx));
  }
  TriggerResult OnProcessingTime(Timestamp t, const W& w, TriggerContext<W>& ctx) override {
    return Purging(inner_->OnProcessingTime(t, w, ctx));
  }
  bool CanMerge() const override { return inner_->CanMerge(); }
  void OnMerge(const W& w, TriggerContext<W>& ctx) override { inner_->OnMerge(w, ctx); }
  void Clear(const W& w, TriggerContext<W>& ctx) override { inner_->Clear(w, ctx); }

 private:
  static TriggerResult Purging(TriggerResult r) { return IsFire(r) ? TriggerResult::kFireAndPurge : r; }
  std::shared_ptr<Trigger<T, W>> inner_;
};

/// Never fires (GlobalWindows' default: pair it with another trigger).
template <class T, class W>
class NeverTrigger final : public Trigger<T, W> {
 public:
  TriggerResult OnElement(const T&, Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  TriggerResult OnEventTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  TriggerResult OnProcessingTime(Timestamp, const W&, TriggerContext<W>&) override { return TriggerResult::kContinue; }
  bool CanMerge() const override { return true; }
  void Clear(const W&, TriggerContext<W>&) override {}
};

// ---- assigners ------------------------------------------------------------
// An assigner provides: using WindowType; static constexpr kIsEventTime,
// kIsMerging; AssignWindows(element, ts, processing_time, out); and
// DefaultTrigger<T>().

class TumblingEventTimeWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kIsEventTime = true;
  static constexpr bool kIsMerging = false;
  static TumblingEventTimeWindows Of(Duration size, Duration offset = Duration(0)) {
    if (size.count() <= 0) throw std::invalid_argument("tumbling window size must be positive");
    return TumblingEventTimeWindows(size.count(), offset.count() % size.count());
  }
  template <class T>
  void AssignWindows(const T&, Timestamp ts, Timestamp, std::vector<TimeWindow>& out) const {
    if (ts == kNoTimestamp) internal::ThrowNoTimestamp();
    // Consecutive records mostly share a window: skip the division then.
    if (ts < last_start_ || ts - last_start_ >= size_) last_start_ = TimeWindow::StartWithOffset(ts, offset_, size_);
    out.push_back({last_start_, last_start_ + size_});
  }
  template <class T>
  std::shared_ptr<Trigger<T, TimeWindow>> DefaultTrigger() const {
    return std::make_shared<EventTimeTrigger<T, TimeWindow>>();
  }
  int64_t Size() const { return size_; }
  int64_t Slide() const { return size_; }
  int64_t Offset() const { return offset_; }

 private:
  TumblingEventTimeWindows(int64_t size, int64_t offset) : size_(size), offset_(offset) {}
  int64_t size_;
  int64_t offset_;
  mutable Timestamp last_start_ = std::numeric_limits<int64_t>::max();
};

class SlidingEventTimeWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kIsEventTime = true;
  static constexpr bool kIsMerging = false;
  static SlidingEventTimeWindows Of(Duration size, Duration slide, Duration offset = Duration(0)) {
    if (size.count() <= 0 || slide.count() <= 0) throw std::invalid_argument("sliding window size and slide must be positive");
    return SlidingEventTimeWindows(size.count(), slide.count(), offset.count() % slide.count());
  }
  template <class T>
  void AssignWindows(const T&, Timestamp ts, Timestamp, std::vector<TimeWindow>& out) const {
    if (ts == kNoTimestamp) internal::ThrowNoTimestamp();
    Timestamp last = TimeWindow::StartWithOffset(ts, offset_, slide_);
    for (Timestamp start = last; start > ts - size_; start -= slide_) out.push_back({start, start + size_});
  }
  template <class T>
  std::shared_ptr<Trigger<T, TimeWindow>> DefaultTrigger() const {
    return std::make_shared<EventTimeTrigger<T, TimeWindow>>();
  }
  int64_t Size() const { return size_; }
  int64_t Slide() const { return slide_; }
  int64_t Offset() const { return offset_; }

 private:
  SlidingEventTimeWindows(int64_t size, int64_t slide, int64_t offset) : size_(size), slide_(slide), offset_(offset) {}
  int64_t size_;
  int64_t slide_;
  int64_t offset_;
};

class TumblingProcessingTimeWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kIsEventTime = false;
  static constexpr bool kIsMerging = false;
  static TumblingProcessingTimeWindows Of(Duration size, Duration offset = Duration(0)) {
    if (size.count() <= 0) throw std::invalid_argument("tumbling window size must be positive");
    return TumblingProcessingTimeWindows(size.count(), offset.count() % size.count());
  }
  template <class T>
  void AssignWindows(const T&, Timestamp, Timestamp now, std::vector<TimeWindow>& out) const {
    Timestamp start = TimeWindow::StartWithOffset(now, offset_, size_);
    out.push_back({start, start + size_});
  }
  template <class T>
  std::shared_ptr<Trigger<T, TimeWindow>> DefaultTrigger() const {
    return std::make_shared<ProcessingTimeTrigger<T, TimeWindow>>();
  }

 private:
  TumblingProcessingTimeWindows(int64_t size, int64_t offset) : size_(size), offset_(offset) {}
  int64_t size_;
  int64_t offset_;
};

class SlidingProcessingTimeWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kIsEventTime = false;
  static constexpr bool kIsMerging = false;
  static SlidingProcessingTimeWindows Of(Duration size, Duration slide, Duration offset = Duration(0)) {
    if (size.count() <= 0 || slide.count() <= 0) throw std::invalid_argument("sliding window size and slide must be positive");
    return SlidingProcessingTimeWindows(size.count(), slide.count(), offset.count() % slide.count());
  }
  template <class T>
  void AssignWindows(const T&, Timestamp, Timestamp now, std::vector<TimeWindow>& out) const {
    Timestamp last = TimeWindow::StartWithOffset(now, offset_, slide_);
    for (Timestamp start = last; start > now - size_; start -= slide_) out.push_back({start, start + size_});
  }
  template <class T>
  std::shared_ptr<Trigger<T, TimeWindow>> DefaultTrigger() const {
    return std::make_shared<ProcessingTimeTrigger<T, TimeWindow>>();
  }

 private:
  SlidingProcessingTimeWindows(int64_t size, int64_t slide, int64_t offset) : size_(size), slide_(slide), offset_(offset) {}
  int64_t size_;
  int64_t slide_;
  int64_t offset_;
};

/// Session windows: a record opens [ts, ts + gap); overlapping sessions of
/// a key merge. The gap is fixed or computed from the record.
template <bool kEventTime>
class SessionWindows {
 public:
  using WindowType = TimeWindow;
  static constexpr bool kIsEventTime = kEventTime;
  static constexpr bool kIsMerging = true;
  static SessionWindows WithGap(Duration gap) {
    if (gap.count() <= 0) throw std::invalid_argument("session gap must be positive");
    int64_t g = gap.count();
    return SessionWindows([g](const void*) { return g; });
  }
  /// `extractor(const T&)` returns the gap (a Duration) for a record.
  template <class T, class F>
  static SessionWindows WithDynamicGap(F extractor) {
    return SessionWindows([extractor](const void* e) {
      return static_cast<int64_t>(Duration(extractor(*static_cast<const T*>(e))).count());
    });
  }
  template <class T>
  void AssignWindows(const T& e, Timestamp ts, Timestamp now, std::vector<TimeWindow>& out) const {
    Timestamp t = kEventTime ? ts : now;
    if (kEventTime && t == kNoTimestamp) internal::ThrowNoTimestamp();
    int64_t gap = gap_(&e);
    if (gap <= 0) throw std::invalid_argument("session gap must be positive, got " + std::to_string(gap));
    out.push_back({t, t + gap});
  }
  template <class T>
  std::shared_ptr<Trigger<T, TimeWindow>> DefaultTrigger() const {
    if constexpr (kEventTime) {
      return std::make_shared<EventTimeTrigger<T, TimeWindow>>();
    } else {
      return std::make_shared<ProcessingTimeTrigger<T, TimeWindow>>();
    }
  }

 private:
  explicit SessionWindows(std::function<int64_t(const void*)> gap) : gap_(std::move(gap)) {}
  std::function<int64_t(const void*)> gap_;
};
using EventTimeSessionWindows = SessionWindows<true>;
using ProcessingTimeSessionWindows = SessionWindows<false>;

/// One window holding everything; needs a trigger (default: never fires).
class GlobalWindows {
 public:
  using WindowType = GlobalWindow;
  static constexpr bool kIsEventTime = false;
  static constexpr bool kIsMerging = false;
  static GlobalWindows Create() { return GlobalWindows(); }
  template <class T>
  void AssignWindows(const T&, Timestamp, Timestamp, std::vector<GlobalWindow>& out) const {
    out.push_back({});
  }
  template <class T>
  std::shared_ptr<Trigger<T, GlobalWindow>> DefaultTrigger() const {
    return std::make_shared<NeverTrigger<T, GlobalWindow>>();
  }
};

// ---- evictors ---------------------------------------------------------------

template <class T>
struct TimestampedValue {
  T value;
  Timestamp timestamp;
};

/// Removes elements of a window before and/or after its function runs.
template <class T, class W>
class Evictor {
 public:
  virtual ~Evictor() = default;
  virtual void EvictBefore(std::vector<TimestampedValue<T>>& elements, const W& window) = 0;
  virtual void EvictAfter(std::vector<TimestampedValue<T>>& elements, const W& window) = 0;
};

/// Keeps the last `max_count` elements.
template <class T, class W>
class CountEvictor final : public Evictor<T, W> {
 public:
  CountEvictor(int64_t max_count, bool after) : max_(max_count), after_(after) {}
  static std::shared_ptr<Evictor<T, W>> Of(int64_t max_count, bool evict_after = false) {
    return std::make_shared<CountEvictor>(max_count, evict_after);
  }
  void EvictBefore(std::vector<TimestampedValue<T>>& e, const W&) override {
    if (!after_) Evict(e);
  }
  void EvictAfter(std::vector<TimestampedValue<T>>& e, const W&) override {
    if (after_) Evict(e);
  }

 private:
  void Evict(std::vector<TimestampedValue<T>>& e) const {
    if (static_cast<int64_t>(e.size()) > max_) e.erase(e.begin(), e.end() - max_);
  }
  int64_t max_;
  bool after_;
};

/// Keeps elements within `window_size` of the newest element's timestamp.
template <class T, class W>
class TimeEvictor final : public Evictor<T, W> {
 public:
  TimeEvictor(Duration size, bool after) : size_(size.count()), after_(after) {}
  static std::shared_ptr<Evictor<T, W>> Of(Duration window_size, bool evict_after = false) {
    return std::make_shared<TimeEvictor>(window_size, evict_after);
  }
  void EvictBefore(std::vector<TimestampedValue<T>>& e, const W&) override {
    if (!after_) Evict(e);
  }
  void EvictAfter(std::vector<TimestampedValue<T>>& e, const W&) override {
    if (after_) Evict(e);
  }

 private:
  void Evict(std::vector<TimestampedValue<T>>& e) const {
    if (e.empty()) return;
    Timestamp newest = kNoTimestamp;
    for (const auto& x : e) newest = std::max(newest, x.timestamp);
    Timestamp cut = newest - size_;
    std::erase_if(e, [cut](const TimestampedValue<T>& x) { return x.timestamp <= cut; });
  }
  int64_t size_;
  bool after_;
};

/// Keeps elements whose delta to the newest element is below `threshold`.
template <class T, class W>
class DeltaEvictor final : public Evictor<T, W> {
 public:
  using DeltaFn = std::function<double(const T& older, const T& newest)>;
  DeltaEvictor(double threshold, DeltaFn fn, bool after) : threshold_(threshold), fn_(std::move(fn)), after_(after) {}
  static std::shared_ptr<Evictor<T, W>> Of(double threshold, DeltaFn fn, bool evict_after = false) {
    return std::make_shared<DeltaEvictor>(threshold, std::move(fn), evict_after);
  }
  void EvictBefore(std::vector<TimestampedValue<T>>& e, const W&) override {
    if (!after_) Evict(e);
  }
  void EvictAfter(std::vector<TimestampedValue<T>>& e, const W&) override {
    if (after_) Evict(e);
  }

 private:
  void Evict(std::vector<TimestampedValue<T>>& e) const {
    if (e.empty()) return;
    T newest = e.back().value;
    std::erase_if(e, [&](const TimestampedValue<T>& x) { return fn_(x.value, newest) >= threshold_; });
  }
  double threshold_;
  DeltaFn fn_;
  bool after_;
};

// ---- window functions -----------------------------------------------------------

/// Incremental aggregation: CreateAccumulator, Add, GetResult, and Merge
/// (needed by session windows and shared sliding panes).
template <class IN, class ACC, class OUT>
class AggregateFunction {
 public:
  using InputType = IN;
  using AccumulatorType = ACC;
  using OutputType = OUT;
  virtual ~AggregateFunction() = default;
  virtual ACC CreateAccumulator() = 0;
  virtual ACC Add(const IN& value, ACC accumulator) = 0;
  virtual OUT GetResult(const ACC& accumulator) = 0;
  virtual ACC Merge(ACC a, ACC b) = 0;
};

/// Full window function: all elements (or the pre-aggregated result) of a
/// key's window, with the window's metadata.
template <class IN, class OUT, class K, class W>
class ProcessWindowFunction : public RichFunction {
 public:
  using InputType = IN;
  using OutputType = OUT;
  using KeyType = K;
  using WindowType = W;
  class Context {
   public:
    Context(const W* window, internal::KeyedTimerService<K, W>* timers, const internal::SideOutputs* side)
        : window_(window), timers_(timers), side_(side) {}
    const W& Window() const { return *window_; }
    Timestamp CurrentProcessingTime() const { return timers_->CurrentProcessingTime(); }
    Timestamp CurrentWatermark() const { return timers_->CurrentWatermark(); }
    template <class X>
    void Output(const OutputTag<X>& tag, const X& value) const {
      if (internal::OutputBase* out = side_->Find(tag.Id())) {
        static_cast<internal::Output<X>*>(out)->Collect(value, window_->MaxTimestamp());
      }
    }
    /// Keyed state of the current key, shared by all its windows.
    KeyedStateAccess& GlobalState() const { return *global_; }
    /// Keyed state of the current key and window. Clear it in Clear().
    KeyedStateAccess& WindowState() const { return *window_state_; }
    void SetWindow(const W* w) { window_ = w; }
    void SetStates(KeyedStateAccess* global, KeyedStateAccess* window) {
      global_ = global;
      window_state_ = window;
    }

   private:
    KeyedStateAccess* global_ = nullptr;
    KeyedStateAccess* window_state_ = nullptr;
    const W* window_;
    internal::KeyedTimerService<K, W>* timers_;
    const internal::SideOutputs* side_;
  };
  virtual void Process(const K& key, Context& ctx, const std::vector<IN>& elements, Collector<OUT>& out) = 0;
  /// The window is being dropped.
  virtual void Clear(Context& /*ctx*/) {}
};

}  // namespace freshet
