#include "metrics/task_metrics.h"

#include <algorithm>

namespace freshet::internal {

namespace {

int64_t NanosToMillis(int64_t ns) { return ns / 1'000'000; }

GroupScope TaskGroupScope(const TaskScope& t) {
  GroupScope s;
  s.kind = ScopeKind::kTask;
  s.components = {t.host, "taskmanager", t.tm_id, t.job_name, t.task_name, std::to_string(t.subtask_index)};
  s.logical = {"taskmanager", "job", "task"};
  s.variables = {{"host", t.host},
                 {"tm_id", t.tm_id},
                 {"job_id", t.job_id},
                 {"job_name", t.job_name},
                 {"task_id", std::to_string(t.vertex_id)},
                 {"task_name", t.task_name},
                 {"subtask_index", std::to_string(t.subtask_index)},
                 {"task_attempt_num", std::to_string(t.attempt)}};
  return s;
}

}  // namespace

TaskIoMetrics::TaskIoMetrics(MetricGroupImpl& group)
    : group_(group),
      records_in_(group.Counter("numRecordsIn")),
      records_out_(group.Counter("numRecordsOut")),
      bytes_in_(group.Counter("numBytesIn")),
      started_ns_(SteadyNow().count()) {
  group.Meter("numRecordsInPerSecond", records_in_);
  group.Meter("numRecordsOutPerSecond", records_out_);
  group.Meter("numBytesInPerSecond", bytes_in_);
  // Meters and gauges read on the reporters' threads, under the group's
  // mutex (which also guards back_pressured_).
  freshet::Meter& idle = group.MeterOfTotal(
      "idleTimeMsPerSecond", [this] { return NanosToMillis(idle_.TotalNanos(SteadyNow().count())); });
  freshet::Meter& back_pressured = group.MeterOfTotal(
      "backPressuredTimeMsPerSecond", [this] { return NanosToMillis(BackPressuredNanosLocked()); });
  group.Gauge("busyTimeMsPerSecond", [&idle, &back_pressured] {
    return std::clamp(1000.0 - idle.GetRate() - back_pressured.GetRate(), 0.0, 1000.0);
  });
  group.Gauge("accumulateIdleTimeMs",
              [this] { return static_cast<double>(NanosToMillis(idle_.TotalNanos(SteadyNow().count()))); });
  group.Gauge("accumulateBackPressuredTimeMs",
              [this] { return static_cast<double>(NanosToMillis(BackPressuredNanosLocked())); });
  group.Gauge("accumulateBusyTimeMs", [this] {
    int64_t now = SteadyNow().count();
    int64_t busy = (now - started_ns_) - idle_.TotalNanos(now) - BackPressuredNanosLocked();
    return static_cast<double>(NanosToMillis(std::max<int64_t>(busy, 0)));
  });
  group.Gauge("currentInputWatermark",
              [this] { return static_cast<double>(input_watermark_.load(std::memory_order_relaxed)); });
}

void TaskIoMetrics::SetBackPressureSource(std::function<int64_t()> back_pressured_nanos) {
  std::lock_guard lock(group_.Mutex());
  back_pressured_ = std::move(back_pressured_nanos);
}

TaskMetricGroup::TaskMetricGroup(std::shared_ptr<RegistryState> state, const TaskScope& scope)
    : MetricGroupImpl(std::move(state), TaskGroupScope(scope),
                      RootKey{scope.tm_id, scope.job_id, scope.vertex_id, scope.subtask_index, scope.attempt}),
      task_(scope),
      io_(*this) {}

TaskMetricGroup::~TaskMetricGroup() {
  // Unregister before the members the gauges read go away.
  Close();
}

MetricGroup& TaskMetricGroup::AddOperator(int operator_id, std::string_view operator_name) {
  GroupScope s = Scope();
  s.kind = ScopeKind::kOperator;
  s.components = {task_.host,     "taskmanager", task_.tm_id, task_.job_name, std::string(operator_name),
                  std::to_string(task_.subtask_index)};
  s.logical.emplace_back("operator");
  s.variables.emplace_back("operator_id", std::to_string(operator_id));
  s.variables.emplace_back("operator_name", std::string(operator_name));
  s.relative_prefix = std::string(operator_name) + ".";
  return AddScopedGroup(std::to_string(operator_id), std::move(s));
}

}  // namespace freshet::internal
