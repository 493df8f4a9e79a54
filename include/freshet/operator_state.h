#pragma once
/// Operator state: state of a parallel operator instance that is not scoped
/// to a key, and broadcast state.
///
/// A user function takes part in checkpoints by deriving from
/// `CheckpointedFunction`:
///
///   class BufferingSink : public CheckpointedFunction {
///    public:
///     void InitializeState(FunctionInitializationContext& ctx) override {
///       buffer_ = &ctx.GetOperatorStateStore().GetListState(ListStateDescriptor<Event>("buffer"));
///     }
///     void SnapshotState(const FunctionSnapshotContext&) override { buffer_->Update(pending_); }
///     void Invoke(const Event& e) { pending_.push_back(e); ... }
///    private:
///     ListState<Event>* buffer_ = nullptr;
///     std::vector<Event> pending_;
///   };
///
/// Each state is a named list of elements. On a restore at another
/// parallelism, `GetListState` lists of all old subtasks are concatenated
/// and cut into contiguous near-equal parts (split redistribution);
/// `GetUnionListState` lists are given whole to every new subtask (union
/// redistribution). Broadcast state (`GetBroadcastState`) is a map that is
/// expected to be equal on all subtasks: every new subtask gets the map of
/// one old subtask.
///
/// Everything here is used from the task thread only.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/functions.h"
#include "freshet/internal/snapshot.h"
#include "freshet/key_groups.h"
#include "freshet/serializer.h"
#include "freshet/state.h"
#include "freshet/types.h"

namespace freshet {

/// A broadcast state as the non-broadcast side of a broadcast process
/// function sees it: read only, so that all subtasks keep the same map.
template <class K, class V>
class ReadOnlyBroadcastState {
 public:
  virtual ~ReadOnlyBroadcastState() = default;
  virtual std::optional<V> Get(const K& key) const = 0;
  virtual bool Contains(const K& key) const = 0;
  virtual bool IsEmpty() const = 0;
  virtual size_t Size() const = 0;
  /// Calls `f(key, value)` for every entry, in no particular order.
  virtual void ForEach(const std::function<void(const K&, const V&)>& f) const = 0;
  /// The entries, copied (for range-for loops), in no particular order.
  virtual std::vector<std::pair<K, V>> Entries() const = 0;
};

/// A broadcast state with write access (the broadcast side of a broadcast
/// process function). Changes must depend only on the broadcast element, so
/// that every subtask makes the same ones.
template <class K, class V>
class BroadcastState : public ReadOnlyBroadcastState<K, V> {
 public:
  virtual void Put(const K& key, const V& value) = 0;
  virtual void PutAll(const std::vector<std::pair<K, V>>& entries) = 0;
  virtual void Remove(const K& key) = 0;
  virtual void Clear() = 0;
};

namespace internal {

/// The untyped face of one operator state held by an OperatorStateStore.
class OperatorStateBase {
 public:
  virtual ~OperatorStateBase() = default;
  /// "operator-list", "operator-union" or "broadcast".
  virtual const char* Kind() const = 0;
  virtual OperatorStateMode Mode() const = 0;
  /// TypeNameOf the element type (for broadcast state, of std::pair<K, V>).
  virtual std::string TypeName() const = 0;
  /// Serializes the state, one entry per list element or map entry.
  virtual std::vector<std::string> SnapshotEntries() const = 0;
  /// Adds restored entries; false when one does not decode.
  virtual bool Restore(const std::vector<std::string>& entries) = 0;
};

/// Hashes keys of broadcast state with the key-group hash (any key type
/// with a KeyHash works).
template <class K>
struct BroadcastKeyHasher {
  size_t operator()(const K& k) const { return static_cast<size_t>(KeyHash<K>()(k)); }
};

/// Operator list state held in memory, split or union redistribution.
template <class T>
class HeapOperatorListState final : public OperatorStateBase, public ListState<T> {
 public:
  explicit HeapOperatorListState(OperatorStateMode mode) : mode_(mode) {}
  const std::vector<T>& Get() override { return values_; }
  void Add(const T& value) override { values_.push_back(value); }
  void AddAll(const std::vector<T>& values) override { values_.insert(values_.end(), values.begin(), values.end()); }
  void Update(std::vector<T> values) override { values_ = std::move(values); }
  void Clear() override { values_.clear(); }

  const char* Kind() const override { return mode_ == OperatorStateMode::kUnion ? "operator-union" : "operator-list"; }
  OperatorStateMode Mode() const override { return mode_; }
  std::string TypeName() const override { return TypeNameOf<T>(); }
  std::vector<std::string> SnapshotEntries() const override {
    std::vector<std::string> out;
    out.reserve(values_.size());
    ByteWriter w;
    for (const T& v : values_) {
      w.Reset();
      TypeSerializer<T>::Serialize(v, w);
      out.emplace_back(reinterpret_cast<const char*>(w.Data()), w.Size());
    }
    return out;
  }
  bool Restore(const std::vector<std::string>& entries) override {
    for (const std::string& e : entries) {
      if (!DeserializeFrom(reinterpret_cast<const uint8_t*>(e.data()), e.size(), values_.emplace_back())) {
        values_.pop_back();
        return false;
      }
    }
    return true;
  }

