#pragma once
/// Metrics a job reports: counters, gauges, meters and histograms, kept in
/// metric groups whose scope (job, task, operator, subtask...) says where
/// they were measured. Registered metrics are read by the REST API and the
/// Prometheus endpoint of the process.
///
/// User functions register theirs in Open() through
/// `GetRuntimeContext().GetMetricGroup()`, the operator's group:
///
///   void Open() override { seen_ = &GetRuntimeContext().GetMetricGroup().Counter("seen"); }
///   Out Map(const In& in) override { seen_->Inc(); ... }
///
/// Threading: a metric has ONE writer, the thread of the subtask that
/// registered it (like everything else a subtask owns), and any number of
/// readers (the reporters' threads). Counter::Inc therefore costs a plain
/// load and store, never a locked instruction; two threads incrementing
/// the same Counter lose counts. Registration (Counter(), AddGroup()...)
/// is thread-safe.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace freshet {

/// A count that goes up (and, rarely, down). Single writer, any readers.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Inc() { Add(1); }
  void Inc(int64_t n) { Add(n); }
  void Dec() { Add(-1); }
  void Dec(int64_t n) { Add(-n); }
  int64_t GetCount() const { return count_.load(std::memory_order_relaxed); }

 private:
  // One writer: a relaxed load and store instead of a read-modify-write,
  // so an increment is as cheap as on a plain integer while readers on
  // other threads still see whole values.
  void Add(int64_t n) { count_.store(count_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::atomic<int64_t> count_{0};
};

/// A number read on demand: either a callback or a value set by its owner.
class Gauge {
 public:
  /// A settable gauge, 0 until Set().
  Gauge() = default;
  /// A gauge that calls `read` whenever it is read. `read` runs on the
  /// reporters' threads (while the registry's lock is held): it must be
  /// thread-safe, quick, and must not register or close metric groups.
  explicit Gauge(std::function<double()> read) : read_(std::move(read)) {}
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  /// Sets the value of a settable gauge. Throws std::logic_error on a
  /// gauge that reads a callback.
  void Set(double value);
  double GetValue() const { return read_ ? read_() : value_.load(std::memory_order_relaxed); }

 private:
  std::function<double()> read_;
  std::atomic<double> value_{0};
};

/// Events per second, like Flink's MeterView: the rate of a growing count
/// over a sliding time window (60 s by default).
///
/// The rate changes only when Update() takes a sample; the registry's
/// updater does that for every registered meter once per update interval
/// (1 s by default), so the rate is refreshed every second. It is the
/// count's increase between the oldest sample still inside the window
/// and the newest, divided by the time between them: until a meter has
/// existed for a full window, the window is the time it has existed
/// (Flink's MeterView averages over the full window from the start, which
/// under-reports a young meter). With fewer than two samples the rate is 0.
class Meter {
 public:
  static constexpr std::chrono::seconds kDefaultWindow{60};

  /// Counts its own events (MarkEvent).
  explicit Meter(std::chrono::seconds window = kDefaultWindow);
  /// The rate of `counter`, which must outlive the meter; MarkEvent
  /// increments it.
  explicit Meter(Counter& counter, std::chrono::seconds window = kDefaultWindow);
  /// The rate of a growing total read by `total` (on the updater's and
  /// reporters' threads: it must be thread-safe), plus marked events.
  explicit Meter(std::function<int64_t()> total, std::chrono::seconds window = kDefaultWindow);
  Meter(const Meter&) = delete;
  Meter& operator=(const Meter&) = delete;

  /// Single writer, like Counter.
  void MarkEvent() { MarkEvent(1); }
  void MarkEvent(int64_t n) { counter_->Inc(n); }
  /// Events so far (the counter's value, plus the total function's).
  int64_t GetCount() const;
  /// Events per second over the window, as of the last Update().
  double GetRate() const { return rate_.load(std::memory_order_relaxed); }
  std::chrono::seconds Window() const { return window_; }

  /// Samples the count at monotonic time `now` and recomputes the rate.
  /// REQUIRES: one caller at a time (the registry calls it under its
  /// lock), with non-decreasing `now`.
  void Update(std::chrono::nanoseconds now);

 private:
  struct Sample {
    std::chrono::nanoseconds time;
    int64_t count;
  };
  Counter own_;
  Counter* counter_;
  std::function<int64_t()> total_;
  std::chrono::seconds window_;
  std::deque<Sample> samples_;
  std::atomic<double> rate_{0};
};

/// Figures of a histogram's recent values. Quantiles interpolate linearly
/// between the closest ranks: for n sorted values x[0..n-1] and q in
/// [0, 1], h = q * (n - 1) and the quantile is
/// x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]).
struct HistogramStatistics {
  int64_t count = 0;  // values ever recorded
  double sum = 0;     // of every value ever recorded
  int64_t size = 0;   // values the figures below describe (the reservoir)
  int64_t min = 0;
  int64_t max = 0;
  double mean = 0;
  double stddev = 0;  // sample standard deviation (n - 1); 0 for one value
  double p50 = 0;
  double p75 = 0;
  double p95 = 0;
  double p98 = 0;
  double p99 = 0;
  double p999 = 0;

  /// The quantile `q` of `sorted` as defined above (0 when empty).
  static double Quantile(const std::vector<int64_t>& sorted, double q);
};

/// The distribution of the last `reservoir_size` values recorded (a
/// sliding window, like Flink's DescriptiveStatisticsHistogram).
/// Update() is single-writer and lock-free; readers compute statistics
/// from a copy of the window.
class Histogram {
 public:
  static constexpr size_t kDefaultReservoirSize = 1024;
  /// Throws std::invalid_argument when `reservoir_size` is 0.
  explicit Histogram(size_t reservoir_size = kDefaultReservoirSize);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Update(int64_t value) {
    int64_t n = count_.load(std::memory_order_relaxed);
    values_[static_cast<size_t>(n) % capacity_].store(value, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + static_cast<double>(value), std::memory_order_relaxed);
    count_.store(n + 1, std::memory_order_release);
  }
  int64_t GetCount() const { return count_.load(std::memory_order_acquire); }
  size_t ReservoirSize() const { return capacity_; }
  HistogramStatistics GetStatistics() const;

 private:
  size_t capacity_;
  std::unique_ptr<std::atomic<int64_t>[]> values_;
  std::atomic<int64_t> count_{0};
  std::atomic<double> sum_{0};
};

/// A named scope of metrics. Names are unique per group: asking again for
/// a counter, histogram or plain meter of a name returns the one already
/// registered; a name registered as another kind, an empty name, a second
/// gauge or a second meter over a counter of one name throws
/// std::invalid_argument naming the metric and the group (in a user
/// function this fails the task with that message).
/// Returned references stay valid as long as the group, which outlives
/// the user function that asked for them.
///
/// Subgroups add a component to the scope: AddGroup("cache") reports
/// "<scope>.cache.<metric>"; AddGroup("shard", "3") reports
/// "<scope>.shard.3.<metric>" and adds the variable "<shard>" = "3" (a
/// label in Prometheus).
class MetricGroup {
 public:
  virtual ~MetricGroup() = default;

  virtual freshet::Counter& Counter(std::string_view name) = 0;
  /// A gauge reading `read` (see Gauge for its threading contract).
  virtual freshet::Gauge& Gauge(std::string_view name, std::function<double()> read) = 0;
  /// A settable gauge.
  virtual freshet::Gauge& Gauge(std::string_view name) = 0;
  /// A meter counting its own events.
  virtual freshet::Meter& Meter(std::string_view name) = 0;
  /// A meter over `counter` (which must live as long as the group, e.g.
  /// a counter of this group).
  virtual freshet::Meter& Meter(std::string_view name, freshet::Counter& counter) = 0;
  virtual freshet::Histogram& Histogram(std::string_view name,
                                        size_t reservoir_size = freshet::Histogram::kDefaultReservoirSize) = 0;

  virtual MetricGroup& AddGroup(std::string_view name) = 0;
  virtual MetricGroup& AddGroup(std::string_view key, std::string_view value) = 0;

  /// The scope's components, e.g. {"host", "taskmanager", "tm-0", "job",
  /// "Map", "0"} for an operator.
  virtual std::vector<std::string> GetScopeComponents() const = 0;
  /// The scope's variables by name with angle brackets ("<job_id>").
  virtual std::map<std::string, std::string> GetAllVariables() const = 0;
  /// The scope components and `metric_name` joined by '.'.
  virtual std::string GetMetricIdentifier(std::string_view metric_name) const = 0;
};

}  // namespace freshet
