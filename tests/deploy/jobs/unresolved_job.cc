// A job library that references a function no Freshet process defines:
// loading it must fail naming the symbol.
#include <freshet/job.h>

extern "C" int freshet_function_that_does_not_exist(int);

namespace {
int RunJob(int argc, char**) { return freshet_function_that_does_not_exist(argc); }
}  // namespace

FRESHET_JOB_ENTRY(RunJob)
