#pragma once
/// Operators behind Process(...): process functions, keyed process
/// functions with timers, co-process functions, broadcast process
/// functions, and the timestamp and watermark assigner.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "freshet/internal/keyed_state.h"
#include "freshet/internal/keyed_snapshot.h"
#include "freshet/internal/operator_state_backend.h"
#include "freshet/internal/operators.h"
#include "freshet/internal/timer_service.h"
#include "freshet/process_function.h"
#include "freshet/time.h"

namespace freshet::internal {

/// The TimerService of operators without keys: time only, no timers.
class NonKeyedTimerService final : public TimerService {
 public:
  explicit NonKeyedTimerService(ProcessingTimeService* pts) : pts_(pts) {}
  Timestamp CurrentProcessingTime() const override { return pts_->CurrentProcessingTime(); }
  Timestamp CurrentWatermark() const override { return watermark_; }
  void RegisterEventTimeTimer(Timestamp) override { Fail(); }
  void RegisterProcessingTimeTimer(Timestamp) override { Fail(); }
  void DeleteEventTimeTimer(Timestamp) override { Fail(); }
  void DeleteProcessingTimeTimer(Timestamp) override { Fail(); }
  void SetWatermark(Timestamp wm) { watermark_ = wm; }

 private:
  [[noreturn]] static void Fail() {
    throw std::logic_error("timers can only be set on keyed streams: use KeyBy(...).Process(...)");
  }
  ProcessingTimeService* pts_;
  Timestamp watermark_ = kNoTimestamp;
};

/// The TimerService of keyed operators: timers of the current key.
template <class K>
class CurrentKeyTimerService final : public TimerService {
 public:
  explicit CurrentKeyTimerService(KeyedTimerService<K, VoidNamespace>* timers) : timers_(timers) {}
  Timestamp CurrentProcessingTime() const override { return timers_->CurrentProcessingTime(); }
  Timestamp CurrentWatermark() const override { return timers_->CurrentWatermark(); }
  void RegisterEventTimeTimer(Timestamp t) override { timers_->RegisterEventTimeTimer(key_group_, *key_, {}, t); }
  void RegisterProcessingTimeTimer(Timestamp t) override {
    timers_->RegisterProcessingTimeTimer(key_group_, *key_, {}, t);
  }
  void DeleteEventTimeTimer(Timestamp t) override { timers_->DeleteEventTimeTimer(key_group_, *key_, {}, t); }
  void DeleteProcessingTimeTimer(Timestamp t) override {
    timers_->DeleteProcessingTimeTimer(key_group_, *key_, {}, t);
  }
  void SetKey(const K* key, int key_group) {
    key_ = key;
    key_group_ = key_group;
  }

 private:
  KeyedTimerService<K, VoidNamespace>* timers_;
  const K* key_ = nullptr;
  int key_group_ = 0;
};

template <class I, class O, class F>
class ProcessOperator final : public OneInputOperator<I, O> {
 public:
  ProcessOperator(OperatorContext& ctx, OutputBase* out, F f)
      : OneInputOperator<I, O>(ctx, out),
        f_(std::move(f)),
        timers_(ctx.processing_time),
        context_(&timers_, &ctx.side_outputs),
        collector_(this->out_) {}
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  FRESHET_FORWARD_FUNCTION_STATE(this->ctx_)
  void ProcessElement(const I& v, Timestamp ts) override {
    context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement(v, context_, collector_); });
  }
  void ProcessWatermark(int, Timestamp wm) override {
    timers_.SetWatermark(wm);
    this->out_->EmitWatermark(wm);
  }

 private:
  F f_;
  NonKeyedTimerService timers_;
  typename F::Context context_;
  Collector<O> collector_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

/// Computes the key of a record for a keyed operator, and its key group
/// when asked (only timers need it, so most records skip the hashing).
template <class K, class KF>
struct KeyContext {
  KeyContext(KF fn, int max_p) : key_fn(std::move(fn)), max_parallelism(max_p) {}
  KF key_fn;
  int max_parallelism;
  K key{};
  template <class T>
  void Set(const T& v) {
    key = key_fn(v);
    key_group_ = -1;
  }
  int KeyGroup() {
    if (key_group_ < 0) key_group_ = AssignToKeyGroup(key, max_parallelism);
    return key_group_;
  }

