#pragma once
/// The heap keyed-state backend. Every distinct key that holds state gets a
/// dense slot number; each state keeps its values in vectors indexed by
/// slot. A record costs one key -> slot lookup however many states it
/// touches, and an int64 ValueState costs about 40 bytes per key in all.
/// A key's slot is released when its last state is cleared. Snapshots and
/// restores work per key group (the key group of a slot's key is computed
/// when the snapshot is written).

#include <boost/unordered/unordered_flat_map.hpp>

#include <any>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "freshet/functions.h"
#include "freshet/internal/operators.h"
#include "freshet/internal/snapshot.h"
#include "freshet/internal/timer_service.h"
#include "freshet/key_groups.h"
#include "freshet/serializer.h"
#include "freshet/state.h"
#include "freshet/status.h"

namespace freshet::internal {

inline constexpr uint32_t kNoSlot = 0xffffffffu;

/// What a state needs from its backend: the current key's slot and time.
class SlotAccess {
 public:
  virtual ~SlotAccess() = default;
  /// Slot of the current key, or kNoSlot when the key holds no state.
  virtual uint32_t ReadSlot() = 0;
  /// Slot of the current key, assigned if needed.
  virtual uint32_t WriteSlot() = 0;
  /// A state gained / lost its value for `slot`.
  virtual void OnSet(uint32_t slot) = 0;
  virtual void OnCleared(uint32_t slot) = 0;
  /// Processing time, for TTL.
  virtual Timestamp Now() = 0;
  /// Number of slots ever assigned (for incremental cleanup).
  virtual uint32_t SlotCount() const = 0;
};

/// The untyped face of one named state.
class StateBase {
 public:
  virtual ~StateBase() = default;
  virtual bool HasValue(uint32_t slot) = 0;
  /// Serializes the slot's value (which must exist).
  virtual void Serialize(uint32_t slot, ByteWriter& out) = 0;
  /// Restores the slot's value from bytes; false when they do not decode.
  virtual bool Restore(uint32_t slot, ByteReader& in) = 0;
  virtual const std::type_info& Type() const = 0;
  /// "value", "list", "map", "reducing" or "aggregating".
  virtual const char* Kind() const = 0;
};

/// A point-in-time view of a keyed backend, written after the barrier
/// (possibly on another thread) without touching the live state.
class KeyedStateSnapshot {
 public:
  virtual ~KeyedStateSnapshot() = default;
  /// Key groups holding state, ascending.
  virtual const std::vector<int>& KeyGroups() const = 0;
  /// Writes one key group in the format of SnapshotKeyGroup.
  virtual void WriteKeyGroup(int key_group, ByteWriter& out) const = 0;
  /// The registered states, for the compatibility check on restore.
  virtual const std::vector<StateInfo>& Info() const = 0;
};

/// The keyed-state interface RuntimeContext talks to.
class KeyedStateStore {
 public:
  virtual ~KeyedStateStore() = default;
  virtual StateBase* Find(const std::string& name) = 0;
  virtual StateBase* Register(const std::string& name, std::unique_ptr<StateBase> state) = 0;
  virtual SlotAccess& Slots() = 0;
};

/// TTL bookkeeping shared by the state kinds: a last-access time per slot.
class TtlClock {
 public:
  TtlClock(SlotAccess* slots, std::optional<StateTtlConfig> ttl) : slots_(slots), ttl_(std::move(ttl)) {}
  bool Enabled() const { return ttl_.has_value(); }
  bool Expired(uint32_t slot) {
    if (!ttl_) return false;
    return times_[slot] + ttl_->ttl.count() <= slots_->Now();
  }
  void Touch(uint32_t slot, bool write) {
    if (!ttl_) return;
    if (!write && ttl_->update_type != StateTtlConfig::UpdateType::kOnReadAndWrite) return;
    if (slot >= times_.size()) times_.resize(slot + 1, 0);
    times_[slot] = slots_->Now();
  }
  /// Round-robin over slots: returns up to `cleanup_entries_per_access` slots to check.
  template <class F>
  void Incremental(F check) {
    if (!ttl_ || times_.empty()) return;
    for (int i = 0; i < ttl_->cleanup_entries_per_access; ++i) {
      if (cursor_ >= times_.size()) cursor_ = 0;
      check(static_cast<uint32_t>(cursor_++));
    }
  }

