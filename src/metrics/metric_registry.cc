#include "metrics/metric_registry.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "metrics/process_metrics.h"

namespace freshet::internal {

namespace {

std::string ThisHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

bool Wanted(const std::vector<std::string>& names, const std::string& name) {
  return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
}

void AddProcessMetrics(MetricGroup& group) {
  MetricGroup& process = group.AddGroup("Status").AddGroup("Process");
  process.Gauge("CpuTime", [] { return static_cast<double>(ProcessCpuTimeNanos()); });
  process.Gauge("ResidentMemory", [] { return static_cast<double>(ProcessResidentBytes()); });
}

/// Readings of one registered group, with names relative to it.
std::vector<MetricReading> ReadGroupLocked(const MetricGroupImpl& group, const std::vector<std::string>& names) {
  std::vector<MetricReading> out;
  group.VisitLocked([&](const MetricGroupImpl&, const MetricReading& r) {
    if (Wanted(names, r.name)) out.push_back(r);
  });
  return out;
}

}  // namespace

// ---- groups -------------------------------------------------------------------

TaskManagerMetricGroup::TaskManagerMetricGroup(std::shared_ptr<RegistryState> state, const std::string& host,
                                               const std::string& tm_id, int slots_total,
                                               std::function<int()> slots_available)
    : MetricGroupImpl(std::move(state),
                      GroupScope{ScopeKind::kTaskManager,
                                 {host, "taskmanager", tm_id},
                                 {"taskmanager"},
                                 {{"host", host}, {"tm_id", tm_id}},
                                 ""},
                      RootKey{tm_id, "", -1, -1, -1}) {
  AddProcessMetrics(*this);
  Gauge("taskSlotsTotal", [slots_total] { return static_cast<double>(slots_total); });
  if (slots_available) {
    Gauge("taskSlotsAvailable", [fn = std::move(slots_available)] { return static_cast<double>(fn()); });
  }
}

TaskManagerMetricGroup::~TaskManagerMetricGroup() { Close(); }

JobMetricGroup::JobMetricGroup(std::shared_ptr<RegistryState> state, const std::string& host,
                               const std::string& job_id, const std::string& job_name, Sampler sampler)
    : MetricGroupImpl(std::move(state),
                      GroupScope{ScopeKind::kJobManagerJob,
                                 {host, "jobmanager", job_name},
                                 {"jobmanager", "job"},
                                 {{"host", host}, {"job_id", job_id}, {"job_name", job_name}},
                                 ""},
                      RootKey{"", job_id, -1, -1, -1}),
      figures_(std::make_shared<Figures>()) {
  figures_->sampler = std::move(sampler);
  // The gauges hold the figures, not the group: a reader may still refresh
  // them while the group is being destroyed.
  auto gauge = [this](std::string_view name, int64_t JobMetricsSample::*field) {
    Gauge(name, [figures = figures_, field] { return figures->Read(field); });
  };
  gauge("numRestarts", &JobMetricsSample::restarts);
  gauge("fullRestarts", &JobMetricsSample::restarts);
  gauge("uptime", &JobMetricsSample::uptime_ms);
  gauge("downtime", &JobMetricsSample::downtime_ms);
  gauge("lastCheckpointDuration", &JobMetricsSample::last_checkpoint_duration_ms);
  gauge("lastCheckpointSize", &JobMetricsSample::last_checkpoint_size);
  gauge("numberOfCompletedCheckpoints", &JobMetricsSample::completed_checkpoints);
  gauge("numberOfFailedCheckpoints", &JobMetricsSample::failed_checkpoints);
  gauge("numberOfInProgressCheckpoints", &JobMetricsSample::in_progress_checkpoints);
  gauge("lastCheckpointRestoreTimestamp", &JobMetricsSample::last_restore_timestamp_ms);
  Gauge("totalNumberOfCheckpoints", [figures = figures_] {
    std::lock_guard lock(figures->mu);
    const JobMetricsSample& s = figures->last;
    return static_cast<double>(s.completed_checkpoints + s.failed_checkpoints + s.in_progress_checkpoints);
  });
}

JobMetricGroup::~JobMetricGroup() { Close(); }

void JobMetricGroup::Figures::Refresh() {
  if (!sampler) return;
  std::optional<JobMetricsSample> sample = sampler();
  if (!sample) return;
  std::lock_guard lock(mu);
  last = *sample;
}

double JobMetricGroup::Figures::Read(int64_t JobMetricsSample::*field) {
  std::lock_guard lock(mu);
  return static_cast<double>(last.*field);
}

// ---- aggregations ---------------------------------------------------------------

Result<std::vector<Aggregation>> ParseAggregations(std::string_view list) {
  std::vector<Aggregation> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string_view item = list.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (item == "min") {
      out.push_back(Aggregation::kMin);
    } else if (item == "max") {
      out.push_back(Aggregation::kMax);
    } else if (item == "avg") {
      out.push_back(Aggregation::kAvg);
    } else if (item == "sum") {
      out.push_back(Aggregation::kSum);
    } else {
      return Status::InvalidArgument(
          fmt::format("unknown metric aggregation '{}' (expected a comma-separated list of min, max, avg, sum)", item));
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

double AggregatedValue(const AggregatedMetric& metric, Aggregation aggregation) {
  switch (aggregation) {
    case Aggregation::kMin:
      return metric.min;
    case Aggregation::kMax:
      return metric.max;
    case Aggregation::kAvg:
      return metric.avg;
    case Aggregation::kSum:
      return metric.sum;
  }
  return 0;
}

// ---- registry -------------------------------------------------------------------

MetricRegistry::MetricRegistry(MetricRegistryOptions options)
    : host_(options.host.empty() ? ThisHostName() : options.host),
      update_interval_(options.update_interval),
      state_(std::make_shared<RegistryState>()) {
  state_->clock = options.clock ? std::move(options.clock) : SteadyNow;
  if (update_interval_.count() > 0) updater_ = std::thread([this] { UpdaterLoop(); });
}

MetricRegistry::~MetricRegistry() {
  {
    std::lock_guard lock(updater_mu_);
    stop_ = true;
  }
  updater_cv_.notify_all();
  if (updater_.joinable()) updater_.join();
  // Groups that outlive the registry keep the shared state; they are no
  // longer reported anywhere.
  std::lock_guard lock(state_->mu);
  for (MetricGroupImpl* root : state_->roots) root->registered_ = false;
  state_->roots.clear();
}

void MetricRegistry::UpdaterLoop() {
  std::unique_lock lock(updater_mu_);
  while (!stop_) {
    if (updater_cv_.wait_for(lock, update_interval_, [this] { return stop_; })) return;
    lock.unlock();
    UpdateMeters();
    lock.lock();
  }
}

void MetricRegistry::UpdateMeters() {
  std::lock_guard lock(state_->mu);
  std::chrono::nanoseconds now = state_->clock();
  for (MetricGroupImpl* root : state_->roots) root->UpdateMetersLocked(now);
}

void MetricRegistry::Register(MetricGroupImpl& root) {
  std::lock_guard lock(state_->mu);
  state_->roots.push_back(&root);
  root.registered_ = true;
}

std::unique_ptr<MetricGroupImpl> MetricRegistry::CreateJobManagerGroup() {
  auto group = std::make_unique<MetricGroupImpl>(
      state_, GroupScope{ScopeKind::kJobManager, {host_, "jobmanager"}, {"jobmanager"}, {{"host", host_}}, ""});
  AddProcessMetrics(*group);
  Register(*group);
  return group;
}

std::unique_ptr<JobMetricGroup> MetricRegistry::CreateJobGroup(const std::string& job_id, const std::string& job_name,
                                                               JobMetricGroup::Sampler sampler) {
  auto group = std::make_unique<JobMetricGroup>(state_, host_, job_id, job_name, std::move(sampler));
  Register(*group);
  return group;
}

std::unique_ptr<TaskManagerMetricGroup> MetricRegistry::CreateTaskManagerGroup(const std::string& tm_id,
                                                                               int slots_total,
                                                                               std::function<int()> slots_available) {
  auto group = std::make_unique<TaskManagerMetricGroup>(state_, host_, tm_id, slots_total, std::move(slots_available));
  Register(*group);
  return group;
}

std::unique_ptr<TaskMetricGroup> MetricRegistry::CreateTaskGroup(TaskScope scope) {
  scope.host = host_;
  auto group = std::make_unique<TaskMetricGroup>(state_, scope);
  Register(*group);
  return group;
}

void MetricRegistry::RefreshJobGroups(const std::string* job_id) const {
  std::vector<std::shared_ptr<JobMetricGroup::Figures>> figures;
  {
    std::lock_guard lock(state_->mu);
    for (const MetricGroupImpl* root : state_->roots) {
      if (root->Scope().kind != ScopeKind::kJobManagerJob) continue;
      if (job_id != nullptr && root->Key().job_id != *job_id) continue;
      // Only JobMetricGroup roots have this scope.
      figures.push_back(static_cast<const JobMetricGroup*>(root)->figures_);
    }
  }
  for (const auto& f : figures) f->Refresh();
}

std::vector<ScopedMetricReading> MetricRegistry::ReadAll() const {
  RefreshJobGroups(nullptr);
  std::vector<ScopedMetricReading> out;
  std::lock_guard lock(state_->mu);
  for (const MetricGroupImpl* root : state_->roots) {
    root->VisitLocked([&](const MetricGroupImpl& group, const MetricReading& r) {
      ScopedMetricReading s;
      const GroupScope& scope = group.Scope();
      for (const std::string& part : scope.logical) {
        if (!s.logical_scope.empty()) s.logical_scope += '.';
        s.logical_scope += part;
      }
      s.variables = scope.variables;
      s.metric = r;
      // Reporters name a metric by its scope: drop the relative prefix.
      s.metric.name = r.name.substr(scope.relative_prefix.size());
      out.push_back(std::move(s));
    });
  }
  return out;
}

std::vector<GroupReadings> MetricRegistry::ReadGroups(
    const std::function<bool(const MetricGroupImpl&)>& wanted) const {
  std::vector<GroupReadings> out;
  std::lock_guard lock(state_->mu);
  for (const MetricGroupImpl* root : state_->roots) {
    if (!wanted(*root)) continue;
    GroupReadings& g = out.emplace_back();
    g.kind = root->Scope().kind;
    g.key = root->Key();
    g.metrics = ReadGroupLocked(*root, {});
  }
  return out;
}

std::vector<GroupReadings> MetricRegistry::ReadTaskManagerAndTaskGroups() const {
  return ReadGroups([](const MetricGroupImpl& root) {
    return root.Scope().kind == ScopeKind::kTaskManager || root.Scope().kind == ScopeKind::kTask;
  });
}

std::vector<GroupReadings> MetricRegistry::ReadVertexGroups(const std::string& job_id, int vertex_id) const {
  return ReadGroups([&](const MetricGroupImpl& root) {
    return root.Scope().kind == ScopeKind::kTask && root.Key().job_id == job_id && root.Key().vertex_id == vertex_id;
  });
}

std::vector<MetricReading> MetricRegistry::ReadJobManager(const std::vector<std::string>& names) const {
  std::vector<MetricReading> out;
  std::lock_guard lock(state_->mu);
  for (const MetricGroupImpl* root : state_->roots) {
    if (root->Scope().kind != ScopeKind::kJobManager) continue;
    std::vector<MetricReading> part = ReadGroupLocked(*root, names);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

Result<std::vector<MetricReading>> MetricRegistry::ReadJob(const std::string& job_id,
                                                           const std::vector<std::string>& names) const {
  RefreshJobGroups(&job_id);
  std::lock_guard lock(state_->mu);
  for (const MetricGroupImpl* root : state_->roots) {
    if (root->Scope().kind == ScopeKind::kJobManagerJob && root->Key().job_id == job_id) {
      return ReadGroupLocked(*root, names);
    }
  }
  return Status::NotFound(fmt::format("job {} has no metrics in this process", job_id));
}

std::vector<std::string> MetricRegistry::TaskManagerIds() const {
  std::vector<std::string> out;
  std::lock_guard lock(state_->mu);
  for (const MetricGroupImpl* root : state_->roots) {
    if (root->Scope().kind == ScopeKind::kTaskManager) out.push_back(root->Key().tm_id);
  }
  return out;
}

Result<std::vector<MetricReading>> MetricRegistry::ReadTaskManager(const std::string& tm_id,
                                                                   const std::vector<std::string>& names) const {
  std::lock_guard lock(state_->mu);
  for (const MetricGroupImpl* root : state_->roots) {
    if (root->Scope().kind == ScopeKind::kTaskManager && root->Key().tm_id == tm_id) {
      return ReadGroupLocked(*root, names);
    }
  }
  return Status::NotFound(fmt::format("task manager '{}' has no metrics in this process", tm_id));
}

Result<std::vector<MetricReading>> MetricRegistry::ReadSubtask(const std::string& job_id, int vertex_id,
                                                               int subtask_index,
                                                               const std::vector<std::string>& names) const {
  return SubtaskReadings(ReadVertexGroups(job_id, vertex_id), job_id, vertex_id, subtask_index, names);
}

Result<std::vector<MetricReading>> MetricRegistry::ReadVertex(const std::string& job_id, int vertex_id,
                                                              const std::vector<std::string>& names) const {
  return VertexReadings(ReadVertexGroups(job_id, vertex_id), job_id, vertex_id, names);
}

Result<std::vector<AggregatedMetric>> MetricRegistry::AggregateSubtasks(const std::string& job_id, int vertex_id,
                                                                        const std::vector<std::string>& names) const {
  return AggregateVertex(ReadVertexGroups(job_id, vertex_id), job_id, vertex_id, names);
}

}  // namespace freshet::internal
