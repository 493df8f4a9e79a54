#pragma once
/// Operator implementations behind the DataStream API. Each holds its own
/// copy of the user function, so parallel subtasks share nothing.

#include <boost/unordered/unordered_flat_map.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/functions.h"
#include "freshet/internal/operator.h"
#include "freshet/internal/operator_state_backend.h"
#include "freshet/internal/snapshot.h"
#include "freshet/sink.h"
#include "freshet/source.h"

namespace freshet::internal {

template <class F>
void OpenUserFunction(F& f, const OperatorContext& ctx) {
  if constexpr (std::is_base_of_v<RichFunction, F>) {
    f.SetRuntimeContext(ctx.runtime);
    InvokeUser(ctx.name, [&] { f.Open(); });
  }
}
template <class F>
void CloseUserFunction(F& f, const OperatorContext& ctx) {
  if constexpr (std::is_base_of_v<RichFunction, F>) {
    InvokeUser(ctx.name, [&] { f.Close(); });
  }
}

/// Forwards checkpoint notifications to user functions that listen for them.
template <class F>
void NotifyUserCheckpointComplete(F& f, const OperatorContext& ctx, CheckpointId id) {
  if constexpr (std::is_base_of_v<CheckpointListener, F>) {
    InvokeUser(ctx.name, [&] { f.NotifyCheckpointComplete(id); });
  }
}
template <class F>
void NotifyUserCheckpointAborted(F& f, const OperatorContext& ctx, CheckpointId id) {
  if constexpr (std::is_base_of_v<CheckpointListener, F>) {
    InvokeUser(ctx.name, [&] { f.NotifyCheckpointAborted(id); });
  }
}

/// Declares NotifyCheckpointComplete/Aborted overrides forwarding to `f_`.
#define FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(ctx)                                                      \
  void NotifyCheckpointComplete(CheckpointId id) override { NotifyUserCheckpointComplete(f_, ctx, id); } \
  void NotifyCheckpointAborted(CheckpointId id) override { NotifyUserCheckpointAborted(f_, ctx, id); }

/// Declares InitializeState/SnapshotState overrides that run the
/// CheckpointedFunction hooks of `f_` and write its operator state, kept in
/// a member `function_state_` (a FunctionOperatorState<F>). Free when F is
/// not a CheckpointedFunction.
#define FRESHET_FORWARD_FUNCTION_STATE(ctx)                                                  \
  void InitializeState(const OperatorRestore& restore) override {                           \
    function_state_.Initialize(ctx, restore, f_);                                            \
  }                                                                                          \
  AsyncSnapshot SnapshotState(CheckpointId id) override { return function_state_.Snapshot(ctx, id, f_); }

template <class F, class IN>
decltype(auto) CallMap(F& f, const IN& v) {
  if constexpr (requires { f.Map(v); }) {
    return f.Map(v);
  } else {
    return f(v);
  }
}
template <class F, class IN, class OUT>
void CallFlatMap(F& f, const IN& v, Collector<OUT>& out) {
  if constexpr (requires { f.FlatMap(v, out); }) {
    f.FlatMap(v, out);
  } else {
    f(v, out);
  }
}
template <class F, class T>
bool CallFilter(F& f, const T& v) {
  if constexpr (requires { f.Filter(v); }) {
    return f.Filter(v);
  } else {
    return f(v);
  }
}
template <class F, class T>
T CallReduce(F& f, const T& a, const T& b) {
  if constexpr (requires { f.Reduce(a, b); }) {
    return f.Reduce(a, b);
  } else {
    return f(a, b);
  }
}

/// Common part of one-input operators.
template <class IN, class OUT>
class OneInputOperator : public StreamOperator, public Input<IN> {
 public:
  OneInputOperator(OperatorContext& ctx, OutputBase* out) : ctx_(ctx), out_(static_cast<Output<OUT>*>(out)) {}
  void ProcessWatermark(int, Timestamp wm) override { out_->EmitWatermark(wm); }
  void ProcessWatermarkStatus(int, bool idle) override { out_->EmitWatermarkStatus(idle); }
  void* InputAt(int) override { return static_cast<Input<IN>*>(this); }
  int NumInputs() const override { return 1; }

