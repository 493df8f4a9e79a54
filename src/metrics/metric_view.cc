#include "metrics/metric_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>

namespace freshet::internal {

namespace {

bool Wanted(const std::vector<std::string>& names, const std::string& name) {
  return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
}

/// The task groups of a vertex, the latest attempt per subtask, by subtask
/// index. A subtask restarted elsewhere may still have its old attempt's
/// group in another process's dump until that process drops it.
std::vector<const GroupReadings*> LatestSubtasks(const std::vector<GroupReadings>& groups, const std::string& job_id,
                                                 int vertex_id) {
  std::map<int, const GroupReadings*> latest;
  for (const GroupReadings& g : groups) {
    if (g.kind != ScopeKind::kTask || g.key.job_id != job_id || g.key.vertex_id != vertex_id) continue;
    auto [it, inserted] = latest.emplace(g.key.subtask_index, &g);
    if (!inserted && it->second->key.attempt < g.key.attempt) it->second = &g;
  }
  std::vector<const GroupReadings*> out;
  out.reserve(latest.size());
  for (const auto& [subtask, group] : latest) out.push_back(group);
  return out;
}

std::vector<MetricReading> Select(const std::vector<MetricReading>& metrics, const std::vector<std::string>& names) {
  if (names.empty()) return metrics;
  std::vector<MetricReading> out;
  for (const MetricReading& r : metrics) {
    if (Wanted(names, r.name)) out.push_back(r);
  }
  return out;
}

Status NoVertexMetrics(const std::string& job_id, int vertex_id) {
  return Status::NotFound(fmt::format("vertex {} of job {} has no metrics", vertex_id, job_id));
}

}  // namespace

std::vector<std::string> TaskManagerIdsIn(const std::vector<GroupReadings>& groups) {
  std::vector<std::string> out;
  for (const GroupReadings& g : groups) {
    if (g.kind == ScopeKind::kTaskManager && std::find(out.begin(), out.end(), g.key.tm_id) == out.end()) {
      out.push_back(g.key.tm_id);
    }
  }
  return out;
}

Result<std::vector<MetricReading>> TaskManagerReadings(const std::vector<GroupReadings>& groups,
                                                       const std::string& tm_id,
                                                       const std::vector<std::string>& names) {
  for (const GroupReadings& g : groups) {
    if (g.kind == ScopeKind::kTaskManager && g.key.tm_id == tm_id) return Select(g.metrics, names);
  }
  return Status::NotFound(fmt::format("task manager '{}' has no metrics", tm_id));
}

Result<std::vector<MetricReading>> SubtaskReadings(const std::vector<GroupReadings>& groups, const std::string& job_id,
                                                   int vertex_id, int subtask_index,
                                                   const std::vector<std::string>& names) {
  for (const GroupReadings* g : LatestSubtasks(groups, job_id, vertex_id)) {
    if (g->key.subtask_index == subtask_index) return Select(g->metrics, names);
  }
  return Status::NotFound(
      fmt::format("subtask {} of vertex {} of job {} has no metrics", subtask_index, vertex_id, job_id));
}

Result<std::vector<MetricReading>> VertexReadings(const std::vector<GroupReadings>& groups, const std::string& job_id,
                                                  int vertex_id, const std::vector<std::string>& names) {
  std::vector<const GroupReadings*> subtasks = LatestSubtasks(groups, job_id, vertex_id);
  if (subtasks.empty()) return NoVertexMetrics(job_id, vertex_id);
  std::vector<MetricReading> out;
  for (const GroupReadings* g : subtasks) {
    std::string prefix = std::to_string(g->key.subtask_index) + ".";
    for (const MetricReading& r : g->metrics) {
      std::string name = prefix + r.name;
      if (!Wanted(names, name)) continue;
      out.push_back(r);
      out.back().name = std::move(name);
    }
  }
  return out;
}

Result<std::vector<AggregatedMetric>> AggregateVertex(const std::vector<GroupReadings>& groups,
                                                      const std::string& job_id, int vertex_id,
                                                      const std::vector<std::string>& names) {
  std::vector<const GroupReadings*> subtasks = LatestSubtasks(groups, job_id, vertex_id);
  if (subtasks.empty()) return NoVertexMetrics(job_id, vertex_id);
  std::map<std::string, AggregatedMetric> by_name;
  for (const GroupReadings* g : subtasks) {
    for (const MetricReading& r : g->metrics) {
      if (r.kind == MetricKind::kHistogram || !Wanted(names, r.name)) continue;
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
    }
  }
  std::vector<AggregatedMetric> out;
  out.reserve(by_name.size());
  for (auto& [name, a] : by_name) {
    a.avg = a.sum / a.subtasks;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace freshet::internal
