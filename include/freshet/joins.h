#pragma once
/// Joins of two streams: window join and co-group (records of both streams
/// with equal keys in the same window), and the interval join of two keyed
/// streams (pairs whose timestamps are within bounds of each other).

#include <boost/unordered/unordered_flat_map.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "freshet/internal/keyed_snapshot.h"
#include "freshet/windowed_stream.h"

namespace freshet {

namespace internal {

/// A record of either input of a two-stream window operation.
template <class T1, class T2>
struct TaggedUnion {
  uint8_t tag = 1;
  T1 one{};
  T2 two{};
};

}  // namespace internal

template <class T1, class T2>
struct TypeSerializer<internal::TaggedUnion<T1, T2>> {
  static constexpr size_t kFixedSize = 0;
  template <class W>
  static void Serialize(const internal::TaggedUnion<T1, T2>& v, W& w) {
    w.Write(&v.tag, 1);
    if (v.tag == 1) {
      TypeSerializer<T1>::Serialize(v.one, w);
    } else {
      TypeSerializer<T2>::Serialize(v.two, w);
    }
  }
  static void Deserialize(ByteReader& r, internal::TaggedUnion<T1, T2>& v) {
    r.Read(&v.tag, 1);
    if (v.tag == 1) {
      TypeSerializer<T1>::Deserialize(r, v.one);
    } else if (v.tag == 2) {
      TypeSerializer<T2>::Deserialize(r, v.two);
    } else {
      r.Fail();
    }
  }
};

namespace internal {

template <class K, class T1, class T2, class OUT, class W, class F, bool kJoin>
class CoGroupWindowFunction final : public ProcessWindowFunction<TaggedUnion<T1, T2>, OUT, K, W> {
 public:
  using Base = ProcessWindowFunction<TaggedUnion<T1, T2>, OUT, K, W>;
  explicit CoGroupWindowFunction(F f) : f_(std::move(f)) {}
  void Process(const K&, typename Base::Context&, const std::vector<TaggedUnion<T1, T2>>& elements,
               Collector<OUT>& out) override {
    left_.clear();
    right_.clear();
    for (const auto& e : elements) {
      if (e.tag == 1) {
        left_.push_back(e.one);
      } else {
        right_.push_back(e.two);
      }
    }
    if constexpr (kJoin) {
      for (const T1& a : left_) {
        for (const T2& b : right_) {
          if constexpr (std::is_invocable_v<F&, const T1&, const T2&, Collector<OUT>&>) {
            f_(a, b, out);
          } else {
            out.Collect(f_(a, b));
          }
        }
      }
    } else {
      f_(left_, right_, out);
    }
  }

 private:
  F f_;
  std::vector<T1> left_;
  std::vector<T2> right_;
};

}  // namespace internal

/// stream1.Join(stream2).Where(k1).EqualTo(k2).Window(assigner).Apply(fn)
/// and the same shape for CoGroup.
template <class T1, class T2, bool kJoin>
class TwoStreamWindowBuilder {
 public:
  TwoStreamWindowBuilder(DataStream<T1> a, DataStream<T2> b) : a_(a), b_(b) {}

  template <class KF1>
  struct WithWhere {
    DataStream<T1> a;
    DataStream<T2> b;
    KF1 k1;
    template <class KF2>
    struct WithEqualTo {
      DataStream<T1> a;
      DataStream<T2> b;
      KF1 k1;
      KF2 k2;
      template <class Assigner>
      struct WithWindow {
        using K = std::decay_t<std::invoke_result_t<KF1&, const T1&>>;
        using U = internal::TaggedUnion<T1, T2>;
        using W = typename Assigner::WindowType;
        DataStream<T1> a;
        DataStream<T2> b;
        KF1 k1;
        KF2 k2;
        Assigner assigner;
        std::shared_ptr<freshet::Trigger<U, W>> trigger;
        std::shared_ptr<freshet::Evictor<U, W>> evictor;
        std::optional<Duration> lateness;