 protected:
  OperatorContext& ctx_;
  Output<OUT>* out_;
};

template <class IN, class OUT, class F>
class MapOperator final : public OneInputOperator<IN, OUT> {
 public:
  MapOperator(OperatorContext& ctx, OutputBase* out, F f) : OneInputOperator<IN, OUT>(ctx, out), f_(std::move(f)) {}
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  FRESHET_FORWARD_FUNCTION_STATE(this->ctx_)
  void ProcessElement(const IN& v, Timestamp ts) override {
    this->out_->Collect(InvokeUser(this->ctx_.name, [&]() -> OUT { return CallMap(f_, v); }), ts);
  }

 private:
  F f_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

template <class T, class F>
class FilterOperator final : public OneInputOperator<T, T> {
 public:
  FilterOperator(OperatorContext& ctx, OutputBase* out, F f) : OneInputOperator<T, T>(ctx, out), f_(std::move(f)) {}
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  FRESHET_FORWARD_FUNCTION_STATE(this->ctx_)
  void ProcessElement(const T& v, Timestamp ts) override {
    if (InvokeUser(this->ctx_.name, [&] { return CallFilter(f_, v); })) this->out_->Collect(v, ts);
  }

 private:
  F f_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

template <class IN, class OUT, class F>
class FlatMapOperator final : public OneInputOperator<IN, OUT> {
 public:
  FlatMapOperator(OperatorContext& ctx, OutputBase* out, F f)
      : OneInputOperator<IN, OUT>(ctx, out), f_(std::move(f)), collector_(this->out_) {}
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  FRESHET_FORWARD_FUNCTION_STATE(this->ctx_)
  void ProcessElement(const IN& v, Timestamp ts) override {
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { CallFlatMap(f_, v, collector_); });
  }

 private:
  F f_;
  Collector<OUT> collector_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

/// Adapts KeyHash to the hash map's hasher (the map mixes the bits further).
template <class K>
struct KeyHasher {
  size_t operator()(const K& k) const { return static_cast<size_t>(KeyHash<K>()(k)); }
};

/// Rolling reduce per key: emits the new aggregate for every input record.
/// The per-key values live in this subtask's key groups only.
template <class K, class T, class KeyFn, class F>
class KeyedReduceOperator final : public OneInputOperator<T, T> {
 public:
  KeyedReduceOperator(OperatorContext& ctx, OutputBase* out, KeyFn key_fn, F f)
      : OneInputOperator<T, T>(ctx, out), key_fn_(std::move(key_fn)), f_(std::move(f)) {}
  void Open() override { OpenUserFunction(f_, this->ctx_); }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  void ProcessElement(const T& v, Timestamp ts) override {
    auto [it, inserted] = values_.try_emplace(key_fn_(v), v);
    if (!inserted) it->second = InvokeUser(this->ctx_.name, [&] { return CallReduce(f_, it->second, v); });
    this->out_->Collect(it->second, ts);
  }
  size_t NumKeys() const { return values_.size(); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)

  /// Part "reduce" per key group: u64 count, then (key, value) pairs.
  AsyncSnapshot SnapshotState(CheckpointId) override {
    std::map<int, std::pair<uint64_t, ByteWriter>> groups;
    for (const auto& [key, value] : values_) {
      auto& [n, w] = groups[AssignToKeyGroup(key, this->ctx_.max_parallelism)];
      ++n;
      TypeSerializer<K>::Serialize(key, w);
      TypeSerializer<T>::Serialize(value, w);
    }
    std::vector<std::pair<int, std::string>> blocks;
    for (auto& [kg, entry] : groups) {
      ByteWriter w;
      w.Write(&entry.first, sizeof(entry.first));
      w.Write(entry.second.Data(), entry.second.Size());
      KeyGroupParts parts;
      parts.Add("reduce", w);
      blocks.emplace_back(kg, parts.Encode());
    }
    return [blocks = std::move(blocks)](SnapshotOutput& out) -> Status {
      for (const auto& [kg, bytes] : blocks) FRESHET_RETURN_IF_ERROR(out.AddKeyGroup(kg, bytes));
      out.AddStateInfo({"reduce", "reducing", TypeNameOf<T>()});
      return Status::Ok();
    };
  }
  void InitializeState(const OperatorRestore& restore) override {
    if (const StateInfo* info = restore.FindInfo("reduce"); info != nullptr && info->type_name != TypeNameOf<T>()) {
      throw OperatorException(this->ctx_.name, "the rolling reduce's value type changed from '" + info->type_name +
                                                   "' to '" + TypeNameOf<T>() + "'; its state cannot be restored");
    }
    for (const auto& [kg, block] : restore.key_groups) {
      auto parts = KeyGroupParts::Decode(block);
      if (!parts.IsOk()) throw OperatorException(this->ctx_.name, parts.GetStatus().ToString());
      for (const auto& [name, bytes] : *parts) {
        if (name != "reduce") throw OperatorException(this->ctx_.name, "unknown state part '" + name + "'");
        ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        uint64_t n = 0;
        r.Read(&n, sizeof(n));
        for (uint64_t i = 0; i < n && !r.Failed(); ++i) {
          K key{};
          T value{};
          TypeSerializer<K>::Deserialize(r, key);
          TypeSerializer<T>::Deserialize(r, value);
          if (!r.Failed()) values_.insert_or_assign(std::move(key), std::move(value));
        }
        if (r.Failed() || r.Remaining() != 0) {
          throw OperatorException(this->ctx_.name, "rolling reduce state of key group " + std::to_string(kg) +
                                                       " does not decode");
        }
      }
    }
  }

