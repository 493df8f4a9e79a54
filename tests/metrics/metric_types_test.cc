// The metric types of freshet/metrics.h: counters, gauges, meters (rates
// with a driven clock) and histograms (statistics against a reference
// computed here from the sorted values).

#include <freshet/freshet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace freshet {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

TEST(CounterTest, IncrementsAndDecrements) {
  Counter c;
  EXPECT_EQ(c.GetCount(), 0);
  c.Inc();
  c.Inc(41);
  c.Dec();
  c.Dec(10);
  EXPECT_EQ(c.GetCount(), 31);
}

TEST(CounterTest, ReaderOnAnotherThreadSeesTheWritersFinalCount) {
  Counter c;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 1'000'000; ++i) c.Inc();
    done.store(true);
  });
  int64_t last = 0;
  // Values seen while writing only grow (one writer, whole values).
  while (!done.load()) {
    int64_t now = c.GetCount();
    ASSERT_GE(now, last);
    last = now;
  }
  writer.join();
  EXPECT_EQ(c.GetCount(), 1'000'000);
}

TEST(GaugeTest, SettableAndCallbackGauges) {
  Gauge settable;
  EXPECT_EQ(settable.GetValue(), 0);
  settable.Set(2.5);
  EXPECT_EQ(settable.GetValue(), 2.5);

  double source = 7;
  Gauge callback([&source] { return source; });
  EXPECT_EQ(callback.GetValue(), 7);
  source = 9;
  EXPECT_EQ(callback.GetValue(), 9);
  try {
    callback.Set(1);
    FAIL() << "Set on a callback gauge must throw";
  } catch (const std::logic_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("callback"));
  }
}

TEST(MeterTest, RateIsTheIncreaseOverTheTimeSampled) {
  Meter m;
  EXPECT_EQ(m.Window(), seconds(60));
  m.Update(seconds(100));  // first sample: nothing to compare with
  EXPECT_EQ(m.GetRate(), 0);
  m.MarkEvent(100);
  m.Update(seconds(101));
  EXPECT_DOUBLE_EQ(m.GetRate(), 100);
  m.MarkEvent(200);
  m.Update(seconds(102));
  EXPECT_DOUBLE_EQ(m.GetRate(), 150);  // 300 events in 2 s
  m.MarkEvent();
  EXPECT_EQ(m.GetCount(), 301);
  // The rate changes only on Update.
  EXPECT_DOUBLE_EQ(m.GetRate(), 150);
}

TEST(MeterTest, WindowSlidesOnceTheMeterIsOlderThanIt) {
  Meter m(seconds(10));
  m.Update(seconds(0));
  // A burst in the first second, then 5 events per second.
  m.MarkEvent(1000);
  m.Update(seconds(1));
  for (int t = 2; t <= 30; ++t) {
    m.MarkEvent(5);
    m.Update(seconds(t));
  }
  // The last 10 s hold 50 events; the burst left the window long ago.
  EXPECT_DOUBLE_EQ(m.GetRate(), 5);
  // Irregular samples: the baseline is the newest sample at or before the
  // window's start.
  m.MarkEvent(70);
  m.Update(seconds(37));
  // Samples at 27 (base: 27 <= 37 - 10) .. 37: events 3 * 5 + 70 = 85 in 10 s.
  EXPECT_DOUBLE_EQ(m.GetRate(), 8.5);
}

TEST(MeterTest, MeterOverACounterAndOverATotal) {
  Counter c;
  Meter over_counter(c);
  over_counter.Update(seconds(0));
  c.Inc(30);
  over_counter.MarkEvent(10);  // increments the counter
  EXPECT_EQ(c.GetCount(), 40);
  over_counter.Update(seconds(2));
  EXPECT_DOUBLE_EQ(over_counter.GetRate(), 20);

  int64_t total = 1000;
  Meter over_total([&total] { return total; });
  over_total.Update(nanoseconds(0));
  total += 500;
  over_total.Update(std::chrono::milliseconds(250));
  EXPECT_DOUBLE_EQ(over_total.GetRate(), 2000);
  EXPECT_EQ(over_total.GetCount(), 1500);
}