 private:
  int key_group_ = -1;
};

/// Runs a keyed function's OnTimer with the timer's key in scope for state,
/// timers and the context.
template <class K, class F, class TimerCtx, class O>
void FireKeyedTimer(const Timer<K, VoidNamespace>& t, bool event_time, KeyedStateBackend<K>& state,
                    CurrentKeyTimerService<K>& timers, TimerCtx& ctx, Collector<O>& out, F& f,
                    const std::string& name) {
  state.SetCurrentKey(t.key);
  timers.SetKey(&t.key, t.key_group);
  ctx.SetKey(&t.key);
  ctx.SetTimestamp(t.timestamp);
  ctx.SetTimeDomain(event_time ? TimeDomain::kEventTime : TimeDomain::kProcessingTime);
  out.SetTimestamp(event_time ? t.timestamp : kNoTimestamp);
  InvokeUser(name, [&] { f.OnTimer(t.timestamp, ctx, out); });
}

template <class K, class I, class O, class KF, class F>
class KeyedProcessOperator final : public OneInputOperator<I, O> {
 public:
  KeyedProcessOperator(OperatorContext& ctx, OutputBase* out, KF kf, F f)
      : OneInputOperator<I, O>(ctx, out),
        keys_{std::move(kf), ctx.max_parallelism},
        state_(CreateKeyedStateBackend<K>(ctx)),
        f_(std::move(f)),
        timer_service_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time,
                       [this](const Timer<K, VoidNamespace>& t, bool event_time) { OnTimer(t, event_time); }),
        timers_(&timer_service_),
        context_(&timers_, &ctx.side_outputs, &keys_.key),
        timer_context_(&timers_, &ctx.side_outputs, nullptr),
        collector_(this->out_) {
    ctx.runtime->SetKeyedStateStore(state_.get());
    PlaceTimers(timer_service_, *state_, ctx);
  }
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  AsyncSnapshot SnapshotState(CheckpointId id) override {
    // The function's hook runs first: what it writes belongs to this checkpoint.
    AsyncSnapshot function_state = function_state_.Snapshot(this->ctx_, id, f_);
    return CombineSnapshots(
        {MakeKeyedSnapshot(state_->Snapshot(), CaptureTimers(timer_service_, this->ctx_.key_groups), {}),
         std::move(function_state)});
  }
  void InitializeState(const OperatorRestore& restore) override {
    RestoreKeyedState(restore, state_.get(), &timer_service_, this->ctx_.name, NoExtraParts);
    function_state_.Initialize(this->ctx_, restore, f_);
  }
  void ProcessElement(const I& v, Timestamp ts) override {
    keys_.Set(v);
    state_->SetCurrentKey(keys_.key);
    timers_.SetKey(&keys_.key, keys_.KeyGroup());
    context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement(v, context_, collector_); });
  }
  void ProcessWatermark(int, Timestamp wm) override {
    timer_service_.AdvanceWatermark(wm);
    this->out_->EmitWatermark(wm);
  }
  const KeyedTimerService<K, VoidNamespace>& Timers() const { return timer_service_; }
  KeyedStateBackend<K>& State() { return *state_; }

 private:
  void OnTimer(const Timer<K, VoidNamespace>& t, bool event_time) {
    FireKeyedTimer(t, event_time, *state_, timers_, timer_context_, collector_, f_, this->ctx_.name);
  }

  KeyContext<K, KF> keys_;
  std::unique_ptr<KeyedStateBackend<K>> state_;
  F f_;
  KeyedTimerService<K, VoidNamespace> timer_service_;
  CurrentKeyTimerService<K> timers_;
  typename F::Context context_;
  typename F::OnTimerContext timer_context_;
  Collector<O> collector_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

template <class I1, class I2, class O, class F>
class CoProcessOperator final : public TwoInputOperator<I1, I2, O> {
 public:
  CoProcessOperator(OperatorContext& ctx, OutputBase* out, F f)
      : TwoInputOperator<I1, I2, O>(ctx, out),
        f_(std::move(f)),
        timers_(ctx.processing_time),
        context_(&timers_, &ctx.side_outputs),
        collector_(this->out_) {}
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  FRESHET_FORWARD_FUNCTION_STATE(this->ctx_)
  void ProcessElement1(const I1& v, Timestamp ts) override {
    context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement1(v, context_, collector_); });
  }
  void ProcessElement2(const I2& v, Timestamp ts) override {
    context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement2(v, context_, collector_); });
  }

 protected:
  void OnWatermarkAdvanced(Timestamp wm) override { timers_.SetWatermark(wm); }

 private:
  F f_;
  NonKeyedTimerService timers_;
  typename F::Context context_;
  Collector<O> collector_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

