#pragma once
/// DataStream, KeyedStream, ConnectedStreams, BroadcastStream: the typed
/// job-building API.
/// Every call records a transformation in the environment; nothing runs
/// until Execute().

#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "freshet/connectors.h"
#include "freshet/environment.h"
#include "freshet/internal/operators.h"
#include "freshet/internal/process_operators.h"
#include "freshet/process_function.h"
#include "freshet/time.h"
#include "freshet/windowing.h"
#include "freshet/internal/transformation.h"

namespace freshet {

template <class T>
class DataStreamSink;
template <class K, class T, class KF>
class KeyedStream;
template <class T1, class T2>
class ConnectedStreams;
template <class K, class T1, class T2, class KF1, class KF2>
class KeyedConnectedStreams;
template <class T>
class BroadcastStream;
template <class T1, class T2>
class BroadcastConnectedStream;
template <class K, class T1, class T2, class KF>
class KeyedBroadcastConnectedStream;
template <class T1, class T2, bool kJoin>
class TwoStreamWindowBuilder;
template <class K, class T1, class T2, class KF1, class KF2>
class IntervalJoin;

namespace internal {

template <class F, class IN>
using MapResultT = std::decay_t<decltype(CallMap(std::declval<F&>(), std::declval<const IN&>()))>;

// Deduces OUT of a flat-map function: a declared OutputType, or the
// Collector<OUT>& parameter of a non-generic call operator.
template <class T>
struct CollectorArg;
template <class R, class C, class A, class OUT>
struct CollectorArg<R (C::*)(A, Collector<OUT>&) const> {
  using type = OUT;
};
template <class R, class C, class A, class OUT>
struct CollectorArg<R (C::*)(A, Collector<OUT>&)> {
  using type = OUT;
};
template <class F>
struct FlatMapOutput {
  using type = typename CollectorArg<decltype(&F::operator())>::type;
};
template <class F>
  requires requires { typename F::OutputType; }
struct FlatMapOutput<F> {
  using type = typename F::OutputType;
};
template <class R, class A, class OUT>
struct FlatMapOutput<R (*)(A, Collector<OUT>&)> {
  using type = OUT;
};

// Field aggregations of KeyedStream (Sum/Min/Max keep the first record's
// other fields; MinBy/MaxBy keep the whole record holding the extreme,
// the earliest one on ties).
template <class T, class A>
struct SumReducer {
  A field;
  T operator()(const T& acc, const T& v) const {
    T r = acc;
    std::invoke(field, r) += std::invoke(field, v);
    return r;
  }
};
template <class T, class A, bool kMin>
struct ExtremeReducer {
  A field;
  T operator()(const T& acc, const T& v) const {
    T r = acc;
    auto& f = std::invoke(field, r);
    const auto& g = std::invoke(field, v);
    if (kMin ? g < f : f < g) f = g;
    return r;
  }
};
template <class T, class A, bool kMin>
struct ExtremeByReducer {
  A field;
  T operator()(const T& acc, const T& v) const {
    const auto& a = std::invoke(field, acc);
    const auto& b = std::invoke(field, v);
    return (kMin ? b < a : a < b) ? v : acc;
  }
};
struct IdentityField {
  template <class U>
  U& operator()(U& v) const {
    return v;
  }
  template <class U>
  const U& operator()(const U& v) const {
    return v;
  }
};
template <size_t I>
struct TupleField {
  template <class U>
  auto& operator()(U& v) const {
    return std::get<I>(v);
  }
};

}  // namespace internal

/// A stream of records of type T.
template <class T>
class DataStream {
 public:
  using ValueType = T;

  DataStream(StreamExecutionEnvironment* env, int id) : env_(env), id_(id) {}

  int Id() const { return id_; }
  StreamExecutionEnvironment* Env() const { return env_; }

  // ---- transformations --------------------------------------------------
  template <class F>
  DataStream<internal::MapResultT<F, T>> Map(F f) {
    using OUT = internal::MapResultT<F, T>;
    return AddOneInput<OUT>("Map", WrapForKey([f](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::MapOperator<T, OUT, F>>(c, o, f);
    }));
  }

