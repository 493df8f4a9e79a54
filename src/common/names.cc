// Text names of enums and small value helpers of the public API.
#include <fmt/format.h>

#include <chrono>

#include "freshet/functions.h"
#include "freshet/internal/operator.h"
#include "freshet/job_client.h"
#include "freshet/source.h"

namespace freshet {

std::string RuntimeContext::GetTaskNameWithSubtasks() const {
  return fmt::format("{} ({}/{})#{}", task_name_, subtask_ + 1, parallelism_, attempt_);
}

const char* JobStatusName(JobStatus status) {
  switch (status) {
    case JobStatus::kCreated:
      return "CREATED";
    case JobStatus::kRunning:
      return "RUNNING";
    case JobStatus::kFinished:
      return "FINISHED";
    case JobStatus::kFailed:
      return "FAILED";
    case JobStatus::kCanceling:
      return "CANCELLING";
    case JobStatus::kCanceled:
      return "CANCELED";
    case JobStatus::kRestarting:
      return "RESTARTING";
  }
  return "UNKNOWN";
}

namespace {
class SystemClock final : public Clock {
 public:
  Timestamp NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};
}  // namespace

Clock& Clock::System() {
  static SystemClock clock;
  return clock;
}

namespace internal {
const char* PartitionerName(PartitionerKind kind) {
  switch (kind) {
    case PartitionerKind::kForward:
      return "FORWARD";
    case PartitionerKind::kRebalance:
      return "REBALANCE";
    case PartitionerKind::kRescale:
      return "RESCALE";
    case PartitionerKind::kShuffle:
      return "SHUFFLE";
    case PartitionerKind::kBroadcast:
      return "BROADCAST";
    case PartitionerKind::kGlobal:
      return "GLOBAL";
    case PartitionerKind::kHash:
      return "HASH";
    case PartitionerKind::kCustom:
      return "CUSTOM";
  }
  return "UNKNOWN";
}
}  // namespace internal

}  // namespace freshet