 private:
  KeyFn key_fn_;
  F f_;
  boost::unordered_flat_map<K, T, KeyHasher<K>> values_;
};

/// Two inputs of possibly equal types, dispatched through adapters.
template <class IN1, class IN2, class OUT>
class TwoInputOperator : public StreamOperator {
 public:
  TwoInputOperator(OperatorContext& ctx, OutputBase* out) : ctx_(ctx), out_(static_cast<Output<OUT>*>(out)) {}
  virtual void ProcessElement1(const IN1& v, Timestamp ts) = 0;
  virtual void ProcessElement2(const IN2& v, Timestamp ts) = 0;
  void* InputAt(int index) override {
    return index == 1 ? static_cast<void*>(static_cast<Input<IN1>*>(&in1_))
                      : static_cast<void*>(static_cast<Input<IN2>*>(&in2_));
  }
  int NumInputs() const override { return 2; }
  /// Forwards the minimum of the active inputs' watermarks when it advances.
  void ProcessWatermark(int input, Timestamp wm) override {
    (input == 1 ? wm1_ : wm2_) = wm;
    Advance();
  }
  /// Idle when both inputs are idle; an idle input does not hold back the other.
  void ProcessWatermarkStatus(int input, bool idle) override {
    bool was_idle = idle1_ && idle2_;
    (input == 1 ? idle1_ : idle2_) = idle;
    bool now_idle = idle1_ && idle2_;
    if (now_idle != was_idle) out_->EmitWatermarkStatus(now_idle);
    Advance();
  }
  /// The combined watermark of both inputs.
  Timestamp CurrentWatermark() const { return emitted_; }

 protected:
  OperatorContext& ctx_;
  Output<OUT>* out_;

 private:
  struct In1 final : Input<IN1> {
    TwoInputOperator* op;
    explicit In1(TwoInputOperator* o) : op(o) {}
    void ProcessElement(const IN1& v, Timestamp ts) override { op->ProcessElement1(v, ts); }
  };
  struct In2 final : Input<IN2> {
    TwoInputOperator* op;
    explicit In2(TwoInputOperator* o) : op(o) {}
    void ProcessElement(const IN2& v, Timestamp ts) override { op->ProcessElement2(v, ts); }
  };
  void Advance() {
    Timestamp combined = idle1_ ? wm2_ : idle2_ ? wm1_ : std::min(wm1_, wm2_);
    if (idle1_ && idle2_) return;
    if (combined > emitted_) {
      emitted_ = combined;
      OnWatermarkAdvanced(combined);
      out_->EmitWatermark(combined);
    }
  }

 protected:
  /// Hook for operators with event-time timers (fires them before forwarding).
  virtual void OnWatermarkAdvanced(Timestamp) {}