        WithWindow& Trigger(std::shared_ptr<freshet::Trigger<U, W>> t) {
          trigger = std::move(t);
          return *this;
        }
        WithWindow& Evictor(std::shared_ptr<freshet::Evictor<U, W>> e) {
          evictor = std::move(e);
          return *this;
        }
        WithWindow& AllowedLateness(Duration d) {
          lateness = d;
          return *this;
        }
        /// Join: `fn(left, right)` returns a result, or `fn(left, right, out)`
        /// emits any number. CoGroup: `fn(lefts, rights, out)`.
        template <class OUT, class F>
        DataStream<OUT> Apply(F fn) {
          auto ua = a.Map([](const T1& v) {
                       U u;
                       u.tag = 1;
                       u.one = v;
                       return u;
                     }).Name(kJoin ? "Join: left" : "CoGroup: left");
          auto ub = b.Map([](const T2& v) {
                       U u;
                       u.tag = 2;
                       u.two = v;
                       return u;
                     }).Name(kJoin ? "Join: right" : "CoGroup: right");
          KF1 key1 = k1;
          KF2 key2 = k2;
          auto keyed = ua.Union(ub).KeyBy([key1, key2](const U& u) -> K { return u.tag == 1 ? key1(u.one) : key2(u.two); });
          auto windowed = keyed.Window(assigner);
          if (trigger) windowed.Trigger(trigger);
          if (evictor) windowed.Evictor(evictor);
          if (lateness) windowed.AllowedLateness(*lateness);
          return windowed.Process(internal::CoGroupWindowFunction<K, T1, T2, OUT, W, F, kJoin>(std::move(fn)))
              .Name(kJoin ? "Window Join" : "Window CoGroup");
        }
      };
      template <class Assigner>
      WithWindow<Assigner> Window(Assigner assigner) {
        return WithWindow<Assigner>{a, b, k1, k2, std::move(assigner), nullptr, nullptr, std::nullopt};
      }
    };
    template <class KF2>
    WithEqualTo<KF2> EqualTo(KF2 k2) {
      static_assert(std::is_same_v<std::decay_t<std::invoke_result_t<KF1&, const T1&>>,
                                   std::decay_t<std::invoke_result_t<KF2&, const T2&>>>,
                    "Where and EqualTo must select keys of the same type");
      return WithEqualTo<KF2>{a, b, k1, std::move(k2)};
    }
  };
  template <class KF1>
  WithWhere<KF1> Where(KF1 k1) {
    return WithWhere<KF1>{a_, b_, std::move(k1)};
  }

 private:
  DataStream<T1> a_;
  DataStream<T2> b_;
};

template <class T>
template <class T2>
TwoStreamWindowBuilder<T, T2, true> DataStream<T>::Join(const DataStream<T2>& other) {
  return TwoStreamWindowBuilder<T, T2, true>(*this, other);
}

template <class T>
template <class T2>
TwoStreamWindowBuilder<T, T2, false> DataStream<T>::CoGroup(const DataStream<T2>& other) {
  return TwoStreamWindowBuilder<T, T2, false>(*this, other);
}

// ---- interval join ---------------------------------------------------------------

/// Called for each pair of an interval join.
template <class IN1, class IN2, class OUT>
class ProcessJoinFunction : public RichFunction {
 public:
  using OutputType = OUT;
  class Context {
   public:
    explicit Context(const internal::SideOutputs* side) : side_(side) {}
    Timestamp GetLeftTimestamp() const { return left_; }
    Timestamp GetRightTimestamp() const { return right_; }
    /// The result's timestamp: the larger of the two.
    Timestamp GetTimestamp() const { return std::max(left_, right_); }
    template <class X>
    void Output(const OutputTag<X>& tag, const X& value) const {
      if (internal::OutputBase* out = side_->Find(tag.Id())) {
        static_cast<internal::Output<X>*>(out)->Collect(value, GetTimestamp());
      }
    }
    void Set(Timestamp l, Timestamp r) {
      left_ = l;
      right_ = r;
    }

   private:
    const internal::SideOutputs* side_;
    Timestamp left_ = kNoTimestamp;
    Timestamp right_ = kNoTimestamp;
  };
  virtual void ProcessElement(const IN1& left, const IN2& right, Context& ctx, Collector<OUT>& out) = 0;
};

namespace internal {

/// Buffers both sides per key by timestamp; a record joins the other side's
/// records within [ts + lower, ts + upper] (left's view). Records older than
/// the watermark are late and dropped; buffers are cleaned by event-time
/// timers once no future record can join them.
template <class K, class T1, class T2, class OUT, class KF1, class KF2, class F>
class IntervalJoinOperator final : public TwoInputOperator<T1, T2, OUT> {
 public:
  IntervalJoinOperator(OperatorContext& ctx, OutputBase* out, KF1 k1, KF2 k2, int64_t lower, int64_t upper,
                       bool lower_inclusive, bool upper_inclusive, F f)
      : TwoInputOperator<T1, T2, OUT>(ctx, out),
        keys1_{std::move(k1), ctx.max_parallelism},
        keys2_{std::move(k2), ctx.max_parallelism},
        lower_(lower_inclusive ? lower : lower + 1),
        upper_(upper_inclusive ? upper : upper - 1),
        f_(std::move(f)),
        timers_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time,
                [this](const Timer<K, int>& t, bool) { OnTimer(t); }),
        context_(&ctx.side_outputs),
        collector_(this->out_) {
    if (ctx.counters != nullptr) late_dropped_ = &(*ctx.counters)[ctx.name + "." + kLateRecordsDropped];
  }
  void Open() override { OpenUserFunction(f_, this->ctx_); }
  void Close() override { CloseUserFunction(f_, this->ctx_); }

