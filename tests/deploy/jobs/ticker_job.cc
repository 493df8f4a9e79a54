// A job library for the deployment tests that runs until it is cancelled
// or stopped: `rate` numbers per second in total, keyed by value % keys,
// running counts per key written as text lines "(key,count)". Checkpointing
// comes from the configuration the job is submitted with.
//   --rate N --keys K --output PATH
#include <freshet/freshet.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int RunJob(int argc, char** argv) {
  double rate = 200;
  int64_t keys = 4;
  std::string output;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--rate") {
      rate = std::atof(argv[i + 1]);
    } else if (flag == "--keys") {
      keys = std::atoll(argv[i + 1]);
    } else if (flag == "--output") {
      output = argv[i + 1];
    } else {
      std::fprintf(stderr, "ticker_job: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (output.empty() || keys < 1) {
    std::fprintf(stderr, "ticker_job: --output is required and --keys must be positive\n");
    return 2;
  }
  auto env = freshet::StreamExecutionEnvironment::Create();
  env->FromGenerator([keys](int64_t i) { return std::pair<int64_t, int64_t>(i % keys, 1); }, -1, rate)
      .Uid("ticks")
      .KeyBy([](const std::pair<int64_t, int64_t>& p) { return p.first; })
      .Sum<1>()
      .Uid("counts")
      .WriteAsText(output)
      .Uid("sink");
  auto result = env->Execute("Ticker Job");
  if (!result.IsOk()) {
    std::fprintf(stderr, "ticker_job: %s\n", result.GetStatus().Message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

FRESHET_JOB_ENTRY(RunJob)
