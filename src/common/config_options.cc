#include "common/config_options.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>

namespace freshet::internal {

namespace {

constexpr std::string_view kLogLevels = "TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF, ALL";
constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

// Keys ApplyTo reads come first, in the order of ExecutionOptions; then the
// cluster processes' keys. Defaults are written in the form a user would
// write them in conf/freshet.yaml.
constexpr ConfigOption kOptions[] = {
    // Job execution (Configuration::ApplyTo).
    {.key = "parallelism.default", .type = OptionType::kInt, .default_value = "1",
     .description = "Parallelism of operators that set none.", .min = 1},
    {.key = "pipeline.max-parallelism", .type = OptionType::kInt, .default_value = "128",
     .description = "Number of key groups: the largest parallelism a job can be rescaled to.", .min = 1,
     .max = 32768},
    {.key = "execution.buffer-timeout", .type = OptionType::kDuration, .default_value = "100 ms",
     .description = "Longest a partly filled network buffer waits before it is sent (0: after every batch; -1: "
                    "only when full)."},
    {.key = "pipeline.operator-chaining", .type = OptionType::kBool, .default_value = "true",
     .description = "Chain operators into one task where the rules allow."},
    {.key = "taskmanager.memory.segment-size", .type = OptionType::kInt, .default_value = "32768",
     .description = "Size in bytes of a network buffer.", .min = 256},
    {.key = "taskmanager.network.memory.buffers-per-channel", .type = OptionType::kInt, .default_value = "2",
     .description = "Buffers each output channel may hold in flight before its producer waits.", .min = 1},
    {.key = "taskmanager.network.memory.floating-buffers-per-gate", .type = OptionType::kInt,
     .default_value = "8", .description = "Extra buffers shared by the channels of one output.", .min = 0},
    {.key = "pipeline.auto-watermark-interval", .type = OptionType::kDuration, .default_value = "200 ms",
     .description = "How often periodic watermark generators are asked for a watermark (0 disables)."},
    {.key = "execution.checkpointing.interval", .type = OptionType::kDuration, .default_value = "0",
     .description = "Time between checkpoint triggers; 0 disables checkpointing."},
    {.key = "execution.checkpointing.mode", .type = OptionType::kEnum, .default_value = "EXACTLY_ONCE",
     .description = "Checkpointing guarantee.", .enum_values = "EXACTLY_ONCE, AT_LEAST_ONCE"},
    {.key = "execution.checkpointing.unaligned.enabled", .type = OptionType::kBool, .default_value = "false",
     .description = "Barriers overtake in-flight buffers, which are stored in the checkpoint."},
    {.key = "execution.checkpointing.unaligned", .type = OptionType::kBool, .default_value = "false",
     .description = "Older name of execution.checkpointing.unaligned.enabled."},
    {.key = "execution.checkpointing.aligned-checkpoint-timeout", .type = OptionType::kDuration,
     .default_value = "0",
     .description = "With unaligned checkpoints: how long a checkpoint stays aligned before switching."},
    {.key = "execution.checkpointing.timeout", .type = OptionType::kDuration, .default_value = "10 min",
     .description = "A checkpoint not complete by then is aborted."},
    {.key = "execution.checkpointing.min-pause", .type = OptionType::kDuration, .default_value = "0",
     .description = "Least time between the end of one checkpoint and the trigger of the next."},
    {.key = "execution.checkpointing.max-concurrent-checkpoints", .type = OptionType::kInt,
     .default_value = "1", .description = "Checkpoints in flight at once.", .min = 1},
    {.key = "execution.checkpointing.tolerable-failed-checkpoints", .type = OptionType::kInt,
     .default_value = "0", .description = "Consecutive failed checkpoints tolerated before the job fails.",
     .min = 0},
    {.key = "execution.checkpointing.externalized-checkpoint-retention", .type = OptionType::kEnum,
     .default_value = "RETAIN_ON_CANCELLATION",
     .description = "Whether retained checkpoints survive cancellation.",
     .enum_values = "RETAIN_ON_CANCELLATION, DELETE_ON_CANCELLATION, NO_EXTERNALIZED_CHECKPOINTS"},
    {.key = "state.checkpoints.num-retained", .type = OptionType::kInt, .default_value = "1",
     .description = "Completed checkpoints kept.", .min = 1},
    {.key = "state.checkpoints.dir", .type = OptionType::kString,
     .description = "Directory of the checkpoints; required when checkpointing is enabled."},
    {.key = "restart-strategy.type", .type = OptionType::kEnum,
     .description = "What to do when a task fails (unset: fixed-delay when checkpointing, else none).",
     .enum_values = "none, off, disable, fixed-delay, fixeddelay, failure-rate, failurerate, exponential-delay, "
                    "exponentialdelay"},
    {.key = "restart-strategy", .type = OptionType::kEnum, .description = "Older name of restart-strategy.type.",
     .enum_values = "none, off, disable, fixed-delay, fixeddelay, failure-rate, failurerate, exponential-delay, "
                    "exponentialdelay"},
    {.key = "restart-strategy.fixed-delay.attempts", .type = OptionType::kInt, .default_value = "1",
     .description = "Restarts before the job fails.", .min = 0},
    {.key = "restart-strategy.fixed-delay.delay", .type = OptionType::kDuration, .default_value = "1 s",
     .description = "Delay between two restarts."},
    {.key = "restart-strategy.failure-rate.max-failures-per-interval", .type = OptionType::kInt,
     .default_value = "1", .description = "Failures within one interval before the job fails.", .min = 0},
    {.key = "restart-strategy.failure-rate.failure-rate-interval", .type = OptionType::kDuration,
     .default_value = "1 min", .description = "Interval over which failures are counted."},
    {.key = "restart-strategy.failure-rate.delay", .type = OptionType::kDuration, .default_value = "1 s",
     .description = "Delay between two restarts."},
    {.key = "restart-strategy.exponential-delay.initial-backoff", .type = OptionType::kDuration,
     .default_value = "1 s", .description = "Delay before the first restart."},
    {.key = "restart-strategy.exponential-delay.max-backoff", .type = OptionType::kDuration,
     .default_value = "1 min", .description = "Largest delay between two restarts."},
    {.key = "restart-strategy.exponential-delay.backoff-multiplier", .type = OptionType::kDouble,
     .default_value = "2.0", .description = "Factor by which the delay grows after each failure (>= 1)."},
    {.key = "restart-strategy.exponential-delay.reset-backoff-threshold", .type = OptionType::kDuration,
     .default_value = "1 h", .description = "Run time without failure after which the delay starts again."},
    {.key = "restart-strategy.exponential-delay.jitter-factor", .type = OptionType::kDouble,
     .default_value = "0.1", .description = "Random share of the delay added or removed, in [0, 1]."},
    {.key = "restart-strategy.exponential-delay.attempts-before-reset-backoff", .type = OptionType::kInt,
     .default_value = "2147483647", .description = "Restarts before the job fails.", .min = 0},
    {.key = "state.backend.type", .type = OptionType::kEnum, .default_value = "hashmap",
     .description = "Where keyed state lives: on the heap or in RocksDB.",
     .enum_values = "hashmap, rocksdb, heap, filesystem, jobmanager"},
    {.key = "state.backend", .type = OptionType::kEnum, .description = "Older name of state.backend.type.",
     .enum_values = "hashmap, rocksdb, heap, filesystem, jobmanager"},
    {.key = "state.backend.rocksdb.localdir", .type = OptionType::kString,
     .description = "Where RocksDB instances live (empty: the system's temporary directory)."},
    {.key = "state.backend.rocksdb.memory.fixed-per-slot", .type = OptionType::kMemorySize,
     .default_value = "256 mb", .description = "Memory shared by the RocksDB instances of one slot."},
    {.key = "state.backend.incremental", .type = OptionType::kBool, .default_value = "false",
     .description = "Checkpoints upload only new RocksDB files."},
    {.key = "state.backend.rocksdb.timer-service.factory", .type = OptionType::kEnum, .default_value = "HEAP",
     .description = "Where timers of RocksDB-backed operators live.", .enum_values = "HEAP, ROCKSDB"},
    {.key = "execution.savepoint.path", .type = OptionType::kString,
     .description = "Savepoint or retained checkpoint the job starts from."},
    {.key = "execution.savepoint.ignore-unclaimed-state", .type = OptionType::kBool, .default_value = "false",
     .description = "Skip state of operators that no longer exist instead of failing."},

    // Cluster processes (ClusterOptions).
    {.key = "jobmanager.rpc.address", .type = OptionType::kString, .default_value = "localhost",
     .description = "Address TaskManagers and clients use to reach the JobManager."},
    {.key = "jobmanager.rpc.port", .type = OptionType::kPort, .default_value = "6123",
     .description = "Port of the JobManager's RPC endpoint."},
    {.key = "jobmanager.bind-host", .type = OptionType::kString, .default_value = "127.0.0.1",
     .description = "Interface the JobManager's RPC endpoint listens on (0.0.0.0: all)."},
    {.key = "rest.address", .type = OptionType::kString, .default_value = "localhost",
     .description = "Address clients (the CLI) use to reach the REST endpoint."},
    {.key = "rest.port", .type = OptionType::kPort, .default_value = "8081",
     .description = "Port of the REST endpoint and web UI."},
    {.key = "rest.bind-address", .type = OptionType::kString, .default_value = "127.0.0.1",
     .description = "Interface the REST endpoint listens on (0.0.0.0: all)."},
    {.key = "rest.enabled", .type = OptionType::kBool, .default_value = "false",
     .description = "`freshet run` without a JobManager runs the job in an in-process JobManager serving the REST "
                    "API and web UI (as --web-ui does)."},
    {.key = "taskmanager.numberOfTaskSlots", .type = OptionType::kInt, .default_value = "1",
     .description = "Task slots each TaskManager offers.", .min = 1},
    {.key = "taskmanager.local.count", .type = OptionType::kInt, .default_value = "1",
     .description = "TaskManagers the JobManager process runs in itself (0: only remote ones).", .min = 0, .max = 64},
    {.key = "taskmanager.host", .type = OptionType::kString, .default_value = "localhost",
     .description = "Address the TaskManager advertises to the JobManager and its peers."},
    {.key = "taskmanager.bind-host", .type = OptionType::kString, .default_value = "127.0.0.1",
     .description = "Interface the TaskManager's endpoints listen on (0.0.0.0: all)."},
    {.key = "taskmanager.rpc.port", .type = OptionType::kPort, .default_value = "0",
     .description = "Port of the TaskManager's RPC endpoint (0: any free port)."},
    {.key = "taskmanager.data.port", .type = OptionType::kPort, .default_value = "0",
     .description = "Port of the TaskManager's data exchange endpoint (0: any free port)."},
    {.key = "taskmanager.resource-id", .type = OptionType::kString,
     .description = "Identity of the TaskManager (empty: generated at start)."},
    {.key = "heartbeat.interval", .type = OptionType::kDuration, .default_value = "10 s",
     .description = "Time between two heartbeats."},
    {.key = "heartbeat.timeout", .type = OptionType::kDuration, .default_value = "50 s",
     .description = "A peer silent for this long is considered lost (must exceed heartbeat.interval)."},
    // Flink's memory model sizes the JVM's pools; Freshet's processes take
    // what they use from the system. The keys are checked as sizes and
    // accepted, so Flink configuration files load, but they change nothing.
    {.key = "jobmanager.memory.process.size", .type = OptionType::kMemorySize,
     .description = "Accepted for Flink configuration files; has no effect (no memory pools to size)."},
    {.key = "jobmanager.memory.flink.size", .type = OptionType::kMemorySize,
     .description = "Accepted for Flink configuration files; has no effect (no memory pools to size)."},
    {.key = "taskmanager.memory.process.size", .type = OptionType::kMemorySize,
     .description = "Accepted for Flink configuration files; has no effect (no memory pools to size)."},
    {.key = "taskmanager.memory.flink.size", .type = OptionType::kMemorySize,
     .description = "Accepted for Flink configuration files; has no effect (no memory pools to size)."},
    {.key = "env.log.dir", .type = OptionType::kString, .default_value = "./log",
     .description = "Directory of the processes' log files."},
    {.key = "web.upload.dir", .type = OptionType::kString,
     .description = "Directory of uploaded job libraries (empty: under the system's temporary directory)."},
    {.key = "blob.storage.directory", .type = OptionType::kString,
     .description = "Directory of the blob store (empty: under the system's temporary directory)."},
    {.key = "metrics.reporter.prom.port", .type = OptionType::kPortRange, .default_value = "9249-9260",
     .description = "Port, or range of ports, of the Prometheus endpoint; each process takes the first free one."},
    {.key = "metrics.reporter.prom.host", .type = OptionType::kString, .default_value = "127.0.0.1",
     .description = "Interface the Prometheus endpoint listens on (0.0.0.0: all, as Flink does)."},
    {.key = "metrics.fetcher.update-interval", .type = OptionType::kDuration, .default_value = "1 s",
     .description = "How old the TaskManagers' metrics the JobManager's REST API shows may get before they are "
                    "fetched again (Flink's default is 10 s; the web UI polls more often)."},
    {.key = "metrics.reporter.prom.factory.class", .type = OptionType::kString,
     .description = "Accepted for Flink configurations; Freshet's Prometheus endpoint is built in."},
    {.key = "metrics.reporter.prom.class", .type = OptionType::kString,
     .description = "Accepted for Flink configurations; Freshet's Prometheus endpoint is built in."},
    {.key = "rootLogger.level", .type = OptionType::kEnum, .default_value = "INFO",
     .description = "Level of loggers with no level of their own.", .enum_values = kLogLevels},
    {.key = "logger.*.level", .type = OptionType::kEnum,
     .description = "Level of the named logger and the loggers below it (name.child).",
     .enum_values = kLogLevels},
};

// Families whose keys must be registered. Each is a key prefix up to and
// including the dot; the bare family name ("rest") counts as the family too.
constexpr std::array<std::string_view, 15> kOwnedFamilies = {
    "jobmanager.", "taskmanager.", "rest.",    "heartbeat.", "parallelism.",
    "pipeline.",   "execution.",   "state.",   "restart-strategy.",
    "metrics.",    "env.",         "logger.",  "rootLogger.", "web.",
    "blob.",
};

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ToLower(a) == ToLower(b);
}

bool MatchesPattern(std::string_view pattern, std::string_view key) {
  size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == key;
  std::string_view prefix = pattern.substr(0, star);
  std::string_view suffix = pattern.substr(star + 1);
  return key.size() > prefix.size() + suffix.size() && key.starts_with(prefix) && key.ends_with(suffix);
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The concrete key a pattern would give for a misspelt `key`: the '*' takes
// the text of `key` between the pattern's prefix and key's last dot (so
// "logger.checkpoint.levle" is compared with "logger.checkpoint.level").
std::optional<std::string> InstantiatePattern(std::string_view pattern, std::string_view key) {
  size_t star = pattern.find('*');
  std::string_view prefix = pattern.substr(0, star);
  std::string_view suffix = pattern.substr(star + 1);
  if (!EqualsIgnoreCase(key.substr(0, std::min(key.size(), prefix.size())), prefix)) return std::nullopt;
  std::string_view rest = key.substr(prefix.size());
  size_t last_dot = rest.rfind('.');
  std::string_view middle = last_dot == std::string_view::npos ? rest : rest.substr(0, last_dot);
  if (middle.empty()) return std::nullopt;
  return std::string(prefix) + std::string(middle) + std::string(suffix);
}

Status Malformed(const std::string& key, const std::string& value, std::string_view expected) {
  return Status::InvalidArgument(key + ": '" + value + "' is not " + std::string(expected));
}

Result<int64_t> ParseInteger(const std::string& key, const std::string& value, int64_t min, int64_t max) {
  int64_t out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (ec == std::errc() && ptr == end && out >= min && out <= max) return out;
  if ((ec == std::errc() && ptr == end) || ec == std::errc::result_out_of_range) {
    std::string range;
    if (max == kIntMax) {
      range = "at least " + std::to_string(min);
    } else {
      range = std::to_string(min) + "-" + std::to_string(max);
    }
    return Status::InvalidArgument(key + ": '" + value + "' is out of range (" + range + ")");
  }
  return Malformed(key, value, "an integer");
}

Result<int> ParsePort(const std::string& key, const std::string& value) {
  int out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (ec != std::errc() || ptr != end || out < 0 || out > 65535) {
    return Malformed(key, value, "a port number (0-65535)");
  }
  return out;
}

// The parsers shared with ApplyTo word their errors as "setting 'k': ...";
// the loader's messages start with the key and say what was expected.
Status TypeError(const Status& parser_error, const std::string& key, const std::string& value,
                 std::string_view expected) {
  if (parser_error.Message().find("out of range") != std::string::npos) {
    return Status::InvalidArgument(key + ": '" + value + "' is out of range");
  }
  return Malformed(key, value, expected);
}

}  // namespace

std::span<const ConfigOption> AllConfigOptions() { return kOptions; }

const ConfigOption* FindConfigOption(std::string_view key) {
  for (const ConfigOption& option : kOptions) {
    if (option.key == key) return &option;
  }
  for (const ConfigOption& option : kOptions) {
    if (option.key.find('*') != std::string_view::npos && MatchesPattern(option.key, key)) return &option;
  }
  return nullptr;
}

bool IsOwnedKey(std::string_view key) {
  std::string lower = ToLower(key);
  for (std::string_view family : kOwnedFamilies) {
    std::string lower_family = ToLower(family);
    if (lower.starts_with(lower_family)) return true;
    if (lower == lower_family.substr(0, lower_family.size() - 1)) return true;
  }
  return false;
}

std::vector<std::string> SuggestKeys(std::string_view key) {
  std::string lower_key = ToLower(key);
  // Short keys tolerate two edits; longer ones one more per eight characters.
  size_t limit = std::max<size_t>(2, key.size() / 8);
  size_t best = limit + 1;
  std::vector<std::string> out;
  for (const ConfigOption& option : kOptions) {
    std::string candidate;
    if (option.key.find('*') == std::string_view::npos) {
      candidate = std::string(option.key);
    } else {
      std::optional<std::string> instance = InstantiatePattern(option.key, key);
      if (!instance) continue;
      candidate = std::move(*instance);
    }
    if (candidate == key) continue;
    size_t distance = EditDistance(lower_key, ToLower(candidate));
    if (distance < best) {
      best = distance;
      out.clear();
    }
    if (distance == best && std::find(out.begin(), out.end(), candidate) == out.end()) out.push_back(candidate);
  }
  if (out.size() > 3) out.clear();
  return out;
}

Status CheckOptionValue(const ConfigOption& option, const std::string& key, const std::string& value) {
  switch (option.type) {
    case OptionType::kString:
      return Status::Ok();
    case OptionType::kInt: {
      Result<int64_t> parsed = ParseInteger(key, value, option.min, option.max);
      return parsed.IsOk() ? Status::Ok() : parsed.GetStatus();
    }
    case OptionType::kDouble: {
      double out = 0;
      const char* end = value.data() + value.size();
      auto [ptr, ec] = std::from_chars(value.data(), end, out, std::chars_format::fixed);
      if (ec != std::errc() || ptr != end || !std::isfinite(out)) return Malformed(key, value, "a number");
      return Status::Ok();
    }
    case OptionType::kPort: {
      Result<int> port = ParsePort(key, value);
      return port.IsOk() ? Status::Ok() : port.GetStatus();
    }
    case OptionType::kPortRange: {
      Result<PortRange> range = ParsePortRange(key, value);
      return range.IsOk() ? Status::Ok() : range.GetStatus();
    }
    case OptionType::kBool:
      if (value == "true" || value == "false") return Status::Ok();
      return Malformed(key, value, "true or false");
    case OptionType::kDuration: {
      Result<int64_t> ms = ParseDurationSetting(key, value);
      if (ms.IsOk()) return Status::Ok();
      return TypeError(ms.GetStatus(), key, value,
                       "a duration (e.g. \"500 ms\", \"10 s\", \"1 min\", \"2 h\"; a plain integer is milliseconds)");
    }
    case OptionType::kMemorySize: {
      Result<int64_t> bytes = ParseMemorySizeSetting(key, value);
      if (bytes.IsOk()) return Status::Ok();
      return TypeError(bytes.GetStatus(), key, value,
                       "a memory size (e.g. \"64 mb\", \"1 gb\"; a plain integer is bytes)");
    }
    case OptionType::kEnum: {
      std::string_view values = option.enum_values;
      while (!values.empty()) {
        size_t comma = values.find(", ");
        std::string_view one = values.substr(0, comma);
        if (EqualsIgnoreCase(one, value)) return Status::Ok();
        values = comma == std::string_view::npos ? std::string_view() : values.substr(comma + 2);
      }
      return Malformed(key, value, "one of " + std::string(option.enum_values));
    }
  }
  return Status::Internal("unhandled option type of " + key);
}

Status CheckConfigEntry(const std::string& key, const std::string& value) {
  if (const ConfigOption* option = FindConfigOption(key)) return CheckOptionValue(*option, key, value);
  if (!IsOwnedKey(key)) return Status::Ok();
  std::string message = "unknown key '" + key + "'";
  std::vector<std::string> suggestions = SuggestKeys(key);
  if (!suggestions.empty()) {
    message += " (did you mean ";
    for (size_t i = 0; i < suggestions.size(); ++i) {
      if (i > 0) message += i + 1 == suggestions.size() ? " or " : ", ";
      message += "'" + suggestions[i] + "'";
    }
    message += "?)";
  }
  return Status::InvalidArgument(message);
}

std::string OptionValue(const Configuration& conf, std::string_view key) {
  std::string name(key);
  if (std::optional<std::string> value = conf.Get(name)) return *value;
  const ConfigOption* option = FindConfigOption(key);
  FRESHET_CHECK_MSG(option != nullptr, name.c_str());
  return std::string(option->default_value);
}

Result<int64_t> GetIntOption(const Configuration& conf, std::string_view key) {
  const ConfigOption* option = FindConfigOption(key);
  FRESHET_CHECK(option != nullptr && option->type == OptionType::kInt);
  return ParseInteger(std::string(key), OptionValue(conf, key), option->min, option->max);
}

Result<int> GetPortOption(const Configuration& conf, std::string_view key) {
  return ParsePort(std::string(key), OptionValue(conf, key));
}

Result<bool> GetBoolOption(const Configuration& conf, std::string_view key) {
  std::string name(key);
  std::string value = OptionValue(conf, key);
  if (value == "true") return true;
  if (value == "false") return false;
  return Malformed(name, value, "true or false");
}

Result<std::chrono::milliseconds> GetDurationOption(const Configuration& conf, std::string_view key) {
  std::string name(key);
  std::string value = OptionValue(conf, key);
  Result<int64_t> ms = ParseDurationSetting(name, value);
  if (!ms.IsOk()) {
    return TypeError(ms.GetStatus(), name, value,
                     "a duration (e.g. \"500 ms\", \"10 s\", \"1 min\", \"2 h\"; a plain integer is milliseconds)");
  }
  return std::chrono::milliseconds(*ms);
}

Result<PortRange> ParsePortRange(const std::string& key, const std::string& value) {
  constexpr std::string_view kExpected = "a port or port range (e.g. 9249 or 9249-9260, ports 0-65535)";
  size_t dash = value.find('-');
  std::string first_text = value.substr(0, dash);
  std::string last_text = dash == std::string::npos ? first_text : value.substr(dash + 1);
  Result<int> first = ParsePort(key, first_text);
  Result<int> last = ParsePort(key, last_text);
  if (!first.IsOk() || !last.IsOk()) return Malformed(key, value, kExpected);
  if (*first > *last) {
    return Status::InvalidArgument(key + ": '" + value + "' is an empty port range (the first port exceeds the last)");
  }
  return PortRange{*first, *last};
}

Result<PortRange> GetPortRangeOption(const Configuration& conf, std::string_view key) {
  return ParsePortRange(std::string(key), OptionValue(conf, key));
}

}  // namespace freshet::internal