template <class K, class I1, class I2, class O, class KF1, class KF2, class F>
class KeyedCoProcessOperator final : public TwoInputOperator<I1, I2, O> {
 public:
  KeyedCoProcessOperator(OperatorContext& ctx, OutputBase* out, KF1 kf1, KF2 kf2, F f)
      : TwoInputOperator<I1, I2, O>(ctx, out),
        keys1_{std::move(kf1), ctx.max_parallelism},
        keys2_{std::move(kf2), ctx.max_parallelism},
        state_(CreateKeyedStateBackend<K>(ctx)),
        f_(std::move(f)),
        timer_service_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time,
                       [this](const Timer<K, VoidNamespace>& t, bool event_time) { OnTimer(t, event_time); }),
        timers_(&timer_service_),
        context_(&timers_, &ctx.side_outputs, nullptr),
        timer_context_(&timers_, &ctx.side_outputs, nullptr),
        collector_(this->out_) {
    ctx.runtime->SetKeyedStateStore(state_.get());
    PlaceTimers(timer_service_, *state_, ctx);
  }
  void Open() override {
    function_state_.EnsureInitialized(this->ctx_, f_);
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  AsyncSnapshot SnapshotState(CheckpointId id) override {
    AsyncSnapshot function_state = function_state_.Snapshot(this->ctx_, id, f_);
    return CombineSnapshots(
        {MakeKeyedSnapshot(state_->Snapshot(), CaptureTimers(timer_service_, this->ctx_.key_groups), {}),
         std::move(function_state)});
  }
  void InitializeState(const OperatorRestore& restore) override {
    RestoreKeyedState(restore, state_.get(), &timer_service_, this->ctx_.name, NoExtraParts);
    function_state_.Initialize(this->ctx_, restore, f_);
  }
  void ProcessElement1(const I1& v, Timestamp ts) override {
    keys1_.Set(v);
    Enter(keys1_.key, keys1_.KeyGroup(), ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement1(v, context_, collector_); });
  }
  void ProcessElement2(const I2& v, Timestamp ts) override {
    keys2_.Set(v);
    Enter(keys2_.key, keys2_.KeyGroup(), ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement2(v, context_, collector_); });
  }

 protected:
  void OnWatermarkAdvanced(Timestamp wm) override { timer_service_.AdvanceWatermark(wm); }

 private:
  void Enter(const K& key, int key_group, Timestamp ts) {
    state_->SetCurrentKey(key);
    timers_.SetKey(&key, key_group);
    context_.SetKey(&key);
    context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
  }
  void OnTimer(const Timer<K, VoidNamespace>& t, bool event_time) {
    FireKeyedTimer(t, event_time, *state_, timers_, timer_context_, collector_, f_, this->ctx_.name);
  }

  KeyContext<K, KF1> keys1_;
  KeyContext<K, KF2> keys2_;
  std::unique_ptr<KeyedStateBackend<K>> state_;
  F f_;
  KeyedTimerService<K, VoidNamespace> timer_service_;
  CurrentKeyTimerService<K> timers_;
  typename F::Context context_;
  typename F::OnTimerContext timer_context_;
  Collector<O> collector_;
  [[no_unique_address]] FunctionOperatorState<F> function_state_;
};

/// The TimerService of the broadcast side of a keyed broadcast operator:
/// time, but no timers, since no key is current.
class NoKeyTimerService final : public TimerService {
 public:
  explicit NoKeyTimerService(const TimerService* time) : time_(time) {}
  Timestamp CurrentProcessingTime() const override { return time_->CurrentProcessingTime(); }
  Timestamp CurrentWatermark() const override { return time_->CurrentWatermark(); }
  void RegisterEventTimeTimer(Timestamp) override { Fail(); }
  void RegisterProcessingTimeTimer(Timestamp) override { Fail(); }
  void DeleteEventTimeTimer(Timestamp) override { Fail(); }
  void DeleteProcessingTimeTimer(Timestamp) override { Fail(); }

