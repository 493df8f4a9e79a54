// Keyed-state benchmark of the heap backend: ValueState<int64_t> updates on
// int64 keys, and the process's resident memory per entry.
//
//   freshet_state_bench [--keys N] [--updates N] [--runs R]
//
// Phase 1 inserts N keys (one ValueState entry each) and reports resident
// memory growth / N. Phase 2 runs random read-modify-write updates over the
// N keys and reports updates/s (median of R runs).
#include <freshet/freshet.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ULL;
  x ^= x >> 27;
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t keys = 10'000'000;
  int64_t updates = 20'000'000;
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keys" && i + 1 < argc) {
      keys = std::atoll(argv[++i]);
    } else if (a == "--updates" && i + 1 < argc) {
      updates = std::atoll(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: freshet_state_bench [--keys N] [--updates N] [--runs R]\n");
      return 2;
    }
  }
  using Backend = freshet::internal::HeapKeyedStateBackend<int64_t>;
  freshet::RuntimeContext runtime("bench", 0, 1, 128, 0);
  Backend backend(freshet::KeyGroupRange{0, 127}, 128, nullptr);
  runtime.SetKeyedStateStore(&backend);
  auto& state = runtime.GetState(freshet::ValueStateDescriptor<int64_t>("value", 0));

  int64_t before = ResidentBytes();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < keys; ++k) {
    int64_t key = static_cast<int64_t>(Mix(static_cast<uint64_t>(k)));
    backend.SetCurrentKey(key);
    state.Update(k);
  }
  double insert_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t after = ResidentBytes();
  std::printf("inserted %lld keys in %.2f s (%.2f M/s); resident memory +%.1f MB = %.1f bytes per entry\n",
              static_cast<long long>(keys), insert_s, static_cast<double>(keys) / insert_s / 1e6,
              static_cast<double>(after - before) / 1e6, static_cast<double>(after - before) / static_cast<double>(keys));

  std::vector<double> rates;
  uint64_t seed = 1;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < updates; ++i) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      int64_t key = static_cast<int64_t>(Mix((seed >> 20) % static_cast<uint64_t>(keys)));
      backend.SetCurrentKey(key);
      state.Update(state.Value() + 1);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(static_cast<double>(updates) / s);
    std::printf("run %d: %lld random read-modify-write updates over %lld keys in %.2f s = %.2f M updates/s\n", r + 1,
                static_cast<long long>(updates), static_cast<long long>(keys), s,
                static_cast<double>(updates) / s / 1e6);
    std::fflush(stdout);
  }
  std::sort(rates.begin(), rates.end());
  std::printf("median: %.2f M updates/s over %d runs; %zu keys hold state\n", rates[rates.size() / 2] / 1e6, runs,
              backend.NumKeys());
  return 0;
}
