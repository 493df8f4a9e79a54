#pragma once
// A bounded pool of equally sized memory segments. Producers take segments
// and wait when none is free; consumers give them back. The pool's size is
// what bounds a result partition's memory, so a slow consumer makes its
// producers wait: that wait is back-pressure.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <deque>
#include <vector>

namespace freshet::internal {

/// Told each time a segment returns to a pool. The network stack uses it
/// to turn freed receive segments into credit for the remote sender.
class RecycleListener {
 public:
  virtual ~RecycleListener() = default;
  /// Called on the recycling thread, after the pool's lock is released and
  /// the segment is already free.
  virtual void OnSegmentRecycled() = 0;
};

class BufferPool {
 public:
  BufferPool(size_t segment_size, int num_segments);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  size_t SegmentSize() const { return segment_size_; }
  int NumSegments() const { return num_segments_; }

  /// A free segment, waiting while there is none; nullptr once cancelled.
  /// Thread-safe.
  uint8_t* RequestBlocking();
  /// A free segment or nullptr. Thread-safe.
  uint8_t* TryRequest();
  /// Returns a segment. Thread-safe.
  void Recycle(uint8_t* segment);
  /// Wakes and fails every current and future wait.
  void Cancel();
  /// Sets the listener told of every recycled segment (nullptr: none, the
  /// default, which costs one branch per recycle).
  /// REQUIRES: called before any segment of the pool is handed out; the
  /// listener outlives the pool.
  void SetRecycleListener(RecycleListener* listener) { recycle_listener_ = listener; }

  int AvailableSegments() const;
  /// Total time producers spent waiting for a segment.
  int64_t BackPressuredNanos() const;

 private:
  const size_t segment_size_;
  const int num_segments_;
  std::unique_ptr<uint8_t[]> memory_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint8_t*> free_;
  bool cancelled_ = false;
  int64_t back_pressured_ns_ = 0;
  RecycleListener* recycle_listener_ = nullptr;
};

}  // namespace freshet::internal
