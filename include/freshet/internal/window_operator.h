#pragma once
/// The window operator: assigns records to windows per key, keeps window
/// contents, runs triggers and evictors, fires window functions, handles
/// lateness and merges session windows. Semantics follow Flink's
/// WindowOperator; state lives in hash maps keyed by (key, window) and is
/// dropped at each window's cleanup time, so memory follows the number of
/// open windows.

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "freshet/internal/keyed_state.h"
#include "freshet/internal/keyed_snapshot.h"
#include "freshet/internal/operators.h"
#include "freshet/internal/process_operators.h"
#include "freshet/internal/timer_service.h"
#include "freshet/windowing.h"

namespace freshet::internal {

inline constexpr const char* kLateRecordsDropped = "numLateRecordsDropped";

// ---- snapshots ----------------------------------------------------------------
// Window and join operators keep their data in their own structures; a
// snapshot writes it as named parts of the key-group blocks (see
// KeyGroupParts), computing each key's group as it goes, so a restore at
// another parallelism takes exactly the keys of its key groups. Each part
// is declared with its value type; a restore into an operator whose type
// changed fails with CheckRestoredType's error instead of misreading bytes.

/// Throws NonRecoverableError when the snapshot being restored declared
/// `state` of operator `op` with another type than `type_name`.
inline void CheckRestoredType(const OperatorRestore& restore, const std::string& op, const std::string& state,
                              const std::string& type_name) {
  const StateInfo* info = restore.FindInfo(state);
  if (info == nullptr || info->type_name == type_name) return;
  throw NonRecoverableError("operator '" + op + "': state '" + state + "' was saved with type '" + info->type_name +
                            "' and is now of type '" + type_name + "'; it cannot be restored");
}

/// Entries of one named part, collected per key group on the task thread.
/// A key group's part is a u64 entry count followed by the entries.
class KeyGroupPartWriter {
 public:
  /// The writer of one more entry of `key_group`.
  ByteWriter& Entry(int key_group) {
    Group& g = groups_[key_group];
    ++g.count;
    return g.bytes;
  }
  /// Adds the collected parts to `out` under `name`.
  void AddTo(const std::string& name, KeyGroupExtraParts& out) const {
    for (const auto& [kg, g] : groups_) {
      std::string bytes(sizeof(g.count) + g.bytes.Size(), '\0');
      std::memcpy(bytes.data(), &g.count, sizeof(g.count));
      if (g.bytes.Size() > 0) std::memcpy(bytes.data() + sizeof(g.count), g.bytes.Data(), g.bytes.Size());
      out[kg].emplace_back(name, std::move(bytes));
    }
  }