 private:
  [[noreturn]] static void Fail() {
    throw std::logic_error("timers cannot be set on the broadcast side (no key is current): "
                           "set them in ProcessElement or OnTimer");
  }
  const TimerService* time_;
};

/// Restores an operator's broadcast and operator list states, registers the
/// declared broadcast states, then runs the function's InitializeState.
template <class F>
void InitializeBroadcastOperatorState(const OperatorRestore& restore, OperatorStateBackend& backend,
                                      const std::vector<BroadcastStateDeclaration>& declared, F& f,
                                      const OperatorContext& ctx) {
  backend.Restore(restore);
  for (const BroadcastStateDeclaration& declare : declared) declare(backend);
  InitializeUserFunctionState(f, ctx, backend);
}

/// Runs a BroadcastProcessFunction: input 1 is the non-broadcast stream,
/// input 2 the broadcast stream. Broadcast states are operator state with
/// broadcast redistribution.
template <class I1, class I2, class O, class F>
class BroadcastProcessOperator final : public TwoInputOperator<I1, I2, O> {
 public:
  BroadcastProcessOperator(OperatorContext& ctx, OutputBase* out, F f, std::vector<BroadcastStateDeclaration> declared)
      : TwoInputOperator<I1, I2, O>(ctx, out),
        f_(std::move(f)),
        declared_(std::move(declared)),
        operator_state_(ctx.name),
        timers_(ctx.processing_time),
        read_only_context_(&timers_, &ctx.side_outputs, &operator_state_),
        context_(&timers_, &ctx.side_outputs, &operator_state_),
        collector_(this->out_) {}
  void InitializeState(const OperatorRestore& restore) override {
    initialized_ = true;
    InitializeBroadcastOperatorState(restore, operator_state_, declared_, f_, this->ctx_);
  }
  void Open() override {
    if (!initialized_) InitializeState(OperatorRestore{});
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  AsyncSnapshot SnapshotState(CheckpointId id) override {
    SnapshotUserFunctionState(f_, this->ctx_, id);
    return operator_state_.Snapshot();
  }
  void ProcessElement1(const I1& v, Timestamp ts) override {
    read_only_context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement(v, read_only_context_, collector_); });
  }
  void ProcessElement2(const I2& v, Timestamp ts) override {
    context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessBroadcastElement(v, context_, collector_); });
  }
  OperatorStateBackend& OperatorState() { return operator_state_; }

 protected:
  void OnWatermarkAdvanced(Timestamp wm) override { timers_.SetWatermark(wm); }

 private:
  F f_;
  std::vector<BroadcastStateDeclaration> declared_;
  OperatorStateBackend operator_state_;
  NonKeyedTimerService timers_;
  typename F::ReadOnlyContext read_only_context_;
  typename F::Context context_;
  Collector<O> collector_;
  bool initialized_ = false;
};

