#pragma once
/// Process functions: per-record logic with access to timestamps, timers
/// (keyed streams) and side outputs.

#include <string>
#include <utility>

#include "freshet/functions.h"
#include "freshet/internal/operator.h"
#include "freshet/types.h"

namespace freshet {

/// Names a side output of type T. Tags with equal ids are the same output.
template <class T>
class OutputTag {
 public:
  using ValueType = T;
  explicit OutputTag(std::string id) : id_(std::move(id)) {}
  const std::string& Id() const { return id_; }

 private:
  std::string id_;
};

enum class TimeDomain { kEventTime, kProcessingTime };

/// Timers and time of the current key. Only keyed streams may set timers.
class TimerService {
 public:
  virtual ~TimerService() = default;
  virtual Timestamp CurrentProcessingTime() const = 0;
  virtual Timestamp CurrentWatermark() const = 0;
  /// A timer fires once per (key, timestamp) however often it is set.
  virtual void RegisterEventTimeTimer(Timestamp time) = 0;
  virtual void RegisterProcessingTimeTimer(Timestamp time) = 0;
  virtual void DeleteEventTimeTimer(Timestamp time) = 0;
  virtual void DeleteProcessingTimeTimer(Timestamp time) = 0;
};


/// What every process-function context offers: the record's timestamp,
/// the timer service and side outputs.
class ProcessContextBase {
 public:
  ProcessContextBase(TimerService* timers, const internal::SideOutputs* side_outputs)
      : timers_(timers), side_outputs_(side_outputs) {}
  /// The current record's (or firing timer's) timestamp; kNoTimestamp if none.
  Timestamp GetTimestamp() const { return timestamp_; }
  TimerService& GetTimerService() const { return *timers_; }
  /// Emits to a side output (dropped when the side output is not consumed).
  template <class X>
  void Output(const OutputTag<X>& tag, const X& value) const {
    if (internal::OutputBase* out = side_outputs_->Find(tag.Id())) {
      static_cast<internal::Output<X>*>(out)->Collect(value, timestamp_);
    }
  }
  void SetTimestamp(Timestamp ts) { timestamp_ = ts; }

 private:
  TimerService* timers_;
  const internal::SideOutputs* side_outputs_;
  Timestamp timestamp_ = kNoTimestamp;
};

/// A context of a firing timer: the record context plus the time domain.
template <class Context>
class TimerContext : public Context {
 public:
  using Context::Context;
  TimeDomain GetTimeDomain() const { return domain_; }
  void SetTimeDomain(TimeDomain d) { domain_ = d; }

 private:
  TimeDomain domain_ = TimeDomain::kEventTime;
};

template <class I, class O>
class ProcessFunction : public RichFunction {
 public:
  using InputType = I;
  using OutputType = O;
  class Context : public ProcessContextBase {
   public:
    using ProcessContextBase::ProcessContextBase;
  };
  using OnTimerContext = TimerContext<Context>;
  virtual void ProcessElement(const I& value, Context& ctx, Collector<O>& out) = 0;
  /// Only called on keyed streams, which may set timers.
  virtual void OnTimer(Timestamp /*timestamp*/, OnTimerContext& /*ctx*/, Collector<O>& /*out*/) {}
};

template <class K, class I, class O>
class KeyedProcessFunction : public RichFunction {
 public:
  using KeyType = K;
  using InputType = I;
  using OutputType = O;
  class Context : public ProcessContextBase {
   public:
    Context(TimerService* timers, const internal::SideOutputs* side, const K* key)
        : ProcessContextBase(timers, side), key_(key) {}
    const K& GetCurrentKey() const { return *key_; }
    void SetKey(const K* key) { key_ = key; }

   private:
    const K* key_;
  };
  using OnTimerContext = TimerContext<Context>;
  virtual void ProcessElement(const I& value, Context& ctx, Collector<O>& out) = 0;
  virtual void OnTimer(Timestamp /*timestamp*/, OnTimerContext& /*ctx*/, Collector<O>& /*out*/) {}
};

template <class I1, class I2, class O>
class CoProcessFunction : public RichFunction {
 public:
  using OutputType = O;
  class Context : public ProcessContextBase {
   public:
    using ProcessContextBase::ProcessContextBase;
  };
  using OnTimerContext = TimerContext<Context>;
  virtual void ProcessElement1(const I1& value, Context& ctx, Collector<O>& out) = 0;
  virtual void ProcessElement2(const I2& value, Context& ctx, Collector<O>& out) = 0;
  virtual void OnTimer(Timestamp, OnTimerContext&, Collector<O>&) {}
};

template <class K, class I1, class I2, class O>
class KeyedCoProcessFunction : public RichFunction {
 public:
  using KeyType = K;
  using OutputType = O;
  using Context = typename KeyedProcessFunction<K, I1, O>::Context;
  using OnTimerContext = typename KeyedProcessFunction<K, I1, O>::OnTimerContext;
  virtual void ProcessElement1(const I1& value, Context& ctx, Collector<O>& out) = 0;
  virtual void ProcessElement2(const I2& value, Context& ctx, Collector<O>& out) = 0;
  virtual void OnTimer(Timestamp, OnTimerContext&, Collector<O>&) {}
};

}  // namespace freshet
