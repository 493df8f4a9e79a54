#pragma once
/// The entry point of every DataStream program.

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "freshet/configuration.h"
#include "freshet/internal/transformation.h"
#include "freshet/job_client.h"
#include "freshet/source.h"
#include "freshet/status.h"
#include "freshet/time.h"

namespace freshet {

template <class T>
class DataStream;

enum class FileProcessingMode {
  kProcessOnce,          // read what is there, then end (bounded)
  kProcessContinuously,  // keep watching the directory for new files
};

/// Builds a job graph through its source methods and the DataStream
/// calls hanging off them, and runs it with Execute(). The environment is
/// embedded: Execute() starts a mini-cluster (a JobManager and a
/// TaskManager with enough slots, as threads of this process).
/// Not thread-safe; build a job from one thread.
class StreamExecutionEnvironment {
 public:
  static std::unique_ptr<StreamExecutionEnvironment> Create();
  /// Settings from a Configuration (Flink's keys). A bad key or value
  /// fails Execute() with a message naming it.
  static std::unique_ptr<StreamExecutionEnvironment> Create(const Configuration& config);

  StreamExecutionEnvironment& SetParallelism(int parallelism) {
    options_.parallelism = parallelism;
    return *this;
  }
  int GetParallelism() const { return options_.parallelism; }
  StreamExecutionEnvironment& SetMaxParallelism(int max_parallelism) {
    options_.max_parallelism = max_parallelism;
    return *this;
  }
  int GetMaxParallelism() const { return options_.max_parallelism; }
  StreamExecutionEnvironment& SetBufferTimeout(Duration timeout) {
    options_.buffer_timeout_ms = timeout.count();
    return *this;
  }
  StreamExecutionEnvironment& DisableOperatorChaining() {
    options_.chaining_enabled = false;
    return *this;
  }
  /// Takes a checkpoint every `interval` (> 0; 0 disables checkpointing)
  /// in `mode`. Checkpointing also needs a directory:
  /// `GetCheckpointConfig().directory` or `state.checkpoints.dir`.
  StreamExecutionEnvironment& EnableCheckpointing(Duration interval,
                                                  CheckpointingMode mode = CheckpointingMode::kExactlyOnce) {
    options_.checkpoint.interval_ms = interval.count();
    options_.checkpoint.mode = mode;
    return *this;
  }
  /// The checkpoint settings, to change in place before Execute().
  CheckpointOptions& GetCheckpointConfig() { return options_.checkpoint; }
  /// Where keyed operators keep their keyed state (`state.backend.*`).
  StreamExecutionEnvironment& SetStateBackend(const StateBackendOptions& backend) {
    options_.state_backend = backend;
    return *this;
  }
  const StateBackendOptions& GetStateBackend() const { return options_.state_backend; }
  /// Replaces the restart strategy (by default chosen from whether
  /// checkpointing is enabled).
  StreamExecutionEnvironment& SetRestartStrategy(RestartStrategyOptions restart) {
    options_.restart = std::move(restart);
    return *this;
  }
  /// Starts the job from a savepoint or retained checkpoint.
  StreamExecutionEnvironment& SetStateRestore(RestoreOptions restore) {
    options_.restore = std::move(restore);
    return *this;
  }
  ExecutionOptions& GetOptions() { return options_; }
  /// Replaces the clock used by sources and tasks (tests drive time).
  StreamExecutionEnvironment& SetClock(Clock* clock) {
    clock_ = clock;
    return *this;
  }

  // ---- sources -----------------------------------------------------------
  /// The given elements, in order, from a non-parallel source.
  template <class T>
  DataStream<T> FromElements(std::initializer_list<T> elements);
  template <class T, class... Rest>
  DataStream<T> FromElements(T first, Rest... rest);
  /// The elements of `values`, in order, from a non-parallel source.
  template <class T>
  DataStream<T> FromCollection(std::vector<T> values);
  /// The numbers from..to (inclusive), split into contiguous ranges over
  /// the parallel subtasks.
  DataStream<int64_t> FromSequence(int64_t from, int64_t to);
  /// Any source.
  template <class S>
  DataStream<typename S::OutputType> FromSource(S source, const std::string& name);
  /// Any source, with timestamps and watermarks from `strategy`.
  template <class S>
  DataStream<typename S::OutputType> FromSource(S source, WatermarkStrategy<typename S::OutputType> strategy,
                                                const std::string& name);
  /// `fn(index)` for index 0..count-1 (count < 0: unbounded), at most
  /// `records_per_second` in total (<= 0: unlimited), split over the
  /// parallel subtasks by contiguous index ranges.
  template <class F>
  auto FromGenerator(F fn, int64_t count, double records_per_second = 0);
  /// Lines of a text file, or of every file in a directory.
  DataStream<std::string> ReadTextFile(const std::string& path,
                                       FileProcessingMode mode = FileProcessingMode::kProcessOnce,
                                       Duration scan_interval = Duration(1000));
  /// Lines from a TCP server; non-parallel; ends when the server closes.
  DataStream<std::string> SocketTextStream(const std::string& host, int port, char delimiter = '\n');

  // ---- execution -----------------------------------------------------------
  /// Runs the job to completion (bounded) or until cancelled or failed.
  Result<JobExecutionResult> Execute(const std::string& job_name = "Freshet Job");
  /// Submits the job and returns a handle at once.
  Result<std::unique_ptr<JobClient>> ExecuteAsync(const std::string& job_name = "Freshet Job");

  // ---- used by the DataStream API -------------------------------------------
  int AddTransformation(internal::Transformation t);
  internal::Transformation& GetTransformation(int id) { return transformations_.at(static_cast<size_t>(id)); }
  const std::vector<internal::Transformation>& Transformations() const { return transformations_; }
  int NextCollectId() { return collect_ids_++; }

 private:
  StreamExecutionEnvironment() = default;

  ExecutionOptions options_;
  Status config_error_;
  // `minicluster.number-of-taskmanagers`: TaskExecutors of the embedded cluster.
  int local_task_managers_ = 1;
  Clock* clock_ = nullptr;
  std::vector<internal::Transformation> transformations_;
  int collect_ids_ = 0;
};

}  // namespace freshet
