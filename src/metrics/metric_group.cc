#include "metrics/metric_group.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "freshet/functions.h"

namespace freshet::internal {

const char* MetricKindName(MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return "counter";
    case MetricKind::kGauge:
      return "gauge";
    case MetricKind::kMeter:
      return "meter";
    case MetricKind::kHistogram:
      return "histogram";
  }
  return "metric";
}

namespace {

std::shared_ptr<RegistryState> OwnState() {
  auto state = std::make_shared<RegistryState>();
  state->clock = SteadyNow;
  return state;
}

std::string Join(const std::vector<std::string>& parts, char separator) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

}  // namespace

MetricGroupImpl::MetricGroupImpl(std::shared_ptr<RegistryState> state, GroupScope scope, RootKey key)
    : state_(state != nullptr ? std::move(state) : OwnState()),
      root_(this),
      scope_(std::move(scope)),
      key_(std::move(key)) {}

MetricGroupImpl::MetricGroupImpl(MetricGroupImpl* root, GroupScope scope)
    : state_(root->state_), root_(root), scope_(std::move(scope)) {}

MetricGroupImpl::~MetricGroupImpl() {
  if (IsRoot()) Close();
}

void MetricGroupImpl::Close() {
  if (!IsRoot()) return;
  std::lock_guard lock(Mutex());
  if (!registered_) return;
  auto& roots = state_->roots;
  roots.erase(std::remove(roots.begin(), roots.end(), this), roots.end());
  registered_ = false;
}

std::chrono::nanoseconds MetricGroupImpl::Now() const { return state_->clock ? state_->clock() : SteadyNow(); }

std::map<std::string, std::string> MetricGroupImpl::GetAllVariables() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : scope_.variables) out["<" + name + ">"] = value;
  return out;
}

std::string MetricGroupImpl::GetMetricIdentifier(std::string_view metric_name) const {
  std::string id = Join(scope_.components, '.');
  if (!id.empty()) id += '.';
  id += metric_name;
  return id;
}

void MetricGroupImpl::CheckName(std::string_view what, std::string_view name) const {
  if (name.empty()) {
    throw std::invalid_argument(
        fmt::format("{} name must not be empty (group '{}')", what, Join(scope_.components, '.')));
  }
}

const MetricGroupImpl::Metric* MetricGroupImpl::FindLocked(std::string_view name, MetricKind kind,
                                                           bool may_repeat) const {
  auto it = metrics_.find(name);
  if (it == metrics_.end()) return nullptr;
  MetricKind existing = KindOf(it->second);
  if (existing != kind) {
    throw std::invalid_argument(fmt::format("metric '{}' is already registered as a {} (not a {})",
                                            GetMetricIdentifier(name), MetricKindName(existing),
                                            MetricKindName(kind)));
  }
  if (!may_repeat) {
    throw std::invalid_argument(fmt::format("{} '{}' is already registered; it can be registered only once",
                                            MetricKindName(kind), GetMetricIdentifier(name)));
  }
  return &it->second;
}

freshet::Counter& MetricGroupImpl::Counter(std::string_view name) {
  CheckName("metric", name);
  std::lock_guard lock(Mutex());
  if (const Metric* m = FindLocked(name, MetricKind::kCounter, true)) {
    return *std::get<std::unique_ptr<freshet::Counter>>(*m);
  }
  auto counter = std::make_unique<freshet::Counter>();
  freshet::Counter& ref = *counter;
  metrics_.emplace(std::string(name), std::move(counter));
  return ref;
}

freshet::Gauge& MetricGroupImpl::Gauge(std::string_view name, std::function<double()> read) {
  CheckName("metric", name);
  if (!read) throw std::invalid_argument(fmt::format("gauge '{}' needs a callback", GetMetricIdentifier(name)));
  std::lock_guard lock(Mutex());
  FindLocked(name, MetricKind::kGauge, false);
  auto gauge = std::make_unique<freshet::Gauge>(std::move(read));
  freshet::Gauge& ref = *gauge;
  metrics_.emplace(std::string(name), std::move(gauge));
  return ref;
}

freshet::Gauge& MetricGroupImpl::Gauge(std::string_view name) {
  CheckName("metric", name);
  std::lock_guard lock(Mutex());
  FindLocked(name, MetricKind::kGauge, false);
  auto gauge = std::make_unique<freshet::Gauge>();
  freshet::Gauge& ref = *gauge;
  metrics_.emplace(std::string(name), std::move(gauge));
  return ref;
}

freshet::Meter& MetricGroupImpl::AddMeter(std::string_view name, std::unique_ptr<freshet::Meter> meter,
                                          bool may_repeat) {
  CheckName("metric", name);
  std::lock_guard lock(Mutex());
  if (const Metric* m = FindLocked(name, MetricKind::kMeter, may_repeat)) {
    return *std::get<std::unique_ptr<freshet::Meter>>(*m);
  }
  // The first sample: the rate is measured from the meter's registration.
  meter->Update(Now());
  freshet::Meter& ref = *meter;
  metrics_.emplace(std::string(name), std::move(meter));
  return ref;
}