 private:
  In1 in1_{this};
  In2 in2_{this};
  Timestamp wm1_ = kNoTimestamp;
  Timestamp wm2_ = kNoTimestamp;
  bool idle1_ = false;
  bool idle2_ = false;
  Timestamp emitted_ = kNoTimestamp;
};

template <class IN1, class IN2, class OUT, class F1, class F2>
class CoMapOperator final : public TwoInputOperator<IN1, IN2, OUT> {
 public:
  CoMapOperator(OperatorContext& ctx, OutputBase* out, F1 f1, F2 f2)
      : TwoInputOperator<IN1, IN2, OUT>(ctx, out), f1_(std::move(f1)), f2_(std::move(f2)) {}
  void Open() override { function_state_.EnsureInitialized(this->ctx_, f1_, f2_); }
  void InitializeState(const OperatorRestore& restore) override {
    function_state_.Initialize(this->ctx_, restore, f1_, f2_);
  }
  AsyncSnapshot SnapshotState(CheckpointId id) override { return function_state_.Snapshot(this->ctx_, id, f1_, f2_); }
  void ProcessElement1(const IN1& v, Timestamp ts) override {
    this->out_->Collect(InvokeUser(this->ctx_.name, [&]() -> OUT { return f1_(v); }), ts);
  }
  void ProcessElement2(const IN2& v, Timestamp ts) override {
    this->out_->Collect(InvokeUser(this->ctx_.name, [&]() -> OUT { return f2_(v); }), ts);
  }

 private:
  F1 f1_;
  F2 f2_;
  [[no_unique_address]] FunctionOperatorState<F1, F2> function_state_;
};

template <class IN1, class IN2, class OUT, class F1, class F2>
class CoFlatMapOperator final : public TwoInputOperator<IN1, IN2, OUT> {
 public:
  CoFlatMapOperator(OperatorContext& ctx, OutputBase* out, F1 f1, F2 f2)
      : TwoInputOperator<IN1, IN2, OUT>(ctx, out), f1_(std::move(f1)), f2_(std::move(f2)), collector_(this->out_) {}
  void Open() override { function_state_.EnsureInitialized(this->ctx_, f1_, f2_); }
  void InitializeState(const OperatorRestore& restore) override {
    function_state_.Initialize(this->ctx_, restore, f1_, f2_);
  }
  AsyncSnapshot SnapshotState(CheckpointId id) override { return function_state_.Snapshot(this->ctx_, id, f1_, f2_); }
  void ProcessElement1(const IN1& v, Timestamp ts) override {
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f1_(v, collector_); });
  }
  void ProcessElement2(const IN2& v, Timestamp ts) override {
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f2_(v, collector_); });
  }

 private:
  F1 f1_;
  F2 f2_;
  Collector<OUT> collector_;
  [[no_unique_address]] FunctionOperatorState<F1, F2> function_state_;
};

/// A rich co-function object used for both inputs (Map1/Map2 or FlatMap1/FlatMap2).
template <class IN1, class IN2, class OUT, class F>
class CoFunctionOperator final : public TwoInputOperator<IN1, IN2, OUT> {
 public:
  CoFunctionOperator(OperatorContext& ctx, OutputBase* out, F f)
      : TwoInputOperator<IN1, IN2, OUT>(ctx, out), f_(std::move(f)), collector_(this->out_) {}
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  FRESHET_FORWARD_FUNCTION_STATE(this->ctx_)
  void ProcessElement1(const IN1& v, Timestamp ts) override {
    if constexpr (requires { f_.Map1(v); }) {
      this->out_->Collect(InvokeUser(this->ctx_.name, [&]() -> OUT { return f_.Map1(v); }), ts);
    } else {
      collector_.SetTimestamp(ts);
      InvokeUser(this->ctx_.name, [&] { f_.FlatMap1(v, collector_); });
    }
  }
  void ProcessElement2(const IN2& v, Timestamp ts) override {
    if constexpr (requires { f_.Map2(v); }) {
      this->out_->Collect(InvokeUser(this->ctx_.name, [&]() -> OUT { return f_.Map2(v); }), ts);
    } else {
      collector_.SetTimestamp(ts);
      InvokeUser(this->ctx_.name, [&] { f_.FlatMap2(v, collector_); });
    }
  }

