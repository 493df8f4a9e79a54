#pragma once
// One parallel subtask of a job vertex: its operator chain, its network
// inputs and outputs, and the mailbox loop that drives them on one thread.
//
// Threading: Run() executes on the task's own thread and is the only code
// touching operators. Cancel() may be called from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "freshet/configuration.h"
#include "freshet/internal/operator.h"
#include "freshet/internal/operators.h"
#include "freshet/internal/timer_service.h"
#include "freshet/source.h"
#include "graph/stream_graph.h"
#include "metrics/task_metrics.h"
#include "runtime/checkpoint/checkpoint_barrier.h"
#include "runtime/io/input_gate.h"
#include "runtime/task/mailbox.h"
#include "runtime/task/task_deployment.h"

namespace freshet::internal {

class ShuffleEnvironment;
class NetworkEnvironment;

/// Writes checkpoint snapshots off the task thread, in submission order.
/// The thread starts with the first job; Stop() finishes queued jobs and joins.
class SnapshotWorker {
 public:
  ~SnapshotWorker() { Stop(); }
  void Submit(std::function<void()> job);
  void Stop();

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

/// The task's processing-time timers: callbacks run on the task thread by
/// the mailbox loop once the clock has passed their time (a timer for t runs
/// at t + 1 or later, with that time minus 1 ms as its argument).
class TaskProcessingTimeService final : public ProcessingTimeService {
 public:
  explicit TaskProcessingTimeService(Clock& clock) : clock_(clock) {}
  Timestamp CurrentProcessingTime() const override { return clock_.NowMillis(); }
  void RegisterTimer(Timestamp time, std::function<void(Timestamp)> callback) override;
  bool HasTimers() const { return !queue_.Empty(); }
  /// Runs every callback that is due.
  void FireDue();
  /// Nanoseconds until the next callback is due (-1: none).
  int64_t NanosUntilNext() const;

 private:
  Clock& clock_;
  CallbackQueue queue_;
};

class StreamTask {
 public:
  /// Creates the task and registers its result partitions with `shuffle`.
  /// `responder` receives checkpoint acknowledgements (null: the task takes
  /// no checkpoints).
  StreamTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job, ShuffleEnvironment& shuffle,
             Clock& clock, CheckpointResponder* responder = nullptr);
  ~StreamTask();
  StreamTask(const StreamTask&) = delete;
  StreamTask& operator=(const StreamTask&) = delete;

  /// Runs the task to its end on the calling thread. Returns OK when all
  /// input was processed, Cancelled when cancelled, else the failure with
  /// the operator, the subtask and the message.
  Status Run();
  /// Any thread: stops the task promptly.
  void Cancel();

  /// Any thread (the coordinator): a source task takes checkpoint
  /// `barrier.id` and injects the barrier into its outputs.
  void TriggerCheckpoint(CheckpointBarrier barrier);
  void NotifyCheckpointComplete(CheckpointId id);
  void NotifyCheckpointAborted(CheckpointId id);
  /// Any thread: a source task ends its input as if it were bounded
  /// (stop-with-savepoint with drain).
  void RequestDrain();

  const TaskDeploymentDescriptor& Descriptor() const { return tdd_; }
  /// Valid after Run() returned.
  TaskResult& Result() { return result_; }
  const std::string& Name() const { return name_; }
  /// Before Run(): the task's metric group, registered by the caller; the
  /// task closes it when Run() ends. Without one the task keeps its
  /// metrics in a group reported nowhere.
  void SetMetricGroup(std::unique_ptr<TaskMetricGroup> group) { metric_group_ = std::move(group); }

 private:
  class ReaderContext;
  class WatermarkHandler;

  Status Setup();
  void BuildChain();
  /// Loads each operator's restore and calls InitializeState; a state
  /// that does not match (NonRecoverableError) is added to `problems` and
  /// the operator left out. Returns which operators were initialized.
  std::vector<bool> RestoreState(std::vector<std::string>& problems);
  void RunSourceLoop();
  void RunInputLoop();
  void ProcessEvent(int channel, const Buffer& buffer);
  void EndInput(int input_index);
  /// Ends every operator's input and finishes the chain (once).
  void FinishOperators();
  void EmitEvent(EventKind kind);
  // Checkpoints (task thread).
  void OnBarrier(int channel, const CheckpointBarrier& barrier);
  void MaybeCompleteAlignment();
  void CancelAlignment();
  void PerformCheckpoint(const CheckpointBarrier& barrier);
  /// What a checkpoint captured on the task thread.
  struct TakenSnapshot {
    std::vector<AsyncSnapshot> snapshots;          // per operator of the chain
    std::vector<std::string> input_in_flight;      // unaligned: per input channel with data
    std::vector<std::string> output_in_flight;     // unaligned: per output channel the barrier overtook data in
    SubtaskCheckpointMetrics metrics;
    std::chrono::steady_clock::time_point sync_end;  // where the asynchronous part starts
  };
  /// Snapshots the chain and forwards the barrier (overtaking the queued
  /// output when `overtaking`); nullopt when the checkpoint was declined.
  std::optional<TakenSnapshot> TakeSnapshots(const CheckpointBarrier& barrier, bool overtaking);
  /// Starts measuring a checkpoint this task gets the trigger or its first
  /// barrier of; EndAlignment() measures the alignment when it ends.
  void BeginCheckpointMetrics(const CheckpointBarrier& barrier);
  void EndAlignment();
  /// Writes a snapshot on the snapshot thread and acknowledges.
  void SubmitSnapshots(const CheckpointBarrier& barrier, TakenSnapshot taken);
  // Unaligned checkpoints (task thread).
  bool CanUnalign(const CheckpointBarrier& barrier) const {
    return unaligned_ && !barrier.savepoint && !barrier.terminate;
  }
  /// Takes the pending checkpoint now and records the data still in flight
  /// on every channel whose barrier has not passed.
  void StartUnaligned();
  void RecordInFlight(int channel, const Buffer& buffer);
  /// The in-flight data of `channel` is complete.
  void CloseRecording(int channel);
  /// Every channel's in-flight data is complete: writes the checkpoint.
  void FinishRecording();
  void AbandonRecording();
  /// Processes the in-flight data restored from an unaligned checkpoint
  /// before anything new is read.
  void ReplayInFlightData();
  /// Queues the output in flight restored from an unaligned checkpoint
  /// ahead of anything new.
  void RestoreOutputInFlight();
  void OnCheckpointComplete(CheckpointId id);
  void OnCheckpointAborted(CheckpointId id);
  /// True when a terminating checkpoint was taken: process mails only.
  bool Suspended() const { return terminate_id_ >= 0; }
  void CloseOperators() noexcept;
  void FlushOutputs();
  void MaybeFlush();
  void FireTimers();
  int64_t WaitTimeout(int64_t limit_ns) const;
  std::string Describe() const;
  // Metrics (task thread).
  void SetUpMetrics();
  /// Publishes the record counters and the input watermark: once per
  /// input buffer or source poll, never per record.
  void PublishMetrics();
  /// Waits on the mailbox for input, counting the wait as idle time.
  void WaitForInput(int64_t timeout_ns);