 private:
  struct Group {
    uint64_t count = 0;
    ByteWriter bytes;
  };
  std::map<int, Group> groups_;
};

/// Decodes a part written by KeyGroupPartWriter, calling `read(reader)`
/// once per entry; throws an OperatorException naming `op` when the bytes
/// do not decode.
template <class Read>
void ReadPartEntries(const std::string& op, const std::string& part, int key_group, std::string_view bytes,
                     Read read) {
  ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  uint64_t n = 0;
  r.Read(&n, sizeof(n));
  for (uint64_t i = 0; i < n && !r.Failed(); ++i) read(r);
  if (r.Failed() || r.Remaining() != 0) {
    throw OperatorException(op, "state part '" + part + "' of key group " + std::to_string(key_group) +
                                    " does not decode");
  }
}

/// Serializes the keys of `backend` in the format of
/// HeapKeyedStateBackend::SnapshotKeyGroup, grouped by `key_group_of(key)`
/// rather than by the backend's own hash of the key (per-window state is
/// keyed by (key, window) but belongs to the key's group).
template <class KK, class KeyGroupOf>
std::map<int, std::string> CaptureKeyedBackend(const HeapKeyedStateBackend<KK>& backend, KeyGroupOf key_group_of) {
  std::map<int, std::vector<std::pair<const KK*, uint32_t>>> by_group;
  backend.ForEachKey([&](const KK& key, int, uint32_t slot) { by_group[key_group_of(key)].emplace_back(&key, slot); });
  std::map<int, std::string> out;
  ByteWriter w;
  ByteWriter value;
  for (const auto& [kg, keys] : by_group) {
    w.Reset();
    uint32_t num_states = static_cast<uint32_t>(backend.States().size());
    w.Write(&num_states, sizeof(num_states));
    for (const auto& [name, state] : backend.States()) {
      TypeSerializer<std::string>::Serialize(name, w);
      uint64_t n = 0;
      for (const auto& [key, slot] : keys) n += state->HasValue(slot) ? 1 : 0;
      w.Write(&n, sizeof(n));
      for (const auto& [key, slot] : keys) {
        if (!state->HasValue(slot)) continue;
        TypeSerializer<KK>::Serialize(*key, w);
        value.Reset();
        state->Serialize(slot, value);
        uint32_t len = static_cast<uint32_t>(value.Size());
        w.Write(&len, sizeof(len));
        w.Write(value.Data(), value.Size());
      }
    }
    out.emplace(kg, std::string(reinterpret_cast<const char*>(w.Data()), w.Size()));
  }
  return out;
}

// ---- contents policies -------------------------------------------------------
// A policy holds a window's contents (Acc) and turns them into the values
// handed to the final stage:
//   void Add(Acc&, const IN&, Timestamp);  void Merge(Acc& into, Acc& from);
//   bool Empty(const Acc&);  template <class Fn> void Values(Acc&, const W&, Fn&& each_value);

template <class IN, class F>
struct ReducePolicy {
  using Acc = std::optional<IN>;
  using Value = IN;
  static constexpr const char* kStateKind = "reducing";
  F f;
  void Add(Acc& acc, const IN& v, Timestamp) {
    if (!acc) {
      acc.emplace(v);
    } else {
      *acc = CallReduce(f, *acc, v);
    }
  }
  void Merge(Acc& into, Acc& from) {
    if (!from) return;
    if (!into) {
      into = std::move(from);
    } else {
      *into = CallReduce(f, *into, *from);
    }
  }
  static bool Empty(const Acc& acc) { return !acc.has_value(); }
  template <class W, class Fn>
  void Values(Acc& acc, const W&, Fn&& each) {
    each(*acc);
  }
};

template <class IN, class F>
struct AggregatePolicy {
  using Acc = std::optional<typename F::AccumulatorType>;
  using Value = typename F::OutputType;
  static constexpr const char* kStateKind = "aggregating";
  F f;
  void Add(Acc& acc, const IN& v, Timestamp) {
    if (!acc) acc.emplace(f.CreateAccumulator());
    *acc = f.Add(v, std::move(*acc));
  }
  void Merge(Acc& into, Acc& from) {
    if (!from) return;
    if (!into) {
      into = std::move(from);
    } else {
      *into = f.Merge(std::move(*into), std::move(*from));
    }
  }
  static bool Empty(const Acc& acc) { return !acc.has_value(); }
  template <class W, class Fn>
  void Values(Acc& acc, const W&, Fn&& each) {
    each(f.GetResult(*acc));
  }
};

/// Keeps every element (full window functions and evictors). `Inner`
/// reduces or aggregates the remaining elements at fire time, or passes
/// them through (PassThroughInner).
struct PassThroughInner {};
template <class Inner, class IN>
struct InnerValue {
  using type = typename Inner::Value;
};
template <class IN>
struct InnerValue<PassThroughInner, IN> {
  using type = IN;
};

template <class IN, class W, class Inner>
struct BufferPolicy {
  using Acc = std::vector<TimestampedValue<IN>>;
  using Value = typename InnerValue<Inner, IN>::type;
  static constexpr const char* kStateKind = "list";
  Inner inner;
  std::shared_ptr<Evictor<IN, W>> evictor;
  void Add(Acc& acc, const IN& v, Timestamp ts) { acc.push_back({v, ts}); }
  void Merge(Acc& into, Acc& from) {
    into.insert(into.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  }
  static bool Empty(const Acc& acc) { return acc.empty(); }
  template <class Fn>
  void Values(Acc& acc, const W& window, Fn&& each) {
    if (evictor) evictor->EvictBefore(acc, window);
    if constexpr (std::is_same_v<Inner, PassThroughInner>) {
      for (const auto& e : acc) each(e.value);
    } else {
      typename Inner::Acc partial;
      for (const auto& e : acc) inner.Add(partial, e.value, e.timestamp);
      if (!Inner::Empty(partial)) inner.Values(partial, window, each);
    }
    if (evictor) evictor->EvictAfter(acc, window);
  }
};

// ---- final stages ------------------------------------------------------------
/// Emits each value as a result.
struct EmitValues {};
template <class Final, class K, class W>
struct FinalContext {
  using type = typename Final::Context;
};
template <class K, class W>
struct FinalContext<EmitValues, K, W> {
  using type = int;
};

/// Global (per key) and per-window keyed state of a ProcessWindowFunction.
/// Snapshots write `global` as the "state" part of each key group and
/// `per_window` as part "window-state" of its key's group.
template <class K, class W>
struct WindowFunctionState {
  WindowFunctionState(const OperatorContext& ctx)
      : global(ctx.key_groups, ctx.max_parallelism, ctx.processing_time),
        // (key, window) entries are written in the block of the key's group,
        // not of the pair's hash, which the backend would check on restore
        // against its range: this backend accepts every group.
        per_window(KeyGroupRange{0, ctx.max_parallelism - 1}, ctx.max_parallelism, ctx.processing_time) {
    global_access.SetKeyedStateStore(&global);
    window_access.SetKeyedStateStore(&per_window);
  }
  /// Points both stores at `key` (and `window`) and wires them into `context`.
  template <class C>
  void Enter(C& context, const K& key, const W& window) {
    current = {key, window};
    global.SetCurrentKey(current.first);
    per_window.SetCurrentKey(current);
    context.SetStates(&global_access, &window_access);
  }
  HeapKeyedStateBackend<K> global;
  HeapKeyedStateBackend<std::pair<K, W>> per_window;
  KeyedStateAccess global_access;
  KeyedStateAccess window_access;
  std::pair<K, W> current{};
};

/// What the window operators share: emitting a window's result through the
/// final stage (values, or a ProcessWindowFunction with its state), and
/// records that arrive after all their windows are gone.
template <class K, class IN, class OUT, class W, class Policy, class Final>
class WindowEmitter {
 public:
  using Acc = typename Policy::Acc;
  using Value = typename Policy::Value;

