#pragma once
/// The operator-state backend of one operator instance (list, union list
/// and broadcast states, see freshet/operator_state.h), and the glue that
/// lets user functions deriving from CheckpointedFunction keep state in it.
///
/// Snapshot format: one operator list state per registered state, named as
/// the state, with one entry per element (a list) or per map entry
/// (broadcast: key then value), each serialized with TypeSerializer; and a
/// StateInfo (name, kind, TypeNameOf the element) per state, checked when a
/// restored state is registered again.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/internal/operator.h"
#include "freshet/internal/snapshot.h"
#include "freshet/operator_state.h"

namespace freshet::internal {

/// Holds the operator states of one operator instance. Used from the task
/// thread only; Snapshot() captures the states so that the returned writer
/// may run on another thread.
class OperatorStateBackend final : public OperatorStateStore {
 public:
  explicit OperatorStateBackend(std::string operator_name) : operator_name_(std::move(operator_name)) {}

  /// Takes the operator state of a restore. States are filled when they are
  /// registered; restored states that are never registered again are kept
  /// and written back by later snapshots, so they survive until a later
  /// version of the job asks for them.
  /// REQUIRES: called before any state is registered.
  void Restore(const OperatorRestore& restore) {
    restored_ = restore.restored;
    for (const auto& [name, state] : restore.operator_state) {
      const StateInfo* info = FindOwnInfo(restore, name);
      if (info == nullptr) continue;  // not written by an operator-state backend
      pending_[name] = Pending{state.mode, *info, state.entries};
    }
  }
  bool IsRestored() const { return restored_; }

  std::vector<std::string> GetRegisteredStateNames() const override {
    std::vector<std::string> names;
    for (const auto& [name, state] : states_) names.push_back(name);
    return names;
  }

  /// Serializes every state now; the returned function writes them. nullptr
  /// when there is no state at all.
  AsyncSnapshot Snapshot() const {
    if (states_.empty() && pending_.empty()) return nullptr;
    std::vector<Pending> parts;
    parts.reserve(states_.size() + pending_.size());
    for (const auto& [name, state] : states_) {
      parts.push_back(Pending{state->Mode(), StateInfo{name, state->Kind(), state->TypeName()}, state->SnapshotEntries()});
    }
    for (const auto& [name, p] : pending_) parts.push_back(p);
    return [parts = std::move(parts)](SnapshotOutput& out) -> Status {
      for (const Pending& p : parts) {
        out.AddStateInfo(p.info);
        FRESHET_RETURN_IF_ERROR(out.AddOperatorState(p.info.name, p.mode, p.entries));
      }
      return Status::Ok();
    };
  }

 protected:
  OperatorStateBase* Find(const std::string& name) override {
    auto it = states_.find(name);
    return it == states_.end() ? nullptr : it->second.get();
  }
  OperatorStateBase* Register(const std::string& name, std::unique_ptr<OperatorStateBase> state) override {
    if (auto it = pending_.find(name); it != pending_.end()) {
      const StateInfo& old = it->second.info;
      if (old.kind != state->Kind() || old.type_name != state->TypeName()) {
        throw NonRecoverableError("operator state '" + name + "' of operator '" + operator_name_ + "' was saved as " +
                                  old.kind + " state of type '" + old.type_name + "' and is now requested as " +
                                  state->Kind() + " state of type '" + state->TypeName() +
                                  "'; a state's kind and type must not change across a restore");
      }
      if (!state->Restore(it->second.entries)) {
        throw NonRecoverableError("operator state '" + name + "' of operator '" + operator_name_ +
                                  "' does not decode as type '" + state->TypeName() + "'");
      }
      pending_.erase(it);
    }
    return states_.emplace(name, std::move(state)).first->second.get();
  }

 private:
  struct Pending {
    OperatorStateMode mode = OperatorStateMode::kSplit;
    StateInfo info;
    std::vector<std::string> entries;
  };
  static bool IsOwnKind(const std::string& kind) {
    return kind == "operator-list" || kind == "operator-union" || kind == "broadcast";
  }
  /// The info of operator state `name` (keyed states may share the name).
  static const StateInfo* FindOwnInfo(const OperatorRestore& restore, const std::string& name) {
    for (const StateInfo& i : restore.state_info) {
      if (i.name == name && IsOwnKind(i.kind)) return &i;
    }
    return nullptr;
  }

  std::string operator_name_;
  bool restored_ = false;
  std::map<std::string, std::unique_ptr<OperatorStateBase>> states_;
  std::map<std::string, Pending> pending_;  // restored, not registered (again) yet
};

/// Calls `f.InitializeState` when F is a CheckpointedFunction; free otherwise.
template <class F>
void InitializeUserFunctionState(F& f, const OperatorContext& ctx, OperatorStateBackend& backend) {
  if constexpr (std::is_base_of_v<CheckpointedFunction, F>) {
    KeyedStateAccess* keyed = ctx.runtime != nullptr && ctx.runtime->HasKeyedStateStore() ? ctx.runtime : nullptr;
    FunctionInitializationContext init(backend.IsRestored(), &backend, keyed);
    InvokeUser(ctx.name, [&] { f.InitializeState(init); });
  }
}

/// Calls `f.SnapshotState` when F is a CheckpointedFunction; free otherwise.
template <class F>
void SnapshotUserFunctionState(F& f, const OperatorContext& ctx, CheckpointId id) {
  if constexpr (std::is_base_of_v<CheckpointedFunction, F>) {
    FunctionSnapshotContext snapshot(id, ctx.checkpoint_timestamp);
    InvokeUser(ctx.name, [&] { f.SnapshotState(snapshot); });
  }
}

/// The operator state of an operator's user functions `Fs`: a backend when
/// one of them is a CheckpointedFunction, nothing (no bytes, no calls)
/// otherwise.
///
/// The operator calls Initialize from InitializeState, EnsureInitialized
/// first thing in Open (a harness may open an operator without
/// InitializeState), and Snapshot from SnapshotState.
template <class... Fs>
class FunctionOperatorState {
 public:
  static constexpr bool kEnabled = (std::is_base_of_v<CheckpointedFunction, Fs> || ...);

  void Initialize(const OperatorContext& ctx, const OperatorRestore& restore, Fs&... fs) {
    if constexpr (kEnabled) {
      state_.backend.emplace(ctx.name);
      state_.backend->Restore(restore);
      (InitializeUserFunctionState(fs, ctx, *state_.backend), ...);
    }
  }
  void EnsureInitialized(const OperatorContext& ctx, Fs&... fs) {
    if constexpr (kEnabled) {
      if (!state_.backend) Initialize(ctx, OperatorRestore{}, fs...);
    }
  }
  /// Lets the functions update their states, then captures them.
  AsyncSnapshot Snapshot(const OperatorContext& ctx, CheckpointId id, Fs&... fs) {
    if constexpr (kEnabled) {
      EnsureInitialized(ctx, fs...);
      (SnapshotUserFunctionState(fs, ctx, id), ...);
      return state_.backend->Snapshot();
    } else {
      return nullptr;
    }
  }

 private:
  struct Enabled {
    std::optional<OperatorStateBackend> backend;
  };
  struct Disabled {};
  [[no_unique_address]] std::conditional_t<kEnabled, Enabled, Disabled> state_;
};

}  // namespace freshet::internal