 private:
  static bool DeserializeFrom(const uint8_t* data, size_t size, T& out) {
    ByteReader r(data, size);
    TypeSerializer<T>::Deserialize(r, out);
    return !r.Failed() && r.Remaining() == 0;
  }
  OperatorStateMode mode_;
  std::vector<T> values_;
};

/// Broadcast state held in memory.
template <class K, class V>
class HeapBroadcastState final : public OperatorStateBase, public BroadcastState<K, V> {
 public:
  std::optional<V> Get(const K& key) const override {
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  bool Contains(const K& key) const override { return map_.count(key) > 0; }
  bool IsEmpty() const override { return map_.empty(); }
  size_t Size() const override { return map_.size(); }
  void ForEach(const std::function<void(const K&, const V&)>& f) const override {
    for (const auto& [k, v] : map_) f(k, v);
  }
  std::vector<std::pair<K, V>> Entries() const override { return {map_.begin(), map_.end()}; }
  void Put(const K& key, const V& value) override { map_.insert_or_assign(key, value); }
  void PutAll(const std::vector<std::pair<K, V>>& entries) override {
    for (const auto& [k, v] : entries) map_.insert_or_assign(k, v);
  }
  void Remove(const K& key) override { map_.erase(key); }
  void Clear() override { map_.clear(); }

  const char* Kind() const override { return "broadcast"; }
  OperatorStateMode Mode() const override { return OperatorStateMode::kBroadcast; }
  std::string TypeName() const override { return TypeNameOf<std::pair<K, V>>(); }
  std::vector<std::string> SnapshotEntries() const override {
    std::vector<std::string> out;
    out.reserve(map_.size());
    ByteWriter w;
    for (const auto& [k, v] : map_) {
      w.Reset();
      TypeSerializer<K>::Serialize(k, w);
      TypeSerializer<V>::Serialize(v, w);
      out.emplace_back(reinterpret_cast<const char*>(w.Data()), w.Size());
    }
    return out;
  }
  bool Restore(const std::vector<std::string>& entries) override {
    for (const std::string& e : entries) {
      ByteReader r(reinterpret_cast<const uint8_t*>(e.data()), e.size());
      K k{};
      V v{};
      TypeSerializer<K>::Deserialize(r, k);
      TypeSerializer<V>::Deserialize(r, v);
      if (r.Failed() || r.Remaining() != 0) return false;
      map_.insert_or_assign(std::move(k), std::move(v));
    }
    return true;
  }

 private:
  std::unordered_map<K, V, BroadcastKeyHasher<K>> map_;
};

}  // namespace internal

namespace internal {
struct DeclaredBroadcastState;
}

/// The operator states of one operator instance, by name. Handles stay
/// valid for the life of the operator. Asking again for a name returns the
/// same state; asking for it with another kind or type is an error
/// (std::logic_error), and so is restoring a state saved with another kind
/// or type (internal::NonRecoverableError: the task fails and the job does
/// not restart).
class OperatorStateStore {
 public:
  virtual ~OperatorStateStore() = default;

  /// A list with split redistribution: after a restore at another
  /// parallelism, each subtask gets a contiguous part of all old elements.
  template <class T>
  ListState<T>& GetListState(const ListStateDescriptor<T>& descriptor) {
    return GetOrCreate<internal::HeapOperatorListState<T>>(descriptor.Name(), internal::OperatorStateMode::kSplit, [] {
      return std::make_unique<internal::HeapOperatorListState<T>>(internal::OperatorStateMode::kSplit);
    });
  }
  /// A list with union redistribution: after a restore, every subtask gets
  /// the elements of all old subtasks.
  template <class T>
  ListState<T>& GetUnionListState(const ListStateDescriptor<T>& descriptor) {
    return GetOrCreate<internal::HeapOperatorListState<T>>(descriptor.Name(), internal::OperatorStateMode::kUnion, [] {
      return std::make_unique<internal::HeapOperatorListState<T>>(internal::OperatorStateMode::kUnion);
    });
  }
  /// A map kept equal on all subtasks by the user; after a restore every
  /// subtask gets one old subtask's map.
  template <class K, class V>
  BroadcastState<K, V>& GetBroadcastState(const MapStateDescriptor<K, V>& descriptor) {
    return GetOrCreate<internal::HeapBroadcastState<K, V>>(descriptor.Name(), internal::OperatorStateMode::kBroadcast,
                                                           [] { return std::make_unique<internal::HeapBroadcastState<K, V>>(); });
  }
  /// The names of the states registered so far.
  virtual std::vector<std::string> GetRegisteredStateNames() const = 0;