  /// `f(value, collector)`; OUT is deduced from the collector parameter
  /// or given explicitly: FlatMap<std::string>(...).
  template <class OUT = void, class F>
  auto FlatMap(F f) {
    using Out = std::conditional_t<std::is_void_v<OUT>, typename internal::FlatMapOutput<F>::type, OUT>;
    return AddOneInput<Out>("Flat Map", WrapForKey([f](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::FlatMapOperator<T, Out, F>>(c, o, f);
    }));
  }

  template <class F>
  DataStream<T> Filter(F f) {
    return AddOneInput<T>("Filter", WrapForKey([f](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::FilterOperator<T, F>>(c, o, f);
    }));
  }

  /// Partitions by key: records with equal keys go to the same subtask.
  template <class KF>
  auto KeyBy(KF key_selector) {
    using K = std::decay_t<std::invoke_result_t<KF&, const T&>>;
    auto factory = std::make_shared<internal::PartitionerFactoryImpl<T, internal::KeyGroupSelector<KF>>>(
        internal::PartitionerKind::kHash, internal::KeyGroupSelector<KF>(key_selector));
    return KeyedStream<K, T, KF>(AddPartition(std::move(factory)), std::move(key_selector));
  }

  /// Merges streams of the same type.
  template <class... Streams>
  DataStream<T> Union(const Streams&... others) {
    internal::Transformation t;
    t.kind = internal::TransformationKind::kUnion;
    t.name = "Union";
    t.inputs = {id_, others.Id()...};
    t.output_type = internal::TypeOpsFor<T>();
    return DataStream<T>(env_, env_->AddTransformation(std::move(t)));
  }

  /// Window join: Join(other).Where(k1).EqualTo(k2).Window(assigner).Apply(fn).
  template <class T2>
  TwoStreamWindowBuilder<T, T2, true> Join(const DataStream<T2>& other);
  /// Window co-group: CoGroup(other).Where(k1).EqualTo(k2).Window(assigner).Apply(fn).
  template <class T2>
  TwoStreamWindowBuilder<T, T2, false> CoGroup(const DataStream<T2>& other);

  /// Windows over the whole stream, computed by one subtask.
  template <class Assigner>
  auto WindowAll(Assigner assigner);

  template <class T2>
  ConnectedStreams<T, T2> Connect(const DataStream<T2>& other) {
    return ConnectedStreams<T, T2>(*this, other);
  }
  /// Connects with a broadcast stream: Process(BroadcastProcessFunction).
  template <class T2>
  BroadcastConnectedStream<T, T2> Connect(const BroadcastStream<T2>& broadcast) {
    return BroadcastConnectedStream<T, T2>(*this, broadcast);
  }

  /// Sends every record to every subtask of the operator this stream is
  /// connected to, which keeps the broadcast states the descriptors
  /// declare (MapStateDescriptor<K, V>, at least one): see
  /// BroadcastProcessFunction.
  template <class... Descriptors>
    requires(sizeof...(Descriptors) > 0)
  BroadcastStream<T> Broadcast(const Descriptors&... descriptors) {
    return BroadcastStream<T>(Broadcast(), {internal::DeclareBroadcastState(descriptors)...});
  }

  /// Assigns timestamps and watermarks (see WatermarkStrategy).
  DataStream<T> AssignTimestampsAndWatermarks(WatermarkStrategy<T> strategy) {
    return AddOneInput<T>("Timestamps/Watermarks", [strategy](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::TimestampsAndWatermarksOperator<T>>(c, o, strategy);
    });
  }

  /// A ProcessFunction<T, O> (timestamps, side outputs; timers need KeyBy).
  template <class F>
    requires std::derived_from<F, ProcessFunction<T, typename F::OutputType>>
  DataStream<typename F::OutputType> Process(F f) {
    using O = typename F::OutputType;
    return AddOneInput<O>("Process", WrapForKey([f](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::ProcessOperator<T, O, F>>(c, o, f);
    }));
  }

