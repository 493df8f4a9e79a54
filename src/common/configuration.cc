#include "freshet/configuration.h"

#include <algorithm>
#include <array>
#include <limits>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string_view>

#include "common/config_options.h"

namespace freshet {

std::optional<std::string> Configuration::Get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

namespace {

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status Malformed(const std::string& key, const std::string& value, std::string_view expected) {
  return Status::InvalidArgument("setting '" + key + "': '" + value + "' is not " + std::string(expected));
}

// A duration in milliseconds, in Flink's forms: a plain integer (ms), or an
// integer and a unit with optional spaces between. A leading '-' is kept so
// that settings with special negative values (execution.buffer-timeout = -1)
// parse; Validate() rejects negatives where they make no sense.
Result<int64_t> ParseDuration(const std::string& key, const std::string& value) {
  struct Unit {
    std::string_view name;
    int64_t ms;
  };
  static constexpr std::array<Unit, 20> kUnits = {{
      {"ms", 1},
      {"milli", 1},
      {"millis", 1},
      {"millisecond", 1},
      {"milliseconds", 1},
      {"s", 1000},
      {"sec", 1000},
      {"secs", 1000},
      {"second", 1000},
      {"seconds", 1000},
      {"m", 60 * 1000},
      {"min", 60 * 1000},
      {"minute", 60 * 1000},
      {"minutes", 60 * 1000},
      {"h", 60 * 60 * 1000},
      {"hour", 60 * 60 * 1000},
      {"hours", 60 * 60 * 1000},
      {"d", 24 * 60 * 60 * 1000},
      {"day", 24 * 60 * 60 * 1000},
      {"days", 24 * 60 * 60 * 1000},
  }};
  constexpr std::string_view kExpected =
      "a duration (an integer number of milliseconds, or an integer and a unit such as \"500 ms\", \"10 s\", "
      "\"1 min\", \"2 h\", \"1 d\")";
  int64_t amount = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, amount);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is out of range");
  }
  if (ec != std::errc()) return Malformed(key, value, kExpected);
  std::string_view rest(ptr, static_cast<size_t>(end - ptr));
  if (rest.empty()) return amount;
  size_t unit_start = rest.find_first_not_of(' ');
  if (unit_start == std::string_view::npos) return Malformed(key, value, kExpected);
  std::string unit = ToLower(rest.substr(unit_start));
  int64_t unit_ms = 0;
  for (const Unit& u : kUnits) {
    if (unit == u.name) unit_ms = u.ms;
  }
  if (unit_ms == 0) return Malformed(key, value, kExpected);
  int64_t out = 0;
  if (__builtin_mul_overflow(amount, unit_ms, &out)) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is out of range");
  }
  return out;
}

// A memory size in Flink's forms: a plain integer is bytes; otherwise an
// integer and a unit, with or without a space ("64 mb", "1g", "512kb").
// Units, case-insensitive: b/bytes, k/kb/kibibytes, m/mb/mebibytes,
// g/gb/gibibytes, t/tb/tebibytes (all powers of 1024, as in Flink).
Result<int64_t> ParseMemorySize(const std::string& key, const std::string& value) {
  constexpr std::string_view kExpected =
      "a memory size (an integer number of bytes, or an integer and a unit such as \"64 mb\", \"1 gb\")";
  struct Unit {
    std::string_view name;
    int shift;
  };
  static constexpr std::array<Unit, 15> kUnits = {{
      {"b", 0},
      {"bytes", 0},
      {"k", 10},
      {"kb", 10},
      {"kibibytes", 10},
      {"m", 20},
      {"mb", 20},
      {"mebibytes", 20},
      {"g", 30},
      {"gb", 30},
      {"gibibytes", 30},
      {"t", 40},
      {"tb", 40},
      {"tebibytes", 40},
      {"byte", 0},
  }};
  int64_t amount = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, amount);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is out of range");
  }
  if (ec != std::errc() || amount < 0) return Malformed(key, value, kExpected);
  std::string_view rest(ptr, static_cast<size_t>(end - ptr));
  if (rest.empty()) return amount;
  size_t unit_start = rest.find_first_not_of(' ');
  if (unit_start == std::string_view::npos) return Malformed(key, value, kExpected);
  std::string unit = ToLower(rest.substr(unit_start));
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    if (amount > (std::numeric_limits<int64_t>::max() >> u.shift)) {
      return Status::InvalidArgument("setting '" + key + "': '" + value + "' is out of range");
    }
    return amount << u.shift;
  }
  return Malformed(key, value, kExpected);
}

