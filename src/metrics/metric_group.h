#pragma once
// The one implementation of freshet::MetricGroup. A tree of groups hangs
// off a root group (a job manager, job, task manager or task scope); the
// root is registered in a MetricRegistry until it is closed or destroyed.
//
// Threading: every group of a tree shares its registry's mutex (or, for a
// group created outside any registry, the root's own). It guards the
// groups' structure (which metrics and subgroups exist) and the meters'
// samples; metric values themselves are atomics written by one thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "freshet/metrics.h"

namespace freshet::internal {

enum class MetricKind { kCounter, kGauge, kMeter, kHistogram };
const char* MetricKindName(MetricKind kind);

/// Flink's scopes. A group's kind is its root's, except operator groups
/// (children of a task group) and their subgroups, which are kOperator.
enum class ScopeKind { kJobManager, kJobManagerJob, kTaskManager, kTask, kOperator, kUnregistered };

/// One metric's value at one moment.
struct MetricReading {
  /// Relative to the scope that was asked for: "numRecordsIn" in a task,
  /// "<operator name>.<name>" for an operator's metric, with user groups
  /// in between ("Map.cache.hits").
  std::string name;
  MetricKind kind = MetricKind::kCounter;
  /// Counter: the count; gauge: the value; meter: the rate (events/s);
  /// histogram: the count of values recorded.
  double value = 0;
  std::optional<HistogramStatistics> histogram;  // histograms only
};

/// A metric with its full scope, as reporters see it.
struct ScopedMetricReading {
  /// Flink's logical scope, '.'-joined: "taskmanager.job.task.operator"
  /// plus user group names.
  std::string logical_scope;
  /// The scope's variables in order, names without angle brackets
  /// ("job_id", "subtask_index", a key-value group's key...).
  std::vector<std::pair<std::string, std::string>> variables;
  /// The name is the metric's own (no group prefix).
  MetricReading metric;
};

class MetricGroupImpl;

/// What a registry and its groups share. Outlives the registry while any
/// group still refers to it, so groups may be destroyed in any order.
struct RegistryState {
  std::mutex mu;
  std::vector<MetricGroupImpl*> roots;  // registered root groups
  std::function<std::chrono::nanoseconds()> clock;
};

/// Where a group sits: its scope's components, logical scope, variables,
/// and the prefix of its metrics' names relative to the task (or other
/// root) scope.
struct GroupScope {
  ScopeKind kind = ScopeKind::kUnregistered;
  std::vector<std::string> components;
  std::vector<std::string> logical;
  std::vector<std::pair<std::string, std::string>> variables;
  std::string relative_prefix;
};

/// Identifies a registered root group for queries.
struct RootKey {
  std::string tm_id;
  std::string job_id;
  int vertex_id = -1;
  int subtask_index = -1;
  int attempt = -1;
};

class MetricGroupImpl : public MetricGroup {
 public:
  /// A root group sharing `state` (registered by the registry afterwards),
  /// or, with a null state, a group reported nowhere.
  MetricGroupImpl(std::shared_ptr<RegistryState> state, GroupScope scope, RootKey key = {});
  ~MetricGroupImpl() override;
  MetricGroupImpl(const MetricGroupImpl&) = delete;
  MetricGroupImpl& operator=(const MetricGroupImpl&) = delete;

  freshet::Counter& Counter(std::string_view name) override;
  freshet::Gauge& Gauge(std::string_view name, std::function<double()> read) override;
  freshet::Gauge& Gauge(std::string_view name) override;
  freshet::Meter& Meter(std::string_view name) override;
  freshet::Meter& Meter(std::string_view name, freshet::Counter& counter) override;
  freshet::Histogram& Histogram(std::string_view name,
                                size_t reservoir_size = freshet::Histogram::kDefaultReservoirSize) override;
  MetricGroup& AddGroup(std::string_view name) override;
  MetricGroup& AddGroup(std::string_view key, std::string_view value) override;
  std::vector<std::string> GetScopeComponents() const override { return scope_.components; }
  std::map<std::string, std::string> GetAllVariables() const override;
  std::string GetMetricIdentifier(std::string_view metric_name) const override;

  /// A meter over a growing total read by `total` (runtime metrics whose
  /// count is not a Counter, e.g. accumulated wait time).
  freshet::Meter& MeterOfTotal(std::string_view name, std::function<int64_t()> total);
  /// A subgroup with an explicit scope (an operator under a task).
  MetricGroupImpl& AddScopedGroup(std::string child_key, GroupScope scope);

  /// Root groups: unregisters the group and its subgroups, which stay
  /// usable but are reported nowhere. Idempotent.
  void Close();

  const GroupScope& Scope() const { return scope_; }
  const RootKey& Key() const { return key_; }
  bool IsRoot() const { return root_ == this; }

  // Read side. REQUIRES: the shared mutex is held.
  /// Calls `fn(group, name, reading)` for every metric of this group and
  /// its subgroups, with names relative to the root's scope.
  void VisitLocked(const std::function<void(const MetricGroupImpl&, const MetricReading&)>& fn) const;
  /// Updates every meter of this group and its subgroups.
  void UpdateMetersLocked(std::chrono::nanoseconds now);

 /// Mutex of the tree (the registry's, or this root's own).
  std::mutex& Mutex() const { return state_->mu; }
  /// The registry's monotonic clock.
  std::chrono::nanoseconds Now() const;

 private:
  MetricGroupImpl(MetricGroupImpl* root, GroupScope scope);
  using Metric = std::variant<std::unique_ptr<freshet::Counter>, std::unique_ptr<freshet::Gauge>,
                              std::unique_ptr<freshet::Meter>, std::unique_ptr<freshet::Histogram>>;
  static MetricKind KindOf(const Metric& metric) { return static_cast<MetricKind>(metric.index()); }
  /// The existing metric `name` of kind `kind`, or nullptr when there is
  /// none; throws when `name` is taken by another kind or may not repeat.
  /// REQUIRES: the mutex is held.
  const Metric* FindLocked(std::string_view name, MetricKind kind, bool may_repeat) const;
  void CheckName(std::string_view what, std::string_view name) const;
  freshet::Meter& AddMeter(std::string_view name, std::unique_ptr<freshet::Meter> meter, bool may_repeat);
  MetricGroupImpl& AddChild(std::string key, GroupScope scope);

  std::shared_ptr<RegistryState> state_;
  MetricGroupImpl* root_;
  GroupScope scope_;
  RootKey key_;
  bool registered_ = false;  // roots: in state_->roots
  std::map<std::string, Metric, std::less<>> metrics_;
  std::map<std::string, std::unique_ptr<MetricGroupImpl>, std::less<>> children_;

  friend class MetricRegistry;
};

/// Monotonic time of the steady clock.
inline std::chrono::nanoseconds SteadyNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace freshet::internal
