#pragma once
// The process-wide registry of metric groups, with Flink's scopes:
//
//   scope             components                                   variables
//   jobmanager        <host>.jobmanager                            host
//   jobmanager job    <host>.jobmanager.<job_name>                 + job_id, job_name
//   taskmanager       <host>.taskmanager.<tm_id>                   host, tm_id
//   task              <host>.taskmanager.<tm_id>.<job_name>.       + job_id, job_name, task_id (vertex id),
//                     <task_name>.<subtask_index>                    task_name, subtask_index, task_attempt_num
//   operator          ...<job_name>.<operator_name>.<subtask>      + operator_id, operator_name
//
// Whoever creates a group owns it; closing or destroying it unregisters it
// and every metric in it (a task's group goes when the task ends, a job's
// when the job ends). The registry answers the REST API's queries and
// feeds the reporters; a background thread refreshes the meters.
//
// Threading: everything is thread-safe. One mutex guards the registry and
// the structure of all its groups; it is held while metrics are read, so
// gauge callbacks must be quick and must not create or close groups.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "freshet/job_client.h"
#include "freshet/status.h"
#include "freshet/types.h"
#include "metrics/metric_group.h"
#include "metrics/task_metrics.h"

namespace freshet::internal {

struct MetricRegistryOptions {
  /// The <host> variable of every scope; empty: this machine's host name.
  std::string host;
  /// How often the updater thread samples every meter. Zero: no thread;
  /// the owner calls UpdateMeters() itself (tests).
  std::chrono::milliseconds update_interval{1000};
  /// The monotonic clock meters are sampled with; empty: the steady clock.
  /// Tests inject a fake one to control meter rates.
  std::function<std::chrono::nanoseconds()> clock;
};

/// The root group of a task manager: Status.Process.CpuTime (ns),
/// Status.Process.ResidentMemory (bytes), taskSlotsTotal,
/// taskSlotsAvailable.
class TaskManagerMetricGroup final : public MetricGroupImpl {
 public:
  TaskManagerMetricGroup(std::shared_ptr<RegistryState> state, const std::string& host, const std::string& tm_id,
                         int slots_total, std::function<int()> slots_available);
  ~TaskManagerMetricGroup() override;
};

/// The job manager's group of one job (scope jobmanager.job), with Flink's
/// job metrics as gauges the JobMaster feeds: numRestarts, uptime (ms in
/// RUNNING since the last switch to it; 0 while not running, -1 once the
/// job ended), lastCheckpointDuration (ms), lastCheckpointSize (bytes; both
/// -1 before the first completed checkpoint), numberOfCompletedCheckpoints,
/// numberOfFailedCheckpoints. Every method is thread-safe.
class JobMetricGroup final : public MetricGroupImpl {
 public:
  JobMetricGroup(std::shared_ptr<RegistryState> state, const std::string& host, const std::string& job_id,
                 const std::string& job_name);
  ~JobMetricGroup() override;

  /// The job's status changed.
  void ReportStatus(JobStatus status);
  /// The job restarted after a failure.
  void ReportRestart();
  /// A checkpoint or savepoint completed.
  void ReportCompletedCheckpoint(Duration duration, int64_t size_bytes);
  /// A checkpoint failed (declined, expired or aborted).
  void ReportFailedCheckpoint();

