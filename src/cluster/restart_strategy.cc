#include "cluster/restart_strategy.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <limits>
#include <random>

#include "freshet/status.h"

namespace freshet::internal {
namespace {

constexpr int kUnlimited = std::numeric_limits<int>::max();

// "2", "1.5": the shortest decimal form that reads back as `value`.
std::string Number(double value) {
  char text[32];
  auto [end, ec] = std::to_chars(text, text + sizeof(text), value);
  return ec == std::errc() ? std::string(text, end) : std::to_string(value);
}

// "1 failure", "3 failures".
std::string Count(int64_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// "3 attempts", or "unlimited attempts" for INT_MAX.
std::string Attempts(int attempts) {
  if (attempts == kUnlimited) return "unlimited attempts";
  return Count(attempts, "attempt");
}

/// `none`: every failure fails the job.
class NoRestartStrategy final : public RestartStrategy {
 public:
  std::optional<int64_t> OnFailure(int64_t /*now_ms*/) override { return std::nullopt; }
  std::string ExhaustedReason() const override { return "restart strategy none never restarts the job"; }
  std::string Describe() const override { return "none"; }
};

/// `fixed-delay`: up to `attempts` restarts in the job's life, each after `delay_ms`.
class FixedDelayRestartStrategy final : public RestartStrategy {
 public:
  FixedDelayRestartStrategy(int attempts, int64_t delay_ms) : attempts_(attempts), delay_ms_(delay_ms) {}

  std::optional<int64_t> OnFailure(int64_t /*now_ms*/) override {
    if (restarts_ >= attempts_) return std::nullopt;
    ++restarts_;
    return delay_ms_;
  }
  std::string ExhaustedReason() const override {
    return "restart strategy fixed-delay allows " + Count(attempts_, "restart") + "; all were used";
  }
  std::string Describe() const override {
    return "fixed-delay (" + Attempts(attempts_) + ", " + std::to_string(delay_ms_) + " ms delay)";
  }

 private:
  const int attempts_;
  const int64_t delay_ms_;
  int restarts_ = 0;
};

/// `failure-rate`: refuses when more than `max_failures` failures (this one
/// included) happened within the last `interval_ms`; otherwise restarts after `delay_ms`.
class FailureRateRestartStrategy final : public RestartStrategy {
 public:
  FailureRateRestartStrategy(int max_failures, int64_t interval_ms, int64_t delay_ms)
      : max_failures_(max_failures), interval_ms_(interval_ms), delay_ms_(delay_ms) {}

  std::optional<int64_t> OnFailure(int64_t now_ms) override {
    failures_.push_back(now_ms);
    // A failure exactly `interval_ms` ago still counts (Flink restarts only
    // when the oldest counted failure is strictly older than the interval).
    while (now_ms - failures_.front() > interval_ms_) failures_.pop_front();
    if (failures_.size() > static_cast<size_t>(max_failures_)) {
      refused_count_ = failures_.size();
      return std::nullopt;
    }
    return delay_ms_;
  }
  std::string ExhaustedReason() const override {
    return "restart strategy failure-rate allows " + Count(max_failures_, "failure") + " per " +
           std::to_string(interval_ms_) + " ms; " + Count(static_cast<int64_t>(refused_count_), "failure") +
           " happened within " + std::to_string(interval_ms_) + " ms";
  }
  std::string Describe() const override {
    return "failure-rate (" + Count(max_failures_, "failure") + " per " + std::to_string(interval_ms_) + " ms, " +
           std::to_string(delay_ms_) + " ms delay)";
  }

 private:
  const int max_failures_;
  const int64_t interval_ms_;
  const int64_t delay_ms_;
  // Times of the failures within the last interval, oldest first; holds at
  // most max_failures_ + 1 entries (older ones are dropped or refused).
  std::deque<int64_t> failures_;
  size_t refused_count_ = 0;
};

/// `exponential-delay`: the delay starts at the initial backoff and grows by
/// the multiplier after each restart up to the max backoff, each delay
/// spread by +-jitter. A failure at least `reset_threshold_ms` after the
/// previous one starts again from the initial backoff; `attempts`
/// consecutive restarts without such a reset exhaust the strategy.
class ExponentialDelayRestartStrategy final : public RestartStrategy {
 public:
  ExponentialDelayRestartStrategy(const RestartStrategyOptions& options, uint64_t seed)
      : initial_ms_(options.exponential_initial_backoff_ms),
        max_ms_(options.exponential_max_backoff_ms),
        multiplier_(options.exponential_multiplier),
        reset_threshold_ms_(options.exponential_reset_threshold_ms),
        jitter_(options.exponential_jitter),
        attempts_(options.exponential_attempts),
        backoff_ms_(options.exponential_initial_backoff_ms),
        random_(seed) {}

  std::optional<int64_t> OnFailure(int64_t now_ms) override {
    if (last_failure_ms_.has_value() && now_ms - *last_failure_ms_ >= reset_threshold_ms_) {
      backoff_ms_ = initial_ms_;
      restarts_ = 0;
    }
    last_failure_ms_ = now_ms;
    if (restarts_ >= attempts_) return std::nullopt;
    ++restarts_;
    int64_t delay_ms = WithJitter(backoff_ms_);
    // The next backoff, multiplied in double so that a large product cannot
    // overflow, and compared before converting back (double(max_ms_) may be 2^63).
    double next = static_cast<double>(backoff_ms_) * multiplier_;
    backoff_ms_ = next >= static_cast<double>(max_ms_) ? max_ms_ : std::max(backoff_ms_, static_cast<int64_t>(next));
    return delay_ms;
  }
  std::string ExhaustedReason() const override {
    return "restart strategy exponential-delay allows " + Count(attempts_, "restart") +
           " without a reset of the backoff (a failure-free run of " + std::to_string(reset_threshold_ms_) +
           " ms); all were used";
  }
  std::string Describe() const override {
    return "exponential-delay (" + std::to_string(initial_ms_) + " ms initial backoff, " + std::to_string(max_ms_) +
           " ms max backoff, multiplier " + Number(multiplier_) + ", jitter " + Number(jitter_) + ", reset after " +
           std::to_string(reset_threshold_ms_) + " ms, " + Attempts(attempts_) + ")";
  }

 private:
  // `backoff_ms` * (1 + jitter_ * u), u uniform in [-1, 1), never negative.
  int64_t WithJitter(int64_t backoff_ms) {
    if (jitter_ == 0.0 || backoff_ms == 0) return backoff_ms;
    // 53 random bits to a double in [0, 1), by hand rather than through
    // std::uniform_real_distribution, whose output differs between standard libraries.
    double unit = static_cast<double>(random_() >> 11) * 0x1.0p-53;
    double factor = 1.0 + jitter_ * (2.0 * unit - 1.0);
    // Clamped below 2^63 so that the conversion back to int64_t is defined.
    double delay = std::clamp(std::round(static_cast<double>(backoff_ms) * factor), 0.0, 9.0e18);
    return static_cast<int64_t>(delay);
  }

  const int64_t initial_ms_;
  const int64_t max_ms_;
  const double multiplier_;
  const int64_t reset_threshold_ms_;
  const double jitter_;
  const int attempts_;
  int64_t backoff_ms_;
  int restarts_ = 0;
  std::optional<int64_t> last_failure_ms_;
  std::mt19937_64 random_;
};

}  // namespace

std::unique_ptr<RestartStrategy> RestartStrategy::Create(const RestartStrategyOptions& options,
                                                         bool checkpointing_enabled, uint64_t seed) {
  using Kind = RestartStrategyOptions::Kind;
  FRESHET_CHECK_MSG(options.exponential_multiplier >= 1.0 && options.exponential_jitter >= 0.0 &&
                        options.exponential_jitter <= 1.0,
                    "restart strategy options were not validated");
  Kind kind = options.kind.value_or(checkpointing_enabled ? Kind::kFixedDelay : Kind::kNone);
  switch (kind) {
    case Kind::kNone:
      return std::make_unique<NoRestartStrategy>();
    case Kind::kFixedDelay:
      if (!options.kind.has_value()) return std::make_unique<FixedDelayRestartStrategy>(kUnlimited, 1000);
      return std::make_unique<FixedDelayRestartStrategy>(options.fixed_delay_attempts, options.fixed_delay_ms);
    case Kind::kFailureRate:
      return std::make_unique<FailureRateRestartStrategy>(options.failure_rate_max_failures,
                                                          options.failure_rate_interval_ms,
                                                          options.failure_rate_delay_ms);
    case Kind::kExponentialDelay:
      return std::make_unique<ExponentialDelayRestartStrategy>(options, seed);
  }
  return std::make_unique<NoRestartStrategy>();
}

}  // namespace freshet::internal
