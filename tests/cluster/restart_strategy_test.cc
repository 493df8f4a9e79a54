#include "cluster/restart_strategy.h"

#include <gtest/gtest.h>

#include <climits>
#include <optional>
#include <set>
#include <string>

namespace freshet::internal {
namespace {

using Kind = RestartStrategyOptions::Kind;

RestartStrategyOptions WithKind(Kind kind) {
  RestartStrategyOptions options;
  options.kind = kind;
  return options;
}

TEST(RestartStrategyTest, NoneNeverRestarts) {
  auto strategy = RestartStrategy::Create(WithKind(Kind::kNone), /*checkpointing_enabled=*/true);
  EXPECT_EQ(strategy->Describe(), "none");
  EXPECT_EQ(strategy->OnFailure(0), std::nullopt);
  EXPECT_EQ(strategy->OnFailure(1'000'000), std::nullopt);
  EXPECT_NE(strategy->ExhaustedReason().find("none"), std::string::npos) << strategy->ExhaustedReason();
}

TEST(RestartStrategyTest, DefaultWithoutCheckpointingIsNone) {
  auto strategy = RestartStrategy::Create(RestartStrategyOptions(), /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->Describe(), "none");
  EXPECT_EQ(strategy->OnFailure(0), std::nullopt);
}

TEST(RestartStrategyTest, DefaultWithCheckpointingIsUnlimitedFixedDelayOfOneSecond) {
  RestartStrategyOptions options;
  // Sub-keys without a type are ignored, as in Flink.
  options.fixed_delay_attempts = 2;
  options.fixed_delay_ms = 5;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/true);
  EXPECT_EQ(strategy->Describe(), "fixed-delay (unlimited attempts, 1000 ms delay)");
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(strategy->OnFailure(i), 1000) << "failure " << i;
  }
}

TEST(RestartStrategyTest, FixedDelayAllowsAttemptsThenRefuses) {
  RestartStrategyOptions options = WithKind(Kind::kFixedDelay);
  options.fixed_delay_attempts = 3;
  options.fixed_delay_ms = 250;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->Describe(), "fixed-delay (3 attempts, 250 ms delay)");
  // Failures far apart still count: fixed-delay counts over the job's life.
  EXPECT_EQ(strategy->OnFailure(0), 250);
  EXPECT_EQ(strategy->OnFailure(10'000'000), 250);
  EXPECT_EQ(strategy->OnFailure(20'000'000), 250);
  EXPECT_EQ(strategy->OnFailure(30'000'000), std::nullopt);
  EXPECT_EQ(strategy->ExhaustedReason(), "restart strategy fixed-delay allows 3 restarts; all were used");
}

TEST(RestartStrategyTest, FixedDelayWithZeroAttemptsRefusesAtOnce) {
  RestartStrategyOptions options = WithKind(Kind::kFixedDelay);
  options.fixed_delay_attempts = 0;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/true);
  EXPECT_EQ(strategy->OnFailure(0), std::nullopt);
  EXPECT_EQ(strategy->ExhaustedReason(), "restart strategy fixed-delay allows 0 restarts; all were used");
}