  WindowEmitter(OperatorContext& ctx, Output<OUT>* out, KeyedTimerService<K, W>* times, Policy policy,
                Final final_stage, std::string late_tag)
      : ctx_(ctx),
        out_(out),
        policy_(std::move(policy)),
        final_(std::move(final_stage)),
        late_tag_(std::move(late_tag)),
        collector_(out) {
    if constexpr (kHasFunction) {
      process_context_.emplace(nullptr, times, &ctx.side_outputs);
      function_state_.emplace(ctx);
    }
    if (ctx.counters != nullptr) late_dropped_ = &(*ctx.counters)[ctx.name + "." + kLateRecordsDropped];
  }

  void Open() {
    if constexpr (kHasFunction) OpenUserFunction(final_, ctx_);
  }
  void Close() {
    if constexpr (kHasFunction) CloseUserFunction(final_, ctx_);
  }
  Policy& GetPolicy() { return policy_; }

  /// Emits the window's result for `key`, timestamped with the window's max timestamp.
  void Emit(const K& key, const W& window, Acc& acc) {
    Timestamp ts = window.MaxTimestamp();
    collector_.SetTimestamp(ts);
    if constexpr (!kHasFunction) {
      InvokeUser(ctx_.name, [&] { policy_.Values(acc, window, [&](const Value& value) { out_->Collect(value, ts); }); });
    } else {
      values_.clear();
      InvokeUser(ctx_.name, [&] { policy_.Values(acc, window, [&](const Value& value) { values_.push_back(value); }); });
      Enter(key, window);
      InvokeUser(ctx_.name, [&] { final_.Process(key, *process_context_, values_, collector_); });
    }
  }

  /// The window is dropped for `key`: the function clears its window state.
  void Clear(const K& key, const W& window) {
    if constexpr (kHasFunction) {
      Enter(key, window);
      InvokeUser(ctx_.name, [&] { final_.Clear(*process_context_); });
    }
  }

  /// A record all of whose windows are gone: to the late-data side output
  /// when one is set and consumed, else counted as dropped.
  void Late(const IN& v, Timestamp ts) {
    if (!late_tag_.empty()) {
      if (OutputBase* out = ctx_.side_outputs.Find(late_tag_)) {
        static_cast<Output<IN>*>(out)->Collect(v, ts);
        return;
      }
    }
    if (late_dropped_ != nullptr) ++*late_dropped_;
    ++late_dropped_local_;
  }
  int64_t LateRecordsDropped() const { return late_dropped_local_; }

  // ---- snapshots of the window function's keyed state ----
  /// GlobalState() of the ProcessWindowFunction, keyed like the operator:
  /// the "state" part of the key groups. nullptr without a function.
  HeapKeyedStateBackend<K>* GlobalStateBackend() {
    if constexpr (kHasFunction) {
      return &function_state_->global;
    } else {
      return nullptr;
    }
  }
  std::unique_ptr<KeyedStateSnapshot> SnapshotGlobalState() {
    if constexpr (kHasFunction) {
      return function_state_->global.Snapshot();
    } else {
      return nullptr;
    }
  }
  /// Adds WindowState() of every (key, window) to part "window-state" of
  /// the key's group and declares its states as "window-state/<name>".
  void CaptureWindowState(KeyGroupExtraParts& parts, std::vector<StateInfo>& info) const {
    if constexpr (kHasFunction) {
      const HeapKeyedStateBackend<std::pair<K, W>>& per_window = function_state_->per_window;
      const int max_parallelism = ctx_.max_parallelism;
      auto groups = CaptureKeyedBackend(per_window, [max_parallelism](const std::pair<K, W>& k) {
        return AssignToKeyGroup(k.first, max_parallelism);
      });
      for (auto& [kg, bytes] : groups) parts[kg].emplace_back(kWindowStatePart, std::move(bytes));
      for (const auto& [name, state] : per_window.States()) {
        info.push_back({std::string(kWindowStatePrefix) + name, state->Kind(), state->Type().name()});
      }
    }
  }
  /// Before restoring parts: the per-window states the snapshot declared,
  /// so that registering one with another type fails.
  void SetRestoredInfo(const OperatorRestore& restore) {
    if constexpr (kHasFunction) {
      const std::string_view prefix = kWindowStatePrefix;
      std::vector<StateInfo> window_info;
      for (const StateInfo& i : restore.state_info) {
        if (i.name.starts_with(prefix)) window_info.push_back({i.name.substr(prefix.size()), i.kind, i.type_name});
      }
      function_state_->per_window.SetRestoredInfo(std::move(window_info));
    }
  }
  /// Restores part "window-state" of `key_group`; false for other parts.
  bool RestorePart(const std::string& name, int key_group, std::string_view bytes) {
    if constexpr (kHasFunction) {
      if (name != kWindowStatePart) return false;
      Status s = function_state_->per_window.RestoreKeyGroup(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                             bytes.size());
      if (!s.IsOk()) {
        throw OperatorException(ctx_.name, "restoring window state of key group " + std::to_string(key_group) +
                                               ": " + s.ToString());
      }
      return true;
    } else {
      return false;
    }
  }

