#pragma once
// The metric group of one subtask and the built-in metrics its task thread
// keeps, with Flink's names:
//
//   numRecordsIn, numRecordsOut, numBytesIn   counters: records read from
//       the network inputs, records written to the network outputs, bytes
//       of the buffers read (chained hand-overs are not counted, as in
//       Flink: a source task has no records in, a sink task none out)
//   numRecordsInPerSecond, numRecordsOutPerSecond, numBytesInPerSecond
//       meters over those counters
//   idleTimeMsPerSecond           time spent waiting for input (or, in a
//       source, for the source to have data), ms per second
//   backPressuredTimeMsPerSecond  time spent waiting for an output buffer
//   busyTimeMsPerSecond           the rest: 1000 - idle - back-pressured
//   accumulateIdleTimeMs, accumulateBackPressuredTimeMs,
//   accumulateBusyTimeMs          the same as totals since the task started
//   currentInputWatermark         the lowest input watermark of the head
//                                 operator (network inputs only)
//
// Cost on the task thread: the counters are published once per input
// buffer or source poll (a relaxed store each); the clock is read only
// around waits for input. Back-pressure is read from the output buffer
// pools by the reporters, not measured by the task.

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "metrics/metric_group.h"

namespace freshet::internal {

/// Total time spent in waits, one writer (Begin/End), any readers. The
/// readers see the wait in progress too, so a long wait shows while it
/// lasts. Total and start change together under a sequence lock.
class WaitTimer {
 public:
  void Begin(int64_t now_ns) { Write(total_.load(std::memory_order_relaxed), now_ns); }
  void End(int64_t now_ns) {
    int64_t since = since_.load(std::memory_order_relaxed);
    if (since < 0) return;
    Write(total_.load(std::memory_order_relaxed) + (now_ns - since), -1);
  }
  /// Completed waits plus the one in progress, at `now_ns`.
  int64_t TotalNanos(int64_t now_ns) const {
    while (true) {
      uint32_t before = seq_.load(std::memory_order_acquire);
      if ((before & 1U) == 0) {
        // Acquire loads keep the second read of seq_ after them: a value
        // from a write in progress makes that read see the odd count.
        int64_t total = total_.load(std::memory_order_acquire);
        int64_t since = since_.load(std::memory_order_acquire);
        if (seq_.load(std::memory_order_relaxed) == before) {
          return since >= 0 && now_ns > since ? total + (now_ns - since) : total;
        }
      }
      std::this_thread::yield();
    }
  }

 private:
  void Write(int64_t total, int64_t since) {
    uint32_t seq = seq_.load(std::memory_order_relaxed);
    seq_.store(seq + 1, std::memory_order_relaxed);
    // Release stores (no fences: ThreadSanitizer does not model them): a
    // reader that sees either value also sees the odd count before it.
    total_.store(total, std::memory_order_release);
    since_.store(since, std::memory_order_release);
    seq_.store(seq + 2, std::memory_order_release);
  }
  std::atomic<uint32_t> seq_{0};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> since_{-1};  // start of the wait in progress, -1: none
};

/// The built-in metrics of a task (see the file comment). Task-thread
/// methods are single-writer and lock-free.
class TaskIoMetrics {
 public:
  /// Registers the metrics in `task_group`, which owns them and this object.
  explicit TaskIoMetrics(MetricGroupImpl& task_group);
  TaskIoMetrics(const TaskIoMetrics&) = delete;
  TaskIoMetrics& operator=(const TaskIoMetrics&) = delete;

  // ---- task thread ----
  /// The task's running totals of records read and written.
  void Publish(int64_t records_in, int64_t records_out) {
    records_in_.Inc(records_in - records_in_.GetCount());
    records_out_.Inc(records_out - records_out_.GetCount());
  }
  void AddBytesIn(int64_t bytes) { bytes_in_.Inc(bytes); }
  int64_t BytesIn() const { return bytes_in_.GetCount(); }
  void SetInputWatermark(int64_t watermark) { input_watermark_.store(watermark, std::memory_order_relaxed); }
  void BeginIdle() { idle_.Begin(SteadyNow().count()); }
  void EndIdle() { idle_.End(SteadyNow().count()); }

  /// Where the time the task waited for output buffers is read from
  /// (nanoseconds, growing); called on the reporters' threads. Set before
  /// the task runs; unset: no back-pressure.
  void SetBackPressureSource(std::function<int64_t()> back_pressured_nanos);

 private:
  int64_t BackPressuredNanosLocked() const { return back_pressured_ ? back_pressured_() : 0; }

  MetricGroupImpl& group_;
  freshet::Counter& records_in_;
  freshet::Counter& records_out_;
  freshet::Counter& bytes_in_;
  WaitTimer idle_;
  std::atomic<int64_t> input_watermark_{std::numeric_limits<int64_t>::min()};
  std::function<int64_t()> back_pressured_;  // guarded by the group's mutex
  int64_t started_ns_;
};

/// Who a task is, for its scope's variables.
struct TaskScope {
  std::string host;
  std::string tm_id;
  std::string job_id;
  std::string job_name;
  int vertex_id = -1;
  std::string task_name;  // the vertex's name
  int subtask_index = 0;
  int attempt = 0;
};

/// The root group of one subtask (scope taskmanager.job.task), with its
/// operators' groups (taskmanager.job.task.operator) below it.
class TaskMetricGroup final : public MetricGroupImpl {
 public:
  /// `state` null: a group reported nowhere (a task run outside a
  /// TaskExecutor with metrics).
  TaskMetricGroup(std::shared_ptr<RegistryState> state, const TaskScope& scope);
  ~TaskMetricGroup() override;

  /// The group of the chain's operator `operator_id` (created once).
  MetricGroup& AddOperator(int operator_id, std::string_view operator_name);
  TaskIoMetrics& Io() { return io_; }

 private:
  TaskScope task_;
  TaskIoMetrics io_;
};

}  // namespace freshet::internal
