#pragma once
// The records of the runtime workloads, generated inside the source:
// {u64 key, u64 value, i64 ts} over 10,000 keys. Shared by the in-process
// bench (runtime_bench.cc) and the job library run across processes
// (jobs/keyed_bench_job.cc), so both measure the same records.

#include <cstdint>

namespace freshet_bench {

struct Event {
  uint64_t key;
  uint64_t value;
  int64_t ts;
};

inline constexpr uint64_t kKeys = 10'000;

inline Event MakeEvent(int64_t i) {
  auto u = static_cast<uint64_t>(i);
  return Event{(u * 0x9E3779B97F4A7C15ULL >> 32) % kKeys, u, i};
}

}  // namespace freshet_bench