 private:
  F f_;
  Collector<OUT> collector_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

/// The task drives a source chain's head through this interface.
class SourceDriver {
 public:
  virtual ~SourceDriver() = default;
  virtual InputStatus PollNext() = 0;
  virtual Duration PollDelay() const = 0;
};

template <class T>
class SourceOperator final : public StreamOperator, public SourceDriver {
 public:
  SourceOperator(OperatorContext& ctx, OutputBase* out, const Source<T>& source)
      : ctx_(ctx),
        out_(static_cast<Output<T>*>(out)),
        reader_(source.CreateReader(*ctx.reader_context)),
        reader_output_(out_, ctx.records_out) {}
  void Open() override { Check(reader_->Open()); }
  void Close() override { reader_->Close(); }
  InputStatus PollNext() override {
    Result<InputStatus> r = InvokeUser(ctx_.name, [&] { return reader_->PollNext(reader_output_); });
    if (!r.IsOk()) Check(r.GetStatus());
    return *r;
  }
  Duration PollDelay() const override { return reader_->PollDelay(); }
  /// The reader's splits, as operator list state "source-splits" (split
  /// mode: a restore at another parallelism spreads them over the readers).
  AsyncSnapshot SnapshotState(CheckpointId id) override {
    Result<std::vector<std::string>> splits = InvokeUser(ctx_.name, [&] { return reader_->SnapshotState(id); });
    if (!splits.IsOk()) Check(splits.GetStatus());
    return [splits = std::move(*splits)](SnapshotOutput& out) -> Status {
      out.AddStateInfo({"source-splits", "operator-list", "source-split"});
      return out.AddOperatorState("source-splits", OperatorStateMode::kSplit, splits);
    };
  }
  void InitializeState(const OperatorRestore& restore) override {
    if (!restore.restored) return;
    std::vector<std::string> splits;
    if (auto it = restore.operator_state.find("source-splits"); it != restore.operator_state.end()) {
      splits = it->second.entries;
    }
    Check(InvokeUser(ctx_.name, [&] { return reader_->RestoreState(std::move(splits)); }));
  }
  void NotifyCheckpointComplete(CheckpointId id) override {
    if (auto* l = dynamic_cast<CheckpointListener*>(reader_.get())) {
      InvokeUser(ctx_.name, [&] { l->NotifyCheckpointComplete(id); });
    }
  }
  void ProcessWatermark(int, Timestamp wm) override { out_->EmitWatermark(wm); }
  void ProcessWatermarkStatus(int, bool idle) override { out_->EmitWatermarkStatus(idle); }
  void* InputAt(int) override { return nullptr; }
  int NumInputs() const override { return 0; }

 private:
  void Check(const Status& s) {
    if (!s.IsOk()) throw OperatorException(ctx_.name, s.ToString());
  }
  OperatorContext& ctx_;
  Output<T>* out_;
  std::unique_ptr<SourceReader<T>> reader_;
  ReaderOutput<T> reader_output_;
};

template <class T>
class SinkWriterOperator final : public StreamOperator, public Input<T> {
 public:
  SinkWriterOperator(OperatorContext& ctx, const Sink<T>& sink)
      : ctx_(ctx),
        writer_(sink.CreateWriter(*ctx.runtime)),
        checkpointed_(dynamic_cast<CheckpointedSinkWriter*>(writer_.get())),
        listener_(dynamic_cast<CheckpointListener*>(writer_.get())) {
    if (checkpointed_ != nullptr) checkpointed_->SetUp(ctx_.name, ctx_.processing_time, ctx_.checkpointing);
  }
  void InitializeState(const OperatorRestore& restore) override {
    if (checkpointed_ != nullptr) Check(InvokeUser(ctx_.name, [&] { return checkpointed_->InitializeState(restore); }));
  }
  void Open() override { Check(InvokeUser(ctx_.name, [&] { return writer_->Open(*ctx_.runtime); })); }
  void ProcessElement(const T& v, Timestamp ts) override {
    ++*ctx_.records_in;
    Status s = InvokeUser(ctx_.name, [&] { return writer_->Write(v, ts); });
    if (!s.IsOk()) Check(s);
  }
  void Finish() override {
    if (checkpointed_ != nullptr) {
      Check(InvokeUser(ctx_.name, [&] { return checkpointed_->Finish(); }));
    } else {
      Check(writer_->Flush(true));
    }
  }
  void Close() override { writer_->Close(); }
  void PrepareSnapshotPreBarrier(CheckpointId id) override {
    if (checkpointed_ != nullptr) {
      Check(InvokeUser(ctx_.name, [&] { return checkpointed_->PrepareSnapshotPreBarrier(id); }));
    }
  }
  AsyncSnapshot SnapshotState(CheckpointId id) override {
    if (checkpointed_ == nullptr) return nullptr;
    Result<AsyncSnapshot> snapshot = InvokeUser(ctx_.name, [&] { return checkpointed_->SnapshotState(id); });
    if (!snapshot.IsOk()) Check(snapshot.GetStatus());
    return std::move(*snapshot);
  }
  void NotifyCheckpointComplete(CheckpointId id) override {
    if (checkpointed_ != nullptr) {
      Check(InvokeUser(ctx_.name, [&] { return checkpointed_->NotifyCheckpointComplete(id); }));
    }
    if (listener_ != nullptr) InvokeUser(ctx_.name, [&] { listener_->NotifyCheckpointComplete(id); });
  }
  void NotifyCheckpointAborted(CheckpointId id) override {
    if (checkpointed_ != nullptr) {
      Check(InvokeUser(ctx_.name, [&] { return checkpointed_->NotifyCheckpointAborted(id); }));
    }
    if (listener_ != nullptr) InvokeUser(ctx_.name, [&] { listener_->NotifyCheckpointAborted(id); });
  }
  void ProcessWatermark(int, Timestamp wm) override {
    if (checkpointed_ != nullptr) checkpointed_->ProcessWatermark(wm);
  }
  void ProcessWatermarkStatus(int, bool) override {}
  void* InputAt(int) override { return static_cast<Input<T>*>(this); }
  int NumInputs() const override { return 1; }