/// The quantile by linear interpolation between closest ranks, written
/// independently of the implementation.
double ReferenceQuantile(std::vector<int64_t> values, double q) {
  std::sort(values.begin(), values.end());
  double pos = q * static_cast<double>(values.size() - 1);
  size_t below = static_cast<size_t>(pos);
  double fraction = pos - static_cast<double>(below);
  if (below + 1 >= values.size()) return static_cast<double>(values.back());
  return static_cast<double>(values[below]) * (1 - fraction) + static_cast<double>(values[below + 1]) * fraction;
}

TEST(HistogramTest, StatisticsOfKnownValues) {
  Histogram h(1000);
  for (int64_t v = 100; v >= 1; --v) h.Update(v);  // order must not matter
  HistogramStatistics s = h.GetStatistics();
  EXPECT_EQ(s.count, 100);
  EXPECT_EQ(s.size, 100);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.sum, 5050);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_NEAR(s.stddev, std::sqrt(841.6666666666666), 1e-9);
  EXPECT_DOUBLE_EQ(s.p50, 50.5);
  EXPECT_DOUBLE_EQ(s.p75, 75.25);
  EXPECT_DOUBLE_EQ(s.p95, 95.05);
  EXPECT_DOUBLE_EQ(s.p99, 99.01);
  EXPECT_NEAR(s.p999, 99.901, 1e-9);
}

TEST(HistogramTest, QuantilesOfTheLastValuesMatchASortedReference) {
  const size_t reservoir = 1024;
  Histogram h(reservoir);
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(5, 1.5);
  std::vector<int64_t> all;
  for (int i = 0; i < 5000; ++i) {
    auto v = static_cast<int64_t>(dist(rng));
    all.push_back(v);
    h.Update(v);
  }
  std::vector<int64_t> window(all.end() - static_cast<std::ptrdiff_t>(reservoir), all.end());
  HistogramStatistics s = h.GetStatistics();
  EXPECT_EQ(s.count, 5000);
  EXPECT_EQ(s.size, static_cast<int64_t>(reservoir));
  EXPECT_EQ(s.min, *std::min_element(window.begin(), window.end()));
  EXPECT_EQ(s.max, *std::max_element(window.begin(), window.end()));
  double sum_all = 0;
  for (int64_t v : all) sum_all += static_cast<double>(v);
  EXPECT_DOUBLE_EQ(s.sum, sum_all);
  double mean = 0;
  for (int64_t v : window) mean += static_cast<double>(v);
  mean /= static_cast<double>(window.size());
  EXPECT_NEAR(s.mean, mean, 1e-9 * mean);
  for (auto [q, got] : {std::pair{0.5, s.p50}, std::pair{0.75, s.p75}, std::pair{0.95, s.p95},
                        std::pair{0.98, s.p98}, std::pair{0.99, s.p99}, std::pair{0.999, s.p999}}) {
    double want = ReferenceQuantile(window, q);
    EXPECT_NEAR(got, want, 1e-9 * std::max(1.0, std::abs(want))) << "quantile " << q;
  }
}

TEST(HistogramTest, EmptyAndSingleValue) {
  Histogram h(4);
  HistogramStatistics empty = h.GetStatistics();
  EXPECT_EQ(empty.count, 0);
  EXPECT_EQ(empty.size, 0);
  h.Update(-7);
  HistogramStatistics one = h.GetStatistics();
  EXPECT_EQ(one.min, -7);
  EXPECT_EQ(one.max, -7);
  EXPECT_EQ(one.p50, -7);
  EXPECT_EQ(one.stddev, 0);
}

TEST(HistogramTest, ZeroReservoirIsRejected) {
  try {
    Histogram h(0);
    FAIL() << "a reservoir of 0 must be rejected";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("reservoir size"));
  }
}

TEST(RuntimeContextTest, MetricGroupOutsideAJobWorks) {
  RuntimeContext context("Harness", 0, 1, 128, 0);
  Counter& c = context.GetMetricGroup().Counter("outside");
  int64_t before = c.GetCount();
  c.Inc(3);
  EXPECT_EQ(&context.GetMetricGroup().Counter("outside"), &c);
  EXPECT_EQ(c.GetCount(), before + 3);
}

}  // namespace
}  // namespace freshet