Result<StateBackendOptions::Type> ParseStateBackendType(const std::string& key, const std::string& value) {
  std::string lower = ToLower(value);
  // "filesystem" and "jobmanager" are the older names of the heap backend.
  if (lower == "hashmap" || lower == "heap" || lower == "filesystem" || lower == "jobmanager") {
    return StateBackendOptions::Type::kHeap;
  }
  if (lower == "rocksdb") return StateBackendOptions::Type::kRocksDB;
  return Malformed(key, value, "hashmap or rocksdb");
}

// An int setting (no unit suffix): a value outside int's range is an error, not a wrap-around.
Result<int64_t> ParseInt32(const std::string& key, const std::string& value) {
  int out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is out of range");
  }
  if (ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is not an integer");
  }
  return out;
}

// A finite decimal number ("2", "1.5", "0.25").
Result<double> ParseDouble(const std::string& key, const std::string& value) {
  double out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out, std::chars_format::fixed);
  if (ec != std::errc() || ptr != end || !std::isfinite(out)) return Malformed(key, value, "a number");
  return out;
}

Result<bool> ParseBool(const std::string& key, const std::string& value) {
  if (value == "true") return true;
  if (value == "false") return false;
  return Status::InvalidArgument("setting '" + key + "': '" + value + "' is not true or false");
}

Result<CheckpointingMode> ParseCheckpointingMode(const std::string& key, const std::string& value) {
  std::string lower = ToLower(value);
  if (lower == "exactly_once") return CheckpointingMode::kExactlyOnce;
  if (lower == "at_least_once") return CheckpointingMode::kAtLeastOnce;
  return Malformed(key, value, "EXACTLY_ONCE or AT_LEAST_ONCE");
}

// Returns whether retained checkpoints survive cancellation.
Result<bool> ParseRetention(const std::string& key, const std::string& value) {
  std::string lower = ToLower(value);
  if (lower == "retain_on_cancellation") return true;
  if (lower == "delete_on_cancellation" || lower == "no_externalized_checkpoints") return false;
  return Malformed(key, value, "RETAIN_ON_CANCELLATION, DELETE_ON_CANCELLATION or NO_EXTERNALIZED_CHECKPOINTS");
}

Result<RestartStrategyOptions::Kind> ParseRestartKind(const std::string& key, const std::string& value) {
  using Kind = RestartStrategyOptions::Kind;
  std::string lower = ToLower(value);
  if (lower == "none" || lower == "off" || lower == "disable") return Kind::kNone;
  if (lower == "fixed-delay" || lower == "fixeddelay") return Kind::kFixedDelay;
  if (lower == "failure-rate" || lower == "failurerate") return Kind::kFailureRate;
  if (lower == "exponential-delay" || lower == "exponentialdelay") return Kind::kExponentialDelay;
  return Malformed(key, value, "a restart strategy (none, fixed-delay, failure-rate or exponential-delay)");
}

// Keys whose older alias is also accepted; the newer key wins when both are set.
constexpr std::string_view kRestartTypeKey = "restart-strategy.type";
constexpr std::string_view kRestartTypeOldKey = "restart-strategy";
constexpr std::string_view kUnalignedKey = "execution.checkpointing.unaligned.enabled";
constexpr std::string_view kUnalignedOldKey = "execution.checkpointing.unaligned";

