// The Nexmark source: the generator's events exactly once at any
// parallelism, with their event times as timestamps and the reference
// watermark, and a checkpointed position that survives a stop with a
// savepoint and a resume at another parallelism.
#include <freshet/freshet.h>
#include <freshet/nexmark_source.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/temp_dir.h"

namespace freshet::nexmark {
namespace {

using test_support::TempDir;

auto OrderKey(const Event& e) {
  return std::make_tuple(e.EventTime(), e.type, e.person.id, e.auction.id, e.bid.auction, e.bid.bidder, e.bid.price,
                         e.bid.extra);
}

void SortEvents(std::vector<Event>& events) {
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return OrderKey(a) < OrderKey(b); });
}

std::vector<Event> Expected(const GeneratorConfig& config) {
  Generator gen(config);
  std::vector<Event> events;
  for (int64_t n = 0; n < config.events; ++n) events.push_back(gen.At(n));
  SortEvents(events);
  return events;
}

TEST(NexmarkSourceTest, EmitsEveryEventOnceAtAnyParallelism) {
  GeneratorConfig config;
  config.events = 20000;
  std::vector<Event> expected = Expected(config);
  for (int parallelism : {1, 3}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(parallelism);
    std::vector<Event> out = Events(*env, config).ExecuteAndCollect();
    SortEvents(out);
    ASSERT_EQ(out.size(), expected.size());
    // Whole events: the members of the other kinds are empty, as from At().
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], expected[i]) << "event " << i << " of the sorted run";
  }
}

// Subtasks interleave event numbers, so they advance through event time
// together: no record is late by more than the watermark delay, and a
// 1-second tumbling count over all events sees every event in its window.
TEST(NexmarkSourceTest, SubtasksAdvanceThroughEventTimeTogether) {
  GeneratorConfig config;
  config.events = 60000;
  config.first_event_rate = 2000;  // 30 s of event time
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(3);
  auto counts = Events(*env, config)
                    .Map([](const Event&) { return int64_t{1}; })
                    .WindowAll(TumblingEventTimeWindows::Of(Duration(1000)))
                    .Reduce([](int64_t a, int64_t b) { return a + b; })
                    .ExecuteAndCollect();
  ASSERT_EQ(counts.size(), 30u);
  for (int64_t c : counts) EXPECT_EQ(c, 2000);
}

std::mutex g_mutex;
std::vector<Event>* g_sunk = nullptr;

TEST(NexmarkSourceTest, ResumesFromASavepointAtAnotherParallelism) {
  TempDir dir;
  GeneratorConfig config;
  config.events = 400000;
  std::vector<Event> sunk;
  g_sunk = &sunk;
  auto build = [&config](StreamExecutionEnvironment& env) {
    Events(env, config)
        .Map([](const Event& e) {
          // Slow enough for the savepoint to come midway.
          if (e.EventTime() % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
          return e;
        })
        .Uid("slow")
        .SinkTo([](const Event& e) {
          std::lock_guard<std::mutex> lock(g_mutex);
          g_sunk->push_back(e);
        })
        .Uid("sink");
  };
  std::string savepoint;
  {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(2);
    env->EnableCheckpointing(Duration(100));
    env->GetCheckpointConfig().directory = dir.Path() + "/checkpoints";
    build(*env);
    auto client = env->ExecuteAsync("first part");
    ASSERT_TRUE(client.IsOk()) << client.GetStatus().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    Result<std::string> taken = (*client)->StopWithSavepoint(dir.Path() + "/savepoints");
    ASSERT_TRUE(taken.IsOk()) << taken.GetStatus().ToString();
    savepoint = *taken;
    ASSERT_TRUE((*client)->Wait().IsOk());
  }
  size_t first = sunk.size();
  ASSERT_GT(first, 0u);
  ASSERT_LT(first, static_cast<size_t>(config.events)) << "the savepoint came after the end of the input";
  {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(3);
    RestoreOptions restore;
    restore.path = savepoint;
    env->SetStateRestore(restore);
    build(*env);
    Result<JobExecutionResult> r = env->Execute("second part");
    ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  }
  SortEvents(sunk);
  std::vector<Event> expected = Expected(config);
  ASSERT_EQ(sunk.size(), expected.size()) << first << " events before the savepoint";
  for (size_t i = 0; i < sunk.size(); ++i) ASSERT_EQ(sunk[i], expected[i]) << "event " << i << " of the sorted run";
}

TEST(NexmarkSourceTest, DamagedPositionFailsTheJobWithTheReason) {
  // A position from another source (the generic generator's, which has a
  // different layout) is refused by name.
  TempDir dir;
  std::string savepoint;
  {
    auto env = StreamExecutionEnvironment::Create();
    env->EnableCheckpointing(Duration(50));
    env->GetCheckpointConfig().directory = dir.Path() + "/checkpoints";
    env->FromGenerator([](int64_t n) { return std::to_string(n); }, -1, 1000).Uid("nexmark-source").SinkTo(
        [](const std::string&) {});
    auto client = env->ExecuteAsync("other source");
    ASSERT_TRUE(client.IsOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Result<std::string> taken = (*client)->StopWithSavepoint(dir.Path() + "/savepoints");
    ASSERT_TRUE(taken.IsOk()) << taken.GetStatus().ToString();
    savepoint = *taken;
    (void)(*client)->Wait();
  }
  auto env = StreamExecutionEnvironment::Create();
  RestoreOptions restore;
  restore.path = savepoint;
  env->SetStateRestore(restore);
  GeneratorConfig config;
  config.events = 1000;
  Events(*env, config).SinkTo([](const Event&) {});
  Result<JobExecutionResult> r = env->Execute("restored");
  ASSERT_FALSE(r.IsOk());
  EXPECT_NE(r.GetStatus().ToString().find("nexmark source"), std::string::npos) << r.GetStatus().ToString();
}

}  // namespace
}  // namespace freshet::nexmark
