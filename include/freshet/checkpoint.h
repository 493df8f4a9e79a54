#pragma once
/// Checkpointing, recovery and the hooks user functions implement to take
/// part in them.
///
/// A checkpoint is a consistent snapshot of every operator's state and every
/// source's position, taken without stopping the job: the checkpoint
/// coordinator asks the sources to inject a barrier into their output, the
/// barrier flows with the records, and each operator snapshots its state
/// when the barrier has arrived on all its inputs. After a failure the job
/// restarts from the latest completed checkpoint.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "freshet/types.h"

namespace freshet {

/// Identifies a checkpoint or savepoint of a job; increases by one per trigger.
using CheckpointId = int64_t;

/// Where keyed operators keep their keyed state (`state.backend.*`): on
/// the heap (the default; fastest while the state fits in memory) or in an
/// embedded RocksDB instance per operator instance (state larger than
/// memory). Both write the same snapshot format, so a savepoint taken with
/// one restores with the other.
struct StateBackendOptions {
  enum class Type { kHeap, kRocksDB };
  Type type = Type::kHeap;  // state.backend.type: hashmap | rocksdb
  /// state.backend.rocksdb.localdir: where each operator instance keeps
  /// its RocksDB instance (a fresh subdirectory, deleted when the operator
  /// goes). Empty: the system's temporary directory.
  std::string rocksdb_local_dir;
  /// state.backend.rocksdb.memory.fixed-per-slot: the memory all RocksDB
  /// instances of one slot share: one block cache of this size holding
  /// data, index and filter blocks and charged with the memtables, which a
  /// write buffer manager keeps to half of it by flushing.
  uint64_t rocksdb_memory_per_slot = uint64_t{256} << 20;
  /// state.backend.incremental: checkpoints upload only new SST files.
  bool incremental = false;
  /// state.backend.rocksdb.timer-service.factory: HEAP (false, the
  /// default: timers in memory) or ROCKSDB (true: the timers of operators
  /// with keyed state in RocksDB live in its instance, out of the heap).
  bool rocksdb_timers = false;
};

enum class CheckpointingMode {
  /// Barriers are aligned: an operator with several input channels holds
  /// back the channels whose barrier has arrived until all have; state
  /// then reflects every record exactly once.
  kExactlyOnce,
  /// No alignment: records behind an early barrier keep flowing and may be
  /// counted again after recovery. Lower latency under skew.
  kAtLeastOnce,
};

/// `execution.checkpointing.*` and `state.checkpoints.*` options.
struct CheckpointOptions {
  /// `execution.checkpointing.interval` (ms): time between checkpoint
  /// triggers; 0 disables checkpointing.
  int64_t interval_ms = 0;
  /// `execution.checkpointing.mode`: EXACTLY_ONCE or AT_LEAST_ONCE.
  CheckpointingMode mode = CheckpointingMode::kExactlyOnce;
  /// `execution.checkpointing.unaligned.enabled` (alias
  /// `execution.checkpointing.unaligned`): barriers overtake in-flight
  /// buffers, which are stored in the checkpoint. Exactly-once only.
  bool unaligned = false;
  /// `execution.checkpointing.aligned-checkpoint-timeout` (ms): with
  /// unaligned enabled, a checkpoint starts aligned and switches to
  /// unaligned when alignment takes longer than this. 0: unaligned at once.
  int64_t aligned_checkpoint_timeout_ms = 0;
  /// `execution.checkpointing.timeout` (ms): a checkpoint not complete by
  /// then is aborted.
  int64_t timeout_ms = 10 * 60 * 1000;
  /// `execution.checkpointing.min-pause` (ms): least time between the end
  /// of one checkpoint and the trigger of the next.
  int64_t min_pause_ms = 0;
  /// `execution.checkpointing.max-concurrent-checkpoints`: checkpoints in
  /// flight at once (>= 1).
  int max_concurrent = 1;
  /// `execution.checkpointing.tolerable-failed-checkpoints`: consecutive
  /// failed checkpoints tolerated before the job fails (>= 0).
  int tolerable_failures = 0;
  /// `state.checkpoints.num-retained`: completed checkpoints kept (>= 1).
  int num_retained = 1;
  /// `state.checkpoints.dir`: directory (local or a shared mount) holding
  /// one `<job-id>/chk-<n>` directory per checkpoint. Required when
  /// checkpointing is enabled.
  std::string directory;
  /// `execution.checkpointing.externalized-checkpoint-retention`:
  /// RETAIN_ON_CANCELLATION keeps the retained checkpoints when the job is
  /// cancelled or fails for good; DELETE_ON_CANCELLATION removes them.
  bool retain_on_cancellation = true;