// Applies one `execution.checkpointing.*` / `state.checkpoints.*` key;
// returns false through `known` when the key is not one of them.
Status ApplyCheckpointKey(const std::map<std::string, std::string>& values, const std::string& key,
                          const std::string& value, CheckpointOptions& checkpoint, bool& known) {
  known = true;
  if (key == "execution.checkpointing.interval") {
    FRESHET_ASSIGN_OR_RETURN(checkpoint.interval_ms, ParseDuration(key, value));
  } else if (key == "execution.checkpointing.mode") {
    FRESHET_ASSIGN_OR_RETURN(checkpoint.mode, ParseCheckpointingMode(key, value));
  } else if (key == kUnalignedKey || key == kUnalignedOldKey) {
    FRESHET_ASSIGN_OR_RETURN(bool unaligned, ParseBool(key, value));
    if (key == kUnalignedKey || values.count(std::string(kUnalignedKey)) == 0) checkpoint.unaligned = unaligned;
  } else if (key == "execution.checkpointing.aligned-checkpoint-timeout") {
    FRESHET_ASSIGN_OR_RETURN(checkpoint.aligned_checkpoint_timeout_ms, ParseDuration(key, value));
  } else if (key == "execution.checkpointing.timeout") {
    FRESHET_ASSIGN_OR_RETURN(checkpoint.timeout_ms, ParseDuration(key, value));
  } else if (key == "execution.checkpointing.min-pause") {
    FRESHET_ASSIGN_OR_RETURN(checkpoint.min_pause_ms, ParseDuration(key, value));
  } else if (key == "execution.checkpointing.max-concurrent-checkpoints") {
    FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
    checkpoint.max_concurrent = static_cast<int>(v);
  } else if (key == "execution.checkpointing.tolerable-failed-checkpoints") {
    FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
    checkpoint.tolerable_failures = static_cast<int>(v);
  } else if (key == "execution.checkpointing.externalized-checkpoint-retention") {
    FRESHET_ASSIGN_OR_RETURN(checkpoint.retain_on_cancellation, ParseRetention(key, value));
  } else if (key == "state.checkpoints.num-retained") {
    FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
    checkpoint.num_retained = static_cast<int>(v);
  } else if (key == "state.checkpoints.dir") {
    checkpoint.directory = value;
  } else {
    known = false;
  }
  return Status::Ok();
}

// Applies one `restart-strategy` / `restart-strategy.*` key; returns false
// through `known` when the key is not one of them.
Status ApplyRestartKey(const std::map<std::string, std::string>& values, const std::string& key,
                       const std::string& value, RestartStrategyOptions& restart, bool& known) {
  known = true;
  if (key == kRestartTypeKey || key == kRestartTypeOldKey) {
    FRESHET_ASSIGN_OR_RETURN(RestartStrategyOptions::Kind kind, ParseRestartKind(key, value));
    if (key == kRestartTypeKey || values.count(std::string(kRestartTypeKey)) == 0) restart.kind = kind;
  } else if (key == "restart-strategy.fixed-delay.attempts") {
    FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
    restart.fixed_delay_attempts = static_cast<int>(v);
  } else if (key == "restart-strategy.fixed-delay.delay") {
    FRESHET_ASSIGN_OR_RETURN(restart.fixed_delay_ms, ParseDuration(key, value));
  } else if (key == "restart-strategy.failure-rate.max-failures-per-interval") {
    FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
    restart.failure_rate_max_failures = static_cast<int>(v);
  } else if (key == "restart-strategy.failure-rate.failure-rate-interval") {
    FRESHET_ASSIGN_OR_RETURN(restart.failure_rate_interval_ms, ParseDuration(key, value));
  } else if (key == "restart-strategy.failure-rate.delay") {
    FRESHET_ASSIGN_OR_RETURN(restart.failure_rate_delay_ms, ParseDuration(key, value));
  } else if (key == "restart-strategy.exponential-delay.initial-backoff") {
    FRESHET_ASSIGN_OR_RETURN(restart.exponential_initial_backoff_ms, ParseDuration(key, value));
  } else if (key == "restart-strategy.exponential-delay.max-backoff") {
    FRESHET_ASSIGN_OR_RETURN(restart.exponential_max_backoff_ms, ParseDuration(key, value));
  } else if (key == "restart-strategy.exponential-delay.backoff-multiplier") {
    FRESHET_ASSIGN_OR_RETURN(restart.exponential_multiplier, ParseDouble(key, value));
  } else if (key == "restart-strategy.exponential-delay.reset-backoff-threshold") {
    FRESHET_ASSIGN_OR_RETURN(restart.exponential_reset_threshold_ms, ParseDuration(key, value));
  } else if (key == "restart-strategy.exponential-delay.jitter-factor") {
    FRESHET_ASSIGN_OR_RETURN(restart.exponential_jitter, ParseDouble(key, value));
  } else if (key == "restart-strategy.exponential-delay.attempts-before-reset-backoff") {
    FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
    restart.exponential_attempts = static_cast<int>(v);
  } else {
    known = false;
  }
  return Status::Ok();
}

}  // namespace

