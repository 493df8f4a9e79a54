#pragma once
/// Snapshots and restores of keyed operators: the keyed backend ("state"),
/// timers ("timers") and operator-specific parts (window contents, join
/// buffers, rolling values) share one block per key group.

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "freshet/internal/keyed_state.h"
#include "freshet/internal/snapshot.h"
#include "freshet/internal/timer_service.h"

namespace freshet::internal {

/// Parts of key groups captured on the task thread, by key group then part name.
using KeyGroupExtraParts = std::map<int, std::vector<std::pair<std::string, std::string>>>;

/// Captures a keyed operator's state at the barrier. `state` may be null
/// (operators keeping all keyed data in `extra`); `timers` is the timers'
/// bytes per key group (see CaptureTimers).
inline AsyncSnapshot MakeKeyedSnapshot(std::unique_ptr<KeyedStateSnapshot> state,
                                       std::map<int, std::string> timers, KeyGroupExtraParts extra,
                                       std::vector<StateInfo> extra_info = {}) {
  std::shared_ptr<KeyedStateSnapshot> shared_state(std::move(state));
  return [state = std::move(shared_state), timers = std::move(timers), extra = std::move(extra),
          extra_info = std::move(extra_info)](SnapshotOutput& out) -> Status {
    // The backend's own files when the snapshot has them and the output
    // takes them; its key groups otherwise.
    const bool files = state != nullptr && state->HasFiles() && !out.SharedDirectory().empty();
    std::vector<int> state_groups;
    if (state != nullptr && !files) state_groups = state->KeyGroups();
    std::vector<int> groups = state_groups;
    for (const auto& [kg, bytes] : timers) groups.push_back(kg);
    for (const auto& [kg, parts] : extra) groups.push_back(kg);
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    ByteWriter w;
    for (int kg : groups) {
      KeyGroupParts parts;
      if (std::binary_search(state_groups.begin(), state_groups.end(), kg)) {
        w.Reset();
        state->WriteKeyGroup(kg, w);
        parts.Add("state", w);
      }
      if (auto it = timers.find(kg); it != timers.end()) {
        parts.Add("timers", reinterpret_cast<const uint8_t*>(it->second.data()), it->second.size());
      }
      if (auto it = extra.find(kg); it != extra.end()) {
        for (const auto& [name, bytes] : it->second) {
          parts.Add(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        }
      }
      FRESHET_RETURN_IF_ERROR(out.AddKeyGroup(kg, parts.Encode()));
    }
    if (files) FRESHET_RETURN_IF_ERROR(state->WriteFiles(out));
    if (state != nullptr) {
      for (const StateInfo& i : state->Info()) out.AddStateInfo(i);
    }
    for (const StateInfo& i : extra_info) out.AddStateInfo(i);
    return Status::Ok();
  };
}

/// The timers of every key group of `range` that has any, serialized.
template <class K, class N>
std::map<int, std::string> CaptureTimers(const KeyedTimerService<K, N>& timers, const KeyGroupRange& range) {
  return timers.SnapshotAll(range);
}

/// Restores the blocks of `restore` into a keyed backend and timers;
/// `extra(name, key_group, bytes)` receives other parts and returns false
/// for a part it does not know. Throws on corrupt or unknown parts (the
/// task fails with the operator's name).
template <class K, class N, class Extra>
void RestoreKeyedState(const OperatorRestore& restore, KeyedStateBackend<K>* state,
                       KeyedTimerService<K, N>* timers, const std::string& op, Extra extra) {
  if (state != nullptr) state->SetRestoredInfo(restore.state_info);
  if (!restore.incremental.empty()) {
    Status s = state != nullptr ? state->RestoreFiles(restore.incremental)
                                : Status::Corruption("the snapshot holds keyed state files for an operator without "
                                                     "keyed state");
    if (!s.IsOk()) throw OperatorException(op, "restoring keyed state: " + s.ToString());
  }
  for (const auto& [kg, block] : restore.key_groups) {
    auto parts = KeyGroupParts::Decode(block);
    if (!parts.IsOk()) throw OperatorException(op, parts.GetStatus().ToString());
    for (const auto& [name, bytes] : *parts) {
      const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
      Status s;
      if (name == "state" && state != nullptr) {
        s = state->RestoreKeyGroup(data, bytes.size());
      } else if (name == "timers" && timers != nullptr) {
        s = timers->RestoreKeyGroup(kg, data, bytes.size());
      } else if (!extra(name, kg, bytes)) {
        s = Status::Corruption("unknown state part '" + name + "' in key group " + std::to_string(kg));
      }
      if (!s.IsOk()) throw OperatorException(op, "restoring key group " + std::to_string(kg) + ": " + s.ToString());
    }
  }
}

/// For operators without extra parts.
inline bool NoExtraParts(const std::string&, int, std::string_view) { return false; }

}  // namespace freshet::internal
