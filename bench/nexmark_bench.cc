// Nexmark benchmarks. So far the event generator alone: the cost every
// query pays before its first operator.
//
//   freshet_nexmark_bench --generator [--events N] [--runs R]
//
// --generator (default 10 M events, 5 runs): one thread fills one reused
// Event per event number 0..N-1 (Generator::Fill, the way a source does)
// and adds up the records' sizes so that nothing is optimized away;
// events per second and bytes of records per second, median of R runs.
#include <freshet/nexmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int RunGenerator(int64_t events, int runs) {
  freshet::nexmark::Generator gen{freshet::nexmark::GeneratorConfig{}};
  std::vector<double> per_s, bytes_per_s;
  for (int run = 1; run <= runs; ++run) {
    freshet::nexmark::Event e;
    uint64_t bytes = 0;
    auto start = Clock::now();
    for (int64_t n = 0; n < events; ++n) {
      gen.Fill(n, &e);
      switch (e.type) {
        case freshet::nexmark::Event::kPerson:
          bytes += 8 + e.person.name.size() + e.person.email_address.size() + e.person.credit_card.size() +
                   e.person.city.size() + e.person.state.size() + e.person.extra.size();
          break;
        case freshet::nexmark::Event::kAuction:
          bytes += 48 + e.auction.item_name.size() + e.auction.description.size() + e.auction.extra.size();
          break;
        default:
          bytes += 32 + e.bid.channel.size() + e.bid.url.size() + e.bid.extra.size();
      }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    per_s.push_back(static_cast<double>(events) / seconds);
    bytes_per_s.push_back(static_cast<double>(bytes) / seconds);
    std::printf("run %d: %lld events in %.2f s: %.2f M events/s, %.0f MB/s of records\n", run,
                static_cast<long long>(events), seconds, per_s.back() / 1e6, bytes_per_s.back() / 1e6);
    std::fflush(stdout);
  }
  std::printf("median over %d runs: %.2f M events/s per core, %.0f MB/s of records\n", runs, Median(per_s) / 1e6,
              Median(bytes_per_s) / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 10'000'000;
  int runs = 5;
  bool generator = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc) {
      events = std::atoll(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--generator") {
      generator = true;
    } else {
      generator = false;
      break;
    }
  }
  if (!generator || events <= 0 || runs <= 0) {
    std::fprintf(stderr, "usage: freshet_nexmark_bench --generator [--events N] [--runs R]\n");
    return 2;
  }
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::printf("command: %s\n", command.c_str());
  return RunGenerator(events, runs);
}
