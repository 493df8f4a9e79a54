// A job library for the deployment tests: the numbers 1..count keyed by
// value % keys, running sums per key written as text lines "(key,sum)".
//   --count N --keys K --output PATH [--parallelism P]
#include <freshet/freshet.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int RunJob(int argc, char** argv) {
  int64_t count = 1000;
  int64_t keys = 10;
  int parallelism = 0;
  std::string output;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--count") {
      count = std::atoll(argv[i + 1]);
    } else if (flag == "--keys") {
      keys = std::atoll(argv[i + 1]);
    } else if (flag == "--output") {
      output = argv[i + 1];
    } else if (flag == "--parallelism") {
      parallelism = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "sum_job: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (output.empty()) {
    std::fprintf(stderr, "sum_job: --output is required\n");
    return 2;
  }
  auto env = freshet::StreamExecutionEnvironment::Create();
  if (parallelism > 0) env->SetParallelism(parallelism);
  env->FromSequence(1, count)
      .Map([keys](int64_t x) { return std::pair<int64_t, int64_t>(x % keys, x); })
      .Name("Pair")
      .KeyBy([](const std::pair<int64_t, int64_t>& p) { return p.first; })
      .Sum<1>()
      .WriteAsText(output);
  auto result = env->Execute("Sum Job");
  if (!result.IsOk()) {
    std::fprintf(stderr, "sum_job: %s\n", result.GetStatus().Message().c_str());
    return 1;
  }
  std::printf("sum job finished: %lld records in, parallelism %d\n", static_cast<long long>(result->records_in),
              env->GetParallelism());
  return 0;
}

}  // namespace

FRESHET_JOB_ENTRY(RunJob)
