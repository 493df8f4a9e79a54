#pragma once
/// Keyed state: values scoped to the current key of a keyed stream,
/// obtained from the runtime context by descriptor (usually in Open()).
///
///   class Counter : public RichFlatMapFunction<Event, int64_t> {
///     void Open() override { count_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("count", 0)); }
///     void FlatMap(const Event& e, Collector<int64_t>& out) override { count_->Update(count_->Value() + 1); ... }
///     ValueState<int64_t>* count_;
///   };
///
/// Handles stay valid for the life of the operator and always read and
/// write the state of the key of the record (or timer) being processed.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "freshet/types.h"

namespace freshet {

/// Time-to-live of state entries (processing time).
struct StateTtlConfig {
  enum class UpdateType {
    kOnCreateAndWrite,  // writes refresh the entry's time
    kOnReadAndWrite,    // reads refresh it too
  };
  Duration ttl{0};
  UpdateType update_type = UpdateType::kOnCreateAndWrite;
  /// Expired entries are never returned; they are also removed when read,
  /// when a snapshot is taken, and incrementally: every state access checks
  /// up to this many further entries.
  int cleanup_entries_per_access = 2;

  static StateTtlConfig Of(Duration ttl, UpdateType update = UpdateType::kOnCreateAndWrite) {
    StateTtlConfig c;
    c.ttl = ttl;
    c.update_type = update;
    return c;
  }
};

template <class T>
class StateDescriptor {
 public:
  explicit StateDescriptor(std::string name) : name_(std::move(name)) {}
  const std::string& Name() const { return name_; }
  void EnableTimeToLive(StateTtlConfig ttl) { ttl_ = ttl; }
  const std::optional<StateTtlConfig>& Ttl() const { return ttl_; }

 private:
  std::string name_;
  std::optional<StateTtlConfig> ttl_;
};

template <class T>
class ValueStateDescriptor : public StateDescriptor<T> {
 public:
  explicit ValueStateDescriptor(std::string name, std::optional<T> default_value = std::nullopt)
      : StateDescriptor<T>(std::move(name)), default_(std::move(default_value)) {}
  const std::optional<T>& DefaultValue() const { return default_; }

 private:
  std::optional<T> default_;
};

template <class T>
class ListStateDescriptor : public StateDescriptor<T> {
 public:
  using StateDescriptor<T>::StateDescriptor;
};

template <class K, class V>
class MapStateDescriptor : public StateDescriptor<std::pair<K, V>> {
 public:
  using StateDescriptor<std::pair<K, V>>::StateDescriptor;
};

template <class T>
class ReducingStateDescriptor : public StateDescriptor<T> {
 public:
  ReducingStateDescriptor(std::string name, std::function<T(const T&, const T&)> reduce)
      : StateDescriptor<T>(std::move(name)), reduce_(std::move(reduce)) {}
  const std::function<T(const T&, const T&)>& ReduceFunction() const { return reduce_; }

 private:
  std::function<T(const T&, const T&)> reduce_;
};

/// `A` is an AggregateFunction<IN, ACC, OUT> (CreateAccumulator, Add,
/// GetResult, Merge).
template <class A>
class AggregatingStateDescriptor : public StateDescriptor<typename A::AccumulatorType> {
 public:
  AggregatingStateDescriptor(std::string name, A aggregate)
      : StateDescriptor<typename A::AccumulatorType>(std::move(name)), aggregate_(std::move(aggregate)) {}
  const A& Aggregate() const { return aggregate_; }

 private:
  A aggregate_;
};

/// One value per key.
template <class T>
class ValueState {
 public:
  virtual ~ValueState() = default;
  /// The value, or the descriptor's default (T{} when it has none).
  virtual T Value() = 0;
  /// The value, or nothing when unset.
  virtual std::optional<T> Get() = 0;
  virtual void Update(const T& value) = 0;
  virtual void Clear() = 0;
};

/// A list per key.
template <class T>
class ListState {
 public:
  virtual ~ListState() = default;
  /// The elements (empty when unset). Valid until the next change.
  virtual const std::vector<T>& Get() = 0;
  virtual void Add(const T& value) = 0;
  virtual void AddAll(const std::vector<T>& values) = 0;
  virtual void Update(std::vector<T> values) = 0;
  virtual void Clear() = 0;
};

/// A map per key.
template <class K, class V>
class MapState {
 public:
  virtual ~MapState() = default;
  virtual std::optional<V> Get(const K& key) = 0;
  virtual void Put(const K& key, const V& value) = 0;
  virtual void Remove(const K& key) = 0;
  virtual bool Contains(const K& key) = 0;
  virtual bool IsEmpty() = 0;
  /// Calls `f(key, value)` for every entry, in no particular order.
  virtual void ForEach(const std::function<void(const K&, const V&)>& f) = 0;
  /// The entries, copied (for range-for loops).
  virtual std::vector<std::pair<K, V>> Entries() = 0;
  virtual void Clear() = 0;
};

/// A value per key that folds every added value in with a reduce function.
template <class T>
class ReducingState {
 public:
  virtual ~ReducingState() = default;
  virtual std::optional<T> Get() = 0;
  virtual void Add(const T& value) = 0;
  virtual void Clear() = 0;
};

/// An accumulator per key; Get() returns the aggregate's result.
template <class IN, class OUT>
class AggregatingState {
 public:
  virtual ~AggregatingState() = default;
  virtual std::optional<OUT> Get() = 0;
  virtual void Add(const IN& value) = 0;
  virtual void Clear() = 0;
};

}  // namespace freshet
