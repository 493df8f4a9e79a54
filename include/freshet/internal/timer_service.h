#pragma once
/// Timers of keyed operators: per time domain, de-duplicated per
/// (key, namespace, timestamp), fired in timestamp order, stored per key
/// group (the unit of snapshots and rescaling).

#include <boost/unordered/unordered_flat_set.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "freshet/key_groups.h"
#include "freshet/serializer.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet::internal {

/// Processing time for one task: the current time and one-shot callbacks
/// run on the task thread once the clock reaches their time.
class ProcessingTimeService {
 public:
  virtual ~ProcessingTimeService() = default;
  virtual Timestamp CurrentProcessingTime() const = 0;
  virtual void RegisterTimer(Timestamp time, std::function<void(Timestamp)> callback) = 0;
};

/// One-shot callbacks ordered by time (then by registration), run once
/// their time is reached. Not thread-safe: owned by one task thread.
class CallbackQueue {
 public:
  void Add(Timestamp time, std::function<void(Timestamp)> callback) {
    queue_.push(Entry{time, seq_++, std::move(callback)});
  }
  bool Empty() const { return queue_.empty(); }
  size_t Size() const { return queue_.size(); }
  /// Time of the earliest callback. REQUIRES: !Empty().
  Timestamp NextTime() const { return queue_.top().time; }
  /// Runs, in order, every callback due at `now` (also those added meanwhile).
  void RunDue(Timestamp now) {
    while (!queue_.empty() && queue_.top().time <= now) {
      auto callback = std::move(const_cast<Entry&>(queue_.top()).callback);
      queue_.pop();
      callback(now);
    }
  }

 private:
  struct Entry {
    Timestamp time;
    uint64_t seq;
    std::function<void(Timestamp)> callback;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.time != b.time ? a.time > b.time : a.seq > b.seq; }
  };
  std::priority_queue<Entry, std::vector<Entry>, Later> queue_;
  uint64_t seq_ = 0;
};

/// Hash of a timer namespace; specialized by window types.
template <class N, class Enable = void>
struct NamespaceHash {
  size_t operator()(const N& n) const { return std::hash<N>()(n); }
};

/// Namespace of timers that have none (process functions).
struct VoidNamespace {
  bool operator==(const VoidNamespace&) const = default;
};
template <>
struct NamespaceHash<VoidNamespace> {
  size_t operator()(const VoidNamespace&) const { return 0; }
};

template <class K, class N>
struct Timer {
  Timestamp timestamp;
  K key;
  N ns;
  int key_group;
  bool operator==(const Timer& o) const { return timestamp == o.timestamp && key == o.key && ns == o.ns; }
};

/// Timers kept out of the process heap (in the RocksDB instance of the
/// operator's keyed state): one time domain's, in (time, key group, key and
/// namespace bytes) order. Task thread only.
class TimerStorage {
 public:
  virtual ~TimerStorage() = default;
  /// False when the timer is already there.
  virtual bool Add(Timestamp ts, int key_group, std::string_view key_ns) = 0;
  /// False when the timer is not there.
  virtual bool Remove(Timestamp ts, int key_group, std::string_view key_ns) = 0;
  /// The earliest timer; false when there is none. `key_ns` stays valid
  /// until the next call.
  virtual bool First(Timestamp* ts, int* key_group, std::string_view* key_ns) = 0;
  /// Every timer, in order.
  virtual void ForEach(const std::function<void(Timestamp, int, std::string_view)>& f) = 0;
  virtual size_t Size() const = 0;
};

/// One time domain's timers, partitioned by key group. A global heap gives
/// the firing order; the per-group sets are the truth (deleted timers stay
/// in the heap until popped and are skipped). With a TimerStorage, the
/// storage holds them instead.
template <class K, class N>
class TimerQueue {
 public:
  explicit TimerQueue(KeyGroupRange range) : range_(range), groups_(static_cast<size_t>(std::max(range.Size(), 1))) {}

  /// Keeps the timers in `storage` from now on. REQUIRES: no timer yet.
  void UseStorage(std::unique_ptr<TimerStorage> storage) { storage_ = std::move(storage); }
  bool HasStorage() const { return storage_ != nullptr; }