// The file loader and -D checks (common/config_options.cc) read the same
// grammars, so that a value they accept is one ApplyTo accepts.
namespace internal {
Result<int64_t> ParseDurationSetting(const std::string& key, const std::string& value) {
  return ParseDuration(key, value);
}
Result<int64_t> ParseMemorySizeSetting(const std::string& key, const std::string& value) {
  return ParseMemorySize(key, value);
}
}  // namespace internal

Status Configuration::ApplyTo(ExecutionOptions& options) const {
  for (const auto& [key, value] : values_) {
    bool known = false;
    FRESHET_RETURN_IF_ERROR(ApplyCheckpointKey(values_, key, value, options.checkpoint, known));
    if (known) continue;
    FRESHET_RETURN_IF_ERROR(ApplyRestartKey(values_, key, value, options.restart, known));
    if (known) continue;
    if (key == "parallelism.default") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.parallelism = static_cast<int>(v);
    } else if (key == "pipeline.max-parallelism") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.max_parallelism = static_cast<int>(v);
    } else if (key == "execution.buffer-timeout") {
      FRESHET_ASSIGN_OR_RETURN(options.buffer_timeout_ms, ParseDuration(key, value));
    } else if (key == "pipeline.auto-watermark-interval") {
      FRESHET_ASSIGN_OR_RETURN(options.auto_watermark_interval_ms, ParseDuration(key, value));
    } else if (key == "pipeline.operator-chaining") {
      FRESHET_ASSIGN_OR_RETURN(options.chaining_enabled, ParseBool(key, value));
    } else if (key == "taskmanager.memory.segment-size") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.segment_size = static_cast<int>(v);
    } else if (key == "taskmanager.network.memory.buffers-per-channel") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.buffers_per_channel = static_cast<int>(v);
    } else if (key == "taskmanager.network.memory.floating-buffers-per-gate") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.floating_buffers = static_cast<int>(v);
    } else if (key == "state.backend.type" || key == "state.backend") {
      FRESHET_ASSIGN_OR_RETURN(StateBackendOptions::Type type, ParseStateBackendType(key, value));
      if (key == "state.backend.type" || values_.count("state.backend.type") == 0) options.state_backend.type = type;
    } else if (key == "state.backend.rocksdb.localdir") {
      options.state_backend.rocksdb_local_dir = value;
    } else if (key == "state.backend.rocksdb.memory.fixed-per-slot") {
      FRESHET_ASSIGN_OR_RETURN(int64_t bytes, ParseMemorySize(key, value));
      options.state_backend.rocksdb_memory_per_slot = static_cast<uint64_t>(bytes);
    } else if (key == "state.backend.incremental") {
      FRESHET_ASSIGN_OR_RETURN(options.state_backend.incremental, ParseBool(key, value));
    } else if (key == "state.backend.rocksdb.timer-service.factory") {
      std::string factory = value;
      std::transform(factory.begin(), factory.end(), factory.begin(), [](unsigned char c) { return std::tolower(c); });
      if (factory != "heap" && factory != "rocksdb") {
        return Status::InvalidArgument(key + ": expected HEAP or ROCKSDB, got '" + value + "'");
      }
      options.state_backend.rocksdb_timers = factory == "rocksdb";
    } else if (key == "execution.savepoint.path") {
      options.restore.path = value;
    } else if (key == "execution.savepoint.ignore-unclaimed-state") {
      FRESHET_ASSIGN_OR_RETURN(options.restore.allow_non_restored_state, ParseBool(key, value));
    } else if (key.starts_with("pipeline.") || key.starts_with("execution.") || key.starts_with("parallelism.") ||
               key.starts_with("restart-strategy.") || key.starts_with("state.checkpoints.") ||
               key.starts_with("state.backend.")) {
      return Status::InvalidArgument("unknown setting '" + key + "'");
    }
  }
  return options.Validate();
}

