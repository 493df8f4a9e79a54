#pragma once
/// Process functions: per-record logic with access to timestamps, timers
/// (keyed streams) and side outputs.

#include <functional>
#include <string>
#include <utility>

#include "freshet/functions.h"
#include "freshet/internal/operator.h"
#include "freshet/operator_state.h"
#include "freshet/state.h"
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

// ---- broadcast process functions ----------------------------------------------------

/// What both sides of a broadcast process function offer: the element's
/// timestamp, time, side outputs and the operator's broadcast states.
class BroadcastContextBase : public ProcessContextBase {
 public:
  BroadcastContextBase(TimerService* timers, const internal::SideOutputs* side_outputs, OperatorStateStore* store)
      : ProcessContextBase(timers, side_outputs), store_(store) {}
  Timestamp CurrentProcessingTime() const { return GetTimerService().CurrentProcessingTime(); }
  Timestamp CurrentWatermark() const { return GetTimerService().CurrentWatermark(); }

 protected:
  /// Read-only view of a declared broadcast state; std::invalid_argument
  /// when `descriptor` was not given to Broadcast(...).
  template <class K, class V>
  const ReadOnlyBroadcastState<K, V>& ReadOnlyState(const MapStateDescriptor<K, V>& descriptor) const {
    return internal::DeclaredBroadcastState::Get(*store_, descriptor);
  }
  template <class K, class V>
  BroadcastState<K, V>& WritableState(const MapStateDescriptor<K, V>& descriptor) const {
    return internal::DeclaredBroadcastState::Get(*store_, descriptor);
  }

 private:
  OperatorStateStore* store_;
};

/// Connects a non-broadcast stream (input 1) with a broadcast stream
/// (input 2): `stream.Connect(rules.Broadcast(descriptor)).Process(f)`.
///
/// Every parallel instance receives all broadcast elements and keeps the
/// broadcast states declared by the descriptors given to Broadcast(...).
/// Only the broadcast side may change them, and it must do so in the same
/// way on every instance (depending on the broadcast element only), so that
/// all instances hold the same maps; the non-broadcast side reads them.
/// There is no order between the two inputs: an instance may see elements
/// of one side before, after or between those of the other.
template <class I1, class I2, class O>
class BroadcastProcessFunction : public RichFunction {
 public:
  using OutputType = O;
  /// Context of the non-broadcast side: broadcast state is read only.
  class ReadOnlyContext : public BroadcastContextBase {
   public:
    using BroadcastContextBase::BroadcastContextBase;
    template <class K, class V>
    const ReadOnlyBroadcastState<K, V>& GetBroadcastState(const MapStateDescriptor<K, V>& descriptor) const {
      return this->ReadOnlyState(descriptor);
    }
  };
  /// Context of the broadcast side: broadcast state is writable.
  class Context : public BroadcastContextBase {
   public:
    using BroadcastContextBase::BroadcastContextBase;
    template <class K, class V>
    BroadcastState<K, V>& GetBroadcastState(const MapStateDescriptor<K, V>& descriptor) const {
      return this->WritableState(descriptor);
    }
  };
  virtual void ProcessElement(const I1& value, ReadOnlyContext& ctx, Collector<O>& out) = 0;
  virtual void ProcessBroadcastElement(const I2& value, Context& ctx, Collector<O>& out) = 0;
};