  /// The records the producing operator emitted to side output `tag`.
  template <class X>
  DataStream<X> GetSideOutput(const OutputTag<X>& tag) {
    internal::Transformation t;
    t.kind = internal::TransformationKind::kSideOutput;
    t.name = "Side Output " + tag.Id();
    t.inputs = {id_};
    t.side_output_tag = tag.Id();
    t.output_type = internal::TypeOpsFor<X>();
    return DataStream<X>(env_, env_->AddTransformation(std::move(t)));
  }

  // ---- partitioning -------------------------------------------------------
  DataStream<T> Forward() { return AddPartition(internal::MakePartitioner<T>(internal::PartitionerKind::kForward)); }
  DataStream<T> Rebalance() { return AddPartition(internal::MakePartitioner<T>(internal::PartitionerKind::kRebalance)); }
  DataStream<T> Rescale() { return AddPartition(internal::MakePartitioner<T>(internal::PartitionerKind::kRescale)); }
  DataStream<T> Shuffle() { return AddPartition(internal::MakePartitioner<T>(internal::PartitionerKind::kShuffle)); }
  DataStream<T> Broadcast() { return AddPartition(internal::MakePartitioner<T>(internal::PartitionerKind::kBroadcast)); }
  DataStream<T> Global() { return AddPartition(internal::MakePartitioner<T>(internal::PartitionerKind::kGlobal)); }
  /// `partitioner(key, num_partitions)` picks the subtask of each record.
  template <class P, class KF>
  DataStream<T> PartitionCustom(P partitioner, KF key_selector) {
    using Sel = internal::CustomSelector<KF, P>;
    return AddPartition(std::make_shared<internal::PartitionerFactoryImpl<T, Sel>>(
        internal::PartitionerKind::kCustom, Sel(std::move(key_selector), std::move(partitioner))));
  }

  // ---- settings of the operator that produces this stream ------------------
  DataStream<T>& SetParallelism(int p) {
    Self().parallelism = p;
    return *this;
  }
  DataStream<T>& SetMaxParallelism(int p) {
    Self().max_parallelism = p;
    return *this;
  }
  DataStream<T>& Name(std::string name) {
    Self().name = std::move(name);
    return *this;
  }
  DataStream<T>& Uid(std::string uid) {
    Self().uid = std::move(uid);
    return *this;
  }
  DataStream<T>& DisableChaining() {
    Self().chaining = internal::ChainingStrategy::kNever;
    return *this;
  }
  DataStream<T>& StartNewChain() {
    Self().chaining = internal::ChainingStrategy::kHead;
    return *this;
  }
  DataStream<T>& SlotSharingGroup(std::string group) {
    Self().slot_sharing_group = std::move(group);
    return *this;
  }

  // ---- sinks ----------------------------------------------------------------
  /// Prints to stdout; "N> " prefixes lines when the sink is parallel.
  DataStreamSink<T> Print(std::string prefix = "") {
    return SinkTo(PrintSink<T>(false, std::move(prefix)), "Print to Std. Out");
  }
  DataStreamSink<T> PrintToErr(std::string prefix = "") {
    return SinkTo(PrintSink<T>(true, std::move(prefix)), "Print to Std. Err");
  }
  /// One line per record; a directory of files "1", "2", ... when parallel.
  DataStreamSink<T> WriteAsText(std::string path) { return SinkTo(TextFileSink<T>(std::move(path)), "Text File Sink"); }