 private:
  static constexpr bool kHasFunction = !std::is_same_v<Final, EmitValues>;
  static constexpr const char* kWindowStatePart = "window-state";
  static constexpr const char* kWindowStatePrefix = "window-state/";
  void Enter(const K& key, const W& window) {
    process_context_->SetWindow(&window);
    function_state_->Enter(*process_context_, key, window);
  }

  OperatorContext& ctx_;
  Output<OUT>* out_;
  Policy policy_;
  Final final_;
  std::string late_tag_;
  Collector<OUT> collector_;
  std::vector<Value> values_;
  std::optional<typename FinalContext<Final, K, W>::type> process_context_;
  std::optional<WindowFunctionState<K, W>> function_state_;
  int64_t* late_dropped_ = nullptr;
  int64_t late_dropped_local_ = 0;
};

// ---- the operator ------------------------------------------------------------------

template <class K, class IN, class OUT, class Assigner, class KF, class Policy, class Final>
class WindowOperator final : public OneInputOperator<IN, OUT> {
 public:
  using W = typename Assigner::WindowType;
  using Acc = typename Policy::Acc;
  using Value = typename Policy::Value;

  struct Config {
    Assigner assigner;
    std::shared_ptr<Trigger<IN, W>> trigger;  // nullptr: the assigner's default
    int64_t allowed_lateness = 0;
    std::string late_tag;  // empty: drop late records
  };

  WindowOperator(OperatorContext& ctx, OutputBase* out, KF kf, Config config, Policy policy, Final final_stage)
      : OneInputOperator<IN, OUT>(ctx, out),
        keys_{std::move(kf), ctx.max_parallelism},
        config_(std::move(config)),
        timers_(ctx.key_groups, ctx.max_parallelism, ctx.processing_time,
                [this](const Timer<K, W>& t, bool event_time) { OnTimer(t, event_time); }),
        trigger_context_(this),
        emitter_(ctx, this->out_, &timers_, std::move(policy), std::move(final_stage), config_.late_tag) {
    if (config_.trigger == nullptr) config_.trigger = config_.assigner.template DefaultTrigger<IN>();
    default_event_trigger_ = dynamic_cast<EventTimeTrigger<IN, W>*>(config_.trigger.get()) != nullptr;
    if (Assigner::kIsMerging && !config_.trigger->CanMerge()) {
      throw std::invalid_argument("the trigger of a merging (session) window must support merging");
    }
  }

  void Open() override { emitter_.Open(); }
  void Close() override { emitter_.Close(); }

  void ProcessElement(const IN& v, Timestamp ts) override {
    keys_.Set(v);
    windows_.clear();
    // Event-time assigners do not read the clock (a system call per record).
    Timestamp now = Assigner::kIsEventTime ? kNoTimestamp : timers_.CurrentProcessingTime();
    config_.assigner.AssignWindows(v, ts, now, windows_);
    bool skipped = true;
    if constexpr (Assigner::kIsMerging) {
      for (const W& w : windows_) {
        auto [actual, state_window] = AddToMergingSet(w);
        if (IsWindowLate(actual)) {
          RetireWindow(actual);
          continue;
        }
        skipped = false;
        Entry& e = state_[StateKey{keys_.key, state_window}];
        InvokeUser(this->ctx_.name, [&] { emitter_.GetPolicy().Add(e.acc, v, ts); });
        HandleElementTrigger(v, ts, actual, state_window, e, false);
      }
    } else {
      for (const W& w : windows_) {
        if (IsWindowLate(w)) continue;
        skipped = false;
        auto [it, created] = state_.try_emplace(StateKey{keys_.key, w});
        InvokeUser(this->ctx_.name, [&] { emitter_.GetPolicy().Add(it->second.acc, v, ts); });
        HandleElementTrigger(v, ts, w, w, it->second, created);
      }
    }
    if (skipped && IsElementLate(ts)) emitter_.Late(v, ts);
  }