 protected:
  /// The state registered as `name`, or nullptr.
  virtual internal::OperatorStateBase* Find(const std::string& name) = 0;
  /// Registers a new state, applying restored entries saved under its name.
  virtual internal::OperatorStateBase* Register(const std::string& name,
                                                std::unique_ptr<internal::OperatorStateBase> state) = 0;

 private:
  friend struct internal::DeclaredBroadcastState;

  template <class Impl, class Make>
  Impl& GetOrCreate(const std::string& name, internal::OperatorStateMode mode, Make make) {
    if (internal::OperatorStateBase* s = Find(name)) {
      auto* typed = dynamic_cast<Impl*>(s);
      if (typed == nullptr || s->Mode() != mode) {
        std::unique_ptr<internal::OperatorStateBase> wanted = make();
        throw std::logic_error("operator state '" + name + "' is registered as " + s->Kind() + " state of type '" +
                               s->TypeName() + "' and is now requested as " + wanted->Kind() + " state of type '" +
                               wanted->TypeName() + "'");
      }
      return *typed;
    }
    return dynamic_cast<Impl&>(*Register(name, make()));
  }
};

namespace internal {
/// Looks up a broadcast state that the operator declared (the descriptors
/// given to DataStream::Broadcast), for the contexts of broadcast process
/// functions.
struct DeclaredBroadcastState {
  template <class K, class V>
  static BroadcastState<K, V>& Get(OperatorStateStore& store, const MapStateDescriptor<K, V>& descriptor) {
    auto* s = dynamic_cast<BroadcastState<K, V>*>(store.Find(descriptor.Name()));
    if (s == nullptr) {
      throw std::invalid_argument("broadcast state '" + descriptor.Name() +
                                  "' was not declared with this key and value type in Broadcast(...) of the "
                                  "connected broadcast stream");
    }
    return *s;
  }
};
}  // namespace internal

/// What a CheckpointedFunction learns about the checkpoint being taken.
class FunctionSnapshotContext {
 public:
  FunctionSnapshotContext(CheckpointId id, Timestamp timestamp) : id_(id), timestamp_(timestamp) {}
  CheckpointId GetCheckpointId() const { return id_; }
  /// When the checkpoint was triggered (ms since the epoch); kNoTimestamp
  /// when unknown (a snapshot taken outside a job, e.g. by a test harness).
  Timestamp GetCheckpointTimestamp() const { return timestamp_; }

 private:
  CheckpointId id_;
  Timestamp timestamp_;
};

/// What a CheckpointedFunction gets to create (and restore) its state.
class FunctionInitializationContext {
 public:
  FunctionInitializationContext(bool restored, OperatorStateStore* operator_state, KeyedStateAccess* keyed_state)
      : restored_(restored), operator_state_(operator_state), keyed_state_(keyed_state) {}
  /// True when the job started from a checkpoint or savepoint holding state
  /// for this operator; the states then hold what was saved.
  bool IsRestored() const { return restored_; }
  OperatorStateStore& GetOperatorStateStore() const { return *operator_state_; }
  /// Keyed state of the operator (handles read and write the current
  /// record's key), or nullptr when the operator does not run on a keyed
  /// stream.
  KeyedStateAccess* GetKeyedStateStore() const { return keyed_state_; }

 private:
  bool restored_;
  OperatorStateStore* operator_state_;
  KeyedStateAccess* keyed_state_;
};

/// Implemented by user functions (map, flat map, filter, process functions,
/// co-functions, function sinks, broadcast process functions) that keep
/// operator state or must act at checkpoints.
///
/// InitializeState is called once per parallel instance before Open(),
/// also when nothing is restored. SnapshotState is called when the
/// checkpoint barrier reaches the operator, after the records before it and
/// before those after it; the states' contents at that moment are what the
/// checkpoint holds. Both run on the task thread, never concurrently with
/// record processing. An exception thrown by SnapshotState declines the
/// checkpoint; one thrown by InitializeState fails the task.
class CheckpointedFunction {
 public:
  virtual ~CheckpointedFunction() = default;
  virtual void SnapshotState(const FunctionSnapshotContext& context) = 0;
  virtual void InitializeState(FunctionInitializationContext& context) = 0;
};

namespace internal {
/// Registers one declared broadcast state in an operator's store.
using BroadcastStateDeclaration = std::function<void(OperatorStateStore&)>;
template <class K, class V>
BroadcastStateDeclaration DeclareBroadcastState(MapStateDescriptor<K, V> descriptor) {
  return [descriptor = std::move(descriptor)](OperatorStateStore& store) { store.GetBroadcastState(descriptor); };
}
}  // namespace internal

}  // namespace freshet