  void ProcessElement1(const T1& v, Timestamp ts) override {
    if (IsLate(ts)) return;
    keys1_.Set(v);
    Buffers& b = state_[keys1_.key];
    b.left[ts].push_back(v);
    for (auto it = b.right.lower_bound(ts + lower_); it != b.right.end() && it->first <= ts + upper_; ++it) {
      for (const T2& r : it->second) Emit(v, ts, r, it->first);
    }
    timers_.RegisterEventTimeTimer(keys1_.KeyGroup(), keys1_.key, 1, upper_ > 0 ? ts + upper_ : ts);
  }
  void ProcessElement2(const T2& v, Timestamp ts) override {
    if (IsLate(ts)) return;
    keys2_.Set(v);
    Buffers& b = state_[keys2_.key];
    b.right[ts].push_back(v);
    for (auto it = b.left.lower_bound(ts - upper_); it != b.left.end() && it->first <= ts - lower_; ++it) {
      for (const T1& l : it->second) Emit(l, it->first, v, ts);
    }
    timers_.RegisterEventTimeTimer(keys2_.KeyGroup(), keys2_.key, 2, lower_ < 0 ? ts - lower_ : ts);
  }
  size_t NumBufferedKeys() const { return state_.size(); }

  /// Per key group: "timers" (the cleanup timers; namespace 1 = left,
  /// 2 = right) and "interval-join-buffers": per key, the key and both
  /// sides' records by timestamp.
  AsyncSnapshot SnapshotState(CheckpointId) override {
    KeyGroupPartWriter buffers;
    for (const auto& [key, b] : state_) {
      ByteWriter& w = buffers.Entry(AssignToKeyGroup(key, this->ctx_.max_parallelism));
      TypeSerializer<K>::Serialize(key, w);
      TypeSerializer<std::map<Timestamp, std::vector<T1>>>::Serialize(b.left, w);
      TypeSerializer<std::map<Timestamp, std::vector<T2>>>::Serialize(b.right, w);
    }
    KeyGroupExtraParts extra;
    buffers.AddTo(kBuffersPart, extra);
    std::vector<StateInfo> info = {{kLeftState, "map", TypeNameOf<T1>()}, {kRightState, "map", TypeNameOf<T2>()}};
    return MakeKeyedSnapshot(nullptr, CaptureTimers(timers_, this->ctx_.key_groups), std::move(extra),
                             std::move(info));
  }
  /// After a restore the operator has no watermark until both inputs
  /// send one again: until then no record is dropped as late.
  void InitializeState(const OperatorRestore& restore) override {
    const std::string& op = this->ctx_.name;
    CheckRestoredType(restore, op, kLeftState, TypeNameOf<T1>());
    CheckRestoredType(restore, op, kRightState, TypeNameOf<T2>());
    RestoreKeyedState(restore, static_cast<KeyedStateBackend<K>*>(nullptr), &timers_, op,
                      [&](const std::string& part, int kg, std::string_view bytes) {
                        if (part != kBuffersPart) return false;
                        ReadPartEntries(op, part, kg, bytes, [&](ByteReader& r) {
                          K key{};
                          Buffers b;
                          TypeSerializer<K>::Deserialize(r, key);
                          TypeSerializer<std::map<Timestamp, std::vector<T1>>>::Deserialize(r, b.left);
                          TypeSerializer<std::map<Timestamp, std::vector<T2>>>::Deserialize(r, b.right);
                          if (!r.Failed()) state_.insert_or_assign(std::move(key), std::move(b));
                        });
                        return true;
                      });
  }

 protected:
  void OnWatermarkAdvanced(Timestamp wm) override { timers_.AdvanceWatermark(wm); }