  void ProcessWatermark(int, Timestamp wm) override {
    timers_.AdvanceWatermark(wm);
    if (!fired_before_restore_.empty()) {
      boost::unordered::erase_if(fired_before_restore_,
                                 [wm](const StateKey& s) { return s.window.MaxTimestamp() <= wm; });
    }
    this->out_->EmitWatermark(wm);
  }

  /// Per key group: "timers", the function's GlobalState() as "state",
  /// "window-state" (its WindowState()), "window-contents" (key, state
  /// window, contents), "window-trigger-state" (key, window, named values)
  /// and, for merging assigners, "window-merging-sets" (key, its (actual
  /// window, state window) pairs).
  AsyncSnapshot SnapshotState(CheckpointId) override {
    const int max_parallelism = this->ctx_.max_parallelism;
    KeyGroupPartWriter contents;
    for (const auto& [sk, entry] : state_) {
      ByteWriter& w = contents.Entry(AssignToKeyGroup(sk.key, max_parallelism));
      TypeSerializer<K>::Serialize(sk.key, w);
      TypeSerializer<W>::Serialize(sk.window, w);
      TypeSerializer<Acc>::Serialize(entry.acc, w);
    }
    KeyGroupPartWriter triggers;
    for (const auto& [sk, values] : trigger_state_) {
      ByteWriter& w = triggers.Entry(AssignToKeyGroup(sk.key, max_parallelism));
      TypeSerializer<K>::Serialize(sk.key, w);
      TypeSerializer<W>::Serialize(sk.window, w);
      TypeSerializer<std::vector<std::pair<std::string, int64_t>>>::Serialize(values, w);
    }
    KeyGroupPartWriter merging;
    for (const auto& [key, mapping] : merging_) {
      ByteWriter& w = merging.Entry(AssignToKeyGroup(key, max_parallelism));
      TypeSerializer<K>::Serialize(key, w);
      TypeSerializer<std::vector<std::pair<W, W>>>::Serialize(mapping, w);
    }
    KeyGroupExtraParts extra;
    contents.AddTo(kContentsPart, extra);
    triggers.AddTo(kTriggerPart, extra);
    merging.AddTo(kMergingPart, extra);
    std::vector<StateInfo> info = {{kContentsPart, Policy::kStateKind, TypeNameOf<Acc>()},
                                   {kTriggerPart, "map", TypeNameOf<int64_t>()}};
    if constexpr (Assigner::kIsMerging) info.push_back({kMergingPart, "map", TypeNameOf<W>()});
    emitter_.CaptureWindowState(extra, info);
    return MakeKeyedSnapshot(emitter_.SnapshotGlobalState(), CaptureTimers(timers_, this->ctx_.key_groups),
                             std::move(extra), std::move(info));
  }

  void InitializeState(const OperatorRestore& restore) override {
    const std::string& op = this->ctx_.name;
    CheckRestoredType(restore, op, kContentsPart, TypeNameOf<Acc>());
    if constexpr (Assigner::kIsMerging) CheckRestoredType(restore, op, kMergingPart, TypeNameOf<W>());
    emitter_.SetRestoredInfo(restore);
    RestoreKeyedState(restore, emitter_.GlobalStateBackend(), &timers_, op,
                      [&](const std::string& part, int kg, std::string_view bytes) {
                        if (part == kContentsPart) {
                          ReadPartEntries(op, part, kg, bytes, [&](ByteReader& r) {
                            StateKey sk{};
                            Entry e;
                            TypeSerializer<K>::Deserialize(r, sk.key);
                            TypeSerializer<W>::Deserialize(r, sk.window);
                            TypeSerializer<Acc>::Deserialize(r, e.acc);
                            if (!r.Failed()) state_.insert_or_assign(std::move(sk), std::move(e));
                          });
                        } else if (part == kTriggerPart) {
                          ReadPartEntries(op, part, kg, bytes, [&](ByteReader& r) {
                            StateKey sk{};
                            std::vector<std::pair<std::string, int64_t>> values;
                            TypeSerializer<K>::Deserialize(r, sk.key);
                            TypeSerializer<W>::Deserialize(r, sk.window);
                            TypeSerializer<std::vector<std::pair<std::string, int64_t>>>::Deserialize(r, values);
                            if (!r.Failed()) trigger_state_.insert_or_assign(std::move(sk), std::move(values));
                          });
                        } else if (part == kMergingPart && Assigner::kIsMerging) {
                          ReadPartEntries(op, part, kg, bytes, [&](ByteReader& r) {
                            K key{};
                            std::vector<std::pair<W, W>> mapping;
                            TypeSerializer<K>::Deserialize(r, key);
                            TypeSerializer<std::vector<std::pair<W, W>>>::Deserialize(r, mapping);
                            if (!r.Failed()) merging_.insert_or_assign(std::move(key), std::move(mapping));
                          });
                        } else {
                          return emitter_.RestorePart(part, kg, bytes);
                        }
                        return true;
                      });
    RememberWindowsFiredBeforeRestore();
  }

