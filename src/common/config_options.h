#pragma once
// The registry of every configuration key Freshet understands: its type,
// default and a one-line description. Configuration files (conf/freshet.yaml)
// and `-D key=value` arguments are checked against it, and the cluster
// processes read typed values through it, so a key's default lives in one place.
//
// Keys of the families Freshet owns (jobmanager.*, taskmanager.*, rest.*,
// heartbeat.*, parallelism.*, pipeline.*, execution.*, state.*,
// restart-strategy.*, metrics.*, env.*, logger.*, rootLogger.*, web.*,
// blob.*) must be registered; any other key belongs to the user (job
// parameters) and is kept without a check.

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "freshet/configuration.h"
#include "freshet/status.h"

namespace freshet::internal {

enum class OptionType {
  kString,
  kInt,         // a decimal integer within [min, max]
  kDouble,      // a finite decimal number ("2", "0.25")
  kPort,        // 0-65535; 0 means "any free port" where the key says so
  kPortRange,   // a port or an inclusive range "9249-9260"
  kBool,        // true or false (lower case, as ApplyTo reads it)
  kDuration,    // Flink's duration forms: "500 ms", "10 s", "1 min"; plain integer = ms
  kMemorySize,  // Flink's memory sizes: "64 mb", "1g"; plain integer = bytes
  kEnum,        // one of `enum_values`, case-insensitive
};

/// One registered key. `key` may hold one '*', which stands for any
/// non-empty text (dots included), as in `logger.*.level`.
struct ConfigOption {
  std::string_view key = {};
  OptionType type = OptionType::kString;
  /// The value used when the key is not set; empty for keys with no default
  /// (or whose default is the empty string, as the description says).
  std::string_view default_value = {};
  std::string_view description = {};
  /// kEnum only: the accepted values, separated by ", ".
  std::string_view enum_values = {};
  /// kInt only: the accepted range.
  int64_t min = std::numeric_limits<int32_t>::min();
  int64_t max = std::numeric_limits<int32_t>::max();
};

/// Every registered key, exact keys and patterns, in a stable order.
std::span<const ConfigOption> AllConfigOptions();

/// The entry for `key` (an exact match first, then a pattern), or nullptr.
const ConfigOption* FindConfigOption(std::string_view key);

/// True when `key` belongs to a family Freshet owns (compared without case,
/// so `RootLogger.level` is caught as a misspelling rather than ignored).
bool IsOwnedKey(std::string_view key);

/// The registered keys closest to `key` by edit distance (transpositions
/// count once, case is ignored), when they are close enough to be a likely
/// misspelling; at most three. Patterns take their '*' from `key`.
std::vector<std::string> SuggestKeys(std::string_view key);

/// Checks one setting: a registered key must have a well-formed value; an
/// unregistered key of an owned family is an error ("unknown key 'x'
/// (did you mean 'y'?)"); any other key passes. Messages start with the key
/// and carry no origin: callers prefix the file and line or "-D".
Status CheckConfigEntry(const std::string& key, const std::string& value);

/// Checks `value` against `option`'s type; the message names `key`.
Status CheckOptionValue(const ConfigOption& option, const std::string& key, const std::string& value);

/// The value of `key` in `conf`, or its registered default.
/// REQUIRES: `key` is registered.
std::string OptionValue(const Configuration& conf, std::string_view key);

/// Typed reads of registered keys: the set value or the default, checked
/// against the key's type. Errors name the key and the value.
Result<int64_t> GetIntOption(const Configuration& conf, std::string_view key);
Result<int> GetPortOption(const Configuration& conf, std::string_view key);
Result<bool> GetBoolOption(const Configuration& conf, std::string_view key);
Result<std::chrono::milliseconds> GetDurationOption(const Configuration& conf, std::string_view key);

/// An inclusive range of ports; a single port has first == last.
struct PortRange {
  int first = 0;
  int last = 0;
  bool operator==(const PortRange&) const = default;
};
Result<PortRange> ParsePortRange(const std::string& key, const std::string& value);
Result<PortRange> GetPortRangeOption(const Configuration& conf, std::string_view key);

/// Flink's duration and memory-size grammars, shared with
/// Configuration::ApplyTo (defined in configuration.cc) so that a value the
/// file loader accepts is one ApplyTo accepts. Errors name the key.
Result<int64_t> ParseDurationSetting(const std::string& key, const std::string& value);
Result<int64_t> ParseMemorySizeSetting(const std::string& key, const std::string& value);

}  // namespace freshet::internal