  /// A sink object (derived from Sink<T>).
  template <class S>
    requires std::derived_from<S, Sink<T>>
  DataStreamSink<T> SinkTo(S sink, std::string name = "Sink") {
    auto shared = std::make_shared<const S>(std::move(sink));
    return AddSink(std::move(name), WrapForKey([shared](internal::OperatorContext& c, internal::OutputBase*) {
      return std::make_unique<internal::SinkWriterOperator<T>>(c, *shared);
    }));
  }
  /// A function called with every record.
  template <class F>
    requires(!std::derived_from<F, Sink<T>>)
  DataStreamSink<T> SinkTo(F f, std::string name = "Sink") {
    return AddSink(std::move(name), WrapForKey([f](internal::OperatorContext& c, internal::OutputBase*) {
      return std::make_unique<internal::FunctionSinkOperator<T, F>>(c, f);
    }));
  }

  /// Runs the environment's job (it must be bounded) and returns this
  /// stream's records: in order within each parallel subtask, subtasks one
  /// after another. Throws JobFailedError if the job fails.
  /// `result`, when given, receives the job's result (runtime, counts).
  std::vector<T> ExecuteAndCollect(const std::string& job_name = "Collect Job",
                                   JobExecutionResult* result_out = nullptr) {
    std::string accumulator = "collect-" + std::to_string(env_->NextCollectId());
    AddSink("Collect Sink", [accumulator](internal::OperatorContext& c, internal::OutputBase*) {
      return std::make_unique<internal::CollectSinkOperator<T>>(c, accumulator);
    });
    JobExecutionResult result = env_->Execute(job_name).ValueOrThrow();
    std::vector<T> out;
    for (const std::string& part : result.accumulators[accumulator]) {
      Status s = internal::DecodeCollected(part, out);
      if (!s.IsOk()) throw JobFailedError(s);
    }
    if (result_out != nullptr) *result_out = std::move(result);
    return out;
  }

 protected:
  internal::Transformation& Self() { return env_->GetTransformation(id_); }

  /// On a keyed stream, runs the operator behind a wrapper that sets the
  /// record's key for keyed state.
  internal::OperatorFactory WrapForKey(internal::OperatorFactory f) const {
    return key_wrap_ ? key_wrap_(std::move(f)) : f;
  }
  std::function<internal::OperatorFactory(internal::OperatorFactory)> key_wrap_;

  template <class OUT>
  DataStream<OUT> AddOneInput(std::string name, internal::OperatorFactory factory) {
    internal::Transformation t;
    t.kind = internal::TransformationKind::kOneInput;
    t.name = std::move(name);
    t.inputs = {id_};
    t.output_type = internal::TypeOpsFor<OUT>();
    t.factory = std::move(factory);
    return DataStream<OUT>(env_, env_->AddTransformation(std::move(t)));
  }
  DataStreamSink<T> AddSink(std::string name, internal::OperatorFactory factory) {
    internal::Transformation t;
    t.kind = internal::TransformationKind::kSink;
    t.name = std::move(name);
    t.inputs = {id_};
    t.factory = std::move(factory);
    return DataStreamSink<T>(env_, env_->AddTransformation(std::move(t)));
  }
  DataStream<T> AddPartition(std::shared_ptr<const internal::PartitionerFactory> factory) {
    internal::Transformation t;
    t.kind = internal::TransformationKind::kPartition;
    t.name = internal::PartitionerName(factory->Kind());
    t.inputs = {id_};
    t.partitioner = std::move(factory);
    t.output_type = internal::TypeOpsFor<T>();
    return DataStream<T>(env_, env_->AddTransformation(std::move(t)));
  }

  StreamExecutionEnvironment* env_;
  int id_;
};

/// The sink end of a stream; settings apply to the sink operator.
template <class T>
class DataStreamSink {
 public:
  DataStreamSink(StreamExecutionEnvironment* env, int id) : env_(env), id_(id) {}
  int Id() const { return id_; }
  DataStreamSink& SetParallelism(int p) {
    env_->GetTransformation(id_).parallelism = p;
    return *this;
  }
  DataStreamSink& Name(std::string name) {
    env_->GetTransformation(id_).name = std::move(name);
    return *this;
  }
  DataStreamSink& Uid(std::string uid) {
    env_->GetTransformation(id_).uid = std::move(uid);
    return *this;
  }
  DataStreamSink& DisableChaining() {
    env_->GetTransformation(id_).chaining = internal::ChainingStrategy::kNever;
    return *this;
  }
  DataStreamSink& SlotSharingGroup(std::string group) {
    env_->GetTransformation(id_).slot_sharing_group = std::move(group);
    return *this;
  }

