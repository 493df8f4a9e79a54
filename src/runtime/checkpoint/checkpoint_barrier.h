#pragma once
// Checkpoint barriers and the interface through which tasks answer the
// checkpoint coordinator.

#include <cstdint>
#include <string>

#include "freshet/checkpoint.h"
#include "freshet/status.h"
#include "freshet/types.h"
#include "runtime/checkpoint/checkpoint_storage.h"

namespace freshet::internal {

/// Travels in-band, as an event buffer per channel, from the sources to
/// every task. Tasks snapshot their state when it has arrived on all their
/// input channels (aligned) and forward it.
struct CheckpointBarrier {
  CheckpointId id = 0;
  Timestamp timestamp = 0;
  bool savepoint = false;
  /// The job stops once this checkpoint completes (stop-with-savepoint, or
  /// the final checkpoint after every source ended): tasks process nothing
  /// after it and end when it is confirmed.
  bool terminate = false;
  /// Unaligned: the barrier overtook the data its producer had queued,
  /// which the producer wrote with its snapshot.
  bool unaligned = false;
  /// Where tasks write their state files.
  std::string directory;

  /// The event buffer's bytes (first byte: EventKind::kCheckpointBarrier).
  std::string Encode() const;
  static Result<CheckpointBarrier> Decode(const uint8_t* data, size_t size);
};

/// How a task answers the coordinator. Thread-safe; calls come from task
/// threads and snapshot threads.
class CheckpointResponder {
 public:
  virtual ~CheckpointResponder() = default;
  /// The task's state for checkpoint `id` is written.
  virtual void AcknowledgeCheckpoint(const std::string& execution_id, CheckpointId id, TaskStateSnapshot state) = 0;
  /// The task could not take part in checkpoint `id`.
  virtual void DeclineCheckpoint(const std::string& execution_id, CheckpointId id, Status reason) = 0;
  /// A source task read all its input (or was told to drain) and waits for
  /// the final checkpoint.
  virtual void ReportEndOfData(const std::string& execution_id) = 0;
  /// The task restored its state and opened its operators: it can no
  /// longer fail for a state that does not match the job.
  virtual void ReportInitialized(const std::string& execution_id) { (void)execution_id; }
};

}  // namespace freshet::internal
