// The metric types of the public API (freshet/metrics.h).
#include "freshet/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace freshet {

void Gauge::Set(double value) {
  if (read_) throw std::logic_error("Gauge::Set on a gauge whose value comes from a callback");
  value_.store(value, std::memory_order_relaxed);
}

Meter::Meter(std::chrono::seconds window) : counter_(&own_), window_(window) {}

Meter::Meter(Counter& counter, std::chrono::seconds window) : counter_(&counter), window_(window) {}

Meter::Meter(std::function<int64_t()> total, std::chrono::seconds window)
    : counter_(&own_), total_(std::move(total)), window_(window) {}

int64_t Meter::GetCount() const { return counter_->GetCount() + (total_ ? total_() : 0); }

void Meter::Update(std::chrono::nanoseconds now) {
  samples_.push_back(Sample{now, GetCount()});
  // Keep one sample at or before the window's start as the baseline, so
  // the rate spans the whole window once the meter is old enough.
  const std::chrono::nanoseconds start = now - window_;
  while (samples_.size() > 2 && samples_[1].time <= start) samples_.pop_front();
  const Sample& base = samples_.front();
  const Sample& last = samples_.back();
  double seconds = std::chrono::duration<double>(last.time - base.time).count();
  double rate = seconds > 0 ? static_cast<double>(last.count - base.count) / seconds : 0.0;
  rate_.store(rate, std::memory_order_relaxed);
}

double HistogramStatistics::Quantile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  double h = q * static_cast<double>(sorted.size() - 1);
  auto lo = static_cast<size_t>(std::floor(h));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double lower = static_cast<double>(sorted[lo]);
  return lower + (h - static_cast<double>(lo)) * (static_cast<double>(sorted[hi]) - lower);
}

Histogram::Histogram(size_t reservoir_size) : capacity_(reservoir_size) {
  if (reservoir_size == 0) throw std::invalid_argument("a histogram's reservoir size must be at least 1");
  values_ = std::make_unique<std::atomic<int64_t>[]>(reservoir_size);
}

HistogramStatistics Histogram::GetStatistics() const {
  HistogramStatistics s;
  s.count = count_.load(std::memory_order_acquire);
  s.sum = sum_.load(std::memory_order_relaxed);
  auto n = static_cast<size_t>(std::min<int64_t>(s.count, static_cast<int64_t>(capacity_)));
  if (n == 0) return s;
  std::vector<int64_t> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = values_[i].load(std::memory_order_relaxed);
  std::sort(values.begin(), values.end());
  s.size = static_cast<int64_t>(n);
  s.min = values.front();
  s.max = values.back();
  double total = 0;
  for (int64_t v : values) total += static_cast<double>(v);
  s.mean = total / static_cast<double>(n);
  if (n > 1) {
    double squares = 0;
    for (int64_t v : values) squares += (static_cast<double>(v) - s.mean) * (static_cast<double>(v) - s.mean);
    s.stddev = std::sqrt(squares / static_cast<double>(n - 1));
  }
  s.p50 = HistogramStatistics::Quantile(values, 0.5);
  s.p75 = HistogramStatistics::Quantile(values, 0.75);
  s.p95 = HistogramStatistics::Quantile(values, 0.95);
  s.p98 = HistogramStatistics::Quantile(values, 0.98);
  s.p99 = HistogramStatistics::Quantile(values, 0.99);
  s.p999 = HistogramStatistics::Quantile(values, 0.999);
  return s;
}

}  // namespace freshet