 private:
  StreamExecutionEnvironment* env_;
  int id_;
};

/// A stream partitioned by key. KF is the key selector's type; spell the
/// type as KeyedStream<K, T> to hold any selector in a std::function.
template <class K, class T, class KF = std::function<K(const T&)>>
class KeyedStream : public DataStream<T> {
 public:
  using KeyType = K;
  KeyedStream(DataStream<T> partitioned, KF key_selector)
      : DataStream<T>(partitioned), key_selector_(std::move(key_selector)) {
    InstallKeyWrap();
  }
  template <class OtherKF>
    requires(!std::is_same_v<OtherKF, KF>)
  KeyedStream(const KeyedStream<K, T, OtherKF>& other)  // NOLINT: type erasure on purpose
      : DataStream<T>(other), key_selector_(other.GetKeySelector()) {
    InstallKeyWrap();
  }

  const KF& GetKeySelector() const { return key_selector_; }

  using DataStream<T>::Connect;
  /// Connects with a broadcast stream: Process(KeyedBroadcastProcessFunction).
  template <class T2>
  KeyedBroadcastConnectedStream<K, T, T2, KF> Connect(const BroadcastStream<T2>& broadcast) {
    return KeyedBroadcastConnectedStream<K, T, T2, KF>(*this, broadcast, key_selector_);
  }

  /// Rolling reduce: emits the new aggregate of the key for each record.
  template <class F>
  DataStream<T> Reduce(F f) {
    return ReduceNamed(std::move(f), "Keyed Reduce");
  }

  /// Interval join with another stream keyed by the same key type.
  template <class T2, class KF2>
  freshet::IntervalJoin<K, T, T2, KF, KF2> IntervalJoin(const KeyedStream<K, T2, KF2>& other);

  /// Groups each key's records into windows.
  template <class Assigner>
  auto Window(Assigner assigner);
  /// Windows of `size` records per key (fire and purge every `size`).
  auto CountWindow(int64_t size);
  /// Windows of the last `size` records per key, firing every `slide` records.
  auto CountWindow(int64_t size, int64_t slide);

  /// A KeyedProcessFunction<K, T, O>: per-key timers and side outputs.
  template <class F>
    requires std::derived_from<F, KeyedProcessFunction<K, T, typename F::OutputType>>
  DataStream<typename F::OutputType> Process(F f) {
    using O = typename F::OutputType;
    KF kf = key_selector_;
    return this->template AddOneInput<O>("KeyedProcess", [kf, f](internal::OperatorContext& c,
                                                                 internal::OutputBase* o) {
      return std::make_unique<internal::KeyedProcessOperator<K, T, O, KF, F>>(c, o, kf, f);
    });
  }

  /// Field aggregations: `field` is a member pointer (&S::x) or a callable
  /// returning a reference to the field; without one, the record itself.
  template <class A>
  DataStream<T> Sum(A field) {
    return ReduceNamed(internal::SumReducer<T, A>{field}, "Keyed Aggregation");
  }
  DataStream<T> Sum() { return Sum(internal::IdentityField{}); }
  template <size_t I>
  DataStream<T> Sum() {
    return Sum(internal::TupleField<I>{});
  }
  template <class A>
  DataStream<T> Min(A field) {
    return ReduceNamed(internal::ExtremeReducer<T, A, true>{field}, "Keyed Aggregation");
  }
  template <class A>
  DataStream<T> Max(A field) {
    return ReduceNamed(internal::ExtremeReducer<T, A, false>{field}, "Keyed Aggregation");
  }
  template <class A>
  DataStream<T> MinBy(A field) {
    return ReduceNamed(internal::ExtremeByReducer<T, A, true>{field}, "Keyed Aggregation");
  }
  template <class A>
  DataStream<T> MaxBy(A field) {
    return ReduceNamed(internal::ExtremeByReducer<T, A, false>{field}, "Keyed Aggregation");
  }

