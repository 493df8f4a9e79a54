// A small job built against an installed (or build-tree) Freshet.
#include <freshet/freshet.h>

#include <cstdio>

int main() {
  auto env = freshet::StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto squares = env->FromSequence(1, 100).Map([](int64_t x) { return x * x; });
  int64_t sum = 0;
  for (int64_t v : squares.ExecuteAndCollect("out-of-tree")) sum += v;
  std::printf("sum of squares 1..100 = %lld\n", static_cast<long long>(sum));
  return sum == 338350 ? 0 : 1;
}