/// Runs a KeyedBroadcastProcessFunction: input 1 is the keyed stream (keyed
/// state, timers), input 2 the broadcast stream.
template <class K, class I1, class I2, class O, class KF, class F>
class KeyedBroadcastProcessOperator final : public TwoInputOperator<I1, I2, O>, private KeyedStateVisitor<K> {
 public:
  KeyedBroadcastProcessOperator(OperatorContext& ctx, OutputBase* out, KF kf, F f,
                                std::vector<BroadcastStateDeclaration> declared)
      : TwoInputOperator<I1, I2, O>(ctx, out),
        keys_{std::move(kf), ctx.max_parallelism},
        state_(CreateKeyedStateBackend<K>(ctx)),
        f_(std::move(f)),
        declared_(std::move(declared)),
        operator_state_(ctx.name),
        timer_service_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time,
                       [this](const Timer<K, VoidNamespace>& t, bool event_time) { OnTimer(t, event_time); }),
        timers_(&timer_service_),
        broadcast_timers_(&timers_),
        read_only_context_(&timers_, &ctx.side_outputs, &operator_state_, &keys_.key),
        context_(&broadcast_timers_, &ctx.side_outputs, &operator_state_, this),
        timer_context_(&timers_, &ctx.side_outputs, &operator_state_, nullptr),
        collector_(this->out_) {
    ctx.runtime->SetKeyedStateStore(state_.get());
    PlaceTimers(timer_service_, *state_, ctx);
  }
  void InitializeState(const OperatorRestore& restore) override {
    initialized_ = true;
    RestoreKeyedState(restore, state_.get(), &timer_service_, this->ctx_.name, NoExtraParts);
    InitializeBroadcastOperatorState(restore, operator_state_, declared_, f_, this->ctx_);
  }
  void Open() override {
    if (!initialized_) InitializeState(OperatorRestore{});
    OpenUserFunction(f_, this->ctx_);
  }
  void Close() override { CloseUserFunction(f_, this->ctx_); }
  FRESHET_FORWARD_CHECKPOINT_NOTIFICATIONS(this->ctx_)
  AsyncSnapshot SnapshotState(CheckpointId id) override {
    SnapshotUserFunctionState(f_, this->ctx_, id);
    return CombineSnapshots(
        {MakeKeyedSnapshot(state_->Snapshot(), CaptureTimers(timer_service_, this->ctx_.key_groups), {}),
         operator_state_.Snapshot()});
  }
  void ProcessElement1(const I1& v, Timestamp ts) override {
    keys_.Set(v);
    state_->SetCurrentKey(keys_.key);
    timers_.SetKey(&keys_.key, keys_.KeyGroup());
    read_only_context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessElement(v, read_only_context_, collector_); });
  }
  void ProcessElement2(const I2& v, Timestamp ts) override {
    context_.SetTimestamp(ts);
    collector_.SetTimestamp(ts);
    InvokeUser(this->ctx_.name, [&] { f_.ProcessBroadcastElement(v, context_, collector_); });
  }
  KeyedStateBackend<K>& State() { return *state_; }
  OperatorStateBackend& OperatorState() { return operator_state_; }

 protected:
  void OnWatermarkAdvanced(Timestamp wm) override { timer_service_.AdvanceWatermark(wm); }

 private:
  void OnTimer(const Timer<K, VoidNamespace>& t, bool event_time) {
    FireKeyedTimer(t, event_time, *state_, timers_, timer_context_, collector_, f_, this->ctx_.name);
  }
  void ForEachKeyWithState(const std::string& name, const std::function<void(const K&)>& fn) override {
    state_->ForEachKeyWithState(name, fn);
  }
  KeyedStateAccess& KeyedState() override { return *this->ctx_.runtime; }

  KeyContext<K, KF> keys_;
  std::unique_ptr<KeyedStateBackend<K>> state_;
  F f_;
  std::vector<BroadcastStateDeclaration> declared_;
  OperatorStateBackend operator_state_;
  KeyedTimerService<K, VoidNamespace> timer_service_;
  CurrentKeyTimerService<K> timers_;
  NoKeyTimerService broadcast_timers_;
  typename F::ReadOnlyContext read_only_context_;
  typename F::Context context_;
  typename F::OnTimerContext timer_context_;
  Collector<O> collector_;
  bool initialized_ = false;
};

