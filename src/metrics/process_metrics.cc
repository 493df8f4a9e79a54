#include "metrics/process_metrics.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace freshet::internal {

int64_t ProcessCpuTimeNanos() {
  timespec ts{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t ProcessResidentBytes() {
  // /proc/self/statm: total program size, then resident pages.
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long long size = 0;
  long long resident = 0;
  int fields = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (fields != 2) return 0;
  long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? resident * page : 0;
}

}  // namespace freshet::internal
