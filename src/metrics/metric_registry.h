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
// gauge callbacks must be quick and must not create or close groups. Job
// groups, whose figures come from a JobMaster's locks, are sampled before
// that lock is taken (see JobMetricGroup).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "freshet/job_client.h"
#include "freshet/status.h"
#include "freshet/types.h"
#include "metrics/metric_group.h"
#include "metrics/metric_view.h"
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

/// A job's figures for the gauges of its job group: Flink's job metrics.
struct JobMetricsSample {
  /// numRestarts (fullRestarts shows the same: Flink keeps it as an alias).
  int64_t restarts = 0;
  /// uptime: ms in RUNNING since the last switch to it; 0 while not
  /// running (created, restarting, cancelling), -1 once the job ended.
  int64_t uptime_ms = 0;
  /// downtime: ms since the current outage began while the job restarts
  /// after a failure; 0 otherwise while it runs, -1 once it ended.
  int64_t downtime_ms = 0;
  /// lastCheckpointDuration (ms) and lastCheckpointSize (bytes) of the
  /// latest completed checkpoint or savepoint; -1 before the first.
  int64_t last_checkpoint_duration_ms = -1;
  int64_t last_checkpoint_size = -1;
  int64_t completed_checkpoints = 0;    // numberOfCompletedCheckpoints
  int64_t failed_checkpoints = 0;       // numberOfFailedCheckpoints (aborted for any reason)
  int64_t in_progress_checkpoints = 0;  // numberOfInProgressCheckpoints
  /// lastCheckpointRestoreTimestamp: wall-clock ms when the current attempt
  /// started from a checkpoint or savepoint; -1 when it started from none.
  int64_t last_restore_timestamp_ms = -1;
};

/// The job manager's group of one job (scope jobmanager.job), with Flink's
/// job metrics as gauges: numRestarts, fullRestarts, uptime, downtime,
/// lastCheckpointDuration, lastCheckpointSize, numberOfCompletedCheckpoints,
/// numberOfFailedCheckpoints, numberOfInProgressCheckpoints,
/// totalNumberOfCheckpoints, lastCheckpointRestoreTimestamp (see
/// JobMetricsSample). The figures are pulled from the job, not pushed by
/// it: the registry calls the sampler, without its lock, right before the
/// group is read (ReadJob, ReadAll), so the job's threads do no metric work.
class JobMetricGroup final : public MetricGroupImpl {
 public:
  /// Returns the job's figures now; nullopt keeps the last ones (the job is
  /// gone). Called on readers' threads, possibly concurrently; it may take
  /// the job's locks but must not read or change the registry.
  using Sampler = std::function<std::optional<JobMetricsSample>()>;

  JobMetricGroup(std::shared_ptr<RegistryState> state, const std::string& host, const std::string& job_id,
                 const std::string& job_name, Sampler sampler);
  ~JobMetricGroup() override;

 private:
  /// The sampler and its latest figures; shared with readers refreshing
  /// them, so the group may go meanwhile.
  struct Figures {
    Sampler sampler;
    std::mutex mu;  // guards `last`; a leaf lock, also taken under the registry's
    JobMetricsSample last;
    void Refresh();
    double Read(int64_t JobMetricsSample::*field);
  };
  std::shared_ptr<Figures> figures_;

  friend class MetricRegistry;
};

enum class Aggregation { kMin, kMax, kAvg, kSum };
/// Parses a comma-separated list ("min,max,avg,sum"); an unknown entry is
/// an InvalidArgument naming it.
Result<std::vector<Aggregation>> ParseAggregations(std::string_view list);
/// The value of `aggregation` in `metric`.
double AggregatedValue(const AggregatedMetric& metric, Aggregation aggregation);

/// The metric groups of one process. As a MetricView it answers from the
/// groups registered here only.
class MetricRegistry final : public MetricView {
 public:
  explicit MetricRegistry(MetricRegistryOptions options = {});
  /// Stops the updater. Groups still alive stay valid (they are simply
  /// reported nowhere any more).
  ~MetricRegistry() override;
  MetricRegistry(const MetricRegistry&) = delete;
  MetricRegistry& operator=(const MetricRegistry&) = delete;

  const std::string& Host() const { return host_; }

  // ---- groups (each registered until closed or destroyed) ----
  /// The job manager's own group (process metrics included).
  std::unique_ptr<MetricGroupImpl> CreateJobManagerGroup();
  /// A job's group whose gauges show what `sampler` returns (see
  /// JobMetricGroup). Without a sampler the gauges keep their initial
  /// figures.
  std::unique_ptr<JobMetricGroup> CreateJobGroup(const std::string& job_id, const std::string& job_name,
                                                 JobMetricGroup::Sampler sampler = {});
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
  /// The task manager and task groups, each with its metrics: what a
  /// TaskManager process sends its JobManager.
  std::vector<GroupReadings> ReadTaskManagerAndTaskGroups() const;

  std::vector<MetricReading> ReadJobManager(const std::vector<std::string>& names = {}) const override;
  Result<std::vector<MetricReading>> ReadJob(const std::string& job_id,
                                             const std::vector<std::string>& names = {}) const override;
  std::vector<std::string> TaskManagerIds() const override;
  Result<std::vector<MetricReading>> ReadTaskManager(const std::string& tm_id,
                                                     const std::vector<std::string>& names = {}) const override;
  Result<std::vector<MetricReading>> ReadSubtask(const std::string& job_id, int vertex_id, int subtask_index,
                                                 const std::vector<std::string>& names = {}) const override;
  Result<std::vector<MetricReading>> ReadVertex(const std::string& job_id, int vertex_id,
                                                const std::vector<std::string>& names = {}) const override;
  Result<std::vector<AggregatedMetric>> AggregateSubtasks(const std::string& job_id, int vertex_id,
                                                          const std::vector<std::string>& names = {}) const override;

 private:
  void Register(MetricGroupImpl& root);
  /// Takes new figures for the job groups (all, or `job_id`'s), without
  /// the lock: samplers may wait for the jobs' locks.
  void RefreshJobGroups(const std::string* job_id) const;
  /// The readings of the registered roots `wanted` selects.
  std::vector<GroupReadings> ReadGroups(const std::function<bool(const MetricGroupImpl&)>& wanted) const;
  /// The task groups of a vertex, every attempt.
  std::vector<GroupReadings> ReadVertexGroups(const std::string& job_id, int vertex_id) const;
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