 private:
  SlotAccess* slots_;
  std::optional<StateTtlConfig> ttl_;
  std::vector<Timestamp> times_;
  size_t cursor_ = 0;
};

/// Values per slot with presence bits; the common part of the state kinds.
template <class V>
class SlotValues {
 public:
  bool Has(uint32_t slot) const { return slot < present_.size() && present_[slot]; }
  V& At(uint32_t slot) { return values_[slot].value; }
  /// Makes the slot present; true when it was not.
  bool Set(uint32_t slot) {
    if (slot >= values_.size()) {
      values_.resize(slot + 1);
      present_.resize(slot + 1, false);
    }
    if (present_[slot]) return false;
    present_[slot] = true;
    return true;
  }
  /// Makes the slot absent and frees its value; true when it was present.
  bool Unset(uint32_t slot) {
    if (!Has(slot)) return false;
    present_[slot] = false;
    values_[slot].value = V{};
    return true;
  }

 private:
  struct Cell {  // avoids std::vector<bool>
    V value{};
  };
  std::vector<Cell> values_;
  std::vector<bool> present_;
};

/// Base of the heap states: presence, TTL, slot bookkeeping, snapshots.
template <class V>
class HeapState : public StateBase {
 public:
  HeapState(SlotAccess* slots, std::optional<StateTtlConfig> ttl) : slots_(slots), ttl_(slots, std::move(ttl)) {}
  bool HasValue(uint32_t slot) override { return values_.Has(slot) && !ttl_.Expired(slot); }
  void Serialize(uint32_t slot, ByteWriter& out) override { TypeSerializer<V>::Serialize(values_.At(slot), out); }
  bool Restore(uint32_t slot, ByteReader& in) override {
    V v{};
    TypeSerializer<V>::Deserialize(in, v);
    if (in.Failed()) return false;
    if (values_.Set(slot)) slots_->OnSet(slot);
    values_.At(slot) = std::move(v);
    ttl_.Touch(slot, true);
    return true;
  }
  const std::type_info& Type() const override { return typeid(V); }

 protected:
  /// The current key's value, or nullptr (expired values are dropped here).
  V* ReadValue() {
    CleanupSome();
    uint32_t slot = slots_->ReadSlot();
    if (slot == kNoSlot || !values_.Has(slot)) return nullptr;
    if (ttl_.Expired(slot)) {
      Drop(slot);
      return nullptr;
    }
    ttl_.Touch(slot, false);
    return &values_.At(slot);
  }
  /// The current key's value, created empty if absent.
  V& WriteValue() {
    uint32_t slot = slots_->WriteSlot();
    if (values_.Has(slot) && ttl_.Expired(slot)) Drop(slot);
    if (values_.Set(slot)) slots_->OnSet(slot);
    ttl_.Touch(slot, true);
    return values_.At(slot);
  }
  void ClearValue() {
    uint32_t slot = slots_->ReadSlot();
    if (slot != kNoSlot) Drop(slot);
  }
  void Drop(uint32_t slot) {
    if (values_.Unset(slot)) slots_->OnCleared(slot);
  }
  void CleanupSome() {
    ttl_.Incremental([this](uint32_t slot) {
      if (values_.Has(slot) && ttl_.Expired(slot)) Drop(slot);
    });
  }

  SlotAccess* slots_;
  TtlClock ttl_;
  SlotValues<V> values_;
};

template <class T>
class HeapValueState final : public HeapState<T>, public ValueState<T> {
 public:
  HeapValueState(SlotAccess* slots, const ValueStateDescriptor<T>& d)
      : HeapState<T>(slots, d.Ttl()), default_(d.DefaultValue()) {}
  T Value() override {
    if (T* v = this->ReadValue()) return *v;
    return default_ ? *default_ : T{};
  }
  std::optional<T> Get() override {
    if (T* v = this->ReadValue()) return *v;
    return std::nullopt;
  }
  void Update(const T& value) override { this->WriteValue() = value; }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "value"; }