 private:
  static constexpr const char* kBuffersPart = "interval-join-buffers";
  static constexpr const char* kLeftState = "interval-join-left";
  static constexpr const char* kRightState = "interval-join-right";
  struct Buffers {
    std::map<Timestamp, std::vector<T1>> left;
    std::map<Timestamp, std::vector<T2>> right;
  };
  bool IsLate(Timestamp ts) {
    if (ts == kNoTimestamp) ThrowNoTimestamp();
    if (timers_.CurrentWatermark() != kNoTimestamp && ts < timers_.CurrentWatermark()) {
      if (late_dropped_ != nullptr) ++*late_dropped_;
      return true;
    }
    return false;
  }
  void Emit(const T1& l, Timestamp lt, const T2& r, Timestamp rt) {
    context_.Set(lt, rt);
    collector_.SetTimestamp(std::max(lt, rt));
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement(l, r, context_, collector_); });
  }
  void OnTimer(const Timer<K, int>& t) {
    auto it = state_.find(t.key);
    if (it == state_.end()) return;
    Buffers& b = it->second;
    if (t.ns == 1) {
      // Left records with ts + upper <= timer can no longer join.
      Timestamp limit = upper_ > 0 ? t.timestamp - upper_ : t.timestamp;
      b.left.erase(b.left.begin(), b.left.upper_bound(limit));
    } else {
      Timestamp limit = lower_ < 0 ? t.timestamp + lower_ : t.timestamp;
      b.right.erase(b.right.begin(), b.right.upper_bound(limit));
    }
    if (b.left.empty() && b.right.empty()) state_.erase(it);
  }

  KeyContext<K, KF1> keys1_;
  KeyContext<K, KF2> keys2_;
  int64_t lower_;
  int64_t upper_;
  F f_;
  KeyedTimerService<K, int> timers_;
  typename F::Context context_;
  Collector<OUT> collector_;
  boost::unordered_flat_map<K, Buffers, KeyHasher<K>> state_;
  int64_t* late_dropped_ = nullptr;
};

}  // namespace internal

/// keyed1.IntervalJoin(keyed2).Between(lower, upper).Process(fn): pairs
/// with right.ts in [left.ts + lower, left.ts + upper].
template <class K, class T1, class T2, class KF1, class KF2>
class IntervalJoin {
 public:
  IntervalJoin(DataStream<T1> a, DataStream<T2> b, KF1 k1, KF2 k2)
      : a_(a), b_(b), k1_(std::move(k1)), k2_(std::move(k2)) {}
  IntervalJoin& Between(Duration lower, Duration upper) {
    if (lower > upper) throw std::invalid_argument("interval join: lower bound must not exceed upper bound");
    lower_ = lower.count();
    upper_ = upper.count();
    return *this;
  }
  IntervalJoin& LowerBoundExclusive() {
    lower_inclusive_ = false;
    return *this;
  }
  IntervalJoin& UpperBoundExclusive() {
    upper_inclusive_ = false;
    return *this;
  }
  template <class F>
  DataStream<typename F::OutputType> Process(F f) {
    using OUT = typename F::OutputType;
    KF1 k1 = k1_;
    KF2 k2 = k2_;
    int64_t lo = lower_, hi = upper_;
    bool li = lower_inclusive_, ui = upper_inclusive_;
    internal::Transformation t;
    t.kind = internal::TransformationKind::kTwoInput;
    t.name = "Interval Join";
    t.inputs = {a_.Id(), b_.Id()};
    t.output_type = internal::TypeOpsFor<OUT>();
    t.factory = [k1, k2, lo, hi, li, ui, f](internal::OperatorContext& c, internal::OutputBase* o) {
      return std::make_unique<internal::IntervalJoinOperator<K, T1, T2, OUT, KF1, KF2, F>>(c, o, k1, k2, lo, hi, li,
                                                                                           ui, f);
    };
    StreamExecutionEnvironment* env = a_.Env();
    return DataStream<OUT>(env, env->AddTransformation(std::move(t)));
  }

 private:
  DataStream<T1> a_;
  DataStream<T2> b_;
  KF1 k1_;
  KF2 k2_;
  int64_t lower_ = 0;
  int64_t upper_ = 0;
  bool lower_inclusive_ = true;
  bool upper_inclusive_ = true;
};

template <class K, class T, class KF>
template <class T2, class KF2>
IntervalJoin<K, T, T2, KF, KF2> KeyedStream<K, T, KF>::IntervalJoin(const KeyedStream<K, T2, KF2>& other) {
  return freshet::IntervalJoin<K, T, T2, KF, KF2>(*this, other, key_selector_, other.GetKeySelector());
}

}  // namespace freshet
