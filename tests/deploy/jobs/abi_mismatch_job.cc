// A job library built for another job ABI: the loader must refuse it.
#include <freshet/job.h>

#undef FRESHET_JOB_ABI_VERSION
#define FRESHET_JOB_ABI_VERSION 999

namespace {
int RunJob(int, char**) { return 0; }
}  // namespace

FRESHET_JOB_ENTRY(RunJob)