namespace {

Status ValidateCheckpoint(const CheckpointOptions& c) {
  if (c.interval_ms < 0) {
    return Status::InvalidArgument(
        "execution.checkpointing.interval must not be negative (0 disables checkpointing), got " +
        std::to_string(c.interval_ms) + " ms");
  }
  if (c.timeout_ms <= 0) {
    return Status::InvalidArgument("execution.checkpointing.timeout must be positive, got " +
                                   std::to_string(c.timeout_ms) + " ms");
  }
  if (c.min_pause_ms < 0) {
    return Status::InvalidArgument("execution.checkpointing.min-pause must not be negative, got " +
                                   std::to_string(c.min_pause_ms) + " ms");
  }
  if (c.aligned_checkpoint_timeout_ms < 0) {
    return Status::InvalidArgument("execution.checkpointing.aligned-checkpoint-timeout must not be negative, got " +
                                   std::to_string(c.aligned_checkpoint_timeout_ms) + " ms");
  }
  if (c.max_concurrent < 1) {
    return Status::InvalidArgument("execution.checkpointing.max-concurrent-checkpoints must be at least 1, got " +
                                   std::to_string(c.max_concurrent));
  }
  if (c.tolerable_failures < 0) {
    return Status::InvalidArgument("execution.checkpointing.tolerable-failed-checkpoints must not be negative, got " +
                                   std::to_string(c.tolerable_failures));
  }
  if (c.num_retained < 1) {
    return Status::InvalidArgument("state.checkpoints.num-retained must be at least 1, got " +
                                   std::to_string(c.num_retained));
  }
  if (c.unaligned && c.mode != CheckpointingMode::kExactlyOnce) {
    return Status::InvalidArgument(
        "execution.checkpointing.unaligned.enabled requires execution.checkpointing.mode EXACTLY_ONCE, got "
        "AT_LEAST_ONCE");
  }
  if (c.unaligned && c.max_concurrent > 1) {
    return Status::InvalidArgument(
        "execution.checkpointing.unaligned.enabled requires execution.checkpointing.max-concurrent-checkpoints 1, "
        "got " +
        std::to_string(c.max_concurrent));
  }
  if (c.Enabled() && c.directory.empty()) {
    return Status::InvalidArgument("checkpointing is enabled but state.checkpoints.dir is not set");
  }
  return Status::Ok();
}

// The shortest decimal form that reads back as `value` ("2", "1.5", "nan").
std::string ShortestDecimal(double value) {
  char text[32];
  auto [end, ec] = std::to_chars(text, text + sizeof(text), value);
  return ec == std::errc() ? std::string(text, end) : std::to_string(value);
}

Status ValidateRestart(const RestartStrategyOptions& r) {
  auto negative = [](std::string_view key, int64_t value, std::string_view unit) {
    return Status::InvalidArgument(std::string(key) + " must not be negative, got " + std::to_string(value) +
                                   std::string(unit));
  };
  if (r.fixed_delay_attempts < 0) return negative("restart-strategy.fixed-delay.attempts", r.fixed_delay_attempts, "");
  if (r.fixed_delay_ms < 0) return negative("restart-strategy.fixed-delay.delay", r.fixed_delay_ms, " ms");
  if (r.failure_rate_max_failures < 0) {
    return negative("restart-strategy.failure-rate.max-failures-per-interval", r.failure_rate_max_failures, "");
  }
  if (r.failure_rate_interval_ms <= 0) {
    return Status::InvalidArgument("restart-strategy.failure-rate.failure-rate-interval must be positive, got " +
                                   std::to_string(r.failure_rate_interval_ms) + " ms");
  }
  if (r.failure_rate_delay_ms < 0) {
    return negative("restart-strategy.failure-rate.delay", r.failure_rate_delay_ms, " ms");
  }
  if (r.exponential_initial_backoff_ms < 0) {
    return negative("restart-strategy.exponential-delay.initial-backoff", r.exponential_initial_backoff_ms, " ms");
  }
  if (r.exponential_max_backoff_ms < r.exponential_initial_backoff_ms) {
    return Status::InvalidArgument("restart-strategy.exponential-delay.max-backoff (" +
                                   std::to_string(r.exponential_max_backoff_ms) +
                                   " ms) must not be below restart-strategy.exponential-delay.initial-backoff (" +
                                   std::to_string(r.exponential_initial_backoff_ms) + " ms)");
  }
  // Written as !(x >= 1) so that NaN is rejected too.
  if (!(r.exponential_multiplier >= 1.0)) {
    return Status::InvalidArgument("restart-strategy.exponential-delay.backoff-multiplier must be at least 1, got " +
                                   ShortestDecimal(r.exponential_multiplier));
  }
  if (r.exponential_reset_threshold_ms < 0) {
    return negative("restart-strategy.exponential-delay.reset-backoff-threshold", r.exponential_reset_threshold_ms,
                    " ms");
  }
  if (!(r.exponential_jitter >= 0.0 && r.exponential_jitter <= 1.0)) {
    return Status::InvalidArgument("restart-strategy.exponential-delay.jitter-factor must be in [0, 1], got " +
                                   ShortestDecimal(r.exponential_jitter));
  }
  if (r.exponential_attempts < 0) {
    return negative("restart-strategy.exponential-delay.attempts-before-reset-backoff", r.exponential_attempts, "");
  }
  return Status::Ok();
}

}  // namespace

