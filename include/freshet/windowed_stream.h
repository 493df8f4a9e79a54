#pragma once
/// WindowedStream (KeyedStream::Window) and AllWindowedStream
/// (DataStream::WindowAll): configure trigger, evictor and lateness, then
/// apply a window function.

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "freshet/data_stream.h"
#include "freshet/internal/bucketed_window_operator.h"
#include "freshet/internal/sliding_window_operator.h"
#include "freshet/internal/window_operator.h"
#include "freshet/windowing.h"

namespace freshet {

/// A window function over all records of a non-keyed stream's window.
template <class IN, class OUT, class W>
class ProcessAllWindowFunction : public ProcessWindowFunction<IN, OUT, uint8_t, W> {
 public:
  using Context = typename ProcessWindowFunction<IN, OUT, uint8_t, W>::Context;
  virtual void Process(Context& ctx, const std::vector<IN>& elements, Collector<OUT>& out) = 0;
  void Process(const uint8_t&, Context& ctx, const std::vector<IN>& elements, Collector<OUT>& out) final {
    Process(ctx, elements, out);
  }
};

template <class K, class T, class KF, class Assigner>
class WindowedStream {
 public:
  using W = typename Assigner::WindowType;

  WindowedStream(DataStream<T> input, KF key_selector, Assigner assigner, bool all_windows = false)
      : input_(input), key_selector_(std::move(key_selector)), assigner_(std::move(assigner)), all_(all_windows) {}

  WindowedStream& Trigger(std::shared_ptr<freshet::Trigger<T, W>> trigger) {
    trigger_ = std::move(trigger);
    return *this;
  }
  WindowedStream& Evictor(std::shared_ptr<freshet::Evictor<T, W>> evictor) {
    evictor_ = std::move(evictor);
    return *this;
  }
  /// Keeps windows (and re-fires them for late records) for `lateness`
  /// of event time after their end.
  WindowedStream& AllowedLateness(Duration lateness) {
    if (lateness.count() < 0) throw std::invalid_argument("allowed lateness must not be negative");
    lateness_ = lateness.count();
    return *this;
  }
  /// Sends records that arrive after their windows were dropped to `tag`.
  WindowedStream& SideOutputLateData(const OutputTag<T>& tag) {
    late_tag_ = tag.Id();
    return *this;
  }

  /// Incremental reduce; emits the reduced value of each firing.
  template <class F>
  DataStream<T> Reduce(F f) {
    return Build<T>("Window(Reduce)", internal::ReducePolicy<T, F>{f}, internal::EmitValues{}, true);
  }
  /// Incremental reduce, then a ProcessWindowFunction on the result.
  template <class F, class P>
  DataStream<typename P::OutputType> Reduce(F f, P process) {
    return Build<typename P::OutputType>("Window(Reduce, Process)", internal::ReducePolicy<T, F>{f}, process, true);
  }
  /// Incremental aggregation (an AggregateFunction).
  template <class A>
  DataStream<typename A::OutputType> Aggregate(A agg) {
    return Build<typename A::OutputType>("Window(Aggregate)", internal::AggregatePolicy<T, A>{agg},
                                         internal::EmitValues{}, true);
  }
  template <class A, class P>
  DataStream<typename P::OutputType> Aggregate(A agg, P process) {
    return Build<typename P::OutputType>("Window(Aggregate, Process)", internal::AggregatePolicy<T, A>{agg}, process,
                                         true);
  }
  /// A ProcessWindowFunction over all elements of the window.
  template <class P>
  DataStream<typename P::OutputType> Process(P process) {
    return Build<typename P::OutputType>("Window(Process)", internal::PassThroughInner{}, process, false);
  }

  template <class A>
  DataStream<T> Sum(A field) {
    return Reduce(internal::SumReducer<T, A>{field});
  }
  template <class A>
  DataStream<T> Min(A field) {
    return Reduce(internal::ExtremeReducer<T, A, true>{field});
  }
  template <class A>
  DataStream<T> Max(A field) {
    return Reduce(internal::ExtremeReducer<T, A, false>{field});
  }
  template <class A>
  DataStream<T> MinBy(A field) {
    return Reduce(internal::ExtremeByReducer<T, A, true>{field});
  }
  template <class A>
  DataStream<T> MaxBy(A field) {
    return Reduce(internal::ExtremeByReducer<T, A, false>{field});
  }