 private:
  std::optional<T> default_;
};

template <class T>
class HeapListState final : public HeapState<std::vector<T>>, public ListState<T> {
 public:
  HeapListState(SlotAccess* slots, const ListStateDescriptor<T>& d) : HeapState<std::vector<T>>(slots, d.Ttl()) {}
  const std::vector<T>& Get() override {
    if (auto* v = this->ReadValue()) return *v;
    return empty_;
  }
  void Add(const T& value) override { this->WriteValue().push_back(value); }
  void AddAll(const std::vector<T>& values) override {
    if (values.empty()) return;
    auto& v = this->WriteValue();
    v.insert(v.end(), values.begin(), values.end());
  }
  void Update(std::vector<T> values) override {
    if (values.empty()) {
      Clear();
    } else {
      this->WriteValue() = std::move(values);
    }
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "list"; }

 private:
  const std::vector<T> empty_;
};

template <class K, class V>
class HeapMapState final : public HeapState<std::unordered_map<K, V, KeyHasher<K>>>, public MapState<K, V> {
 public:
  using Map = std::unordered_map<K, V, KeyHasher<K>>;
  HeapMapState(SlotAccess* slots, const MapStateDescriptor<K, V>& d) : HeapState<Map>(slots, d.Ttl()) {}
  std::optional<V> Get(const K& key) override {
    if (Map* m = this->ReadValue()) {
      auto it = m->find(key);
      if (it != m->end()) return it->second;
    }
    return std::nullopt;
  }
  void Put(const K& key, const V& value) override { this->WriteValue()[key] = value; }
  void Remove(const K& key) override {
    if (Map* m = this->ReadValue()) {
      m->erase(key);
      if (m->empty()) this->ClearValue();
    }
  }
  bool Contains(const K& key) override {
    Map* m = this->ReadValue();
    return m != nullptr && m->count(key) > 0;
  }
  bool IsEmpty() override {
    Map* m = this->ReadValue();
    return m == nullptr || m->empty();
  }
  void ForEach(const std::function<void(const K&, const V&)>& f) override {
    if (Map* m = this->ReadValue()) {
      for (const auto& [k, v] : *m) f(k, v);
    }
  }
  std::vector<std::pair<K, V>> Entries() override {
    std::vector<std::pair<K, V>> out;
    if (Map* m = this->ReadValue()) out.assign(m->begin(), m->end());
    return out;
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "map"; }
};

template <class T>
class HeapReducingState final : public HeapState<T>, public ReducingState<T> {
 public:
  HeapReducingState(SlotAccess* slots, const ReducingStateDescriptor<T>& d)
      : HeapState<T>(slots, d.Ttl()), reduce_(d.ReduceFunction()) {}
  std::optional<T> Get() override {
    if (T* v = this->ReadValue()) return *v;
    return std::nullopt;
  }
  void Add(const T& value) override {
    if (T* v = this->ReadValue()) {
      *v = reduce_(*v, value);
      this->ttl_.Touch(this->slots_->ReadSlot(), true);
    } else {
      this->WriteValue() = value;
    }
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "reducing"; }

 private:
  std::function<T(const T&, const T&)> reduce_;
};

template <class A>
class HeapAggregatingState final : public HeapState<typename A::AccumulatorType>,
                                   public AggregatingState<typename A::InputType, typename A::OutputType> {
 public:
  using ACC = typename A::AccumulatorType;
  HeapAggregatingState(SlotAccess* slots, const AggregatingStateDescriptor<A>& d)
      : HeapState<ACC>(slots, d.Ttl()), agg_(d.Aggregate()) {}
  std::optional<typename A::OutputType> Get() override {
    if (ACC* acc = this->ReadValue()) return agg_.GetResult(*acc);
    return std::nullopt;
  }
  void Add(const typename A::InputType& value) override {
    ACC* acc = this->ReadValue();
    if (acc == nullptr) {
      ACC& fresh = this->WriteValue();
      fresh = agg_.CreateAccumulator();
      acc = &fresh;
    } else {
      this->ttl_.Touch(this->slots_->ReadSlot(), true);
    }
    *acc = agg_.Add(value, std::move(*acc));
  }
  void Clear() override { this->ClearValue(); }
  const char* Kind() const override { return "aggregating"; }

 private:
  A agg_;
};