  /// False when the same timer is already set.
  bool Add(int key_group, Timestamp ts, const K& key, const N& ns) {
    if (storage_) return storage_->Add(ts, key_group, Encode(key, ns));
    Timer<K, N> t{ts, key, ns, key_group};
    if (!Group(key_group).insert(t).second) return false;
    heap_.push(std::move(t));
    ++size_;
    return true;
  }
  bool Remove(int key_group, Timestamp ts, const K& key, const N& ns) {
    if (storage_) return storage_->Remove(ts, key_group, Encode(key, ns));
    if (Group(key_group).erase(Timer<K, N>{ts, key, ns, key_group}) == 0) return false;
    --size_;
    return true;
  }
  /// Earliest live timer's time, if any.
  std::optional<Timestamp> PeekTime() {
    if (storage_) {
      Timestamp ts = 0;
      int key_group = 0;
      std::string_view key_ns;
      if (!storage_->First(&ts, &key_group, &key_ns)) return std::nullopt;
      return ts;
    }
    SkipDeleted();
    if (heap_.empty()) return std::nullopt;
    return heap_.top().timestamp;
  }
  /// Removes and returns the earliest timer if its time is <= `time`.
  bool PollUpTo(Timestamp time, Timer<K, N>& out) {
    if (storage_) {
      std::string_view key_ns;
      if (!storage_->First(&out.timestamp, &out.key_group, &key_ns) || out.timestamp > time) return false;
      Decode(key_ns, &out.key, &out.ns);
      storage_->Remove(out.timestamp, out.key_group, key_ns);
      return true;
    }
    SkipDeleted();
    if (heap_.empty() || heap_.top().timestamp > time) return false;
    out = heap_.top();
    heap_.pop();
    Group(out.key_group).erase(out);
    --size_;
    return true;
  }
  size_t Size() const { return storage_ ? storage_->Size() : size_; }
  /// Timers of one key group (snapshots; with a storage, one pass over all).
  template <class F>
  void ForEachInKeyGroup(int key_group, F f) const {
    if (storage_) {
      storage_->ForEach([&](Timestamp ts, int kg, std::string_view key_ns) {
        if (kg != key_group) return;
        Timer<K, N> t{ts, K{}, N{}, kg};
        Decode(key_ns, &t.key, &t.ns);
        f(t);
      });
      return;
    }
    for (const auto& t : groups_[static_cast<size_t>(key_group - range_.start)]) f(t);
  }
  /// Every timer, by key group (snapshots: one pass over a storage).
  template <class F>
  void ForEachTimer(F f) const {
    if (storage_) {
      storage_->ForEach([&](Timestamp ts, int kg, std::string_view key_ns) {
        Timer<K, N> t{ts, K{}, N{}, kg};
        Decode(key_ns, &t.key, &t.ns);
        f(t);
      });
      return;
    }
    for (const auto& group : groups_) {
      for (const auto& t : group) f(t);
    }
  }

 private:
  std::string_view Encode(const K& key, const N& ns) {
    encoded_.Reset();
    TypeSerializer<K>::Serialize(key, encoded_);
    TypeSerializer<N>::Serialize(ns, encoded_);
    return std::string_view(reinterpret_cast<const char*>(encoded_.Data()), encoded_.Size());
  }
  static void Decode(std::string_view bytes, K* key, N* ns) {
    ByteReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    TypeSerializer<K>::Deserialize(r, *key);
    TypeSerializer<N>::Deserialize(r, *ns);
  }

  struct Hash {
    size_t operator()(const Timer<K, N>& t) const {
      uint64_t h = KeyHash<K>()(t.key);
      h = CombineHash(h, NamespaceHash<N>()(t.ns));
      return static_cast<size_t>(CombineHash(h, static_cast<uint64_t>(t.timestamp)));
    }
  };
  struct Later {
    bool operator()(const Timer<K, N>& a, const Timer<K, N>& b) const { return a.timestamp > b.timestamp; }
  };
  using Set = boost::unordered_flat_set<Timer<K, N>, Hash>;