 private:
  // `Inner` is the incremental policy (or PassThroughInner for Process);
  // with an evictor everything is buffered and `Inner` runs at fire time.
  template <class OUT, class Inner, class Final>
  DataStream<OUT> Build(std::string name, Inner inner, Final final_stage, bool incremental) {
    KF kf = key_selector_;
    Assigner assigner = assigner_;
    auto trigger = trigger_;
    auto evictor = evictor_;
    int64_t lateness = lateness_;
    std::string late_tag = late_tag_;
    internal::OperatorFactory factory;
    bool pane_sharing = false;
    if constexpr (std::is_same_v<Assigner, SlidingEventTimeWindows> &&
                  !std::is_same_v<Inner, internal::PassThroughInner>) {
      // A window function with per-window state and allowed lateness needs
      // windows kept individually: that case takes the bucketed operator.
      pane_sharing = incremental && evictor == nullptr && trigger == nullptr &&
                     (std::is_same_v<Final, internal::EmitValues> || lateness == 0);
    }
    if (pane_sharing) {
      if constexpr (std::is_same_v<Assigner, SlidingEventTimeWindows> &&
                    !std::is_same_v<Inner, internal::PassThroughInner>) {
        factory = [kf, assigner, inner, final_stage, lateness, late_tag](internal::OperatorContext& c,
                                                                         internal::OutputBase* o) {
          return std::make_unique<internal::SlidingPaneWindowOperator<K, T, OUT, KF, Inner, Final>>(
              c, o, kf, assigner, inner, final_stage, lateness, late_tag);
        };
      }
    } else if (EventTimeDefaultTrigger(trigger) && evictor == nullptr) {
      if constexpr (Assigner::kIsEventTime && !Assigner::kIsMerging) {
        using Policy = std::conditional_t<std::is_same_v<Inner, internal::PassThroughInner>,
                                          internal::BufferPolicy<T, W, Inner>, Inner>;
        using Op = internal::BucketedWindowOperator<K, T, OUT, Assigner, KF, Policy, Final>;
        factory = [kf, assigner, lateness, late_tag, inner, final_stage](internal::OperatorContext& c,
                                                                         internal::OutputBase* o) {
          Policy policy;
          if constexpr (std::is_same_v<Inner, internal::PassThroughInner>) {
            policy = Policy{inner, nullptr};
          } else {
            policy = inner;
          }
          return std::make_unique<Op>(c, o, kf, assigner, lateness, late_tag, std::move(policy), final_stage);
        };
      }
    } else if (evictor != nullptr || !incremental) {
      using Policy = internal::BufferPolicy<T, W, Inner>;
      using Op = internal::WindowOperator<K, T, OUT, Assigner, KF, Policy, Final>;
      factory = [kf, assigner, trigger, evictor, lateness, late_tag, inner, final_stage](internal::OperatorContext& c,
                                                                                       internal::OutputBase* o) {
        typename Op::Config config{assigner, trigger, lateness, late_tag};
        return std::make_unique<Op>(c, o, kf, std::move(config), Policy{inner, evictor}, final_stage);
      };
    } else if constexpr (!std::is_same_v<Inner, internal::PassThroughInner>) {
      using Op = internal::WindowOperator<K, T, OUT, Assigner, KF, Inner, Final>;
      factory = [kf, assigner, trigger, lateness, late_tag, inner, final_stage](internal::OperatorContext& c,
                                                                             internal::OutputBase* o) {
        typename Op::Config config{assigner, trigger, lateness, late_tag};
        return std::make_unique<Op>(c, o, kf, std::move(config), inner, final_stage);
      };
    }
    internal::Transformation t;
    t.kind = internal::TransformationKind::kOneInput;
    t.name = std::move(name);
    t.inputs = {input_.Id()};
    t.output_type = internal::TypeOpsFor<OUT>();
    t.factory = std::move(factory);
    if (all_) {
      t.parallelism = 1;
      t.parallelism_limit = 1;
    }
    StreamExecutionEnvironment* env = input_.Env();
    return DataStream<OUT>(env, env->AddTransformation(std::move(t)));
  }

  // Non-merging event-time windows whose trigger is the default (or an
  // EventTimeTrigger given explicitly) are stored window-first.
  static bool EventTimeDefaultTrigger(const std::shared_ptr<freshet::Trigger<T, W>>& trigger) {
    if constexpr (Assigner::kIsEventTime && !Assigner::kIsMerging) {
      return trigger == nullptr || dynamic_cast<EventTimeTrigger<T, W>*>(trigger.get()) != nullptr;
    } else {
      return false;
    }
  }

  DataStream<T> input_;
  KF key_selector_;
  Assigner assigner_;
  bool all_;
  std::shared_ptr<freshet::Trigger<T, W>> trigger_;
  std::shared_ptr<freshet::Evictor<T, W>> evictor_;
  int64_t lateness_ = 0;
  std::string late_tag_;
};

namespace internal {
struct ConstantKey {
  template <class T>
  uint8_t operator()(const T&) const {
    return 0;
  }
};
}  // namespace internal

template <class K, class T, class KF>
template <class Assigner>
auto KeyedStream<K, T, KF>::Window(Assigner assigner) {
  return WindowedStream<K, T, KF, Assigner>(*this, key_selector_, std::move(assigner));
}

template <class K, class T, class KF>
auto KeyedStream<K, T, KF>::CountWindow(int64_t size) {
  auto w = Window(GlobalWindows::Create());
  w.Trigger(PurgingTrigger<T, GlobalWindow>::Of(CountTrigger<T, GlobalWindow>::Of(size)));
  return w;
}

template <class K, class T, class KF>
auto KeyedStream<K, T, KF>::CountWindow(int64_t size, int64_t slide) {
  auto w = Window(GlobalWindows::Create());
  w.Evictor(CountEvictor<T, GlobalWindow>::Of(size));
  w.Trigger(CountTrigger<T, GlobalWindow>::Of(slide));
  return w;
}

template <class T>
template <class Assigner>
auto DataStream<T>::WindowAll(Assigner assigner) {
  return WindowedStream<uint8_t, T, internal::ConstantKey, Assigner>(Global(), internal::ConstantKey{},
                                                                     std::move(assigner), true);
}

}  // namespace freshet