/// Keyed state of one operator instance for keys of type K.
template <class K>
class HeapKeyedStateBackend final : public KeyedStateStore, private SlotAccess {
 public:
  HeapKeyedStateBackend(KeyGroupRange range, int max_parallelism, ProcessingTimeService* time)
      : range_(range), max_parallelism_(max_parallelism), time_(time) {}

  /// Sets the key that state accesses refer to until the next call.
  /// REQUIRES: `key` outlives those accesses (it is not copied, to keep
  /// string keys free of copies per record).
  void SetCurrentKey(const K& key) {
    current_ = &key;
    current_slot_ = kUnknown;
  }

  StateBase* Find(const std::string& name) override {
    auto it = states_.find(name);
    return it == states_.end() ? nullptr : it->second.get();
  }
  StateBase* Register(const std::string& name, std::unique_ptr<StateBase> state) override {
    if (states_.size() >= 255) throw std::logic_error("an operator can hold at most 255 keyed states");
    for (const StateInfo& old : restored_info_) {
      if (old.name == name && (old.kind != state->Kind() || old.type_name != state->Type().name())) {
        throw NonRecoverableError("keyed state '" + name + "' was saved as " + old.kind + " state of type '" +
                               old.type_name + "' and is now requested as " + state->Kind() + " state of type '" +
                               state->Type().name() + "'; a state's kind and type must not change across a restore");
      }
    }
    StateBase* s = states_.emplace(name, std::move(state)).first->second.get();
    ApplyPending(name, *s);
    return s;
  }

  /// Writes the state of every key in `key_group` in the backend-independent
  /// format: per state (by name) its entries as (key bytes, value bytes).
  void SnapshotKeyGroup(int key_group, ByteWriter& out) const {
    std::vector<std::pair<const K*, uint32_t>> keys;
    for (const auto& [key, slot] : slot_of_) {
      if (KeyGroupOf(key) == key_group) keys.emplace_back(&key, slot);
    }
    uint32_t num_states = static_cast<uint32_t>(states_.size());
    out.Write(&num_states, sizeof(num_states));
    ByteWriter value;
    for (const auto& [name, state] : states_) {
      TypeSerializer<std::string>::Serialize(name, out);
      uint64_t n = 0;
      for (const auto& [key, slot] : keys) n += state->HasValue(slot) ? 1 : 0;
      out.Write(&n, sizeof(n));
      for (const auto& [key, slot] : keys) {
        if (!state->HasValue(slot)) continue;
        TypeSerializer<K>::Serialize(*key, out);
        value.Reset();
        state->Serialize(slot, value);
        uint32_t len = static_cast<uint32_t>(value.Size());
        out.Write(&len, sizeof(len));
        out.Write(value.Data(), value.Size());
      }
    }
  }

  /// The states declared by the snapshot being restored: registering one
  /// of them with another kind or type is an error.
  void SetRestoredInfo(std::vector<StateInfo> info) { restored_info_ = std::move(info); }

  /// Captures the state of all keys (see KeyedStateSnapshot).
  std::unique_ptr<KeyedStateSnapshot> Snapshot() const {
    // Eager capture: the state is serialized per key group here, on the
    // task thread, in one pass over the keys.
    auto snap = std::make_unique<EagerSnapshot>();
    std::map<int, std::vector<std::pair<const K*, uint32_t>>> by_group;
    for (const auto& [key, slot] : slot_of_) by_group[KeyGroupOf(key)].emplace_back(&key, slot);
    ByteWriter value;
    for (auto& [kg, keys] : by_group) {
      ByteWriter out;
      uint32_t num_states = static_cast<uint32_t>(states_.size());
      out.Write(&num_states, sizeof(num_states));
      for (const auto& [name, state] : states_) {
        TypeSerializer<std::string>::Serialize(name, out);
        uint64_t n = 0;
        for (const auto& [key, slot] : keys) n += state->HasValue(slot) ? 1 : 0;
        out.Write(&n, sizeof(n));
        for (const auto& [key, slot] : keys) {
          if (!state->HasValue(slot)) continue;
          TypeSerializer<K>::Serialize(*key, out);
          value.Reset();
          state->Serialize(slot, value);
          uint32_t len = static_cast<uint32_t>(value.Size());
          out.Write(&len, sizeof(len));
          out.Write(value.Data(), value.Size());
        }
      }
      snap->groups.push_back(kg);
      snap->bytes.emplace(kg, std::string(reinterpret_cast<const char*>(out.Data()), out.Size()));
    }
    for (const auto& [name, state] : states_) snap->info.push_back({name, state->Kind(), state->Type().name()});
    return snap;
  }

