#pragma once
// Restart strategies: after each task failure the JobMaster asks its
// RestartStrategy whether the job restarts (from the latest completed
// checkpoint) and after what delay. Semantics follow Flink's
// `restart-strategy.*` options.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "freshet/checkpoint.h"

namespace freshet::internal {

/// Decides after each task failure whether and when the job restarts.
/// Stateful (it counts failures); one instance per job execution. Not
/// thread-safe: the JobMaster calls it from one thread at a time.
class RestartStrategy {
 public:
  virtual ~RestartStrategy() = default;

  /// `options.kind` unset: fixed-delay with unlimited attempts (INT_MAX) and
  /// 1 s delay when checkpointing is enabled, otherwise none (Flink's default).
  /// `seed` drives the exponential-delay jitter, so a given seed gives the
  /// same delays every run.
  /// REQUIRES: `options` passed ExecutionOptions::Validate().
  static std::unique_ptr<RestartStrategy> Create(const RestartStrategyOptions& options, bool checkpointing_enabled,
                                                 uint64_t seed = 42);

  /// A failure happened at `now_ms` (ms, monotonic or wall clock; only
  /// differences matter). Returns the delay in ms before restarting, or
  /// nullopt when the job must fail.
  /// REQUIRES: `now_ms` does not decrease between calls.
  virtual std::optional<int64_t> OnFailure(int64_t now_ms) = 0;

  /// Why the last OnFailure refused, e.g. "restart strategy fixed-delay
  /// allows 3 restarts; all were used". Meaningful only after a refusal.
  virtual std::string ExhaustedReason() const = 0;

  /// The strategy and its settings, e.g. "fixed-delay (3 attempts, 1000 ms delay)".
  virtual std::string Describe() const = 0;
};

}  // namespace freshet::internal
