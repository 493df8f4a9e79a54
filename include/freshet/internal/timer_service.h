#pragma once
/// Timers of keyed operators: per time domain, de-duplicated per
/// (key, namespace, timestamp), fired in timestamp order, stored per key
/// group (the unit of snapshots and rescaling).

#include <boost/unordered/unordered_flat_set.hpp>

#include <functional>
#include <optional>
#include <queue>
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

/// One time domain's timers, partitioned by key group. A global heap gives
/// the firing order; the per-group sets are the truth (deleted timers stay
/// in the heap until popped and are skipped).
template <class K, class N>
class TimerQueue {
 public:
  explicit TimerQueue(KeyGroupRange range) : range_(range), groups_(static_cast<size_t>(std::max(range.Size(), 1))) {}

  /// False when the same timer is already set.
  bool Add(int key_group, Timestamp ts, const K& key, const N& ns) {
    Timer<K, N> t{ts, key, ns, key_group};
    if (!Group(key_group).insert(t).second) return false;
    heap_.push(std::move(t));
    ++size_;
    return true;
  }
  bool Remove(int key_group, Timestamp ts, const K& key, const N& ns) {
    if (Group(key_group).erase(Timer<K, N>{ts, key, ns, key_group}) == 0) return false;
    --size_;
    return true;
  }
  /// Earliest live timer's time, if any.
  std::optional<Timestamp> PeekTime() {
    SkipDeleted();
    if (heap_.empty()) return std::nullopt;
    return heap_.top().timestamp;
  }
  /// Removes and returns the earliest timer if its time is <= `time`.
  bool PollUpTo(Timestamp time, Timer<K, N>& out) {
    SkipDeleted();
    if (heap_.empty() || heap_.top().timestamp > time) return false;
    out = heap_.top();
    heap_.pop();
    Group(out.key_group).erase(out);
    --size_;
    return true;
  }
  size_t Size() const { return size_; }
  /// Timers of one key group (snapshots).
  template <class F>
  void ForEachInKeyGroup(int key_group, F f) const {
    for (const auto& t : groups_[static_cast<size_t>(key_group - range_.start)]) f(t);
  }

 private:
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
