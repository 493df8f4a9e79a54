#include "metrics/metric_registry.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <map>

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
                               const std::string& job_id, const std::string& job_name)
    : MetricGroupImpl(std::move(state),
                      GroupScope{ScopeKind::kJobManagerJob,
                                 {host, "jobmanager", job_name},
                                 {"jobmanager", "job"},
                                 {{"host", host}, {"job_id", job_id}, {"job_name", job_name}},
                                 ""},
                      RootKey{"", job_id, -1, -1, -1}) {
  auto read = [](const std::atomic<int64_t>& v) {
    return [&v] { return static_cast<double>(v.load(std::memory_order_relaxed)); };
  };
  Gauge("numRestarts", read(restarts_));
  Gauge("uptime", [this] {
    int64_t since = running_since_ns_.load(std::memory_order_relaxed);
    if (since == kEnded) return -1.0;
    if (since == kNotRunning) return 0.0;
    return static_cast<double>((Now().count() - since) / 1'000'000);
  });
  Gauge("lastCheckpointDuration", read(last_checkpoint_duration_ms_));
  Gauge("lastCheckpointSize", read(last_checkpoint_size_));
  Gauge("numberOfCompletedCheckpoints", read(completed_checkpoints_));
  Gauge("numberOfFailedCheckpoints", read(failed_checkpoints_));
}

JobMetricGroup::~JobMetricGroup() { Close(); }

void JobMetricGroup::ReportStatus(JobStatus status) {
  switch (status) {
    case JobStatus::kRunning: {
      // Only the switch to RUNNING starts the clock; a repeated report
      // keeps it.
      int64_t expected = running_since_ns_.load();
      while (expected < 0 && !running_since_ns_.compare_exchange_weak(expected, Now().count())) {
      }
      return;
    }
    case JobStatus::kFinished:
    case JobStatus::kFailed:
    case JobStatus::kCanceled:
      running_since_ns_.store(kEnded);
      return;
    case JobStatus::kCreated:
    case JobStatus::kCanceling:
    case JobStatus::kRestarting:
      running_since_ns_.store(kNotRunning);
      return;
  }
}

void JobMetricGroup::ReportRestart() { restarts_.fetch_add(1); }

void JobMetricGroup::ReportCompletedCheckpoint(Duration duration, int64_t size_bytes) {
  last_checkpoint_duration_ms_.store(duration.count());
  last_checkpoint_size_.store(size_bytes);
  completed_checkpoints_.fetch_add(1);
}

void JobMetricGroup::ReportFailedCheckpoint() { failed_checkpoints_.fetch_add(1); }

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

std::unique_ptr<JobMetricGroup> MetricRegistry::CreateJobGroup(const std::string& job_id,
                                                               const std::string& job_name) {
  auto group = std::make_unique<JobMetricGroup>(state_, host_, job_id, job_name);
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

std::vector<ScopedMetricReading> MetricRegistry::ReadAll() const {
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

std::vector<const MetricGroupImpl*> MetricRegistry::VertexGroupsLocked(const std::string& job_id,
                                                                       int vertex_id) const {
  std::map<int, const MetricGroupImpl*> latest;
  for (const MetricGroupImpl* root : state_->roots) {
    const RootKey& k = root->Key();
    if (root->Scope().kind != ScopeKind::kTask || k.job_id != job_id || k.vertex_id != vertex_id) continue;
    auto [it, inserted] = latest.emplace(k.subtask_index, root);
    if (!inserted && it->second->Key().attempt < k.attempt) it->second = root;
  }
  std::vector<const MetricGroupImpl*> out;
  for (const auto& [subtask, group] : latest) out.push_back(group);
  return out;
}

Result<std::vector<MetricReading>> MetricRegistry::ReadSubtask(const std::string& job_id, int vertex_id,
                                                               int subtask_index,
                                                               const std::vector<std::string>& names) const {
  std::lock_guard lock(state_->mu);
  for (const MetricGroupImpl* group : VertexGroupsLocked(job_id, vertex_id)) {
    if (group->Key().subtask_index == subtask_index) return ReadGroupLocked(*group, names);
  }
  return Status::NotFound(
      fmt::format("subtask {} of vertex {} of job {} has no metrics in this process", subtask_index, vertex_id,
                  job_id));
}

Result<std::vector<MetricReading>> MetricRegistry::ReadVertex(const std::string& job_id, int vertex_id,
                                                              const std::vector<std::string>& names) const {
  std::lock_guard lock(state_->mu);
  std::vector<const MetricGroupImpl*> groups = VertexGroupsLocked(job_id, vertex_id);
  if (groups.empty()) {
    return Status::NotFound(fmt::format("vertex {} of job {} has no metrics in this process", vertex_id, job_id));
  }
  std::vector<MetricReading> out;
  for (const MetricGroupImpl* group : groups) {
    std::string prefix = std::to_string(group->Key().subtask_index) + ".";
    group->VisitLocked([&](const MetricGroupImpl&, const MetricReading& r) {
      if (!Wanted(names, prefix + r.name)) return;
      out.push_back(r);
      out.back().name = prefix + r.name;
    });
  }
  return out;
}

Result<std::vector<AggregatedMetric>> MetricRegistry::AggregateSubtasks(const std::string& job_id, int vertex_id,
                                                                        const std::vector<std::string>& names) const {
  std::map<std::string, AggregatedMetric> by_name;
  {
    std::lock_guard lock(state_->mu);
    std::vector<const MetricGroupImpl*> groups = VertexGroupsLocked(job_id, vertex_id);
    if (groups.empty()) {
      return Status::NotFound(fmt::format("vertex {} of job {} has no metrics in this process", vertex_id, job_id));
    }
    for (const MetricGroupImpl* group : groups) {
      group->VisitLocked([&](const MetricGroupImpl&, const MetricReading& r) {
        if (r.kind == MetricKind::kHistogram || !Wanted(names, r.name)) return;
        auto [it, inserted] = by_name.try_emplace(r.name);
        AggregatedMetric& a = it->second;
        if (inserted) {
          a.name = r.name;
          a.min = std::numeric_limits<double>::infinity();
          a.max = -std::numeric_limits<double>::infinity();
        }
        ++a.subtasks;
        a.min = std::min(a.min, r.value);
        a.max = std::max(a.max, r.value);
        a.sum += r.value;
      });
    }
  }
  std::vector<AggregatedMetric> out;
  for (auto& [name, a] : by_name) {
    a.avg = a.sum / a.subtasks;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace freshet::internal
