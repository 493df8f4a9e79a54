#pragma once
/// Sources: a `Source<T>` describes the data and creates one reader per
/// parallel subtask. Readers are polled by their task's thread and must not
/// block it for long: when nothing is available they say so, and the task
/// waits until `PollDelay()` passes or the reader calls `NotifyAvailable()`.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/internal/operator.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {

enum class Boundedness { kBounded, kContinuousUnbounded };

enum class InputStatus {
  kMoreAvailable,     // poll again at once
  kNothingAvailable,  // wait for NotifyAvailable() or PollDelay()
  kEndOfInput,        // this reader is done
};

/// Injectable clocks: processing time and sleeping go through a Clock so
/// tests can drive time.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Milliseconds since the epoch.
  virtual Timestamp NowMillis() const = 0;
  /// Monotonic nanoseconds for measuring intervals.
  virtual int64_t MonotonicNanos() const = 0;
  /// The process-wide system clock.
  static Clock& System();
};

/// What a reader knows about its subtask. Valid for the reader's life time.
class SourceReaderContext {
 public:
  virtual ~SourceReaderContext() = default;
  virtual int SubtaskIndex() const = 0;
  virtual int Parallelism() const = 0;
  virtual Clock& GetClock() const = 0;
  /// Thread-safe: wakes the task so it polls the reader again.
  virtual void NotifyAvailable() = 0;
};

/// Receives a reader's records; the records go straight into the chain.
template <class T>
class ReaderOutput {
 public:
  explicit ReaderOutput(internal::Output<T>* output, int64_t* counter) : output_(output), counter_(counter) {}
  void Collect(const T& value) { Collect(value, kNoTimestamp); }
  void Collect(const T& value, Timestamp ts) {
    ++*counter_;
    output_->Collect(value, ts);
  }

 private:
  internal::Output<T>* output_;
  int64_t* counter_;
};

template <class T>
class SourceReader {
 public:
  virtual ~SourceReader() = default;
  /// Opens files, sockets and so on. An error fails the task with its message.
  virtual Status Open() { return Status::Ok(); }
  /// Emits a batch of records. Should return after a bounded amount of work.
  virtual Result<InputStatus> PollNext(ReaderOutput<T>& output) = 0;
  /// How long to wait after kNothingAvailable before polling again.
  virtual Duration PollDelay() const { return Duration(50); }
  virtual void Close() {}

  /// The reader's unfinished splits with their positions, for checkpoint
  /// `id`: one entry per split. Called on the task thread between polls.
  /// After a restore (possibly at another parallelism) the entries of all
  /// readers are redistributed over the new readers.
  virtual Result<std::vector<std::string>> SnapshotState(CheckpointId /*id*/) {
    return Status::FailedPrecondition("this source does not implement SnapshotState, so it cannot be checkpointed");
  }
  /// Called before Open() when the job starts from a snapshot: the reader
  /// reads exactly these splits (possibly none) instead of its initial
  /// assignment.
  virtual Status RestoreState(std::vector<std::string> /*splits*/) {
    return Status::FailedPrecondition("this source does not implement RestoreState, so it cannot be restored");
  }
};

template <class T>
class Source {
 public:
  using OutputType = T;
  virtual ~Source() = default;
  virtual Boundedness GetBoundedness() const = 0;
  /// Creates the reader of subtask `context.SubtaskIndex()`.
  virtual std::unique_ptr<SourceReader<T>> CreateReader(SourceReaderContext& context) const = 0;
  /// Largest parallelism the source supports (1 for non-parallel sources).
  virtual int MaxParallelism() const { return 1 << 15; }
};

}  // namespace freshet