Status ExecutionOptions::Validate() const {
  if (state_backend.rocksdb_memory_per_slot < (uint64_t{1} << 20)) {
    return Status::InvalidArgument("state.backend.rocksdb.memory.fixed-per-slot must be at least 1 mb, got " +
                                   std::to_string(state_backend.rocksdb_memory_per_slot) + " bytes");
  }
  if (parallelism < 1) {
    return Status::InvalidArgument("parallelism.default must be at least 1, got " + std::to_string(parallelism));
  }
  if (max_parallelism < 1 || max_parallelism > 32768) {
    return Status::InvalidArgument("pipeline.max-parallelism must be in [1, 32768], got " +
                                   std::to_string(max_parallelism));
  }
  if (max_parallelism < parallelism) {
    return Status::InvalidArgument("pipeline.max-parallelism (" + std::to_string(max_parallelism) +
                                   ") must not be below parallelism.default (" + std::to_string(parallelism) + ")");
  }
  if (buffer_timeout_ms < -1) {
    return Status::InvalidArgument("execution.buffer-timeout must be -1, 0 or positive, got " +
                                   std::to_string(buffer_timeout_ms));
  }
  if (auto_watermark_interval_ms < 0) {
    return Status::InvalidArgument("pipeline.auto-watermark-interval must not be negative, got " +
                                   std::to_string(auto_watermark_interval_ms));
  }
  if (segment_size < 256) {
    return Status::InvalidArgument("taskmanager.memory.segment-size must be at least 256 bytes, got " +
                                   std::to_string(segment_size));
  }
  if (buffers_per_channel < 1) {
    return Status::InvalidArgument("taskmanager.network.memory.buffers-per-channel must be at least 1, got " +
                                   std::to_string(buffers_per_channel));
  }
  if (floating_buffers < 0) {
    return Status::InvalidArgument("taskmanager.network.memory.floating-buffers-per-gate must not be negative");
  }
  FRESHET_RETURN_IF_ERROR(ValidateCheckpoint(checkpoint));
  return ValidateRestart(restart);
}

}  // namespace freshet
