// Event-time window benchmarks on records {u64 key, u64 value, i64 ts},
// generated inside the source with 1,000,000 events per event-time second,
// 10,000 keys, P=1, one task boundary (source | window -> sink).
//
//   freshet_window_bench [--workload tumbling1s|tumbling10s|sliding|sliding-per-window|session|all]
//                        [--records N] [--runs R] [-D key=value]...
//
//   tumbling1s   keyed 1 s tumbling window, incremental sum
//   tumbling10s  keyed 10 s tumbling window, incremental sum
//   sliding      keyed 10 s window sliding by 1 s, incremental sum
//   sliding-per-window  the same sliding windows updated per window
//                (size/slide updates per record), for comparison
//   session      keyed session windows, 50 ms gap; each key sends bursts of
//                10 events every 100 ms of event time (one session per burst)
//
// Prints records/s of every run and the median.
#include <freshet/freshet.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Event {
  uint64_t key;
  uint64_t value;
  int64_t ts;
};

constexpr uint64_t kKeys = 10'000;

Event Scattered(int64_t i) {
  auto u = static_cast<uint64_t>(i);
  return Event{(u * 0x9E3779B97F4A7C15ULL >> 32) % kKeys, u & 0xff, i / 1000};
}
Event Bursts(int64_t i) {
  auto u = static_cast<uint64_t>(i);
  return Event{(u / 10) % kKeys, u & 0xff, i / 1000};
}

struct Run {
  double seconds;
  int64_t results;
};

Run RunWorkload(const std::string& w, int64_t records, const freshet::Configuration& config) {
  using freshet::Duration;
  auto env = freshet::StreamExecutionEnvironment::Create(config);
  env->SetParallelism(1);
  auto strategy = freshet::WatermarkStrategy<Event>::ForMonotonousTimestamps().WithTimestampAssigner(
      [](const Event& e) { return e.ts; });
  auto source = env->FromGenerator(w == "session" ? Bursts : Scattered, records).AssignTimestampsAndWatermarks(strategy);
  auto keyed = source.KeyBy([](const Event& e) { return e.key; });
  auto sink = [](const Event&) {};
  if (w == "tumbling1s") {
    keyed.Window(freshet::TumblingEventTimeWindows::Of(Duration(1000))).Sum(&Event::value).SinkTo(sink);
  } else if (w == "tumbling10s") {
    keyed.Window(freshet::TumblingEventTimeWindows::Of(Duration(10'000))).Sum(&Event::value).SinkTo(sink);
  } else if (w == "sliding") {
    keyed.Window(freshet::SlidingEventTimeWindows::Of(Duration(10'000), Duration(1000))).Sum(&Event::value).SinkTo(sink);
  } else if (w == "sliding-per-window") {
    // The same windows and results, with each record added to every one of
    // its 10 windows (a trigger the pane path does not take: how a
    // per-window operator such as Flink's heap window operator works).
    keyed.Window(freshet::SlidingEventTimeWindows::Of(Duration(10'000), Duration(1000)))
        .Trigger(std::make_shared<freshet::ContinuousEventTimeTrigger<Event, freshet::TimeWindow>>(
            Duration(int64_t{1} << 40)))
        .Sum(&Event::value)
        .SinkTo(sink);
  } else if (w == "session") {
    keyed.Window(freshet::EventTimeSessionWindows::WithGap(Duration(50))).Sum(&Event::value).SinkTo(sink);
  } else {
    std::fprintf(stderr, "unknown workload '%s'\n", w.c_str());
    std::exit(2);
  }
  auto start = std::chrono::steady_clock::now();
  auto result = env->Execute("window-bench-" + w);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.IsOk()) {
    std::fprintf(stderr, "job failed: %s\n", result.GetStatus().ToString().c_str());
    std::exit(1);
  }
  return Run{seconds, result->records_out};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> workloads = {"tumbling1s", "tumbling10s", "sliding", "sliding-per-window", "session"};
  int64_t records = 50'000'000;
  int runs = 5;
  freshet::Configuration config;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--workload" && i + 1 < argc) {
      std::string w = argv[++i];
      if (w != "all") workloads = {w};
    } else if (a == "--records" && i + 1 < argc) {
      records = std::atoll(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "-D" && i + 1 < argc) {
      std::string kv = argv[++i];
      auto eq = kv.find('=');
      if (eq == std::string::npos) return 2;
      config.Set(kv.substr(0, eq), kv.substr(eq + 1));
    } else {
      std::fprintf(stderr,
                   "usage: freshet_window_bench [--workload tumbling1s|tumbling10s|sliding|sliding-per-window|session|all] "
                   "[--records N] "
                   "[--runs R] [-D key=value]...\n");
      return 2;
    }
  }
  for (const std::string& w : workloads) {
    std::vector<double> rates;
    for (int r = 0; r < runs; ++r) {
      Run run = RunWorkload(w, records, config);
      double rate = static_cast<double>(records) / run.seconds;
      rates.push_back(rate);
      std::printf("%s run %d: %lld records in %.3f s = %.2f M records/s (%lld window results)\n", w.c_str(), r + 1,
                  static_cast<long long>(records), run.seconds, rate / 1e6, static_cast<long long>(run.results));
      std::fflush(stdout);
    }
    std::sort(rates.begin(), rates.end());
    std::printf("%s median: %.2f M records/s over %d runs\n", w.c_str(), rates[rates.size() / 2] / 1e6, runs);
  }
  return 0;
}