  bool Enabled() const { return interval_ms > 0; }
};

/// `restart-strategy.*` options: what to do when a task fails.
struct RestartStrategyOptions {
  enum class Kind {
    kNone,              // `none`: the job fails
    kFixedDelay,        // `fixed-delay`: up to `attempts` restarts, `delay` apart
    kFailureRate,       // `failure-rate`: fail when more than `max_failures` happen within `interval`
    kExponentialDelay,  // `exponential-delay`: backoff grows by `multiplier` up to `max_backoff`
  };
  /// `restart-strategy.type`. Unset: `fixed-delay` with unlimited attempts
  /// and 1 s delay when checkpointing is enabled, otherwise `none`.
  std::optional<Kind> kind;
  /// `restart-strategy.fixed-delay.attempts`.
  int fixed_delay_attempts = 1;
  /// `restart-strategy.fixed-delay.delay` (ms).
  int64_t fixed_delay_ms = 1000;
  /// `restart-strategy.failure-rate.max-failures-per-interval`.
  int failure_rate_max_failures = 1;
  /// `restart-strategy.failure-rate.failure-rate-interval` (ms).
  int64_t failure_rate_interval_ms = 60 * 1000;
  /// `restart-strategy.failure-rate.delay` (ms).
  int64_t failure_rate_delay_ms = 1000;
  /// `restart-strategy.exponential-delay.initial-backoff` (ms).
  int64_t exponential_initial_backoff_ms = 1000;
  /// `restart-strategy.exponential-delay.max-backoff` (ms).
  int64_t exponential_max_backoff_ms = 60 * 1000;
  /// `restart-strategy.exponential-delay.backoff-multiplier` (>= 1).
  double exponential_multiplier = 2.0;
  /// `restart-strategy.exponential-delay.reset-backoff-threshold` (ms): a
  /// job running this long without failure starts again from the initial backoff.
  int64_t exponential_reset_threshold_ms = 60 * 60 * 1000;
  /// `restart-strategy.exponential-delay.jitter-factor` in [0, 1].
  double exponential_jitter = 0.1;
  /// `restart-strategy.exponential-delay.attempts-before-reset-backoff`.
  int exponential_attempts = std::numeric_limits<int>::max();
};

/// `execution.savepoint.*`: where a job starts from.
struct RestoreOptions {
  /// `execution.savepoint.path`: a savepoint or retained checkpoint
  /// directory (or its `_metadata` file) to start from. Empty: no restore.
  std::string path;
  /// `execution.savepoint.ignore-unclaimed-state` (`--allowNonRestoredState`):
  /// state of operators that no longer exist is skipped instead of failing.
  bool allow_non_restored_state = false;
};

/// Implemented by functions (and connectors) that act when a checkpoint
/// completes or is aborted, e.g. to commit transactions. Called on the
/// task thread, never concurrently with record processing.
class CheckpointListener {
 public:
  virtual ~CheckpointListener() = default;
  /// Checkpoint `id` is complete: its state is durable in storage. May
  /// arrive late or not at all for some ids (a later one subsumes them).
  virtual void NotifyCheckpointComplete(CheckpointId id) = 0;
  /// Checkpoint `id` was aborted.
  virtual void NotifyCheckpointAborted(CheckpointId /*id*/) {}
};

}  // namespace freshet
