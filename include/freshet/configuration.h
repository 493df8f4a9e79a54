#pragma once
/// Job and cluster settings. Keys follow Flink's names where they exist.

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "freshet/checkpoint.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {

/// Options of one job's execution. Every field is validated when the job
/// is submitted; a bad value fails submission with a message naming it.
struct ExecutionOptions {
  /// `parallelism.default`: parallelism of operators that set none. >= 1.
  int parallelism = 1;
  /// `pipeline.max-parallelism`: number of key groups, >= parallelism, <= 32768.
  int max_parallelism = 128;
  /// `execution.buffer-timeout` (ms): longest a partly filled network buffer
  /// waits before it is sent. 0 sends after every batch; -1 only when full.
  int64_t buffer_timeout_ms = 100;
  /// `pipeline.operator-chaining`: chain operators where the rules allow.
  bool chaining_enabled = true;
  /// `taskmanager.memory.segment-size` (bytes) of network buffers, >= 256.
  int segment_size = 32 * 1024;
  /// `taskmanager.network.memory.buffers-per-channel`: buffers each output
  /// channel may hold in flight before its producer waits (back-pressure).
  int buffers_per_channel = 2;
  /// `taskmanager.network.memory.floating-buffers-per-gate`: extra buffers
  /// shared by the channels of one output.
  int floating_buffers = 8;
  /// `pipeline.auto-watermark-interval` (ms): how often periodic watermark
  /// generators are asked for a watermark. 0 disables periodic emission.
  int64_t auto_watermark_interval_ms = 200;
  /// `execution.checkpointing.*` and `state.checkpoints.*`: when and how
  /// checkpoints are taken and kept. Disabled by default (interval 0).
  CheckpointOptions checkpoint;
  /// `restart-strategy.*`: whether and when the job restarts after a task
  /// failure. Unset kind: Flink's default (see RestartStrategyOptions).
  RestartStrategyOptions restart;
  /// `state.backend.*`: where keyed state lives (heap or RocksDB).
  StateBackendOptions state_backend;
  /// `execution.savepoint.*`: the savepoint or checkpoint the job starts from.
  RestoreOptions restore;

  /// Checks every field; the error names the offending key. Checkpointing
  /// enabled (interval > 0) requires `state.checkpoints.dir`.
  Status Validate() const;
};

/// A string map of settings with typed accessors.
class Configuration {
 public:
  Configuration& Set(const std::string& key, const std::string& value) {
    values_[key] = value;
    return *this;
  }
  std::optional<std::string> Get(const std::string& key) const;
  const std::map<std::string, std::string>& Values() const { return values_; }

  /// Applies the known keys onto `options`, then validates them; an unknown
  /// `pipeline.*`, `execution.*`, `parallelism.*`, `restart-strategy.*`,
  /// `state.checkpoints.*` or `state.backend.*` key or a malformed value is an InvalidArgument
  /// naming the key (and the value). Other keys are ignored.
  ///
  /// Durations (`*.interval`, `*.timeout`, `*.delay`, `*-backoff`, ...) take
  /// Flink's forms: a plain integer is milliseconds; otherwise a number and
  /// a unit, with or without a space between ("500 ms", "10s", "1 min",
  /// "2 h", "1 d"). Memory sizes are bytes, or a number and a unit
  /// ("64 mb", "1g"; b, k/kb, m/mb, g/gb, t/tb: powers of 1024). Units,
  /// case-insensitive, of durations: ms/milli/millis/milliseconds,
  /// s/sec/secs/second/seconds, m/min/minute/minutes, h/hour/hours, d/day/days.
  /// When both a key and its older alias are set (`restart-strategy.type` /
  /// `restart-strategy`, `execution.checkpointing.unaligned.enabled` /
  /// `execution.checkpointing.unaligned`), the newer key wins.
  Status ApplyTo(ExecutionOptions& options) const;

 private:
  std::map<std::string, std::string> values_;
};

/// Reads a configuration file (conf/freshet.yaml). Both Flink's flat form
/// (`taskmanager.numberOfTaskSlots: 4`) and nested YAML (`taskmanager:` /
/// `  numberOfTaskSlots: 4`) are accepted, and may be mixed: nested keys are
/// joined with dots. Scalars are kept as written; a list of scalars becomes
/// one comma-separated value. Keys of the families Freshet owns
/// (jobmanager.*, taskmanager.*, rest.*, heartbeat.*, parallelism.*,
/// pipeline.*, execution.*, state.*, restart-strategy.*, metrics.*, env.*,
/// logger.*, rootLogger.*, web.*, blob.*) must be known and well-formed;
/// other keys are kept unchecked (job parameters). Every error names the
/// file and, where known, the line ("conf/freshet.yaml:7: rest.port:
/// 'eighty' is not a port number (0-65535)"): unreadable file, malformed
/// YAML, a key set twice, an unknown key (with a "did you mean" suggestion),
/// a malformed value. Cross-key rules are checked where the values are used
/// (ClusterOptions, ExecutionOptions::Validate).
Result<Configuration> LoadConfigurationFile(const std::string& path);

/// Checks every key of `conf` as LoadConfigurationFile checks a file's;
/// errors start with `origin` (e.g. "-D").
Status ValidateConfiguration(const Configuration& conf, const std::string& origin);

/// Applies one `-D key=value` argument (without the "-D"): the key is
/// checked, then set, replacing a value from the file. Precedence is
/// therefore -D over the file over the registered defaults. The value is
/// everything after the first '='. Errors name the argument.
Status ApplyDynamicProperty(Configuration& conf, const std::string& arg);

}  // namespace freshet
