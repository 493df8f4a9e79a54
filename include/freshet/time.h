#pragma once
/// Event time: timestamp assigners and watermark generators.
///
/// A watermark `w` promises that no more records with timestamp <= w
/// follow. Generators see every record (OnEvent) and are asked
/// periodically (every `pipeline.auto-watermark-interval`, 200 ms by
/// default) to emit (OnPeriodicEmit); watermarks that do not advance are
/// dropped. A stream marked idle stops holding back downstream watermarks
/// until it emits again.

#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>

#include "freshet/types.h"

namespace freshet {

class WatermarkOutput {
 public:
  virtual ~WatermarkOutput() = default;
  virtual void EmitWatermark(Timestamp watermark) = 0;
  virtual void MarkIdle() = 0;
  virtual void MarkActive() = 0;
};

template <class T>
class WatermarkGenerator {
 public:
  virtual ~WatermarkGenerator() = default;
  /// Every record, with its assigned timestamp. Punctuated generators emit here.
  virtual void OnEvent(const T& value, Timestamp timestamp, WatermarkOutput& output) = 0;
  /// Periodically. Periodic generators emit here.
  virtual void OnPeriodicEmit(WatermarkOutput& output) = 0;
};

/// Watermark = highest timestamp seen - max_out_of_orderness - 1.
template <class T>
class BoundedOutOfOrdernessWatermarks final : public WatermarkGenerator<T> {
 public:
  explicit BoundedOutOfOrdernessWatermarks(Duration max_out_of_orderness)
      : delay_(max_out_of_orderness.count()),
        max_timestamp_(std::numeric_limits<int64_t>::min() + delay_ + 1) {}
  void OnEvent(const T&, Timestamp ts, WatermarkOutput&) override {
    if (ts > max_timestamp_) max_timestamp_ = ts;
  }
  void OnPeriodicEmit(WatermarkOutput& out) override { out.EmitWatermark(max_timestamp_ - delay_ - 1); }

 private:
  int64_t delay_;
  Timestamp max_timestamp_;
};

/// Wraps a generator: after `timeout` of processing time without records
/// the output is marked idle; the next record makes it active again.
template <class T>
class IdlenessWatermarks final : public WatermarkGenerator<T> {
 public:
  IdlenessWatermarks(std::unique_ptr<WatermarkGenerator<T>> inner, Duration timeout,
                     std::function<Timestamp()> now)
      : inner_(std::move(inner)), timeout_(timeout.count()), now_(std::move(now)) {}
  void OnEvent(const T& v, Timestamp ts, WatermarkOutput& out) override {
    last_event_ = now_();
    if (idle_) {
      idle_ = false;
      out.MarkActive();
    }
    inner_->OnEvent(v, ts, out);
  }
  void OnPeriodicEmit(WatermarkOutput& out) override {
    Timestamp now = now_();
    if (last_event_ == kNoTimestamp) last_event_ = now;
    if (!idle_ && now - last_event_ >= timeout_) {
      idle_ = true;
      out.MarkIdle();
    }
    if (!idle_) inner_->OnPeriodicEmit(out);
  }

 private:
  std::unique_ptr<WatermarkGenerator<T>> inner_;
  int64_t timeout_;
  std::function<Timestamp()> now_;
  Timestamp last_event_ = kNoTimestamp;
  bool idle_ = false;
};

/// How a stream gets timestamps and watermarks. A value type; each
/// parallel subtask creates its own generator.
template <class T>
class WatermarkStrategy {
 public:
  using GeneratorFactory = std::function<std::unique_ptr<WatermarkGenerator<T>>()>;
  using TimestampAssigner = std::function<Timestamp(const T&, Timestamp)>;

  /// Timestamps only ever increase: watermark = highest timestamp - 1.
  static WatermarkStrategy ForMonotonousTimestamps() { return ForBoundedOutOfOrderness(Duration(0)); }
  /// Records arrive at most `max_out_of_orderness` late.
  static WatermarkStrategy ForBoundedOutOfOrderness(Duration max_out_of_orderness) {
    return ForGenerator([max_out_of_orderness] {
      return std::make_unique<BoundedOutOfOrdernessWatermarks<T>>(max_out_of_orderness);
    });
  }
  /// A custom generator (periodic, punctuated, or both).
  static WatermarkStrategy ForGenerator(GeneratorFactory factory) {
    WatermarkStrategy s;
    s.factory_ = std::move(factory);
    return s;
  }
  /// Timestamps without watermarks.
  static WatermarkStrategy NoWatermarks() { return WatermarkStrategy(); }

  /// Extracts a record's timestamp: `fn(value, previous_timestamp)`.
  template <class F>
  WatermarkStrategy WithTimestampAssigner(F fn) const {
    WatermarkStrategy s = *this;
    if constexpr (std::is_invocable_v<F&, const T&, Timestamp>) {
      s.assigner_ = std::move(fn);
    } else {
      s.assigner_ = [fn](const T& v, Timestamp) { return fn(v); };
    }
    return s;
  }
  /// Marks the stream idle after `timeout` without records.
  WatermarkStrategy WithIdleness(Duration timeout) const {
    WatermarkStrategy s = *this;
    s.idle_timeout_ = timeout;
    return s;
  }

  bool HasGenerator() const { return static_cast<bool>(factory_); }
  const TimestampAssigner& Assigner() const { return assigner_; }
  std::optional<Duration> IdleTimeout() const { return idle_timeout_; }
  /// A new generator, wrapped for idleness when configured. `now` reads processing time.
  std::unique_ptr<WatermarkGenerator<T>> CreateGenerator(std::function<Timestamp()> now) const {
    if (!factory_) return nullptr;
    auto g = factory_();
    if (idle_timeout_) return std::make_unique<IdlenessWatermarks<T>>(std::move(g), *idle_timeout_, std::move(now));
    return g;
  }

 private:
  GeneratorFactory factory_;
  TimestampAssigner assigner_;
  std::optional<Duration> idle_timeout_;
};

}  // namespace freshet