  /// Loads a key group written by SnapshotKeyGroup. States not registered
  /// yet keep their entries until they are.
  Status RestoreKeyGroup(const uint8_t* data, size_t size) {
    ByteReader r(data, size);
    uint32_t num_states = 0;
    r.Read(&num_states, sizeof(num_states));
    for (uint32_t i = 0; i < num_states && !r.Failed(); ++i) {
      std::string name;
      TypeSerializer<std::string>::Deserialize(r, name);
      uint64_t n = 0;
      r.Read(&n, sizeof(n));
      auto& pending = pending_[name];
      for (uint64_t e = 0; e < n && !r.Failed(); ++e) {
        K key{};
        TypeSerializer<K>::Deserialize(r, key);
        uint32_t len = 0;
        r.Read(&len, sizeof(len));
        const uint8_t* bytes = r.Take(len);
        if (bytes == nullptr) break;
        if (!range_.Contains(KeyGroupOf(key))) {
          return Status::Corruption("restored key belongs to key group " + std::to_string(KeyGroupOf(key)) +
                                    ", outside this operator's range");
        }
        pending.emplace_back(std::move(key), std::string(reinterpret_cast<const char*>(bytes), len));
      }
    }
    if (r.Failed() || r.Remaining() != 0) return Status::Corruption("keyed state snapshot does not decode");
    for (auto& [name, state] : states_) ApplyPending(name, *state);
    return Status::Ok();
  }
  SlotAccess& Slots() override { return *this; }

  /// Keys that hold state.
  size_t NumKeys() const { return slot_of_.size(); }
  const std::map<std::string, std::unique_ptr<StateBase>>& States() const { return states_; }

  /// Calls `f(key, key_group, slot)` for every key holding state.
  template <class F>
  void ForEachKey(F f) const {
    for (const auto& [key, slot] : slot_of_) f(key, KeyGroupOf(key), slot);
  }
  int KeyGroupOf(const K& key) const { return AssignToKeyGroup(key, max_parallelism_); }
  const KeyGroupRange& Range() const { return range_; }

 private:
  static constexpr uint32_t kUnknown = 0xfffffffeu;

  struct EagerSnapshot final : KeyedStateSnapshot {
    std::vector<int> groups;
    std::map<int, std::string> bytes;
    std::vector<StateInfo> info;
    const std::vector<int>& KeyGroups() const override { return groups; }
    void WriteKeyGroup(int key_group, ByteWriter& out) const override {
      const std::string& b = bytes.at(key_group);
      out.Write(b.data(), b.size());
    }
    const std::vector<StateInfo>& Info() const override { return info; }
  };

