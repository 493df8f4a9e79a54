#pragma once
/// Sinks: a `Sink<T>` creates one writer per parallel subtask.

#include <functional>
#include <memory>
#include <string>

#include "freshet/checkpoint.h"
#include "freshet/functions.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {

namespace internal {
struct OperatorRestore;
class SnapshotOutput;
class ProcessingTimeService;

/// Optional interface of a SinkWriter<T> whose state goes into checkpoints
/// (two-phase-commit writers, see two_phase_commit.h). The operator running
/// the writer finds it with one dynamic_cast and forwards its checkpoint
/// calls; all calls come from the task thread, never concurrently. A writer
/// implementing it gets Finish() instead of Flush(true) at the end of input.
/// An error fails the task, except from PrepareSnapshotPreBarrier and
/// SnapshotState, where it declines the checkpoint.
class CheckpointedSinkWriter {
 public:
  virtual ~CheckpointedSinkWriter() = default;
  /// Called once, right after the writer is created: the operator's name
  /// (for errors), the task's processing-time service (outlives the writer)
  /// and whether the job takes checkpoints, in which case a final checkpoint
  /// and its completion notification follow Finish().
  virtual void SetUp(const std::string& operator_name, ProcessingTimeService* processing_time,
                     bool checkpointing) = 0;
  /// Before Open(): the state this subtask restores (`restore.restored` is
  /// false on a fresh start).
  virtual Status InitializeState(const OperatorRestore& restore) = 0;
  virtual void ProcessWatermark(Timestamp watermark) = 0;
  /// The barrier of `id` reached the sink: every record before it was written.
  virtual Status PrepareSnapshotPreBarrier(CheckpointId id) = 0;
  /// Captures the state of checkpoint `id`; the returned function writes it,
  /// possibly on another thread, and must not touch the writer.
  virtual Result<std::function<Status(SnapshotOutput&)>> SnapshotState(CheckpointId id) = 0;
  virtual Status NotifyCheckpointComplete(CheckpointId id) = 0;
  virtual Status NotifyCheckpointAborted(CheckpointId id) = 0;
  /// The input ended (in place of Flush(true)).
  virtual Status Finish() = 0;
};
}  // namespace internal

template <class T>
class SinkWriter {
 public:
  virtual ~SinkWriter() = default;
  /// Opens files or connections. An error fails the task with its message.
  virtual Status Open(RuntimeContext& /*context*/) { return Status::Ok(); }
  virtual Status Write(const T& value, Timestamp ts) = 0;
  /// Makes written records durable or visible; `end_of_input` at the end of a bounded job.
  virtual Status Flush(bool /*end_of_input*/) { return Status::Ok(); }
  virtual void Close() {}
};

template <class T>
class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::unique_ptr<SinkWriter<T>> CreateWriter(RuntimeContext& context) const = 0;
};

}  // namespace freshet