  /// Open (key, window) states; for tests of state cleanup.
  size_t NumWindowStates() const { return state_.size(); }
  size_t NumTimers() const { return timers_.NumEventTimeTimers() + timers_.NumProcessingTimeTimers(); }
  int64_t LateRecordsDropped() const { return emitter_.LateRecordsDropped(); }

 private:
  struct StateKey {
    K key;
    W window;
    bool operator==(const StateKey&) const = default;
  };
  struct StateKeyHash {
    size_t operator()(const StateKey& s) const {
      return static_cast<size_t>(CombineHash(KeyHash<K>()(s.key), NamespaceHash<W>()(s.window)));
    }
  };
  struct Entry {
    Acc acc{};
  };

  /// The trigger's view of the current key and window.
  class Context final : public TriggerContext<W> {
   public:
    explicit Context(WindowOperator* op) : op_(op) {}
    Timestamp GetCurrentProcessingTime() const override { return op_->timers_.CurrentProcessingTime(); }
    Timestamp GetCurrentWatermark() const override { return op_->timers_.CurrentWatermark(); }
    void RegisterEventTimeTimer(Timestamp t) override {
      op_->timers_.RegisterEventTimeTimer(key_group, *key, *window, t);
    }
    void RegisterProcessingTimeTimer(Timestamp t) override {
      op_->timers_.RegisterProcessingTimeTimer(key_group, *key, *window, t);
    }
    void DeleteEventTimeTimer(Timestamp t) override { op_->timers_.DeleteEventTimeTimer(key_group, *key, *window, t); }
    void DeleteProcessingTimeTimer(Timestamp t) override {
      op_->timers_.DeleteProcessingTimeTimer(key_group, *key, *window, t);
    }
    int64_t& State(std::string_view name, int64_t initial) override {
      auto& s = StateOf(*window);
      for (auto& [n, v] : s) {
        if (n == name) return v;
      }
      s.emplace_back(std::string(name), initial);
      return s.back().second;
    }
    bool HasState(std::string_view name) const override {
      auto it = op_->trigger_state_.find(StateKey{*key, *window});
      if (it == op_->trigger_state_.end()) return false;
      for (const auto& [n, v] : it->second) {
        if (n == name) return true;
      }
      return false;
    }
    void ClearState(std::string_view name) override {
      auto it = op_->trigger_state_.find(StateKey{*key, *window});
      if (it == op_->trigger_state_.end()) return;
      std::erase_if(it->second, [&](const auto& p) { return p.first == name; });
      if (it->second.empty()) op_->trigger_state_.erase(it);
    }
    std::vector<int64_t> MergedState(std::string_view name) const override {
      std::vector<int64_t> out;
      for (const W& w : merged_windows) {
        auto it = op_->trigger_state_.find(StateKey{*key, w});
        if (it == op_->trigger_state_.end()) continue;
        for (const auto& [n, v] : it->second) {
          if (n == name) out.push_back(v);
        }
      }
      return out;
    }
    std::vector<std::pair<std::string, int64_t>>& StateOf(const W& w) { return op_->trigger_state_[StateKey{*key, w}]; }

    const K* key = nullptr;
    int key_group = 0;
    const W* window = nullptr;
    std::vector<W> merged_windows;

   private:
    WindowOperator* op_;
  };

  void SetContext(const K* key, int key_group, const W* window) {
    trigger_context_.key = key;
    trigger_context_.key_group = key_group;
    trigger_context_.window = window;
  }

  Timestamp CleanupTime(const W& w) const {
    if constexpr (Assigner::kIsEventTime) {
      Timestamp t = w.MaxTimestamp();
      return t > kMaxWatermark - config_.allowed_lateness ? kMaxWatermark : t + config_.allowed_lateness;
    } else {
      return w.MaxTimestamp();
    }
  }
  bool IsWindowLate(const W& w) const {
    return Assigner::kIsEventTime && CleanupTime(w) <= timers_.CurrentWatermark();
  }
  bool IsElementLate(Timestamp ts) const {
    return Assigner::kIsEventTime && ts != kNoTimestamp && ts + config_.allowed_lateness <= timers_.CurrentWatermark();
  }
  void RegisterCleanupTimer(const W& w) {
    Timestamp t = CleanupTime(w);
    if (t == kMaxWatermark) return;  // global windows are never cleaned up by time
    if constexpr (Assigner::kIsEventTime) {
      timers_.RegisterEventTimeTimer(keys_.KeyGroup(), keys_.key, w, t);
    } else {
      timers_.RegisterProcessingTimeTimer(keys_.KeyGroup(), keys_.key, w, t);
    }
  }