  uint32_t ReadSlot() override {
    if (current_slot_ == kUnknown) {
      auto it = slot_of_.find(*current_);
      current_slot_ = it == slot_of_.end() ? kNoSlot : it->second;
    }
    return current_slot_;
  }
  uint32_t WriteSlot() override {
    uint32_t slot = ReadSlot();
    if (slot != kNoSlot) return slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      key_of_[slot] = *current_;
    } else {
      slot = static_cast<uint32_t>(key_of_.size());
      key_of_.push_back(*current_);
      live_.push_back(0);
    }
    slot_of_.emplace(*current_, slot);
    current_slot_ = slot;
    return slot;
  }
  void ApplyPending(const std::string& name, StateBase& state) {
    auto it = pending_.find(name);
    if (it == pending_.end()) return;
    for (auto& [key, bytes] : it->second) {
      const K* saved = current_;
      uint32_t saved_slot = current_slot_;
      SetCurrentKey(key);
      uint32_t slot = WriteSlot();
      ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      if (!state.Restore(slot, r)) throw std::runtime_error("state '" + name + "' does not decode from its snapshot");
      current_ = saved;
      current_slot_ = saved_slot;
    }
    pending_.erase(it);
  }

  void OnSet(uint32_t slot) override { ++live_[slot]; }
  void OnCleared(uint32_t slot) override {
    if (--live_[slot] > 0) return;
    slot_of_.erase(key_of_[slot]);
    key_of_[slot] = K{};
    free_.push_back(slot);
    if (current_slot_ == slot) current_slot_ = kUnknown;
  }
  Timestamp Now() override { return time_ != nullptr ? time_->CurrentProcessingTime() : 0; }
  uint32_t SlotCount() const override { return static_cast<uint32_t>(key_of_.size()); }

  KeyGroupRange range_;
  int max_parallelism_;
  ProcessingTimeService* time_;
  const K* current_ = nullptr;
  uint32_t current_slot_ = kUnknown;
  boost::unordered_flat_map<K, uint32_t, KeyHasher<K>> slot_of_;
  std::vector<K> key_of_;
  std::vector<uint8_t> live_;  // states holding a value per slot (at most 255 states per operator)
  std::vector<uint32_t> free_;
  std::map<std::string, std::unique_ptr<StateBase>> states_;
  std::map<std::string, std::vector<std::pair<K, std::string>>> pending_;  // restored, not yet registered
  std::vector<StateInfo> restored_info_;
};

/// Finds or creates state `name` of implementation type S.
template <class S, class Make>
S& GetOrCreateState(KeyedStateStore* store, const std::string& name, Make make) {
  if (store == nullptr) {
    throw std::logic_error("keyed state '" + name + "' is only available on keyed streams: use KeyBy(...) first");
  }
  if (StateBase* s = store->Find(name)) {
    auto* typed = dynamic_cast<S*>(s);
    if (typed == nullptr) throw std::logic_error("state '" + name + "' was registered with another kind or type");
    return *typed;
  }
  return static_cast<S&>(*store->Register(name, make(&store->Slots())));
}

}  // namespace freshet::internal

namespace freshet {

template <class T>
ValueState<T>& KeyedStateAccess::GetState(const ValueStateDescriptor<T>& d) {
  return internal::GetOrCreateState<internal::HeapValueState<T>>(
      keyed_state_, d.Name(), [&](internal::SlotAccess* s) { return std::make_unique<internal::HeapValueState<T>>(s, d); });
}
template <class T>
ListState<T>& KeyedStateAccess::GetListState(const ListStateDescriptor<T>& d) {
  return internal::GetOrCreateState<internal::HeapListState<T>>(
      keyed_state_, d.Name(), [&](internal::SlotAccess* s) { return std::make_unique<internal::HeapListState<T>>(s, d); });
}
template <class K, class V>
MapState<K, V>& KeyedStateAccess::GetMapState(const MapStateDescriptor<K, V>& d) {
  return internal::GetOrCreateState<internal::HeapMapState<K, V>>(
      keyed_state_, d.Name(), [&](internal::SlotAccess* s) { return std::make_unique<internal::HeapMapState<K, V>>(s, d); });
}
template <class T>
ReducingState<T>& KeyedStateAccess::GetReducingState(const ReducingStateDescriptor<T>& d) {
  return internal::GetOrCreateState<internal::HeapReducingState<T>>(
      keyed_state_, d.Name(),
      [&](internal::SlotAccess* s) { return std::make_unique<internal::HeapReducingState<T>>(s, d); });
}
template <class A>
AggregatingState<typename A::InputType, typename A::OutputType>& KeyedStateAccess::GetAggregatingState(
    const AggregatingStateDescriptor<A>& d) {
  return internal::GetOrCreateState<internal::HeapAggregatingState<A>>(
      keyed_state_, d.Name(),
      [&](internal::SlotAccess* s) { return std::make_unique<internal::HeapAggregatingState<A>>(s, d); });
}

}  // namespace freshet
