// A job library whose program goes wrong in the way its first argument
// names: throw (before Execute), return (without Execute), invalid (a graph
// that fails validation).
#include <freshet/freshet.h>

#include <stdexcept>
#include <string_view>

namespace {

int RunJob(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "throw") throw std::runtime_error("the input path does not exist");
  if (mode == "return") return 3;
  auto env = freshet::StreamExecutionEnvironment::Create();
  // Two operators with one uid: the graph fails validation.
  env->FromSequence(1, 10).Uid("same").Map([](int64_t x) { return x; }).Uid("same").Print();
  return env->Execute("Invalid Job").IsOk() ? 0 : 1;
}

}  // namespace

FRESHET_JOB_ENTRY(RunJob)
