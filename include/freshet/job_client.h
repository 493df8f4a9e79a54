#pragma once
/// Handles on submitted jobs and their results.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {

enum class JobStatus { kCreated, kRunning, kFinished, kFailed, kCanceling, kCanceled };
const char* JobStatusName(JobStatus status);

struct JobExecutionResult {
  std::string job_id;
  std::string job_name;
  Duration net_runtime{0};
  /// Records emitted by all sources.
  int64_t records_in = 0;
  /// Records taken by all sinks.
  int64_t records_out = 0;
  /// Byte results per accumulator name, one entry per subtask in subtask order.
  std::map<std::string, std::vector<std::string>> accumulators;
  /// Operator counters summed over subtasks ("<operator>.numLateRecordsDropped").
  std::map<std::string, int64_t> counters;
};

/// A running or finished job. Thread-safe.
class JobClient {
 public:
  virtual ~JobClient() = default;
  virtual const std::string& GetJobId() const = 0;
  virtual JobStatus GetJobStatus() const = 0;
  /// Requests cancellation; returns at once. Wait() then reports kCancelled.
  virtual void Cancel() = 0;
  /// Blocks until the job reaches a terminal state.
  virtual Result<JobExecutionResult> Wait() = 0;
  /// Like Wait(), but gives up after `timeout` (std::nullopt: still running).
  virtual std::optional<Result<JobExecutionResult>> WaitFor(Duration timeout) = 0;
};

}  // namespace freshet
