#include "cluster/job_metrics.h"

#include <algorithm>
#include <chrono>
#include <optional>

namespace freshet::internal {

namespace {

int64_t MillisBetween(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count());
}

}  // namespace

JobMetricsSample SampleJobMetrics(const JobMaster& master, const Clock& clock) {
  const JobMaster::View view = master.Describe();
  const auto now = std::chrono::steady_clock::now();
  JobMetricsSample s;
  s.restarts = view.restarts;
  switch (view.status) {
    case JobStatus::kRunning:
      // The JobMaster switches to RUNNING when it deploys an attempt.
      s.uptime_ms = MillisBetween(view.attempt_start, now);
      s.downtime_ms = 0;
      break;
    case JobStatus::kRestarting: {
      // The outage began when the first task of the attempt ended (the
      // failure, or the cancellation a failed checkpoint caused).
      std::optional<std::chrono::steady_clock::time_point> down_since;
      for (const JobMaster::ExecutionView& e : view.executions) {
        if (e.ended && (!down_since || *e.ended < *down_since)) down_since = e.ended;
      }
      s.uptime_ms = 0;
      s.downtime_ms = down_since ? MillisBetween(*down_since, now) : 0;
      break;
    }
    case JobStatus::kFinished:
    case JobStatus::kFailed:
    case JobStatus::kCanceled:
      s.uptime_ms = -1;
      s.downtime_ms = -1;
      break;
    case JobStatus::kCreated:
    case JobStatus::kCanceling:
      s.uptime_ms = 0;
      s.downtime_ms = 0;
      break;
  }
  if (!view.restored_directory.empty()) {
    s.last_restore_timestamp_ms = clock.NowMillis() - MillisBetween(view.attempt_start, now);
  }

  const CheckpointCoordinator& coordinator = master.Coordinator();
  s.completed_checkpoints = coordinator.NumCompleted();
  s.failed_checkpoints = coordinator.NumAborted();
  CheckpointCoordinator::Summary summary = coordinator.Summarize();
  s.in_progress_checkpoints = summary.in_progress;
  s.last_checkpoint_duration_ms = summary.last_duration_ms;
  s.last_checkpoint_size = summary.last_state_size;
  return s;
}

std::unique_ptr<JobMetricGroup> RegisterJobMetrics(MetricRegistry& registry, const JobGraph& job,
                                                   std::weak_ptr<const JobMaster> master, const Clock& clock) {
  const Clock* clock_ptr = &clock;
  return registry.CreateJobGroup(job.job_id, job.stream_graph->job_name,
                                 [master = std::move(master), clock_ptr]() -> std::optional<JobMetricsSample> {
                                   std::shared_ptr<const JobMaster> m = master.lock();
                                   if (m == nullptr) return std::nullopt;
                                   return SampleJobMetrics(*m, *clock_ptr);
                                 });
}

}  // namespace freshet::internal