 private:
  void InstallKeyWrap() {
    KF kf = key_selector_;
    this->key_wrap_ = [kf](internal::OperatorFactory inner) -> internal::OperatorFactory {
      return [kf, inner](internal::OperatorContext& c, internal::OutputBase* o) {
        return std::make_unique<internal::KeyedWrapperOperator<K, T, KF>>(c, o, kf, inner);
      };
    };
  }

  template <class F>
  DataStream<T> ReduceNamed(F f, std::string name) {
    KF kf = key_selector_;
    return this->template AddOneInput<T>(std::move(name), [kf, f](internal::OperatorContext& c,
                                                                  internal::OutputBase* o) {
      return std::make_unique<internal::KeyedReduceOperator<K, T, KF, F>>(c, o, kf, f);
    });
  }
  KF key_selector_;
};

/// Two streams processed together by one two-input operator.
template <class T1, class T2>
class ConnectedStreams {
 public:
  ConnectedStreams(DataStream<T1> first, DataStream<T2> second) : first_(first), second_(second) {}
  DataStream<T1> GetFirstInput() const { return first_; }
  DataStream<T2> GetSecondInput() const { return second_; }

  /// `f1` maps the first input, `f2` the second, to a common type.
  template <class F1, class F2>
  auto CoMap(F1 f1, F2 f2) {
    using OUT = std::decay_t<std::invoke_result_t<F1&, const T1&>>;
    static_assert(std::is_same_v<OUT, std::decay_t<std::invoke_result_t<F2&, const T2&>>>,
                  "CoMap: both functions must return the same type");
    return AddTwoInput<OUT>("Co-Map", [f1, f2](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::CoMapOperator<T1, T2, OUT, F1, F2>>(c, o, f1, f2);
    });
  }
  /// A CoMapFunction / CoFlatMapFunction object (Map1/Map2 or FlatMap1/FlatMap2).
  template <class F>
  auto CoMap(F f) {
    return AddCoFunction<F>(std::move(f), "Co-Map");
  }
  template <class F>
  auto CoFlatMap(F f) {
    return AddCoFunction<F>(std::move(f), "Co-Flat Map");
  }
  template <class OUT, class F1, class F2>
  DataStream<OUT> CoFlatMap(F1 f1, F2 f2) {
    return AddTwoInput<OUT>("Co-Flat Map", [f1, f2](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::CoFlatMapOperator<T1, T2, OUT, F1, F2>>(c, o, f1, f2);
    });
  }

  /// Partitions both inputs by key so equal keys meet in one subtask.
  template <class KF1, class KF2>
  auto KeyBy(KF1 key1, KF2 key2) {
    using K = std::decay_t<std::invoke_result_t<KF1&, const T1&>>;
    static_assert(std::is_same_v<K, std::decay_t<std::invoke_result_t<KF2&, const T2&>>>,
                  "KeyBy: both key selectors must return the same key type");
    DataStream<T1> a = first_.KeyBy(key1);
    DataStream<T2> b = second_.KeyBy(key2);
    return KeyedConnectedStreams<K, T1, T2, KF1, KF2>(a, b, std::move(key1), std::move(key2));
  }

  /// A CoProcessFunction<T1, T2, O>.
  template <class F>
    requires std::derived_from<F, CoProcessFunction<T1, T2, typename F::OutputType>>
  DataStream<typename F::OutputType> Process(F f) {
    using O = typename F::OutputType;
    return AddTwoInput<O>("Co-Process", [f](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::CoProcessOperator<T1, T2, O, F>>(c, o, f);
    });
  }

 private:
  template <class K, class U1, class U2, class KF1, class KF2>
  friend class KeyedConnectedStreams;

