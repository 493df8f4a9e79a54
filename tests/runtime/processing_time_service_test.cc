// The task's processing-time service fires a timer for t only once the
// clock has passed t, so that records arriving during millisecond t, which
// belong to a window whose last millisecond is t, are in it when it fires
// (firing at t let them reopen the window and fire it a second time).
#include <gtest/gtest.h>

#include <vector>

#include "runtime/task/stream_task.h"

namespace freshet::internal {
namespace {

class ManualClock final : public Clock {
 public:
  Timestamp NowMillis() const override { return now; }
  int64_t MonotonicNanos() const override { return now * 1'000'000; }
  Timestamp now = 0;
};

TEST(ProcessingTimeServiceTest, TimersFireOnceTheClockHasPassedTheirTime) {
  ManualClock clock;
  TaskProcessingTimeService service(clock);
  std::vector<Timestamp> fired;
  service.RegisterTimer(100, [&](Timestamp t) { fired.push_back(t); });
  service.RegisterTimer(99, [&](Timestamp t) { fired.push_back(t); });

  clock.now = 99;
  service.FireDue();
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(service.NanosUntilNext(), 1'000'000);

  clock.now = 100;  // 99 has passed, 100 has not
  service.FireDue();
  EXPECT_EQ(fired, std::vector<Timestamp>{99});
  EXPECT_EQ(service.NanosUntilNext(), 1'000'000);

  clock.now = 101;
  service.FireDue();
  EXPECT_EQ(fired, (std::vector<Timestamp>{99, 100}));
  EXPECT_FALSE(service.HasTimers());
  EXPECT_EQ(service.NanosUntilNext(), -1);
}

TEST(ProcessingTimeServiceTest, ALateTimerIsDueAtOnce) {
  ManualClock clock;
  clock.now = 5000;
  TaskProcessingTimeService service(clock);
  int runs = 0;
  service.RegisterTimer(10, [&](Timestamp) { ++runs; });
  EXPECT_EQ(service.NanosUntilNext(), 0);
  service.FireDue();
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace freshet::internal