TEST(RestartStrategyTest, FailureRateRefusesWhenFailuresWithinIntervalExceedMax) {
  RestartStrategyOptions options = WithKind(Kind::kFailureRate);
  options.failure_rate_max_failures = 3;
  options.failure_rate_interval_ms = 10'000;
  options.failure_rate_delay_ms = 100;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->Describe(), "failure-rate (3 failures per 10000 ms, 100 ms delay)");
  EXPECT_EQ(strategy->OnFailure(0), 100);
  EXPECT_EQ(strategy->OnFailure(1'000), 100);
  EXPECT_EQ(strategy->OnFailure(2'000), 100);
  EXPECT_EQ(strategy->OnFailure(3'000), std::nullopt);  // a 4th failure within 10 s
  EXPECT_NE(strategy->ExhaustedReason().find("allows 3 failures per 10000 ms"), std::string::npos)
      << strategy->ExhaustedReason();
  EXPECT_NE(strategy->ExhaustedReason().find("4 failures"), std::string::npos) << strategy->ExhaustedReason();
}

TEST(RestartStrategyTest, FailureRateForgetsFailuresOlderThanInterval) {
  RestartStrategyOptions options = WithKind(Kind::kFailureRate);
  options.failure_rate_max_failures = 2;
  options.failure_rate_interval_ms = 1'000;
  options.failure_rate_delay_ms = 0;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  // Steadily one failure per 600 ms: never more than 2 within any 1000 ms.
  for (int64_t t = 0; t < 60'000; t += 600) {
    ASSERT_EQ(strategy->OnFailure(t), 0) << "at " << t;
  }
}

TEST(RestartStrategyTest, FailureRateCountsAFailureExactlyOneIntervalAgo) {
  RestartStrategyOptions options = WithKind(Kind::kFailureRate);
  options.failure_rate_max_failures = 1;
  options.failure_rate_interval_ms = 1'000;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->OnFailure(0), 1000);
  EXPECT_EQ(strategy->OnFailure(1'001), 1000);       // the failure at 0 is older than the interval
  EXPECT_EQ(strategy->OnFailure(2'001), std::nullopt);  // the failure at 1001 is exactly one interval ago
}

RestartStrategyOptions ExponentialWithoutJitter() {
  RestartStrategyOptions options = WithKind(Kind::kExponentialDelay);
  options.exponential_initial_backoff_ms = 100;
  options.exponential_max_backoff_ms = 1'000;
  options.exponential_multiplier = 2.0;
  options.exponential_reset_threshold_ms = 10'000;
  options.exponential_jitter = 0.0;
  return options;
}

TEST(RestartStrategyTest, ExponentialDelayGrowsByMultiplierUpToMax) {
  auto strategy = RestartStrategy::Create(ExponentialWithoutJitter(), /*checkpointing_enabled=*/false);
  const int64_t expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
  int64_t now = 0;
  for (int64_t delay : expected) {
    EXPECT_EQ(strategy->OnFailure(now), delay) << "at " << now;
    now += 1'000;  // well below the reset threshold
  }
}

TEST(RestartStrategyTest, ExponentialDelayWithFractionalMultiplier) {
  RestartStrategyOptions options = ExponentialWithoutJitter();
  options.exponential_multiplier = 1.5;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->OnFailure(0), 100);
  EXPECT_EQ(strategy->OnFailure(1), 150);
  EXPECT_EQ(strategy->OnFailure(2), 225);
}

TEST(RestartStrategyTest, ExponentialDelayResetsAfterAFailureFreeThreshold) {
  auto strategy = RestartStrategy::Create(ExponentialWithoutJitter(), /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->OnFailure(0), 100);
  EXPECT_EQ(strategy->OnFailure(1'000), 200);
  EXPECT_EQ(strategy->OnFailure(2'000), 400);
  EXPECT_EQ(strategy->OnFailure(11'999), 800);   // 9999 ms since the previous failure: no reset
  EXPECT_EQ(strategy->OnFailure(21'999), 100);   // exactly the threshold: reset
  EXPECT_EQ(strategy->OnFailure(22'000), 200);
}

TEST(RestartStrategyTest, ExponentialDelayRefusesAfterAttemptsWithoutReset) {
  RestartStrategyOptions options = ExponentialWithoutJitter();
  options.exponential_attempts = 3;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->OnFailure(0), 100);
  EXPECT_EQ(strategy->OnFailure(1), 200);
  EXPECT_EQ(strategy->OnFailure(2), 400);
  EXPECT_EQ(strategy->OnFailure(3), std::nullopt);
  EXPECT_NE(strategy->ExhaustedReason().find("exponential-delay allows 3 restarts"), std::string::npos)
      << strategy->ExhaustedReason();
}

TEST(RestartStrategyTest, ExponentialDelayResetAlsoResetsTheAttemptCount) {
  RestartStrategyOptions options = ExponentialWithoutJitter();
  options.exponential_attempts = 2;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  int64_t now = 0;
  for (int round = 0; round < 5; ++round) {
    EXPECT_EQ(strategy->OnFailure(now), 100) << "round " << round;
    EXPECT_EQ(strategy->OnFailure(now + 1), 200) << "round " << round;
    now += 1 + 10'000;  // a failure-free run of the threshold
  }
  EXPECT_EQ(strategy->OnFailure(now), 100);
  EXPECT_EQ(strategy->OnFailure(now + 1), 200);
  EXPECT_EQ(strategy->OnFailure(now + 2), std::nullopt);
}

TEST(RestartStrategyTest, ExponentialDelayJitterStaysWithinBounds) {
  RestartStrategyOptions options = ExponentialWithoutJitter();
  options.exponential_jitter = 0.25;
  options.exponential_initial_backoff_ms = 1'000;
  options.exponential_max_backoff_ms = 8'000;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false, /*seed=*/7);
  std::set<int64_t> seen_at_max;
  int64_t base = 1'000;
  for (int i = 0; i < 2'000; ++i) {
    std::optional<int64_t> delay = strategy->OnFailure(i);
    ASSERT_TRUE(delay.has_value());
    EXPECT_GE(*delay, base - base / 4) << "failure " << i;
    EXPECT_LE(*delay, base + base / 4) << "failure " << i;
    if (base == 8'000) seen_at_max.insert(*delay);
    base = std::min<int64_t>(base * 2, 8'000);
  }
  // The jitter really varies the delay, on both sides of the base.
  EXPECT_GT(seen_at_max.size(), 100u);
  EXPECT_LT(*seen_at_max.begin(), 7'000);
  EXPECT_GT(*seen_at_max.rbegin(), 9'000);
}

TEST(RestartStrategyTest, ExponentialDelayJitterIsDeterministicPerSeed) {
  RestartStrategyOptions options = ExponentialWithoutJitter();
  options.exponential_jitter = 1.0;
  auto a = RestartStrategy::Create(options, /*checkpointing_enabled=*/false, /*seed=*/123);
  auto b = RestartStrategy::Create(options, /*checkpointing_enabled=*/false, /*seed=*/123);
  auto c = RestartStrategy::Create(options, /*checkpointing_enabled=*/false, /*seed=*/124);
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    std::optional<int64_t> da = a->OnFailure(i);
    ASSERT_TRUE(da.has_value());
    EXPECT_EQ(da, b->OnFailure(i));
    EXPECT_GE(*da, 0);
    differs = differs || c->OnFailure(i) != da;
  }
  EXPECT_TRUE(differs);
}

TEST(RestartStrategyTest, ExponentialDelayDescribesItsSettings) {
  RestartStrategyOptions options = WithKind(Kind::kExponentialDelay);
  options.exponential_multiplier = 1.5;
  options.exponential_attempts = 4;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  EXPECT_EQ(strategy->Describe(),
            "exponential-delay (1000 ms initial backoff, 60000 ms max backoff, multiplier 1.5, jitter 0.1, "
            "reset after 3600000 ms, 4 attempts)");
  RestartStrategyOptions defaults = WithKind(Kind::kExponentialDelay);
  EXPECT_NE(RestartStrategy::Create(defaults, false)->Describe().find("unlimited attempts"), std::string::npos);
}

TEST(RestartStrategyTest, ExponentialDelayWithHugeBackoffDoesNotOverflow) {
  RestartStrategyOptions options = WithKind(Kind::kExponentialDelay);
  options.exponential_initial_backoff_ms = INT64_MAX / 4;
  options.exponential_max_backoff_ms = INT64_MAX;
  options.exponential_multiplier = 10.0;
  options.exponential_jitter = 1.0;
  auto strategy = RestartStrategy::Create(options, /*checkpointing_enabled=*/false);
  for (int i = 0; i < 5; ++i) {
    std::optional<int64_t> delay = strategy->OnFailure(i);
    ASSERT_TRUE(delay.has_value());
    EXPECT_GE(*delay, 0);
  }
}

}  // namespace
}  // namespace freshet::internal