  void HandleElementTrigger(const IN& v, Timestamp ts, const W& actual, const W& state_window, Entry& e,
                            bool created) {
    TriggerResult r;
    if (default_event_trigger_ && !Assigner::kIsMerging) {
      // Fast path of the default event-time trigger: its timer coincides
      // with the window, so it is set once, when the window is created.
      if (actual.MaxTimestamp() <= timers_.CurrentWatermark() || FiredBeforeRestore(actual)) {
        r = TriggerResult::kFire;
      } else {
        if (created) timers_.RegisterEventTimeTimer(keys_.KeyGroup(), keys_.key, actual, actual.MaxTimestamp());
        r = TriggerResult::kContinue;
      }
    } else {
      SetContext(&keys_.key, keys_.KeyGroup(), &actual);
      r = InvokeUser(this->ctx_.name, [&] { return config_.trigger->OnElement(v, ts, actual, trigger_context_); });
    }
    if (IsFire(r)) Emit(keys_.key, actual, e.acc);
    if (IsPurge(r)) ClearContents(keys_.key, state_window);
    // Non-merging entries live until their cleanup timer fires, so the
    // timer is set once, with the entry.
    if (created || Assigner::kIsMerging) RegisterCleanupTimer(actual);
  }

  void OnTimer(const Timer<K, W>& t, bool event_time) {
    const W& window = t.ns;
    W state_window = window;
    if constexpr (Assigner::kIsMerging) {
      auto sw = StateWindowOf(t.key, window);
      if (!sw) return;  // merged away
      state_window = *sw;
    }
    auto it = state_.find(StateKey{t.key, state_window});
    SetContext(&t.key, t.key_group, &window);
    TriggerResult r;
    if (default_event_trigger_ && !Assigner::kIsMerging) {
      r = event_time && t.timestamp == window.MaxTimestamp() ? TriggerResult::kFire : TriggerResult::kContinue;
    } else if (event_time) {
      r = InvokeUser(this->ctx_.name, [&] { return config_.trigger->OnEventTime(t.timestamp, window, trigger_context_); });
    } else {
      r = InvokeUser(this->ctx_.name,
                     [&] { return config_.trigger->OnProcessingTime(t.timestamp, window, trigger_context_); });
    }
    if (IsFire(r) && it != state_.end() && !Policy::Empty(it->second.acc)) Emit(t.key, window, it->second.acc);
    if (IsPurge(r)) ClearContents(t.key, state_window);
    bool cleanup_domain = Assigner::kIsEventTime == event_time;
    if (cleanup_domain && t.timestamp == CleanupTime(window)) ClearAllState(t.key, t.key_group, window, state_window);
  }

  void Emit(const K& key, const W& window, Acc& acc) { emitter_.Emit(key, window, acc); }

  // A restored operator has no watermark until one arrives. With the fast
  // path, a window kept for allowed lateness after it fired has no trigger
  // timer left, so a late record for it would neither fire it at once (the
  // watermark is unknown) nor later (no timer): such windows are found
  // after a restore and fire for their late records as they would have
  // with the watermark of the snapshot, until the watermark passes them.
  void RememberWindowsFiredBeforeRestore() {
    if (!default_event_trigger_ || Assigner::kIsMerging || state_.empty()) return;
    boost::unordered_flat_set<StateKey, StateKeyHash> pending;
    for (int kg = this->ctx_.key_groups.start; kg <= this->ctx_.key_groups.end; ++kg) {
      timers_.EventTimers().ForEachInKeyGroup(kg, [&](const Timer<K, W>& t) {
        if (t.timestamp == t.ns.MaxTimestamp()) pending.insert(StateKey{t.key, t.ns});
      });
    }
    for (const auto& [sk, entry] : state_) {
      if (!pending.contains(sk)) fired_before_restore_.insert(sk);
    }
  }
  bool FiredBeforeRestore(const W& window) const {
    return !fired_before_restore_.empty() && fired_before_restore_.contains(StateKey{keys_.key, window});
  }

  void ClearContents(const K& key, const W& state_window) {
    auto it = state_.find(StateKey{key, state_window});
    if (it != state_.end()) it->second.acc = Acc{};
  }

  void ClearAllState(const K& key, int key_group, const W& window, const W& state_window) {
    state_.erase(StateKey{key, state_window});
    SetContext(&key, key_group, &window);
    if (!(default_event_trigger_ && !Assigner::kIsMerging)) {
      InvokeUser(this->ctx_.name, [&] { config_.trigger->Clear(window, trigger_context_); });
    }
    trigger_state_.erase(StateKey{key, window});
    emitter_.Clear(key, window);
    if constexpr (Assigner::kIsMerging) RemoveFromMergingSet(key, window);
  }

