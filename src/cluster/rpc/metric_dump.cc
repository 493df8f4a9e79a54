#include "cluster/rpc/metric_dump.h"

namespace freshet::internal::rpc {

namespace pb = freshet::rpc;

pb::MetricDump ToProto(const std::vector<GroupReadings>& groups) {
  pb::MetricDump out;
  for (const GroupReadings& g : groups) {
    if (g.kind != ScopeKind::kTaskManager && g.kind != ScopeKind::kTask) continue;
    pb::MetricGroupDump* d = out.add_groups();
    d->set_scope(g.kind == ScopeKind::kTask ? pb::MetricGroupDump::TASK : pb::MetricGroupDump::TASKMANAGER);
    d->set_tm_id(g.key.tm_id);
    if (g.kind == ScopeKind::kTask) {
      d->set_job_id(g.key.job_id);
      d->set_vertex(g.key.vertex_id);
      d->set_subtask(g.key.subtask_index);
      d->set_attempt(g.key.attempt);
    }
    d->mutable_names()->Reserve(static_cast<int>(g.metrics.size()));
    d->mutable_values()->Reserve(static_cast<int>(g.metrics.size()));
    d->mutable_kinds()->Reserve(static_cast<int>(g.metrics.size()));
    for (const MetricReading& r : g.metrics) {
      d->add_names(r.name);
      d->add_values(r.value);
      d->add_kinds(static_cast<int32_t>(r.kind));
    }
  }
  return out;
}

std::vector<GroupReadings> FromProto(const pb::MetricDump& dump) {
  std::vector<GroupReadings> out;
  out.reserve(static_cast<size_t>(dump.groups_size()));
  for (const pb::MetricGroupDump& d : dump.groups()) {
    if (d.names_size() != d.values_size() || d.kinds_size() != d.names_size()) continue;
    GroupReadings g;
    if (d.scope() == pb::MetricGroupDump::TASKMANAGER) {
      g.kind = ScopeKind::kTaskManager;
      g.key = RootKey{d.tm_id(), "", -1, -1, -1};
    } else if (d.scope() == pb::MetricGroupDump::TASK) {
      g.kind = ScopeKind::kTask;
      g.key = RootKey{d.tm_id(), d.job_id(), d.vertex(), d.subtask(), d.attempt()};
    } else {
      continue;
    }
    g.metrics.reserve(static_cast<size_t>(d.names_size()));
    for (int i = 0; i < d.names_size(); ++i) {
      int32_t kind = d.kinds(i);
      if (kind < 0 || kind > static_cast<int32_t>(MetricKind::kHistogram)) continue;
      MetricReading& r = g.metrics.emplace_back();
      r.name = d.names(i);
      r.value = d.values(i);
      r.kind = static_cast<MetricKind>(kind);
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace freshet::internal::rpc