namespace internal {

/// The keys of a keyed broadcast operator that hold a given state, for
/// KeyedBroadcastProcessFunction::Context::ApplyToKeyedState.
template <class K>
class KeyedStateVisitor {
 public:
  virtual ~KeyedStateVisitor() = default;
  /// Calls `fn(key)` for every key of this subtask holding state `name`,
  /// with that key current for keyed state.
  virtual void ForEachKeyWithState(const std::string& name, const std::function<void(const K&)>& fn) = 0;
  /// Where the operator's keyed state handles come from.
  virtual KeyedStateAccess& KeyedState() = 0;
};

/// The keyed state handle a descriptor names.
template <class T>
ValueState<T>& KeyedStateFor(KeyedStateAccess& access, const ValueStateDescriptor<T>& d) {
  return access.GetState(d);
}
template <class T>
ListState<T>& KeyedStateFor(KeyedStateAccess& access, const ListStateDescriptor<T>& d) {
  return access.GetListState(d);
}
template <class K, class V>
MapState<K, V>& KeyedStateFor(KeyedStateAccess& access, const MapStateDescriptor<K, V>& d) {
  return access.GetMapState(d);
}
template <class T>
ReducingState<T>& KeyedStateFor(KeyedStateAccess& access, const ReducingStateDescriptor<T>& d) {
  return access.GetReducingState(d);
}
template <class A>
auto& KeyedStateFor(KeyedStateAccess& access, const AggregatingStateDescriptor<A>& d) {
  return access.GetAggregatingState(d);
}

}  // namespace internal

/// A broadcast process function on a keyed stream:
/// `keyed.Connect(rules.Broadcast(descriptor)).Process(f)`. As
/// BroadcastProcessFunction, plus keyed state and timers on the keyed side,
/// OnTimer, and ApplyToKeyedState on the broadcast side to visit the state
/// of every key of the subtask.
template <class K, class I1, class I2, class O>
class KeyedBroadcastProcessFunction : public RichFunction {
 public:
  using KeyType = K;
  using OutputType = O;
  /// Context of the keyed side: the current key, its timers, keyed state
  /// through the runtime context, read-only broadcast state.
  class ReadOnlyContext : public BroadcastContextBase {
   public:
    ReadOnlyContext(TimerService* timers, const internal::SideOutputs* side, OperatorStateStore* store, const K* key)
        : BroadcastContextBase(timers, side, store), key_(key) {}
    const K& GetCurrentKey() const { return *key_; }
    void SetKey(const K* key) { key_ = key; }
    template <class KK, class V>
    const ReadOnlyBroadcastState<KK, V>& GetBroadcastState(const MapStateDescriptor<KK, V>& descriptor) const {
      return this->ReadOnlyState(descriptor);
    }

   private:
    const K* key_;
  };
  using OnTimerContext = TimerContext<ReadOnlyContext>;
  /// Context of the broadcast side: writable broadcast state and all keys'
  /// keyed state. There is no current key, so no timers.
  class Context : public BroadcastContextBase {
   public:
    Context(TimerService* timers, const internal::SideOutputs* side, OperatorStateStore* store,
            internal::KeyedStateVisitor<K>* keys)
        : BroadcastContextBase(timers, side, store), keys_(keys) {}
    template <class KK, class V>
    BroadcastState<KK, V>& GetBroadcastState(const MapStateDescriptor<KK, V>& descriptor) const {
      return this->WritableState(descriptor);
    }
    /// Calls `fn(key, state)` for every key of this subtask that holds the
    /// keyed state `descriptor` names (`state` is the handle for that
    /// state, e.g. ValueState<T>&, reading and writing `key`'s value).
    /// `fn` may update or clear the state.
    template <class D, class Fn>
    void ApplyToKeyedState(const D& descriptor, Fn&& fn) const {
      auto& state = internal::KeyedStateFor(keys_->KeyedState(), descriptor);
      keys_->ForEachKeyWithState(descriptor.Name(), [&](const K& key) { fn(key, state); });
    }

   private:
    internal::KeyedStateVisitor<K>* keys_;
  };
  virtual void ProcessElement(const I1& value, ReadOnlyContext& ctx, Collector<O>& out) = 0;
  virtual void ProcessBroadcastElement(const I2& value, Context& ctx, Collector<O>& out) = 0;
  virtual void OnTimer(Timestamp /*timestamp*/, OnTimerContext& /*ctx*/, Collector<O>& /*out*/) {}
};

}  // namespace freshet