freshet::Meter& MetricGroupImpl::Meter(std::string_view name) {
  return AddMeter(name, std::make_unique<freshet::Meter>(), true);
}

freshet::Meter& MetricGroupImpl::Meter(std::string_view name, freshet::Counter& counter) {
  return AddMeter(name, std::make_unique<freshet::Meter>(counter), false);
}

freshet::Meter& MetricGroupImpl::MeterOfTotal(std::string_view name, std::function<int64_t()> total) {
  return AddMeter(name, std::make_unique<freshet::Meter>(std::move(total)), false);
}

freshet::Histogram& MetricGroupImpl::Histogram(std::string_view name, size_t reservoir_size) {
  CheckName("metric", name);
  if (reservoir_size == 0) {
    throw std::invalid_argument(
        fmt::format("histogram '{}': the reservoir size must be at least 1", GetMetricIdentifier(name)));
  }
  std::lock_guard lock(Mutex());
  if (const Metric* m = FindLocked(name, MetricKind::kHistogram, true)) {
    return *std::get<std::unique_ptr<freshet::Histogram>>(*m);
  }
  auto histogram = std::make_unique<freshet::Histogram>(reservoir_size);
  freshet::Histogram& ref = *histogram;
  metrics_.emplace(std::string(name), std::move(histogram));
  return ref;
}

MetricGroupImpl& MetricGroupImpl::AddChild(std::string key, GroupScope scope) {
  std::lock_guard lock(Mutex());
  auto it = children_.find(key);
  if (it != children_.end()) return *it->second;
  auto child = std::unique_ptr<MetricGroupImpl>(new MetricGroupImpl(root_, std::move(scope)));
  MetricGroupImpl& ref = *child;
  children_.emplace(std::move(key), std::move(child));
  return ref;
}

MetricGroup& MetricGroupImpl::AddGroup(std::string_view name) {
  CheckName("group", name);
  GroupScope scope = scope_;
  scope.components.emplace_back(name);
  scope.logical.emplace_back(name);
  scope.relative_prefix += std::string(name) + ".";
  return AddChild("g:" + std::string(name), std::move(scope));
}

MetricGroup& MetricGroupImpl::AddGroup(std::string_view key, std::string_view value) {
  CheckName("group key", key);
  GroupScope scope = scope_;
  scope.components.emplace_back(key);
  scope.components.emplace_back(value);
  scope.logical.emplace_back(key);
  // A key repeated deeper down takes the inner value, as a label can
  // appear only once.
  auto& vars = scope.variables;
  vars.erase(std::remove_if(vars.begin(), vars.end(), [&](const auto& v) { return v.first == key; }), vars.end());
  vars.emplace_back(key, value);
  scope.relative_prefix += fmt::format("{}.{}.", key, value);
  return AddChild(fmt::format("kv:{}\n{}", key, value), std::move(scope));
}

MetricGroupImpl& MetricGroupImpl::AddScopedGroup(std::string child_key, GroupScope scope) {
  return AddChild("s:" + child_key, std::move(scope));
}

void MetricGroupImpl::VisitLocked(
    const std::function<void(const MetricGroupImpl&, const MetricReading&)>& fn) const {
  for (const auto& [name, metric] : metrics_) {
    MetricReading r;
    r.name = scope_.relative_prefix + name;
    r.kind = KindOf(metric);
    switch (r.kind) {
      case MetricKind::kCounter:
        r.value = static_cast<double>(std::get<std::unique_ptr<freshet::Counter>>(metric)->GetCount());
        break;
      case MetricKind::kGauge:
        r.value = std::get<std::unique_ptr<freshet::Gauge>>(metric)->GetValue();
        break;
      case MetricKind::kMeter:
        r.value = std::get<std::unique_ptr<freshet::Meter>>(metric)->GetRate();
        break;
      case MetricKind::kHistogram:
        r.histogram = std::get<std::unique_ptr<freshet::Histogram>>(metric)->GetStatistics();
        r.value = static_cast<double>(r.histogram->count);
        break;
    }
    fn(*this, r);
  }
  for (const auto& [key, child] : children_) child->VisitLocked(fn);
}

void MetricGroupImpl::UpdateMetersLocked(std::chrono::nanoseconds now) {
  for (auto& [name, metric] : metrics_) {
    if (KindOf(metric) == MetricKind::kMeter) std::get<std::unique_ptr<freshet::Meter>>(metric)->Update(now);
  }
  for (auto& [key, child] : children_) child->UpdateMetersLocked(now);
}

}  // namespace freshet::internal

namespace freshet {

MetricGroup& RuntimeContext::GetMetricGroup() const {
  if (metric_group_ != nullptr) return *metric_group_;
  // Outside a job: metrics work but nobody reads them. One group per
  // thread keeps the single-writer rule of its counters.
  thread_local internal::MetricGroupImpl unregistered(std::shared_ptr<internal::RegistryState>(),
                                                      internal::GroupScope{});
  return unregistered;
}

}  // namespace freshet
