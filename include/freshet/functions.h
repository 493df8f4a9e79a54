#pragma once
/// User function interfaces: rich functions with a runtime context, the
/// collector, and the function classes a user may derive from. Plain
/// callables (lambdas) work wherever a function class does.

#include <string>

#include "freshet/metrics.h"
#include "freshet/types.h"

namespace freshet {

namespace internal {
template <class T>
class Output;
class KeyedStateStore;
}  // namespace internal

template <class T>
class ValueStateDescriptor;
template <class T>
class ListStateDescriptor;
template <class K, class V>
class MapStateDescriptor;
template <class T>
class ReducingStateDescriptor;
template <class A>
class AggregatingStateDescriptor;
template <class T>
class ValueState;
template <class T>
class ListState;
template <class K, class V>
class MapState;
template <class T>
class ReducingState;
template <class IN, class OUT>
class AggregatingState;

/// Access to keyed state by descriptor. The state always belongs to the
/// key being processed (and, for window state, the window being fired).
class KeyedStateAccess {
 public:
  /// Defined in freshet/internal/keyed_state.h, included by freshet.h.
  template <class T>
  ValueState<T>& GetState(const ValueStateDescriptor<T>& descriptor);
  template <class T>
  ListState<T>& GetListState(const ListStateDescriptor<T>& descriptor);
  template <class K, class V>
  MapState<K, V>& GetMapState(const MapStateDescriptor<K, V>& descriptor);
  template <class T>
  ReducingState<T>& GetReducingState(const ReducingStateDescriptor<T>& descriptor);
  template <class A>
  AggregatingState<typename A::InputType, typename A::OutputType>& GetAggregatingState(
      const AggregatingStateDescriptor<A>& descriptor);

  /// Set by keyed operators: where their keyed state lives.
  void SetKeyedStateStore(internal::KeyedStateStore* store) { keyed_state_ = store; }
  /// True on keyed streams (the operator has a keyed-state backend).
  bool HasKeyedStateStore() const { return keyed_state_ != nullptr; }
 protected:
  internal::KeyedStateStore* keyed_state_ = nullptr;
};

/// What a parallel instance of a function knows about where it runs.
/// Valid from Open() to Close(); only used from the task's own thread.
class RuntimeContext : public KeyedStateAccess {
 public:
  RuntimeContext(std::string task_name, int subtask, int parallelism, int max_parallelism, int attempt)
      : task_name_(std::move(task_name)),
        subtask_(subtask),
        parallelism_(parallelism),
        max_parallelism_(max_parallelism),
        attempt_(attempt) {}

  const std::string& GetTaskName() const { return task_name_; }
  /// "Name (2/4)#0": name, subtask index + 1, parallelism, attempt.
  std::string GetTaskNameWithSubtasks() const;
  int GetIndexOfThisSubtask() const { return subtask_; }
  int GetNumberOfParallelSubtasks() const { return parallelism_; }
  int GetMaxNumberOfParallelSubtasks() const { return max_parallelism_; }
  int GetAttemptNumber() const { return attempt_; }
  /// The operator's metric group (scope: operator of this subtask), for
  /// the function's own metrics. Outside a job (in a test harness) a group
  /// that is reported nowhere.
  MetricGroup& GetMetricGroup() const;
  /// Set by the task before Open(); the group outlives the function.
  void SetMetricGroup(MetricGroup* group) { metric_group_ = group; }


 private:
  std::string task_name_;
  int subtask_;
  int parallelism_;
  int max_parallelism_;
  int attempt_;
  MetricGroup* metric_group_ = nullptr;
};

/// Base of functions that need set-up and tear-down or their runtime context.
/// Each parallel subtask gets its own copy of the function object.
class RichFunction {
 public:
  virtual ~RichFunction() = default;
  /// Called once before the first record on the subtask's thread.
  virtual void Open() {}
  /// Called once after the last record (or on cancellation).
  virtual void Close() {}
  RuntimeContext& GetRuntimeContext() const { return *context_; }
  void SetRuntimeContext(RuntimeContext* context) { context_ = context; }

 private:
  RuntimeContext* context_ = nullptr;
};

/// Emits records from FlatMap and similar functions. Records take the
/// timestamp of the input record being processed.
template <class T>
class Collector {
 public:
  explicit Collector(internal::Output<T>* output) : output_(output) {}
  inline void Collect(const T& value);
  void SetTimestamp(Timestamp ts) { timestamp_ = ts; }

 private:
  internal::Output<T>* output_;
  Timestamp timestamp_ = kNoTimestamp;
};

template <class IN, class OUT>
class MapFunction {
 public:
  using InputType = IN;
  using OutputType = OUT;
  virtual ~MapFunction() = default;
  virtual OUT Map(const IN& value) = 0;
};

template <class IN, class OUT>
class FlatMapFunction {
 public:
  using InputType = IN;
  using OutputType = OUT;
  virtual ~FlatMapFunction() = default;
  virtual void FlatMap(const IN& value, Collector<OUT>& out) = 0;
};

template <class T>
class FilterFunction {
 public:
  virtual ~FilterFunction() = default;
  virtual bool Filter(const T& value) = 0;
};

template <class T>
class ReduceFunction {
 public:
  virtual ~ReduceFunction() = default;
  virtual T Reduce(const T& accumulated, const T& value) = 0;
};

template <class IN1, class IN2, class OUT>
class CoMapFunction {
 public:
  using OutputType = OUT;
  virtual ~CoMapFunction() = default;
  virtual OUT Map1(const IN1& value) = 0;
  virtual OUT Map2(const IN2& value) = 0;
};

template <class IN1, class IN2, class OUT>
class CoFlatMapFunction {
 public:
  using OutputType = OUT;
  virtual ~CoFlatMapFunction() = default;
  virtual void FlatMap1(const IN1& value, Collector<OUT>& out) = 0;
  virtual void FlatMap2(const IN2& value, Collector<OUT>& out) = 0;
};

template <class IN, class OUT>
class RichMapFunction : public RichFunction, public MapFunction<IN, OUT> {};
template <class IN, class OUT>
class RichFlatMapFunction : public RichFunction, public FlatMapFunction<IN, OUT> {};
template <class T>
class RichFilterFunction : public RichFunction, public FilterFunction<T> {};
template <class T>
class RichReduceFunction : public RichFunction, public ReduceFunction<T> {};
template <class IN1, class IN2, class OUT>
class RichCoMapFunction : public RichFunction, public CoMapFunction<IN1, IN2, OUT> {};
template <class IN1, class IN2, class OUT>
class RichCoFlatMapFunction : public RichFunction, public CoFlatMapFunction<IN1, IN2, OUT> {};

}  // namespace freshet