 private:
  static constexpr int64_t kNotRunning = -1;
  static constexpr int64_t kEnded = -2;
  std::atomic<int64_t> running_since_ns_{kNotRunning};  // registry clock; or kNotRunning / kEnded
  std::atomic<int64_t> restarts_{0};
  std::atomic<int64_t> last_checkpoint_duration_ms_{-1};
  std::atomic<int64_t> last_checkpoint_size_{-1};
  std::atomic<int64_t> completed_checkpoints_{0};
  std::atomic<int64_t> failed_checkpoints_{0};
};

/// Aggregates of one metric over a vertex's subtasks (Flink's
/// /jobs/:jobid/vertices/:vid/subtasks/metrics?get=...&agg=...).
struct AggregatedMetric {
  std::string name;
  int subtasks = 0;  // subtasks that have the metric
  double min = 0;
  double max = 0;
  double avg = 0;
  double sum = 0;
};

enum class Aggregation { kMin, kMax, kAvg, kSum };
/// Parses a comma-separated list ("min,max,avg,sum"); an unknown entry is
/// an InvalidArgument naming it.
Result<std::vector<Aggregation>> ParseAggregations(std::string_view list);
/// The value of `aggregation` in `metric`.
double AggregatedValue(const AggregatedMetric& metric, Aggregation aggregation);

class MetricRegistry {
 public:
  explicit MetricRegistry(MetricRegistryOptions options = {});
  /// Stops the updater. Groups still alive stay valid (they are simply
  /// reported nowhere any more).
  ~MetricRegistry();
  MetricRegistry(const MetricRegistry&) = delete;
  MetricRegistry& operator=(const MetricRegistry&) = delete;

  const std::string& Host() const { return host_; }

  // ---- groups (each registered until closed or destroyed) ----
  /// The job manager's own group (process metrics included).
  std::unique_ptr<MetricGroupImpl> CreateJobManagerGroup();
  std::unique_ptr<JobMetricGroup> CreateJobGroup(const std::string& job_id, const std::string& job_name);
  /// `slots_available` is read on the reporters' threads, under the
  /// registry's lock.
  std::unique_ptr<TaskManagerMetricGroup> CreateTaskManagerGroup(const std::string& tm_id, int slots_total,
                                                                 std::function<int()> slots_available);
  /// `scope.host` is filled in with the registry's host.
  std::unique_ptr<TaskMetricGroup> CreateTaskGroup(TaskScope scope);

  /// Samples every registered meter now (the updater calls it every
  /// update interval).
  void UpdateMeters();

  // ---- queries; `names` empty: every metric ----
  /// Every registered metric with its scope, for reporters.
  std::vector<ScopedMetricReading> ReadAll() const;
  std::vector<MetricReading> ReadJobManager(const std::vector<std::string>& names = {}) const;
  /// The job's job-manager metrics; NotFound when the job has no group.
  Result<std::vector<MetricReading>> ReadJob(const std::string& job_id,
                                             const std::vector<std::string>& names = {}) const;
  std::vector<std::string> TaskManagerIds() const;
  Result<std::vector<MetricReading>> ReadTaskManager(const std::string& tm_id,
                                                     const std::vector<std::string>& names = {}) const;
  /// One subtask's metrics (its latest attempt), named relative to the
  /// task: "numRecordsIn", "<operator>.<metric>". NotFound when the
  /// subtask has no registered group.
  Result<std::vector<MetricReading>> ReadSubtask(const std::string& job_id, int vertex_id, int subtask_index,
                                                 const std::vector<std::string>& names = {}) const;
  /// Every subtask's metrics, named "<subtask>.<name>" like Flink's
  /// /jobs/:jobid/vertices/:vid/metrics. NotFound when no subtask of the
  /// vertex has a registered group.
  Result<std::vector<MetricReading>> ReadVertex(const std::string& job_id, int vertex_id,
                                                const std::vector<std::string>& names = {}) const;
  /// Per metric name (relative to the task), min/max/avg/sum over the
  /// vertex's subtasks; histograms are left out. NotFound as ReadVertex.
  Result<std::vector<AggregatedMetric>> AggregateSubtasks(const std::string& job_id, int vertex_id,
                                                          const std::vector<std::string>& names = {}) const;

 private:
  void Register(MetricGroupImpl& root);
  /// The registered task groups of a vertex, the latest attempt per
  /// subtask, by subtask index. REQUIRES: the lock is held.
  std::vector<const MetricGroupImpl*> VertexGroupsLocked(const std::string& job_id, int vertex_id) const;
  void UpdaterLoop();

  const std::string host_;
  const std::chrono::milliseconds update_interval_;
  std::shared_ptr<RegistryState> state_;
  std::mutex updater_mu_;
  std::condition_variable updater_cv_;
  bool stop_ = false;
  std::thread updater_;
};

}  // namespace freshet::internal
