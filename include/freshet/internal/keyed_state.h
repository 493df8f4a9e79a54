#pragma once
/// Keyed state for operators and user functions, whatever the backend:
/// the state backend options, CreateKeyedStateBackend (what keyed
/// operators hold), and KeyedStateAccess's GetState & co., which make a
/// state of the kind asked for on the backend at hand.

#include <memory>
#include <stdexcept>
#include <string>

#include "freshet/functions.h"
#include "freshet/internal/heap_keyed_state.h"
#include "freshet/internal/operator.h"
#include "freshet/internal/rocksdb_keyed_state.h"

namespace freshet::internal {

/// True when `store` is a RocksDB backend (then states are RocksDB*State,
/// else Heap*State).
inline bool UsesRocksDB(KeyedStateStore* store) { return store != nullptr && store->Rocks() != nullptr; }

/// Finds or creates state `name` of implementation type S; `make()` makes
/// one for the store's backend.
template <class S, class Make>
S& GetOrCreateState(KeyedStateStore* store, const std::string& name, Make make) {
  if (store == nullptr) {
    throw std::logic_error("keyed state '" + name + "' is only available on keyed streams: use KeyBy(...) first");
  }
  if (KeyedStateBase* s = store->Find(name)) {
    auto* typed = dynamic_cast<S*>(s);
    if (typed == nullptr) throw std::logic_error("state '" + name + "' was registered with another kind or type");
    return *typed;
  }
  return static_cast<S&>(*store->Register(name, make()));
}

/// The keyed-state backend of a keyed operator, as configured for the job
/// (OperatorContext::state_backend; the heap backend when unset). Throws
/// RocksDBStateError when a RocksDB instance cannot be made.
template <class K>
std::unique_ptr<KeyedStateBackend<K>> CreateKeyedStateBackend(OperatorContext& ctx) {
  std::unique_ptr<KeyedStateBackend<K>> backend;
  if (ctx.state_backend.type == StateBackendOptions::Type::kRocksDB) {
    backend = std::make_unique<RocksDBKeyedStateBackend<K>>(ctx.key_groups, ctx.max_parallelism, ctx.processing_time,
                                                            ctx.state_backend, &ctx);
  } else {
    backend = std::make_unique<HeapKeyedStateBackend<K>>(ctx.key_groups, ctx.max_parallelism, ctx.processing_time);
  }
  backend->SetRestoreProblems(&ctx.restore_problems, ctx.name);
  // The task calls its listeners while its operators, and so this backend, exist.
  ctx.checkpoint_complete_listeners.push_back(
      [b = backend.get()](CheckpointId id) { b->NotifyCheckpointComplete(id); });
  return backend;
}

/// Keeps the timers of `timers` in the RocksDB instance of `backend` when
/// the job asks for RocksDB timers (state.backend.rocksdb.timer-service.
/// factory: ROCKSDB) and the backend is RocksDB; on the heap otherwise.
template <class K, class N>
void PlaceTimers(KeyedTimerService<K, N>& timers, KeyedStateBackend<K>& backend, const OperatorContext& ctx) {
  if (!ctx.state_backend.rocksdb_timers || backend.Rocks() == nullptr) return;
  timers.UseStorage(backend.Rocks()->NewTimerStorage("event-time timers"),
                    backend.Rocks()->NewTimerStorage("processing-time timers"));
}

}  // namespace freshet::internal

namespace freshet {

template <class T>
ValueState<T>& KeyedStateAccess::GetState(const ValueStateDescriptor<T>& d) {
  if (internal::UsesRocksDB(keyed_state_)) {
    return internal::GetOrCreateState<internal::RocksDBValueState<T>>(keyed_state_, d.Name(), [&] {
      return std::make_unique<internal::RocksDBValueState<T>>(keyed_state_->Rocks(), d);
    });
  }
  return internal::GetOrCreateState<internal::HeapValueState<T>>(
      keyed_state_, d.Name(), [&] { return std::make_unique<internal::HeapValueState<T>>(keyed_state_->Slots(), d); });
}
template <class T>
ListState<T>& KeyedStateAccess::GetListState(const ListStateDescriptor<T>& d) {
  if (internal::UsesRocksDB(keyed_state_)) {
    return internal::GetOrCreateState<internal::RocksDBListState<T>>(keyed_state_, d.Name(), [&] {
      return std::make_unique<internal::RocksDBListState<T>>(keyed_state_->Rocks(), d);
    });
  }
  return internal::GetOrCreateState<internal::HeapListState<T>>(
      keyed_state_, d.Name(), [&] { return std::make_unique<internal::HeapListState<T>>(keyed_state_->Slots(), d); });
}
template <class K, class V>
MapState<K, V>& KeyedStateAccess::GetMapState(const MapStateDescriptor<K, V>& d) {
  if (internal::UsesRocksDB(keyed_state_)) {
    return internal::GetOrCreateState<internal::RocksDBMapState<K, V>>(keyed_state_, d.Name(), [&] {
      return std::make_unique<internal::RocksDBMapState<K, V>>(keyed_state_->Rocks(), d);
    });
  }
  return internal::GetOrCreateState<internal::HeapMapState<K, V>>(
      keyed_state_, d.Name(), [&] { return std::make_unique<internal::HeapMapState<K, V>>(keyed_state_->Slots(), d); });
}
template <class T>
ReducingState<T>& KeyedStateAccess::GetReducingState(const ReducingStateDescriptor<T>& d) {
  if (internal::UsesRocksDB(keyed_state_)) {
    return internal::GetOrCreateState<internal::RocksDBReducingState<T>>(keyed_state_, d.Name(), [&] {
      return std::make_unique<internal::RocksDBReducingState<T>>(keyed_state_->Rocks(), d);
    });
  }
  return internal::GetOrCreateState<internal::HeapReducingState<T>>(
      keyed_state_, d.Name(),
      [&] { return std::make_unique<internal::HeapReducingState<T>>(keyed_state_->Slots(), d); });
}
template <class A>
AggregatingState<typename A::InputType, typename A::OutputType>& KeyedStateAccess::GetAggregatingState(
    const AggregatingStateDescriptor<A>& d) {
  if (internal::UsesRocksDB(keyed_state_)) {
    return internal::GetOrCreateState<internal::RocksDBAggregatingState<A>>(keyed_state_, d.Name(), [&] {
      return std::make_unique<internal::RocksDBAggregatingState<A>>(keyed_state_->Rocks(), d);
    });
  }
  return internal::GetOrCreateState<internal::HeapAggregatingState<A>>(
      keyed_state_, d.Name(),
      [&] { return std::make_unique<internal::HeapAggregatingState<A>>(keyed_state_->Slots(), d); });
}

}  // namespace freshet
