#pragma once
// A producer subtask's output for one edge: one subpartition (queue of
// finished buffers) per consumer subtask, and the buffer pool that bounds
// its memory. The producer appends from its task thread; each consumer
// polls its subpartition from its own thread (locally) or through the
// network stack (remotely).

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "freshet/internal/buffer.h"
#include "runtime/io/buffer_pool.h"

namespace freshet::internal {

/// Identifies a result partition within a job run: the edge and the
/// producing subtask.
struct PartitionId {
  std::string job_id;
  int edge = -1;
  int producer_subtask = -1;
  std::string Key() const { return job_id + "/" + std::to_string(edge) + "/" + std::to_string(producer_subtask); }
};

/// Told when a subpartition goes from empty to non-empty.
class AvailabilityListener {
 public:
  virtual ~AvailabilityListener() = default;
  /// Called with the subpartition's lock held: must not call back into it.
  virtual void NotifyDataAvailable(int token) = 0;
};

class ResultPartition {
 public:
  ResultPartition(PartitionId id, int num_subpartitions, size_t segment_size, int num_buffers);

  const PartitionId& Id() const { return id_; }
  int NumSubpartitions() const { return static_cast<int>(subpartitions_.size()); }
  BufferPool& Pool() { return pool_; }

  /// Producer: makes a finished buffer visible to the consumer.
  void Add(int subpartition, Buffer buffer);
  /// Producer: puts `event` ahead of every queued buffer (an unaligned
  /// checkpoint barrier) and appends the bytes of the data buffers it
  /// overtook to `overtaken`, in one step.
  void AddOvertaking(int subpartition, Buffer event, std::string* overtaken);
  /// Consumer: takes the oldest buffer; `more` tells whether others wait.
  bool Poll(int subpartition, Buffer& out, bool& more);
  /// Consumer: registers for availability (notified at once if non-empty);
  /// nullptr unregisters. After unregistering no further call is made.
  void SetListener(int subpartition, AvailabilityListener* listener, int token);
  /// Buffers queued in a subpartition (for tests and metrics).
  size_t QueuedBuffers(int subpartition) const;
  /// Wakes producers waiting for buffers; they fail with cancellation.
  void Cancel() { pool_.Cancel(); }

 private:
  struct Subpartition {
    mutable std::mutex mu;
    std::deque<Buffer> queue;
    AvailabilityListener* listener = nullptr;
    int token = 0;
  };
  PartitionId id_;
  BufferPool pool_;
  std::vector<std::unique_ptr<Subpartition>> subpartitions_;
};

}  // namespace freshet::internal