  template <class F>
  auto AddCoFunction(F f, std::string name) {
    using OUT = typename F::OutputType;
    return AddTwoInput<OUT>(std::move(name), [f](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::CoFunctionOperator<T1, T2, OUT, F>>(c, o, f);
    });
  }
  template <class OUT>
  DataStream<OUT> AddTwoInput(std::string name, internal::OperatorFactory factory) {
    internal::Transformation t;
    t.kind = internal::TransformationKind::kTwoInput;
    t.name = std::move(name);
    t.inputs = {first_.Id(), second_.Id()};
    t.output_type = internal::TypeOpsFor<OUT>();
    t.factory = std::move(factory);
    StreamExecutionEnvironment* env = first_.Env();
    return DataStream<OUT>(env, env->AddTransformation(std::move(t)));
  }
  DataStream<T1> first_;
  DataStream<T2> second_;
};

/// Two streams partitioned by the same key type.
template <class K, class T1, class T2, class KF1, class KF2>
class KeyedConnectedStreams : public ConnectedStreams<T1, T2> {
 public:
  KeyedConnectedStreams(DataStream<T1> a, DataStream<T2> b, KF1 k1, KF2 k2)
      : ConnectedStreams<T1, T2>(a, b), key1_(std::move(k1)), key2_(std::move(k2)) {}

  /// A KeyedCoProcessFunction<K, T1, T2, O>: per-key timers on both inputs.
  template <class F>
    requires std::derived_from<F, KeyedCoProcessFunction<K, T1, T2, typename F::OutputType>>
  DataStream<typename F::OutputType> Process(F f) {
    using O = typename F::OutputType;
    KF1 k1 = key1_;
    KF2 k2 = key2_;
    return this->template AddTwoInput<O>("KeyedCo-Process", [k1, k2, f](internal::OperatorContext& c,
                                                                         internal::OutputBase* o) {
      return std::make_unique<internal::KeyedCoProcessOperator<K, T1, T2, O, KF1, KF2, F>>(c, o, k1, k2, f);
    });
  }
  const KF1& FirstKeySelector() const { return key1_; }
  const KF2& SecondKeySelector() const { return key2_; }

 private:
  KF1 key1_;
  KF2 key2_;
};

/// A stream broadcast to all subtasks of the operator it is connected to,
/// with the broadcast states that operator keeps (DataStream::Broadcast).
template <class T>
class BroadcastStream {
 public:
  BroadcastStream(DataStream<T> broadcast, std::vector<internal::BroadcastStateDeclaration> declarations)
      : stream_(broadcast), declarations_(std::move(declarations)) {}
  /// The broadcast-partitioned stream.
  const DataStream<T>& GetStream() const { return stream_; }
  const std::vector<internal::BroadcastStateDeclaration>& Declarations() const { return declarations_; }

 private:
  DataStream<T> stream_;
  std::vector<internal::BroadcastStateDeclaration> declarations_;
};

/// A non-broadcast stream (input 1) connected with a broadcast stream (input 2).
template <class T1, class T2>
class BroadcastConnectedStream {
 public:
  BroadcastConnectedStream(DataStream<T1> first, BroadcastStream<T2> broadcast)
      : first_(first), broadcast_(std::move(broadcast)) {}
  DataStream<T1> GetFirstInput() const { return first_; }
  const BroadcastStream<T2>& GetSecondInput() const { return broadcast_; }

  /// A BroadcastProcessFunction<T1, T2, O>.
  template <class F>
    requires std::derived_from<F, BroadcastProcessFunction<T1, T2, typename F::OutputType>>
  DataStream<typename F::OutputType> Process(F f) {
    using O = typename F::OutputType;
    auto declared = broadcast_.Declarations();
    return AddTwoInput<O>("Co-Process-Broadcast", [f, declared](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::BroadcastProcessOperator<T1, T2, O, F>>(c, o, f, declared);
    });
  }

