#include <freshet/freshet.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace freshet {
namespace {

TEST(SmokeTest, MapFilterCollect) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto out = env->FromSequence(1, 1000).Map([](int64_t x) { return x * 2; }).Filter([](int64_t x) {
    return x % 3 == 0;
  }).ExecuteAndCollect();
  std::sort(out.begin(), out.end());
  std::vector<int64_t> expected;
  for (int64_t x = 1; x <= 1000; ++x) {
    if ((x * 2) % 3 == 0) expected.push_back(x * 2);
  }
  EXPECT_EQ(out, expected);
}

}  // namespace
}  // namespace freshet