  Set& Group(int key_group) { return groups_[static_cast<size_t>(key_group - range_.start)]; }
  void SkipDeleted() {
    while (!heap_.empty()) {
      const Timer<K, N>& t = heap_.top();
      if (groups_[static_cast<size_t>(t.key_group - range_.start)].contains(t)) return;
      heap_.pop();
    }
  }

  KeyGroupRange range_;
  std::vector<Set> groups_;
  std::priority_queue<Timer<K, N>, std::vector<Timer<K, N>>, Later> heap_;
  size_t size_ = 0;
  std::unique_ptr<TimerStorage> storage_;
  ByteWriter encoded_;
};

/// Event- and processing-time timers of one keyed operator instance.
/// `fire(timer, is_event_time)` is called with timers in time order.
template <class K, class N>
class KeyedTimerService {
 public:
  using FireFn = std::function<void(const Timer<K, N>&, bool /*event_time*/)>;

  KeyedTimerService(KeyGroupRange range, int max_parallelism, ProcessingTimeService* processing_time, FireFn fire)
      : max_parallelism_(max_parallelism),
        event_(range),
        processing_(range),
        processing_time_(processing_time),
        fire_(std::move(fire)) {}

  Timestamp CurrentWatermark() const { return watermark_; }
  Timestamp CurrentProcessingTime() const { return processing_time_->CurrentProcessingTime(); }

  void RegisterEventTimeTimer(int key_group, const K& key, const N& ns, Timestamp ts) {
    event_.Add(key_group, ts, key, ns);
  }
  void DeleteEventTimeTimer(int key_group, const K& key, const N& ns, Timestamp ts) {
    event_.Remove(key_group, ts, key, ns);
  }
  void RegisterProcessingTimeTimer(int key_group, const K& key, const N& ns, Timestamp ts) {
    if (!processing_.Add(key_group, ts, key, ns)) return;
    if (ts < next_processing_callback_) {
      next_processing_callback_ = ts;
      processing_time_->RegisterTimer(ts, [this](Timestamp now) { OnProcessingTime(now); });
    }
  }
  void DeleteProcessingTimeTimer(int key_group, const K& key, const N& ns, Timestamp ts) {
    processing_.Remove(key_group, ts, key, ns);
  }

  /// Fires every event-time timer at or before `watermark`.
  void AdvanceWatermark(Timestamp watermark) {
    watermark_ = watermark;
    Timer<K, N> t;
    while (event_.PollUpTo(watermark, t)) fire_(t, true);
  }

  /// Keeps the timers in storages (RocksDB) from now on. REQUIRES: no
  /// timer set yet.
  void UseStorage(std::unique_ptr<TimerStorage> event_time, std::unique_ptr<TimerStorage> processing_time) {
    event_.UseStorage(std::move(event_time));
    processing_.UseStorage(std::move(processing_time));
  }
  bool UsesStorage() const { return event_.HasStorage(); }

  /// SnapshotKeyGroup of every key group of `range` that has timers, in
  /// one pass over each domain's timers.
  std::map<int, std::string> SnapshotAll(const KeyGroupRange& range) const {
    std::map<int, std::pair<std::vector<const Timer<K, N>*>, std::vector<const Timer<K, N>*>>> by_group;
    std::vector<Timer<K, N>> copies[2];
    if (UsesStorage()) {
      // Decoded copies: the storage hands out bytes.
      event_.ForEachTimer([&](const Timer<K, N>& t) { copies[0].push_back(t); });
      processing_.ForEachTimer([&](const Timer<K, N>& t) { copies[1].push_back(t); });
      for (const Timer<K, N>& t : copies[0]) by_group[t.key_group].first.push_back(&t);
      for (const Timer<K, N>& t : copies[1]) by_group[t.key_group].second.push_back(&t);
    } else {
      event_.ForEachTimer([&](const Timer<K, N>& t) { by_group[t.key_group].first.push_back(&t); });
      processing_.ForEachTimer([&](const Timer<K, N>& t) { by_group[t.key_group].second.push_back(&t); });
    }
    std::map<int, std::string> out;
    ByteWriter w;
    for (const auto& [kg, timers] : by_group) {
      if (!range.Contains(kg)) continue;
      w.Reset();
      for (const auto* list : {&timers.first, &timers.second}) {
        uint64_t n = list->size();
        w.Write(&n, sizeof(n));
        for (const Timer<K, N>* t : *list) {
          w.Write(&t->timestamp, sizeof(t->timestamp));
          TypeSerializer<K>::Serialize(t->key, w);
          TypeSerializer<N>::Serialize(t->ns, w);
        }
      }
      out.emplace(kg, std::string(reinterpret_cast<const char*>(w.Data()), w.Size()));
    }
    return out;
  }