  TaskDeploymentDescriptor tdd_;
  std::shared_ptr<const JobGraph> job_;
  const JobVertex& vertex_;
  ShuffleEnvironment& shuffle_;
  Clock& clock_;
  std::string name_;
  Mailbox mailbox_;
  TaskProcessingTimeService processing_time_;
  std::unique_ptr<ReaderContext> reader_context_;
  std::unique_ptr<RuntimeContext> runtime_context_;
  // Before the operators: user functions hold metrics of the group.
  std::unique_ptr<TaskMetricGroup> metric_group_;
  TaskIoMetrics* io_metrics_ = nullptr;  // metric_group_->Io(), set by SetUpMetrics()

  std::vector<std::shared_ptr<ResultPartition>> produced_;  // per output edge, in vertex order
  std::vector<RecordWriter*> writers_;                      // owned by the outputs
  std::unique_ptr<InputGate> gate_;
  std::vector<std::unique_ptr<InputProcessor>> processors_;  // index: input index (1-based)
  std::unique_ptr<WatermarkHandler> watermark_handler_;

  // Operators in chain order (head first), with their contexts and outputs.
  std::vector<std::unique_ptr<OperatorContext>> contexts_;
  std::vector<std::unique_ptr<OutputBase>> outputs_;
  std::vector<std::unique_ptr<StreamOperator>> operators_;
  std::vector<bool> opened_;
  SourceDriver* source_ = nullptr;

  int64_t buffer_timeout_ns_;
  int64_t last_flush_ns_ = 0;
  std::vector<bool> input_ended_;
  TaskResult result_;
  std::atomic<bool> cancel_requested_{false};

  // Checkpoints.
  CheckpointResponder* responder_;
  bool checkpointing_ = false;
  bool exactly_once_ = true;
  std::optional<CheckpointBarrier> pending_barrier_;  // alignment in progress
  // The checkpoint this task is starting: its start delay, and for an
  // alignment where it began and the input bytes read before it.
  SubtaskCheckpointMetrics starting_metrics_;
  std::chrono::steady_clock::time_point alignment_start_;
  int64_t alignment_bytes_in_ = 0;
  std::vector<bool> barrier_received_;
  CheckpointId last_barrier_id_ = 0;  // highest checkpoint taken or abandoned here
  CheckpointId terminate_id_ = -1;    // terminating checkpoint taken, awaiting confirmation
  bool terminate_confirmed_ = false;
  bool chain_finished_ = false;
  bool drain_requested_ = false;
  SnapshotWorker snapshots_;

  bool unaligned_ = false;
  int64_t aligned_timeout_ms_ = 0;
  std::vector<bool> barrier_overtook_;  // per channel, for the pending barrier
  /// An unaligned checkpoint whose snapshot is taken while the data that
  /// was in flight at that moment is still arriving.
  struct InFlightRecording {
    CheckpointBarrier barrier;
    TakenSnapshot taken;
    std::vector<std::string> data;  // per channel: a header naming it, then the bytes
    std::vector<bool> open;         // per channel: still recording
    int open_count = 0;
  };
  std::optional<InFlightRecording> recording_;
  std::vector<std::string> restored_in_flight_;
  std::vector<std::string> restored_output_in_flight_;
};

/// Per-TaskExecutor registry of result partitions, so consumers find the
/// partitions of producers in the same process.
class ShuffleEnvironment {
 public:
  std::shared_ptr<ResultPartition> CreatePartition(const PartitionId& id, int num_subpartitions,
                                                   const ExecutionOptions& options);
  std::shared_ptr<ResultPartition> Find(const PartitionId& id);
  /// Drops the registry's references to a job's partitions.
  void ReleaseJob(const std::string& job_id);
  /// Cancels (wakes producers of) every partition of a job.
  void CancelJob(const std::string& job_id);
  /// The network stack through which tasks read partitions of other
  /// processes (input channels with a producer address); null: none.
  /// REQUIRES: set before tasks are deployed; `network` outlives them.
  void SetNetwork(NetworkEnvironment* network) { network_ = network; }
  NetworkEnvironment* Network() const { return network_; }

 private:
  NetworkEnvironment* network_ = nullptr;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ResultPartition>> partitions_;
};

}  // namespace freshet::internal
