// Runtime throughput benchmarks on records {u64 key, u64 value, i64 ts},
// generated inside the source, 10,000 keys.
//
//   freshet_bench [--workload a|b|c|all] [--records N] [--runs R] [-D key=value]...
//                 [--checkpoint-overhead DIR]
//
//   a: source -> map -> filter (2/3 pass) -> counting sink, one chain, P=1
//   b: source -> keyBy -> running sum per key (one output per input)
//      -> counting sink; one task boundary (source | sum+sink), P=1
//   c: as b with two task boundaries (source | sum | sink), P=2
//   n: as b with the source in a slot of its own, run twice per round: in
//      one TaskExecutor (local channels) and spread over two TaskExecutors
//      (`minicluster.number-of-taskmanagers: 2`), where every record
//      crosses TCP on loopback with credit-based flow control; prints both
//      rates and their ratio
//
// Prints records/s of every run and the median. With --checkpoint-overhead,
// every run of a workload is done twice, back to back: without
// checkpoints and with exactly-once checkpoints every second into DIR;
// the medians of both and their ratio are printed.
#include <freshet/freshet.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "keyed_records.h"

namespace {

using freshet_bench::Event;
using freshet_bench::MakeEvent;

struct Run {
  double seconds;
  int64_t sink_records;
};

Run RunWorkload(char workload, int64_t records, const freshet::Configuration& config) {
  auto env = freshet::StreamExecutionEnvironment::Create(config);
  auto counting_sink = [](const auto&) {};
  if (workload == 'a') {
    env->SetParallelism(1);
    env->FromGenerator(MakeEvent, records)
        .Map([](const Event& e) { return Event{e.key, e.value + 1, e.ts}; })
        .Filter([](const Event& e) { return e.value % 3 != 0; })
        .SinkTo(counting_sink);
  } else if (workload == 'n') {
    env->SetParallelism(1);
    env->FromGenerator(MakeEvent, records)
        .SlotSharingGroup("source")
        .KeyBy([](const Event& e) { return e.key; })
        .Sum(&Event::value)
        .SinkTo(counting_sink);
  } else {
    int p = workload == 'b' ? 1 : 2;
    env->SetParallelism(p);
    auto sums = env->FromGenerator(MakeEvent, records).KeyBy([](const Event& e) { return e.key; }).Sum(&Event::value);
    if (workload == 'b') {
      sums.SinkTo(counting_sink);
    } else {
      sums.SinkTo(counting_sink).DisableChaining();
    }
  }
  auto start = std::chrono::steady_clock::now();
  auto result = env->Execute(std::string("bench-") + workload);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.IsOk()) {
    std::fprintf(stderr, "job failed: %s\n", result.GetStatus().ToString().c_str());
    std::exit(1);
  }
  return Run{seconds, result->records_out};
}

}  // namespace

int main(int argc, char** argv) {
  std::string workloads = "abc";
  int64_t records = 50'000'000;
  int runs = 5;
  freshet::Configuration config;
  std::string checkpoint_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--workload" && i + 1 < argc) {
      workloads = argv[++i];
      if (workloads == "all") workloads = "abc";
    } else if (a == "--records" && i + 1 < argc) {
      records = std::atoll(argv[++i]);
    } else if (a == "-D" && i + 1 < argc) {
      std::string kv = argv[++i];
      auto eq = kv.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "-D expects key=value, got '%s'\n", kv.c_str());
        return 2;
      }
      config.Set(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a == "--checkpoint-overhead" && i + 1 < argc) {
      checkpoint_dir = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: freshet_bench [--workload a|b|c|n|all] [--records N] [--runs R] [-D key=value]...\n");
      return 2;
    }
  }
  if (!checkpoint_dir.empty()) {
    freshet::Configuration with = config;
    with.Set("execution.checkpointing.interval", "1 s");
    with.Set("execution.checkpointing.mode", "EXACTLY_ONCE");
    with.Set("state.checkpoints.dir", checkpoint_dir);
    for (char w : workloads) {
      std::vector<double> plain, checkpointed, ratios;
      for (int r = 0; r < runs; ++r) {
        Run a = RunWorkload(w, records, config);
        Run b = RunWorkload(w, records, with);
        if (w != 'a' && (a.sink_records != records || b.sink_records != records)) {
          std::fprintf(stderr, "workload %c: sinks saw %lld and %lld records, expected %lld\n", w,
                       static_cast<long long>(a.sink_records), static_cast<long long>(b.sink_records),
                       static_cast<long long>(records));
          return 1;
        }
        plain.push_back(static_cast<double>(records) / a.seconds);
        checkpointed.push_back(static_cast<double>(records) / b.seconds);
        ratios.push_back(checkpointed.back() / plain.back());
        std::printf("workload %c run %d: %.2f M records/s without checkpoints, %.2f M records/s with (ratio %.3f)\n",
                    w, r + 1, plain.back() / 1e6, checkpointed.back() / 1e6, ratios.back());
        std::fflush(stdout);
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      std::printf("workload %c median: %.2f M records/s without, %.2f M records/s with 1 s exactly-once checkpoints; "
                  "median ratio %.3f over %d runs\n",
                  w, median(plain) / 1e6, median(checkpointed) / 1e6, median(ratios), runs);
    }
    return 0;
  }
  if (workloads == "n") {
    freshet::Configuration two = config;
    two.Set("minicluster.number-of-taskmanagers", "2");
    std::vector<double> local, tcp, ratios;
    for (int r = 0; r < runs; ++r) {
      Run a = RunWorkload('n', records, config);
      Run b = RunWorkload('n', records, two);
      if (a.sink_records != records || b.sink_records != records) {
        std::fprintf(stderr, "workload n: sinks saw %lld and %lld records, expected %lld\n",
                     static_cast<long long>(a.sink_records), static_cast<long long>(b.sink_records),
                     static_cast<long long>(records));
        return 1;
      }
      local.push_back(static_cast<double>(records) / a.seconds);
      tcp.push_back(static_cast<double>(records) / b.seconds);
      ratios.push_back(tcp.back() / local.back());
      std::printf("workload n run %d: %.2f M records/s in one TaskExecutor, %.2f M records/s across two over TCP "
                  "(ratio %.3f)\n",
                  r + 1, local.back() / 1e6, tcp.back() / 1e6, ratios.back());
      std::fflush(stdout);
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    std::printf("workload n median: %.2f M records/s local, %.2f M records/s across two TaskExecutors over TCP; "
                "median ratio %.3f over %d runs\n",
                median(local) / 1e6, median(tcp) / 1e6, median(ratios), runs);
    return 0;
  }
  for (char w : workloads) {
    std::vector<double> rates;
    int64_t expected = w == 'a' ? -1 : records;
    for (int r = 0; r < runs; ++r) {
      Run run = RunWorkload(w, records, config);
      if (expected >= 0 && run.sink_records != expected) {
        std::fprintf(stderr, "workload %c: sink saw %lld records, expected %lld\n", w,
                     static_cast<long long>(run.sink_records), static_cast<long long>(expected));
        return 1;
      }
      double rate = static_cast<double>(records) / run.seconds;
      rates.push_back(rate);
      std::printf("workload %c run %d: %lld records in %.3f s = %.2f M records/s (sink %lld)\n", w, r + 1,
                  static_cast<long long>(records), run.seconds, rate / 1e6, static_cast<long long>(run.sink_records));
      std::fflush(stdout);
    }
    std::sort(rates.begin(), rates.end());
    std::printf("workload %c median: %.2f M records/s over %d runs\n", w, rates[rates.size() / 2] / 1e6, runs);
  }
  return 0;
}