 protected:
  template <class OUT>
  DataStream<OUT> AddTwoInput(std::string name, internal::OperatorFactory factory) {
    internal::Transformation t;
    t.kind = internal::TransformationKind::kTwoInput;
    t.name = std::move(name);
    t.inputs = {first_.Id(), broadcast_.GetStream().Id()};
    t.output_type = internal::TypeOpsFor<OUT>();
    t.factory = std::move(factory);
    StreamExecutionEnvironment* env = first_.Env();
    return DataStream<OUT>(env, env->AddTransformation(std::move(t)));
  }
  DataStream<T1> first_;
  BroadcastStream<T2> broadcast_;
};

/// A keyed stream (input 1) connected with a broadcast stream (input 2).
template <class K, class T1, class T2, class KF>
class KeyedBroadcastConnectedStream : public BroadcastConnectedStream<T1, T2> {
 public:
  KeyedBroadcastConnectedStream(DataStream<T1> keyed, BroadcastStream<T2> broadcast, KF key_selector)
      : BroadcastConnectedStream<T1, T2>(keyed, std::move(broadcast)), key_selector_(std::move(key_selector)) {}

  /// A KeyedBroadcastProcessFunction<K, T1, T2, O>.
  template <class F>
    requires std::derived_from<F, KeyedBroadcastProcessFunction<K, T1, T2, typename F::OutputType>>
  DataStream<typename F::OutputType> Process(F f) {
    using O = typename F::OutputType;
    KF kf = key_selector_;
    auto declared = this->broadcast_.Declarations();
    return this->template AddTwoInput<O>(
        "Co-Process-Broadcast-Keyed", [kf, f, declared](internal::OperatorContext& c, internal::OutputBase* o) {
          return std::make_unique<internal::KeyedBroadcastProcessOperator<K, T1, T2, O, KF, F>>(c, o, kf, f, declared);
        });
  }

 private:
  KF key_selector_;
};

// ---- StreamExecutionEnvironment's typed sources ------------------------------

template <class S>
DataStream<typename S::OutputType> StreamExecutionEnvironment::FromSource(S source, const std::string& name) {
  using T = typename S::OutputType;
  internal::Transformation t;
  t.kind = internal::TransformationKind::kSource;
  t.name = "Source: " + name;
  t.output_type = internal::TypeOpsFor<T>();
  t.bounded = source.GetBoundedness() == Boundedness::kBounded;
  t.parallelism_limit = source.MaxParallelism();
  if (t.parallelism_limit == 1) t.parallelism = 1;
  auto shared = std::make_shared<const S>(std::move(source));
  t.factory = [shared](internal::OperatorContext& c, internal::OutputBase* o) {
    return std::make_unique<internal::SourceOperator<T>>(c, o, *shared);
  };
  return DataStream<T>(this, AddTransformation(std::move(t)));
}

template <class S>
DataStream<typename S::OutputType> StreamExecutionEnvironment::FromSource(
    S source, WatermarkStrategy<typename S::OutputType> strategy, const std::string& name) {
  return FromSource(std::move(source), name).AssignTimestampsAndWatermarks(std::move(strategy));
}

template <class T>
DataStream<T> StreamExecutionEnvironment::FromCollection(std::vector<T> values) {
  return FromSource(CollectionSource<T>(std::move(values)), "Collection Source");
}

template <class T>
DataStream<T> StreamExecutionEnvironment::FromElements(std::initializer_list<T> elements) {
  return FromCollection(std::vector<T>(elements));
}

template <class T, class... Rest>
DataStream<T> StreamExecutionEnvironment::FromElements(T first, Rest... rest) {
  std::vector<T> values;
  values.reserve(1 + sizeof...(rest));
  values.push_back(std::move(first));
  (values.push_back(T(std::move(rest))), ...);
  return FromCollection(std::move(values));
}

template <class F>
auto StreamExecutionEnvironment::FromGenerator(F fn, int64_t count, double records_per_second) {
  using T = std::decay_t<std::invoke_result_t<F&, int64_t>>;
  return FromSource(GeneratorSource<T, F>(std::move(fn), count, records_per_second), "Generator Source");
}

}  // namespace freshet