  /// Writes the timers of one key group: for event time, then processing
  /// time, a u64 count and (timestamp, key, namespace) per timer.
  void SnapshotKeyGroup(int key_group, ByteWriter& out) const {
    for (const TimerQueue<K, N>* q : {&event_, &processing_}) {
      uint64_t n = 0;
      q->ForEachInKeyGroup(key_group, [&](const Timer<K, N>&) { ++n; });
      out.Write(&n, sizeof(n));
      q->ForEachInKeyGroup(key_group, [&](const Timer<K, N>& t) {
        out.Write(&t.timestamp, sizeof(t.timestamp));
        TypeSerializer<K>::Serialize(t.key, out);
        TypeSerializer<N>::Serialize(t.ns, out);
      });
    }
  }
  bool HasTimersInKeyGroup(int key_group) const {
    bool any = false;
    event_.ForEachInKeyGroup(key_group, [&](const Timer<K, N>&) { any = true; });
    processing_.ForEachInKeyGroup(key_group, [&](const Timer<K, N>&) { any = true; });
    return any;
  }
  /// Adds the timers written by SnapshotKeyGroup. Processing-time timers
  /// that are already due fire on the next processing-time callback.
  Status RestoreKeyGroup(int key_group, const uint8_t* data, size_t size) {
    ByteReader r(data, size);
    for (int q = 0; q < 2; ++q) {
      uint64_t n = 0;
      r.Read(&n, sizeof(n));
      for (uint64_t i = 0; i < n && !r.Failed(); ++i) {
        Timestamp ts = 0;
        K key{};
        N ns{};
        r.Read(&ts, sizeof(ts));
        TypeSerializer<K>::Deserialize(r, key);
        TypeSerializer<N>::Deserialize(r, ns);
        if (r.Failed()) break;
        if (q == 0) {
          RegisterEventTimeTimer(key_group, key, ns, ts);
        } else {
          RegisterProcessingTimeTimer(key_group, key, ns, ts);
        }
      }
    }
    if (r.Failed() || r.Remaining() != 0) return Status::Corruption("timers of key group " + std::to_string(key_group) + " do not decode");
    return Status::Ok();
  }

  size_t NumEventTimeTimers() const { return event_.Size(); }
  size_t NumProcessingTimeTimers() const { return processing_.Size(); }
  const TimerQueue<K, N>& EventTimers() const { return event_; }
  const TimerQueue<K, N>& ProcessingTimers() const { return processing_; }

 private:
  void OnProcessingTime(Timestamp now) {
    if (now < next_processing_callback_) return;  // a stale callback; a later one is registered
    next_processing_callback_ = kMaxWatermark;
    Timer<K, N> t;
    while (processing_.PollUpTo(now, t)) fire_(t, false);
    if (auto next = processing_.PeekTime()) {
      next_processing_callback_ = *next;
      processing_time_->RegisterTimer(*next, [this](Timestamp at) { OnProcessingTime(at); });
    }
  }

  int max_parallelism_;
  TimerQueue<K, N> event_;
  TimerQueue<K, N> processing_;
  ProcessingTimeService* processing_time_;
  FireFn fire_;
  Timestamp watermark_ = kNoTimestamp;
  Timestamp next_processing_callback_ = kMaxWatermark;
};

}  // namespace freshet::internal