 private:
  void Check(const Status& s) {
    if (!s.IsOk()) throw OperatorException(ctx_.name, s.ToString());
  }
  OperatorContext& ctx_;
  std::unique_ptr<SinkWriter<T>> writer_;
  // Optional interfaces of the writer, found once.
  CheckpointedSinkWriter* checkpointed_;
  CheckpointListener* listener_;
};

/// A sink that calls a user function per record.
template <class T, class F>
class FunctionSinkOperator final : public StreamOperator, public Input<T> {
 public:
  FunctionSinkOperator(OperatorContext& ctx, F f) : ctx_(ctx), f_(std::move(f)) {}
  void Open() override {
    function_state_.EnsureInitialized(ctx_, f_);
    OpenUserFunction(f_, ctx_);
  }
  void Close() override { CloseUserFunction(f_, ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(ctx_)
  FRESHET_FORWARD_FUNCTION_STATE(ctx_)
  void ProcessElement(const T& v, Timestamp) override {
    ++*ctx_.records_in;
    InvokeUser(ctx_.name, [&] {
      if constexpr (requires { f_.Invoke(v); }) {
        f_.Invoke(v);
      } else {
        f_(v);
      }
    });
  }
  void ProcessWatermark(int, Timestamp) override {}
  void ProcessWatermarkStatus(int, bool) override {}
  void* InputAt(int) override { return static_cast<Input<T>*>(this); }
  int NumInputs() const override { return 1; }

 private:
  OperatorContext& ctx_;
  F f_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

/// Collects serialized records and hands them back through the task's
/// accumulators when the input ends (ExecuteAndCollect).
template <class T>
class CollectSinkOperator final : public StreamOperator, public Input<T> {
 public:
  CollectSinkOperator(OperatorContext& ctx, std::string accumulator) : ctx_(ctx), name_(std::move(accumulator)) {}
  void ProcessElement(const T& v, Timestamp) override {
    ++*ctx_.records_in;
    ++count_;
    TypeSerializer<T>::Serialize(v, bytes_);
  }
  void Finish() override {
    std::string out;
    out.reserve(sizeof(count_) + bytes_.Size());
    out.append(reinterpret_cast<const char*>(&count_), sizeof(count_));
    out.append(reinterpret_cast<const char*>(bytes_.Data()), bytes_.Size());
    (*ctx_.accumulators)[name_] = std::move(out);
  }
  void ProcessWatermark(int, Timestamp) override {}
  void ProcessWatermarkStatus(int, bool) override {}
  void* InputAt(int) override { return static_cast<Input<T>*>(this); }
  int NumInputs() const override { return 1; }

 private:
  OperatorContext& ctx_;
  std::string name_;
  uint64_t count_ = 0;
  ByteWriter bytes_;
};

/// Decodes one subtask's collect-sink accumulator, appending to `out`.
template <class T>
Status DecodeCollected(const std::string& bytes, std::vector<T>& out) {
  uint64_t count = 0;
  if (bytes.size() < sizeof(count)) return Status::Corruption("collected result too short");
  std::memcpy(&count, bytes.data(), sizeof(count));
  ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()) + sizeof(count), bytes.size() - sizeof(count));
  for (uint64_t i = 0; i < count; ++i) {
    TypeSerializer<T>::Deserialize(r, out.emplace_back());
    if (r.Failed()) return Status::Corruption("collected result does not decode");
  }
  return Status::Ok();
}

}  // namespace freshet::internal