  // ---- merging (session) windows: per key, actual window -> state window ----
  std::pair<W, W> AddToMergingSet(const W& w) {
    auto& mapping = merging_[keys_.key];
    W result = w;
    std::vector<size_t> overlapped;
    for (size_t i = 0; i < mapping.size(); ++i) {
      if (mapping[i].first.Intersects(w)) {
        overlapped.push_back(i);
        result = result.Cover(mapping[i].first);
      }
    }
    if (overlapped.empty()) {
      mapping.emplace_back(w, w);
      return {w, w};
    }
    W state_window = mapping[overlapped[0]].second;
    if (overlapped.size() == 1 && mapping[overlapped[0]].first == result) return {result, state_window};

    // Merge: contents of the other state windows go into `state_window`;
    // the merged windows' timers and trigger state move to `result`.
    Entry& target = state_[StateKey{keys_.key, state_window}];
    trigger_context_.merged_windows.clear();
    for (size_t k = 0; k < overlapped.size(); ++k) {
      const auto& [actual, sw] = mapping[overlapped[k]];
      trigger_context_.merged_windows.push_back(actual);
      if (k > 0) {
        auto it = state_.find(StateKey{keys_.key, sw});
        if (it != state_.end()) {
          InvokeUser(this->ctx_.name, [&] { emitter_.GetPolicy().Merge(target.acc, it->second.acc); });
          state_.erase(it);
        }
      }
      DeleteCleanupTimer(actual);
    }
    // OnMerge reads the merged windows' trigger state: clear them after it.
    SetContext(&keys_.key, keys_.KeyGroup(), &result);
    InvokeUser(this->ctx_.name, [&] { config_.trigger->OnMerge(result, trigger_context_); });
    for (const W& old : trigger_context_.merged_windows) {
      SetContext(&keys_.key, keys_.KeyGroup(), &old);
      InvokeUser(this->ctx_.name, [&] { config_.trigger->Clear(old, trigger_context_); });
      if (!(old == result)) trigger_state_.erase(StateKey{keys_.key, old});
    }
    trigger_context_.merged_windows.clear();
    for (size_t k = overlapped.size(); k-- > 0;) mapping.erase(mapping.begin() + static_cast<long>(overlapped[k]));
    mapping.emplace_back(result, state_window);
    return {result, state_window};
  }
  void DeleteCleanupTimer(const W& w) {
    Timestamp t = CleanupTime(w);
    if (t == kMaxWatermark) return;
    if constexpr (Assigner::kIsEventTime) {
      timers_.DeleteEventTimeTimer(keys_.KeyGroup(), keys_.key, w, t);
    } else {
      timers_.DeleteProcessingTimeTimer(keys_.KeyGroup(), keys_.key, w, t);
    }
  }
  std::optional<W> StateWindowOf(const K& key, const W& actual) const {
    auto it = merging_.find(key);
    if (it == merging_.end()) return std::nullopt;
    for (const auto& [a, s] : it->second) {
      if (a == actual) return s;
    }
    return std::nullopt;
  }
  void RetireWindow(const W& actual) {
    auto it = merging_.find(keys_.key);
    if (it == merging_.end()) return;
    for (size_t i = 0; i < it->second.size(); ++i) {
      if (it->second[i].first == actual) {
        W sw = it->second[i].second;
        it->second.erase(it->second.begin() + static_cast<long>(i));
        state_.erase(StateKey{keys_.key, sw});
        break;
      }
    }
    if (it->second.empty()) merging_.erase(it);
  }
  void RemoveFromMergingSet(const K& key, const W& actual) {
    auto it = merging_.find(key);
    if (it == merging_.end()) return;
    std::erase_if(it->second, [&](const auto& p) { return p.first == actual; });
    if (it->second.empty()) merging_.erase(it);
  }

  KeyContext<K, KF> keys_;
  Config config_;
  KeyedTimerService<K, W> timers_;
  Context trigger_context_;
  WindowEmitter<K, IN, OUT, W, Policy, Final> emitter_;
  bool default_event_trigger_ = false;
  std::vector<W> windows_;
  boost::unordered_flat_map<StateKey, Entry, StateKeyHash> state_;
  boost::unordered_flat_map<StateKey, std::vector<std::pair<std::string, int64_t>>, StateKeyHash> trigger_state_;
  boost::unordered_flat_map<K, std::vector<std::pair<W, W>>, KeyHasher<K>> merging_;
  boost::unordered_flat_set<StateKey, StateKeyHash> fired_before_restore_;

  static constexpr const char* kContentsPart = "window-contents";
  static constexpr const char* kTriggerPart = "window-trigger-state";
  static constexpr const char* kMergingPart = "window-merging-sets";
};

}  // namespace freshet::internal