/// Runs a non-keyed operator (map, filter, sink...) on a keyed stream with
/// the record's key set for keyed state.
template <class K, class T, class KF>
class KeyedWrapperOperator final : public StreamOperator, public Input<T> {
 public:
  KeyedWrapperOperator(OperatorContext& ctx, OutputBase* out, KF kf, const OperatorFactory& inner)
      : name_(ctx.name),
        keys_(std::move(kf), ctx.max_parallelism),
        state_(CreateKeyedStateBackend<K>(ctx)) {
    ctx.runtime->SetKeyedStateStore(state_.get());
    inner_ = inner(ctx, out);
    input_ = static_cast<Input<T>*>(inner_->InputAt(1));
  }
  void Open() override { inner_->Open(); }
  void ProcessElement(const T& v, Timestamp ts) override {
    keys_.Set(v);
    state_->SetCurrentKey(keys_.key);
    input_->ProcessElement(v, ts);
  }
  void ProcessWatermark(int i, Timestamp wm) override { inner_->ProcessWatermark(i, wm); }
  void ProcessWatermarkStatus(int i, bool idle) override { inner_->ProcessWatermarkStatus(i, idle); }
  void EndInput(int i) override { inner_->EndInput(i); }
  void Finish() override { inner_->Finish(); }
  void Close() override { inner_->Close(); }
  void PrepareSnapshotPreBarrier(CheckpointId id) override { inner_->PrepareSnapshotPreBarrier(id); }
  /// The keyed backend's key groups, plus whatever the inner operator keeps
  /// (operator state of a sink, for example).
  AsyncSnapshot SnapshotState(CheckpointId id) override {
    return CombineSnapshots(
        {MakeKeyedSnapshot(state_->Snapshot(), {}, {}), inner_->SnapshotState(id)});
  }
  void InitializeState(const OperatorRestore& restore) override {
    RestoreKeyedState<K, VoidNamespace>(restore, state_.get(), nullptr, name_, NoExtraParts);
    OperatorRestore inner = restore;
    inner.key_groups.clear();
    inner_->InitializeState(inner);
  }
  void NotifyCheckpointComplete(CheckpointId id) override { inner_->NotifyCheckpointComplete(id); }
  void NotifyCheckpointAborted(CheckpointId id) override { inner_->NotifyCheckpointAborted(id); }
  void* InputAt(int) override { return static_cast<Input<T>*>(this); }
  int NumInputs() const override { return 1; }
  KeyedStateBackend<K>& State() { return *state_; }

 private:
  std::string name_;
  KeyContext<K, KF> keys_;
  std::unique_ptr<KeyedStateBackend<K>> state_;
  std::unique_ptr<StreamOperator> inner_;
  Input<T>* input_ = nullptr;
};

/// Assigns timestamps and generates watermarks. Upstream watermarks are
/// dropped, except the final maximum watermark of a bounded input.
template <class T>
class TimestampsAndWatermarksOperator final : public OneInputOperator<T, T>, private WatermarkOutput {
 public:
  TimestampsAndWatermarksOperator(OperatorContext& ctx, OutputBase* out, WatermarkStrategy<T> strategy)
      : OneInputOperator<T, T>(ctx, out),
        strategy_(std::move(strategy)),
        interval_ms_(ctx.auto_watermark_interval_ms) {}
  void Open() override {
    ProcessingTimeService* pts = this->ctx_.processing_time;
    generator_ = strategy_.CreateGenerator([pts] { return pts->CurrentProcessingTime(); });
    if (generator_ != nullptr && interval_ms_ > 0) Schedule(pts->CurrentProcessingTime() + interval_ms_);
  }
  void ProcessElement(const T& v, Timestamp ts) override {
    Timestamp assigned = ts;
    if (strategy_.Assigner()) assigned = InvokeUser(this->ctx_.name, [&] { return strategy_.Assigner()(v, ts); });
    this->out_->Collect(v, assigned);
    if (generator_ != nullptr) InvokeUser(this->ctx_.name, [&] { generator_->OnEvent(v, assigned, *this); });
  }
  void ProcessWatermark(int, Timestamp wm) override {
    if (wm == kMaxWatermark) EmitWatermark(kMaxWatermark);
  }
  void ProcessWatermarkStatus(int, bool) override {}
  void Finish() override {
    if (generator_ != nullptr) generator_->OnPeriodicEmit(*this);
  }
  Timestamp CurrentWatermark() const { return emitted_; }

 private:
  void Schedule(Timestamp at) {
    this->ctx_.processing_time->RegisterTimer(at, [this](Timestamp now) {
      InvokeUser(this->ctx_.name, [&] { generator_->OnPeriodicEmit(*this); });
      Schedule(now + interval_ms_);
    });
  }
  void EmitWatermark(Timestamp wm) override {
    if (wm <= emitted_) return;
    emitted_ = wm;
    if (idle_) MarkActive();
    this->out_->EmitWatermark(wm);
  }
  void MarkIdle() override {
    if (idle_) return;
    idle_ = true;
    this->out_->EmitWatermarkStatus(true);
  }
  void MarkActive() override {
    if (!idle_) return;
    idle_ = false;
    this->out_->EmitWatermarkStatus(false);
  }

  WatermarkStrategy<T> strategy_;
  int64_t interval_ms_;
  std::unique_ptr<WatermarkGenerator<T>> generator_;
  Timestamp emitted_ = kNoTimestamp;
  bool idle_ = false;
};

}  // namespace freshet::internal
