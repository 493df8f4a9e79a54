#include "runtime/task/stream_task.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "runtime/net/network_environment.h"

namespace freshet::internal {

namespace {
/// An input channel reported that its data was lost (a remote producer's
/// process or connection went away): the task fails with the reason.
class InputChannelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Operator states of a chain's head operator holding the in-flight data of
/// an unaligned checkpoint: the data that reached the task's inputs after
/// its snapshot and before each channel's barrier, and the data its own
/// barriers overtook in its output queues. One entry per channel that had
/// data: a header naming the channel (u32 edge, u32 producer subtask, u32
/// subpartition), then the bytes. On restore a channel's input part is
/// processed first, then its producer's output part, then new data.
constexpr const char* kInFlightInput = "freshet.in-flight-input";
constexpr const char* kInFlightOutput = "freshet.in-flight-output";
constexpr size_t kInFlightHeaderSize = 12;

std::string InFlightHeader(const PartitionId& id, int subpartition) {
  uint32_t header[3] = {static_cast<uint32_t>(id.edge), static_cast<uint32_t>(id.producer_subtask),
                        static_cast<uint32_t>(subpartition)};
  return std::string(reinterpret_cast<const char*>(header), sizeof(header));
}
}  // namespace

class StreamTask::ReaderContext final : public SourceReaderContext {
 public:
  ReaderContext(int subtask, int parallelism, Clock& clock, Mailbox& mailbox)
      : subtask_(subtask), parallelism_(parallelism), clock_(clock), mailbox_(mailbox) {}
  int SubtaskIndex() const override { return subtask_; }
  int Parallelism() const override { return parallelism_; }
  Clock& GetClock() const override { return clock_; }
  void NotifyAvailable() override { mailbox_.SignalInput(); }

 private:
  int subtask_;
  int parallelism_;
  Clock& clock_;
  Mailbox& mailbox_;
};

/// Combines channel watermarks per input: the input's watermark is the
/// minimum over its aligned channels (active, unfinished, and caught up
/// with the input's watermark), forwarded to the head operator when it
/// advances. An input is idle when all its unfinished channels are idle.
class StreamTask::WatermarkHandler final : public ElementHandler {
 public:
  WatermarkHandler(InputGate& gate, StreamOperator& head)
      : gate_(gate), head_(head), current_(3, kNoTimestamp), idle_(3, false) {}
  void OnWatermark(int channel, Timestamp wm) override {
    InputChannel& c = gate_.Channel(channel);
    if (wm <= c.watermark) return;
    c.watermark = wm;
    if (!c.aligned && !c.idle && wm >= current_[static_cast<size_t>(c.input_index)]) c.aligned = true;
    Recompute(c.input_index);
  }
  void OnWatermarkStatus(int channel, bool idle) override {
    InputChannel& c = gate_.Channel(channel);
    if (c.idle == idle) return;
    c.idle = idle;
    // A channel that becomes active rejoins once it has caught up.
    c.aligned = !idle && c.watermark >= current_[static_cast<size_t>(c.input_index)];
    Recompute(c.input_index);
  }
  void Recompute(int input_index) {
    auto in = static_cast<size_t>(input_index);
    Timestamp min = kMaxWatermark;
    bool any_aligned = false;
    bool any_unfinished = false;
    bool all_idle = true;
    for (int i = 0; i < gate_.NumChannels(); ++i) {
      InputChannel& c = gate_.Channel(i);
      if (c.input_index != input_index || c.finished) continue;
      any_unfinished = true;
      if (!c.idle) all_idle = false;
      if (c.aligned && !c.idle) {
        any_aligned = true;
        min = std::min(min, c.watermark);
      }
    }
    if (!any_unfinished) return;  // all finished: their maximum watermarks were forwarded already
    if (all_idle && !idle_[in]) {
      // Every channel is idle now, so none holds back the others: forward
      // the highest watermark any of them reached (Flink does the same).
      Timestamp max = kNoTimestamp;
      for (int i = 0; i < gate_.NumChannels(); ++i) {
        InputChannel& c = gate_.Channel(i);
        if (c.input_index == input_index && !c.finished) max = std::max(max, c.watermark);
      }
      if (max > current_[in]) {
        current_[in] = max;
        head_.ProcessWatermark(input_index, max);
      }
    }
    if (all_idle != idle_[in]) {
      idle_[in] = all_idle;
      head_.ProcessWatermarkStatus(input_index, all_idle);
    }
    if (any_aligned && min > current_[in]) {
      current_[in] = min;
      head_.ProcessWatermark(input_index, min);
    }
  }
  /// The watermark forwarded to the head operator's input `input_index`.
  Timestamp Current(int input_index) const { return current_[static_cast<size_t>(input_index)]; }

 private:
  InputGate& gate_;
  StreamOperator& head_;
  std::vector<Timestamp> current_;
  std::vector<bool> idle_;
};

StreamTask::StreamTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job, ShuffleEnvironment& shuffle,
                       Clock& clock, CheckpointResponder* responder)
    : tdd_(std::move(tdd)),
      job_(std::move(job)),
      vertex_(job_->vertices.at(static_cast<size_t>(tdd_.vertex))),
      shuffle_(shuffle),
      clock_(clock),
      name_(fmt::format("{} ({}/{})", vertex_.name, tdd_.subtask + 1, tdd_.parallelism)),
      processing_time_(clock),
      responder_(responder) {
  const ExecutionOptions& options = job_->stream_graph->options;
  checkpointing_ = responder_ != nullptr && options.checkpoint.Enabled();
  exactly_once_ = options.checkpoint.mode == CheckpointingMode::kExactlyOnce;
  unaligned_ = checkpointing_ && exactly_once_ && options.checkpoint.unaligned;
  aligned_timeout_ms_ = options.checkpoint.aligned_checkpoint_timeout_ms;
  buffer_timeout_ns_ = options.buffer_timeout_ms < 0 ? -1 : options.buffer_timeout_ms * 1'000'000;
  for (const ProducedPartitionDescriptor& p : tdd_.produced) {
    produced_.push_back(shuffle_.CreatePartition(p.id, p.num_subpartitions, options));
  }
}

StreamTask::~StreamTask() {
  // Outputs reference operators' inputs and operators reference contexts:
  // destroy operators before outputs and contexts.
  operators_.clear();
  outputs_.clear();
}

void StreamTask::Cancel() {
  cancel_requested_.store(true);
  mailbox_.Cancel();
  for (auto& p : produced_) p->Cancel();
}

void StreamTask::TriggerCheckpoint(CheckpointBarrier barrier) {
  mailbox_.Put([this, barrier = std::move(barrier)] {
    if (barrier.id <= last_barrier_id_ || Suspended()) return;
    last_barrier_id_ = barrier.id;
    BeginCheckpointMetrics(barrier);
    PerformCheckpoint(barrier);
  });
}

void StreamTask::NotifyCheckpointComplete(CheckpointId id) {
  mailbox_.Put([this, id] { OnCheckpointComplete(id); });
}

void StreamTask::NotifyCheckpointAborted(CheckpointId id) {
  mailbox_.Put([this, id] { OnCheckpointAborted(id); });
}

void StreamTask::RequestDrain() {
  mailbox_.Put([this] { drain_requested_ = true; });
}

std::string StreamTask::Describe() const { return fmt::format("subtask {}/{}", tdd_.subtask + 1, tdd_.parallelism); }

Status StreamTask::Setup() {
  reader_context_ = std::make_unique<ReaderContext>(tdd_.subtask, tdd_.parallelism, clock_, mailbox_);
  runtime_context_ =
      std::make_unique<RuntimeContext>(vertex_.name, tdd_.subtask, tdd_.parallelism, tdd_.max_parallelism, tdd_.attempt);
  if (!tdd_.inputs.empty()) {
    gate_ = std::make_unique<InputGate>(&mailbox_);
    for (const InputGateDescriptor& in : tdd_.inputs) {
      for (const InputChannelDescriptor& ch : in.channels) {
        std::shared_ptr<ResultPartition> p;
        if (!ch.producer_address.empty()) {
          FRESHET_ASSIGN_OR_RETURN(p, RequestRemoteChannel(shuffle_, tdd_, ch, job_->stream_graph->options));
        } else {
          p = shuffle_.Find(ch.partition);
          if (p == nullptr) return Status::NotFound("result partition " + ch.partition.Key() + " is not registered");
        }
        // A remote channel's mirror holds that one subpartition only.
        int index = gate_->AddChannel(std::move(p), ch.producer_address.empty() ? ch.subpartition : 0, in.input_index);
        gate_->Channel(index).logical_subpartition = ch.subpartition;
      }
    }
  }
  BuildChain();
  return Status::Ok();
}

void StreamTask::BuildChain() {
  const StreamGraph& g = *job_->stream_graph;
  const std::vector<int>& chain = vertex_.chain;
  std::map<int, StreamOperator*> op_of_node;
  std::vector<std::unique_ptr<StreamOperator>> reversed;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const StreamNode& node = g.Node(*it);
    auto ctx = std::make_unique<OperatorContext>();
    ctx->name = node.name;
    // Each operator has its own runtime context: keyed state is per operator.
    ctx->runtime_storage = std::make_unique<RuntimeContext>(*runtime_context_);
    ctx->runtime = ctx->runtime_storage.get();
    ctx->runtime_storage->SetMetricGroup(&metric_group_->AddOperator(node.id, node.name));
    ctx->max_parallelism = node.max_parallelism;
    ctx->key_groups = KeyGroupRangeForSubtask(tdd_.subtask, node.parallelism, node.max_parallelism);
    ctx->records_in = &result_.records_in;
    ctx->records_out = &result_.records_out;
    ctx->reader_context = reader_context_.get();
    ctx->accumulators = &result_.accumulators;
    ctx->processing_time = &processing_time_;
    ctx->counters = &result_.counters;
    ctx->auto_watermark_interval_ms = g.options.auto_watermark_interval_ms;
    ctx->checkpointing = checkpointing_;
    ctx->state_backend = g.options.state_backend;
    ctx->slot = tdd_.slot >= 0 ? fmt::format("{}/slot-{}", tdd_.job_id, tdd_.slot) : tdd_.ExecutionId();

    // Outputs by tag: "" is the main output, others are side outputs.
    std::map<std::string, std::vector<std::unique_ptr<OutputBase>>> outs_by_tag;
    std::map<std::string, std::shared_ptr<const TypeOps>> type_of_tag;
    for (int e : node.out_edges) {
      const StreamEdge& edge = g.Edge(e);
      auto& outs = outs_by_tag[edge.side_output_tag];
      type_of_tag[edge.side_output_tag] = edge.record_type;
      auto target = op_of_node.find(edge.target);
      if (target != op_of_node.end()) {
        outs.push_back(edge.record_type->MakeChainingOutput(target->second, edge.target_input));
        continue;
      }
      auto pos = std::find(vertex_.output_edges.begin(), vertex_.output_edges.end(), e);
      FRESHET_CHECK(pos != vertex_.output_edges.end());
      auto partition = produced_.at(static_cast<size_t>(pos - vertex_.output_edges.begin()));
      auto writer = std::make_unique<RecordWriter>(partition);
      writers_.push_back(writer.get());
      const StreamNode& consumer = g.Node(edge.target);
      ChannelSelectorContext sc{tdd_.subtask, node.parallelism, consumer.parallelism, consumer.max_parallelism};
      outs.push_back(edge.partitioner->Create(std::move(writer), sc));
    }
    OutputBase* out = nullptr;
    if (node.kind != TransformationKind::kSink) {
      auto& outs = outs_by_tag[""];
      if (outs.size() == 1) {
        outputs_.push_back(std::move(outs[0]));
      } else {
        outputs_.push_back(node.output_type->MakeFanOut(std::move(outs)));
      }
      out = outputs_.back().get();
    }
    for (auto& [tag, outs] : outs_by_tag) {
      if (tag.empty()) continue;
      if (outs.size() == 1) {
        outputs_.push_back(std::move(outs[0]));
      } else {
        outputs_.push_back(type_of_tag[tag]->MakeFanOut(std::move(outs)));
      }
      ctx->side_outputs.Add(tag, outputs_.back().get());
    }
    auto op = node.factory(*ctx, out);
    op_of_node[node.id] = op.get();
    contexts_.push_back(std::move(ctx));
    reversed.push_back(std::move(op));
  }
  for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) operators_.push_back(std::move(*it));
  opened_.assign(operators_.size(), false);
  if (vertex_.is_source) source_ = dynamic_cast<SourceDriver*>(operators_.front().get());

  if (gate_ != nullptr) {
    StreamOperator* head = operators_.front().get();
    processors_.resize(3);
    input_ended_.assign(3, false);
    for (int e : vertex_.input_edges) {
      const StreamEdge& edge = g.Edge(e);
      auto& p = processors_[static_cast<size_t>(edge.target_input)];
      if (p == nullptr) p = edge.record_type->MakeInputProcessor(head, edge.target_input);
    }
    watermark_handler_ = std::make_unique<WatermarkHandler>(*gate_, *head);
  }
}

Status StreamTask::Run() {
  Status status;
  try {
    SetUpMetrics();
    status = Setup();
    if (status.IsOk()) {
      // Problems of restored state that does not match the job (a state
      // whose kind or type changed): collected over every operator of the
      // chain, so that the task reports them all at once.
      std::vector<std::string> problems;
      std::vector<bool> initialized = RestoreState(problems);
      for (size_t i = operators_.size(); i-- > 0;) {
        if (!initialized[i]) continue;
        try {
          operators_[i]->Open();
        } catch (const NonRecoverableError& e) {
          problems.push_back(e.what());
          continue;
        }
        opened_[i] = true;
      }
      for (const auto& ctx : contexts_) problems.insert(problems.end(), ctx->restore_problems.begin(), ctx->restore_problems.end());
      if (!problems.empty()) {
        std::string message = "the restored state does not match the job:";
        for (const std::string& p : problems) message += "\n  - " + p;
        throw NonRecoverableError(message);
      }
      if (responder_ != nullptr) responder_->ReportInitialized(tdd_.ExecutionId());
      last_flush_ns_ = clock_.MonotonicNanos();
      RestoreOutputInFlight();
      if (source_ != nullptr) {
        RunSourceLoop();
      } else {
        RunInputLoop();
      }
    }
  } catch (const NonRecoverableError& e) {
    status = Status::FailedPrecondition(fmt::format("task '{}' cannot start: {}", name_, e.what()));
  } catch (const OperatorException& e) {
    status = Status::UserFunctionError(fmt::format("operator '{}' ({}) failed: {}", e.OperatorName(), Describe(), e.what()));
  } catch (const TaskCancelledException&) {
    status = Status::Cancelled(fmt::format("task '{}' was cancelled", name_));
  } catch (const InputChannelError& e) {
    status = Status::Unavailable(fmt::format("task '{}' lost an input: {}", name_, e.what()));
  } catch (const std::exception& e) {
    status = Status::Internal(fmt::format("task '{}' failed: {}", name_, e.what()));
  }
  if (!status.IsOk() && cancel_requested_.load()) {
    status = Status::Cancelled(fmt::format("task '{}' was cancelled", name_));
  }
  CloseOperators();
  // Snapshots already captured are still written and acknowledged.
  snapshots_.Stop();
  // The task's metrics go with it, before its end is reported.
  if (metric_group_ != nullptr) metric_group_->Close();
  return status;
}

std::vector<bool> StreamTask::RestoreState(std::vector<std::string>& problems) {
  std::vector<bool> initialized(operators_.size(), false);
  for (size_t i = 0; i < operators_.size(); ++i) {
    OperatorRestore restore;
    if (!tdd_.restore_directory.empty() && i < tdd_.restore.size() && tdd_.restore[i].restored) {
      freshet::Result<OperatorRestore> loaded = LoadRestore(tdd_.restore_directory, tdd_.restore[i]);
      if (!loaded.IsOk()) {
        throw std::runtime_error(fmt::format("restoring operator '{}' from {}: {}", contexts_[i]->name,
                                             tdd_.restore_directory, loaded.GetStatus().ToString()));
      }
      restore = std::move(*loaded);
      if (i == 0) {
        for (auto [name, out] : {std::pair{kInFlightInput, &restored_in_flight_},
                                 std::pair{kInFlightOutput, &restored_output_in_flight_}}) {
          auto it = restore.operator_state.find(name);
          if (it == restore.operator_state.end()) continue;
          *out = std::move(it->second.entries);
          restore.operator_state.erase(it);
        }
      }
    }
    try {
      operators_[i]->InitializeState(restore);
      initialized[i] = true;
    } catch (const NonRecoverableError& e) {
      problems.push_back(e.what());
    }
  }
  return initialized;
}

void StreamTask::FireTimers() {
  if (processing_time_.HasTimers()) processing_time_.FireDue();
}

int64_t StreamTask::WaitTimeout(int64_t limit_ns) const {
  int64_t next = processing_time_.NanosUntilNext();
  if (next < 0) return limit_ns;
  return limit_ns < 0 ? next : std::min(next, limit_ns);
}

void StreamTask::RunSourceLoop() {
  while (true) {
    if (mailbox_.HasMail()) mailbox_.RunMails();
    if (mailbox_.IsCancelled()) throw TaskCancelledException();
    if (terminate_confirmed_) {
      EmitEvent(EventKind::kEndOfPartition);  // stopped with a savepoint
      return;
    }
    if (Suspended()) {
      FlushOutputs();
      mailbox_.Wait(-1);
      continue;
    }
    FireTimers();
    if (drain_requested_) break;
    InputStatus s = source_->PollNext();
    PublishMetrics();
    if (s == InputStatus::kEndOfInput) break;
    if (s == InputStatus::kNothingAvailable) {
      FlushOutputs();
      WaitForInput(WaitTimeout(std::chrono::duration_cast<std::chrono::nanoseconds>(source_->PollDelay()).count()));
    } else {
      MaybeFlush();
    }
  }
  // The end of a bounded input (or a drain) is the end of event time.
  operators_.front()->ProcessWatermark(0, kMaxWatermark);
  FinishOperators();
  if (checkpointing_ || drain_requested_) {
    // Wait for the final checkpoint, so that what the chain emitted is
    // committed before the job ends (two-phase-commit sinks).
    EmitEvent(EventKind::kEndOfData);
    responder_->ReportEndOfData(tdd_.ExecutionId());
    while (!terminate_confirmed_) {
      if (mailbox_.HasMail()) mailbox_.RunMails();
      if (mailbox_.IsCancelled()) throw TaskCancelledException();
      if (terminate_confirmed_) break;
      FlushOutputs();
      mailbox_.Wait(-1);
    }
  }
  EmitEvent(EventKind::kEndOfPartition);
}

void StreamTask::EmitEvent(EventKind kind) {
  for (RecordWriter* w : writers_) w->BroadcastEvent(std::string(1, static_cast<char>(kind)));
}

void StreamTask::RunInputLoop() {
  ReplayInFlightData();
  gate_->Start();
  int channel = 0;
  Buffer buffer;
  while (true) {
    if (mailbox_.HasMail()) mailbox_.RunMails();
    if (mailbox_.IsCancelled()) throw TaskCancelledException();
    if (terminate_confirmed_) {
      EmitEvent(EventKind::kEndOfPartition);
      return;
    }
    if (Suspended()) {
      FlushOutputs();
      mailbox_.Wait(-1);
      continue;
    }
    if (!chain_finished_) FireTimers();
    if (!gate_->PollNext(channel, buffer)) {
      if (gate_->AllFinished()) break;
      mailbox_.ResetInputSignal();
      if (!gate_->PollNext(channel, buffer)) {
        FlushOutputs();
        WaitForInput(WaitTimeout(-1));
        continue;
      }
    }
    if (buffer.Kind() == BufferKind::kEvent) {
      ProcessEvent(channel, buffer);
    } else {
      if (recording_) [[unlikely]] RecordInFlight(channel, buffer);
      InputChannel& c = gate_->Channel(channel);
      c.deserializer.SetBuffer(buffer.Data(), buffer.Size());
      Status s = processors_[static_cast<size_t>(c.input_index)]->ProcessBuffer(c.deserializer, channel,
                                                                               *watermark_handler_);
      if (!s.IsOk()) throw std::runtime_error(s.ToString());
    }
    io_metrics_->AddBytesIn(static_cast<int64_t>(buffer.Size()));
    PublishMetrics();
    buffer.Recycle();
    MaybeFlush();
  }
  FinishOperators();
  EmitEvent(EventKind::kEndOfPartition);
}

void StreamTask::ProcessEvent(int channel, const Buffer& buffer) {
  if (buffer.Size() < 1) throw std::runtime_error("empty event buffer on channel " + std::to_string(channel));
  auto kind = static_cast<EventKind>(buffer.Data()[0]);
  if (kind == EventKind::kPartitionError) [[unlikely]] {
    // Checked first: the data may have broken off inside a record.
    throw InputChannelError(std::string(reinterpret_cast<const char*>(buffer.Data()) + 1, buffer.Size() - 1));
  }
  InputChannel& c = gate_->Channel(channel);
  std::optional<CheckpointBarrier> barrier;
  if (kind == EventKind::kCheckpointBarrier) {
    freshet::Result<CheckpointBarrier> decoded = CheckpointBarrier::Decode(buffer.Data(), buffer.Size());
    if (!decoded.IsOk()) throw std::runtime_error(decoded.GetStatus().ToString());
    barrier = std::move(*decoded);
  }
  // Only an unaligned barrier may arrive inside a record: it overtook the
  // rest of it.
  if (!c.deserializer.IsClean() && !(barrier && barrier->unaligned)) {
    throw std::runtime_error("event on channel " + std::to_string(channel) + " inside a record");
  }
  switch (kind) {
    case EventKind::kEndOfPartition:
      if (recording_) CloseRecording(channel);
      gate_->MarkFinished(channel);
      watermark_handler_->Recompute(c.input_index);
      if (gate_->InputFinished(c.input_index)) EndInput(c.input_index);
      MaybeCompleteAlignment();
      return;
    case EventKind::kEndOfData: {
      c.data_finished = true;
      bool input_done = true;
      bool all_done = true;
      for (int i = 0; i < gate_->NumChannels(); ++i) {
        const InputChannel& other = gate_->Channel(i);
        bool done = other.data_finished || other.finished;
        if (!done) all_done = false;
        if (!done && other.input_index == c.input_index) input_done = false;
      }
      if (input_done) EndInput(c.input_index);
      if (all_done && !chain_finished_) {
        FinishOperators();
        EmitEvent(EventKind::kEndOfData);
      }
      return;
    }
    case EventKind::kCheckpointBarrier:
      OnBarrier(channel, *barrier);
      return;
    case EventKind::kPartitionError:
      break;  // handled above
  }
  throw std::runtime_error("unknown event " + std::to_string(buffer.Data()[0]) + " on channel " +
                           std::to_string(channel));
}

void StreamTask::EndInput(int input_index) {
  if (input_ended_[static_cast<size_t>(input_index)]) return;
  input_ended_[static_cast<size_t>(input_index)] = true;
  operators_.front()->EndInput(input_index);
}

void StreamTask::FinishOperators() {
  if (chain_finished_) return;
  chain_finished_ = true;
  for (size_t i = 1; i < input_ended_.size(); ++i) {
    if (processors_.size() > i && processors_[i] != nullptr) EndInput(static_cast<int>(i));
  }
  for (size_t i = 0; i < operators_.size(); ++i) {
    if (i > 0) operators_[i]->EndInput(1);
    operators_[i]->Finish();
  }
}

// ---- checkpoints ------------------------------------------------------------

void StreamTask::OnBarrier(int channel, const CheckpointBarrier& barrier) {
  if (barrier.id <= last_barrier_id_) {
    // A late barrier of a checkpoint handled or abandoned: it ends the
    // in-flight data of its channel.
    if (recording_ && recording_->barrier.id == barrier.id) CloseRecording(channel);
    return;
  }
  if (recording_) {
    // A newer checkpoint started before the in-flight data of the last one
    // was complete: that one cannot complete here any more.
    if (responder_ != nullptr) {
      responder_->DeclineCheckpoint(tdd_.ExecutionId(), recording_->barrier.id,
                                    Status::Cancelled(fmt::format("task '{}': checkpoint {} was superseded by {} "
                                                                  "before its in-flight data was recorded",
                                                                  name_, recording_->barrier.id, barrier.id)));
    }
    AbandonRecording();
  }
  if (pending_barrier_ && barrier.id > pending_barrier_->id) {
    // A newer checkpoint overtook the one being aligned: that one cannot
    // complete here any more.
    if (responder_ != nullptr) {
      responder_->DeclineCheckpoint(tdd_.ExecutionId(), pending_barrier_->id,
                                    Status::Cancelled(fmt::format("task '{}': checkpoint {} was superseded by {} "
                                                                  "before its barriers were aligned",
                                                                  name_, pending_barrier_->id, barrier.id)));
    }
    last_barrier_id_ = pending_barrier_->id;
    CancelAlignment();
  }
  if (!pending_barrier_) {
    pending_barrier_ = barrier;
    BeginCheckpointMetrics(barrier);
    barrier_received_.assign(static_cast<size_t>(gate_->NumChannels()), false);
    barrier_overtook_.assign(static_cast<size_t>(gate_->NumChannels()), false);
    if (CanUnalign(barrier) && !barrier.unaligned && aligned_timeout_ms_ > 0) {
      // Aligned first; unaligned once the checkpoint is older than the
      // timeout and still not aligned.
      Timestamp deadline = std::max(barrier.timestamp + aligned_timeout_ms_, clock_.NowMillis());
      processing_time_.RegisterTimer(deadline, [this, id = barrier.id](Timestamp) {
        if (pending_barrier_ && pending_barrier_->id == id) StartUnaligned();
      });
    }
  }
  if (!barrier_received_[static_cast<size_t>(channel)]) {
    barrier_received_[static_cast<size_t>(channel)] = true;
    barrier_overtook_[static_cast<size_t>(channel)] = barrier.unaligned;
    // Exactly-once: records behind the barrier wait until all barriers are in.
    if (exactly_once_) gate_->Block(channel);
  }
  if (CanUnalign(*pending_barrier_) && (barrier.unaligned || aligned_timeout_ms_ == 0)) {
    StartUnaligned();
    return;
  }
  MaybeCompleteAlignment();
}

void StreamTask::StartUnaligned() {
  CheckpointBarrier barrier = std::move(*pending_barrier_);
  pending_barrier_.reset();
  last_barrier_id_ = barrier.id;
  EndAlignment();
  starting_metrics_.unaligned = true;
  std::optional<TakenSnapshot> taken = TakeSnapshots(barrier, true);
  if (!taken) {
    gate_->UnblockAll();
    return;
  }
  InFlightRecording rec;
  rec.barrier = std::move(barrier);
  rec.taken = std::move(*taken);
  const int n = gate_->NumChannels();
  rec.data.resize(static_cast<size_t>(n));
  rec.open.assign(static_cast<size_t>(n), false);
  for (int i = 0; i < n; ++i) {
    auto k = static_cast<size_t>(i);
    InputChannel& c = gate_->Channel(i);
    // Data behind an aligned barrier is after the checkpoint: not in flight.
    if (c.finished || (barrier_received_[k] && !barrier_overtook_[k])) continue;
    // The start of a record whose rest an unaligned barrier overtook (its
    // producer wrote that rest), and on channels whose barrier is still to
    // come, what arrives until it does.
    rec.data[k] = InFlightHeader(c.partition->Id(), c.logical_subpartition);
    std::string_view partial = c.deserializer.PendingBytes();
    rec.data[k].append(partial.data(), partial.size());
    if (!barrier_received_[k]) {
      rec.open[k] = true;
      ++rec.open_count;
    }
  }
  recording_ = std::move(rec);
  gate_->UnblockAll();
  if (recording_->open_count == 0) FinishRecording();
}

void StreamTask::RecordInFlight(int channel, const Buffer& buffer) {
  auto k = static_cast<size_t>(channel);
  if (recording_->open[k]) recording_->data[k].append(reinterpret_cast<const char*>(buffer.Data()), buffer.Size());
}

void StreamTask::CloseRecording(int channel) {
  auto k = static_cast<size_t>(channel);
  if (!recording_->open[k]) return;
  recording_->open[k] = false;
  if (--recording_->open_count == 0) FinishRecording();
}

void StreamTask::FinishRecording() {
  std::vector<std::string> entries;
  for (std::string& data : recording_->data) {
    if (data.size() > kInFlightHeaderSize) entries.push_back(std::move(data));
  }
  InFlightRecording rec = std::move(*recording_);
  recording_.reset();
  rec.taken.input_in_flight = std::move(entries);
  SubmitSnapshots(rec.barrier, std::move(rec.taken));
}

void StreamTask::AbandonRecording() { recording_.reset(); }

void StreamTask::ReplayInFlightData() {
  if (restored_in_flight_.empty()) return;
  std::vector<std::string> entries = std::move(restored_in_flight_);
  restored_in_flight_.clear();
  for (const std::string& entry : entries) {
    if (entry.size() < kInFlightHeaderSize) throw std::runtime_error("in-flight data entry shorter than its header");
    uint32_t header[3];
    std::memcpy(header, entry.data(), sizeof(header));
    int channel = -1;
    for (int i = 0; i < gate_->NumChannels(); ++i) {
      const InputChannel& c = gate_->Channel(i);
      if (static_cast<uint32_t>(c.partition->Id().edge) == header[0] &&
          static_cast<uint32_t>(c.partition->Id().producer_subtask) == header[1] &&
          static_cast<uint32_t>(c.logical_subpartition) == header[2]) {
        channel = i;
        break;
      }
    }
    if (channel < 0) {
      throw std::runtime_error(fmt::format("restored in-flight data of edge {} from producer subtask {} has no "
                                           "input channel in this task",
                                           header[0], header[1]));
    }
    InputChannel& c = gate_->Channel(channel);
    c.deserializer.SetBuffer(reinterpret_cast<const uint8_t*>(entry.data()) + kInFlightHeaderSize,
                             entry.size() - kInFlightHeaderSize);
    Status s = processors_[static_cast<size_t>(c.input_index)]->ProcessBuffer(c.deserializer, channel,
                                                                             *watermark_handler_);
    // A record may end inside: its producer restored the rest.
    if (!s.IsOk()) throw std::runtime_error("replaying restored in-flight data: " + s.ToString());
    MaybeFlush();
  }
}

void StreamTask::RestoreOutputInFlight() {
  if (restored_output_in_flight_.empty()) return;
  std::vector<std::string> entries = std::move(restored_output_in_flight_);
  restored_output_in_flight_.clear();
  for (const std::string& entry : entries) {
    if (entry.size() < kInFlightHeaderSize) throw std::runtime_error("in-flight data entry shorter than its header");
    uint32_t header[3];
    std::memcpy(header, entry.data(), sizeof(header));
    RecordWriter* writer = nullptr;
    for (size_t w = 0; w < writers_.size(); ++w) {
      if (static_cast<uint32_t>(writers_[w]->Partition().Id().edge) == header[0]) writer = writers_[w];
    }
    if (writer == nullptr || header[1] != static_cast<uint32_t>(tdd_.subtask) ||
        header[2] >= static_cast<uint32_t>(writer->NumChannels())) {
      throw std::runtime_error(fmt::format("restored output in flight of edge {}, subtask {}, channel {} has no "
                                           "output in this task",
                                           header[0], header[1], header[2]));
    }
    writer->AddRestoredData(static_cast<int>(header[2]), entry.substr(kInFlightHeaderSize));
  }
}

void StreamTask::MaybeCompleteAlignment() {
  if (!pending_barrier_) return;
  for (int i = 0; i < gate_->NumChannels(); ++i) {
    if (!barrier_received_[static_cast<size_t>(i)] && !gate_->Channel(i).finished) return;
  }
  CheckpointBarrier barrier = std::move(*pending_barrier_);
  pending_barrier_.reset();
  last_barrier_id_ = barrier.id;
  EndAlignment();
  PerformCheckpoint(barrier);
  gate_->UnblockAll();
}

void StreamTask::BeginCheckpointMetrics(const CheckpointBarrier& barrier) {
  starting_metrics_ = SubtaskCheckpointMetrics{};
  // The trigger time is the coordinator's wall clock; clocks of other
  // hosts may be behind.
  starting_metrics_.start_delay_ms = std::max<int64_t>(0, clock_.NowMillis() - barrier.timestamp);
  alignment_start_ = std::chrono::steady_clock::now();
  alignment_bytes_in_ = io_metrics_->BytesIn();
}

void StreamTask::EndAlignment() {
  starting_metrics_.alignment_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - alignment_start_)
          .count();
  starting_metrics_.processed_bytes = io_metrics_->BytesIn() - alignment_bytes_in_;
}

void StreamTask::CancelAlignment() {
  pending_barrier_.reset();
  if (gate_ != nullptr) gate_->UnblockAll();
}

void StreamTask::PerformCheckpoint(const CheckpointBarrier& barrier) {
  if (responder_ == nullptr) return;
  // A source starts an unaligned checkpoint by overtaking its own queued
  // output; with an alignment timeout its barrier starts aligned.
  bool overtaking = source_ != nullptr && CanUnalign(barrier) && aligned_timeout_ms_ == 0;
  std::optional<TakenSnapshot> taken = TakeSnapshots(barrier, overtaking);
  if (taken) SubmitSnapshots(barrier, std::move(*taken));
}

std::optional<StreamTask::TakenSnapshot> StreamTask::TakeSnapshots(const CheckpointBarrier& barrier,
                                                                   bool overtaking) {
  if (responder_ == nullptr) return std::nullopt;
  TakenSnapshot taken;
  taken.metrics = starting_metrics_;
  auto sync_start = std::chrono::steady_clock::now();
  std::vector<AsyncSnapshot>& snapshots = taken.snapshots;
  try {
    for (auto& ctx : contexts_) {
      ctx->checkpoint_timestamp = barrier.timestamp;
      ctx->checkpoint_id = barrier.id;
      ctx->savepoint = barrier.savepoint;
    }
    for (auto& op : operators_) op->PrepareSnapshotPreBarrier(barrier.id);
    CheckpointBarrier forwarded = barrier;
    forwarded.unaligned = overtaking;
    std::string event = forwarded.Encode();
    if (overtaking) {
      std::vector<std::string> overtaken;
      for (RecordWriter* w : writers_) {
        w->BroadcastOvertakingEvent(event, &overtaken);
        for (int c = 0; c < w->NumChannels(); ++c) {
          std::string& data = overtaken[static_cast<size_t>(c)];
          if (data.empty()) continue;
          std::string entry = InFlightHeader(w->Partition().Id(), c);
          entry += data;
          taken.output_in_flight.push_back(std::move(entry));
        }
        overtaken.clear();
      }
    } else {
      for (RecordWriter* w : writers_) w->BroadcastEvent(event);
    }
    for (auto& op : operators_) snapshots.push_back(op->SnapshotState(barrier.id));
  } catch (const OperatorException& e) {
    // The checkpoint fails; the job goes on (the coordinator counts failures).
    responder_->DeclineCheckpoint(tdd_.ExecutionId(), barrier.id,
                                  Status::FailedPrecondition(fmt::format("operator '{}' ({}) could not snapshot its "
                                                                         "state: {}",
                                                                         e.OperatorName(), Describe(), e.what())));
    return std::nullopt;
  }
  if (barrier.terminate) terminate_id_ = barrier.id;
  taken.sync_end = std::chrono::steady_clock::now();
  taken.metrics.sync_ms = std::chrono::duration_cast<std::chrono::milliseconds>(taken.sync_end - sync_start).count();
  return taken;
}

void StreamTask::SubmitSnapshots(const CheckpointBarrier& barrier, TakenSnapshot taken) {
  std::string file = fmt::format("{}-{}-{}.state", tdd_.vertex, tdd_.subtask, tdd_.attempt);
  snapshots_.Submit([responder = responder_, execution = tdd_.ExecutionId(), barrier, file,
                     snapshots = std::move(taken.snapshots), input = std::move(taken.input_in_flight),
                     output = std::move(taken.output_in_flight), metrics = taken.metrics,
                     sync_end = taken.sync_end]() mutable {
    // Checkpoints may hold incremental keyed state in the job's shared
    // directory; savepoints are self-contained.
    TaskStateWriter writer(barrier.directory, file, static_cast<int>(snapshots.size()),
                           barrier.savepoint ? std::string() : SharedDirectoryOf(barrier.directory));
    Status s;
    for (size_t i = 0; i < snapshots.size() && s.IsOk(); ++i) {
      writer.BeginOperator(static_cast<int>(i));
      if (snapshots[i]) {
        try {
          s = snapshots[i](writer);
        } catch (const std::exception& e) {
          s = Status::Internal(std::string("writing the snapshot failed: ") + e.what());
        }
      }
    }
    if (s.IsOk() && !input.empty()) {
      writer.BeginOperator(0);
      s = writer.AddOperatorState(kInFlightInput, OperatorStateMode::kChannel, input);
    }
    if (s.IsOk() && !output.empty()) {
      writer.BeginOperator(0);
      s = writer.AddOperatorState(kInFlightOutput, OperatorStateMode::kChannel, output);
    }
    if (!s.IsOk()) {
      responder->DeclineCheckpoint(execution, barrier.id, std::move(s));
      return;
    }
    freshet::Result<TaskStateSnapshot> written = writer.Finish();
    if (!written.IsOk()) {
      responder->DeclineCheckpoint(execution, barrier.id, written.GetStatus());
      return;
    }
    metrics.async_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sync_end).count();
    written->metrics = metrics;
    responder->AcknowledgeCheckpoint(execution, barrier.id, std::move(*written));
  });
}

void StreamTask::OnCheckpointComplete(CheckpointId id) {
  for (auto& ctx : contexts_) {
    for (const auto& listener : ctx->checkpoint_complete_listeners) listener(id);
  }
  for (auto it = operators_.rbegin(); it != operators_.rend(); ++it) (*it)->NotifyCheckpointComplete(id);
  if (terminate_id_ >= 0 && id >= terminate_id_) terminate_confirmed_ = true;
}

void StreamTask::OnCheckpointAborted(CheckpointId id) {
  if (pending_barrier_ && pending_barrier_->id <= id) CancelAlignment();
  if (recording_ && recording_->barrier.id <= id) AbandonRecording();
  last_barrier_id_ = std::max(last_barrier_id_, id);
  for (auto it = operators_.rbegin(); it != operators_.rend(); ++it) (*it)->NotifyCheckpointAborted(id);
  if (terminate_id_ == id) terminate_id_ = -1;  // the stop failed: the job goes on
}

void SnapshotWorker::Submit(std::function<void()> job) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  cv_.notify_one();
}

void SnapshotWorker::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void SnapshotWorker::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

void StreamTask::CloseOperators() noexcept {
  for (size_t i = 0; i < operators_.size(); ++i) {
    if (!opened_[i]) continue;
    opened_[i] = false;
    try {
      operators_[i]->Close();
    } catch (...) {
      // Close runs after the outcome is decided; a failing close does not change it.
    }
  }
}

void StreamTask::FlushOutputs() {
  for (RecordWriter* w : writers_) w->FlushAll();
  last_flush_ns_ = clock_.MonotonicNanos();
}

void StreamTask::MaybeFlush() {
  if (buffer_timeout_ns_ < 0 || writers_.empty()) return;
  if (buffer_timeout_ns_ == 0) {
    FlushOutputs();
    return;
  }
  int64_t now = clock_.MonotonicNanos();
  if (now - last_flush_ns_ >= buffer_timeout_ns_) FlushOutputs();
}

void StreamTask::SetUpMetrics() {
  if (metric_group_ == nullptr) metric_group_ = std::make_unique<TaskMetricGroup>(nullptr, TaskScope{});
  io_metrics_ = &metric_group_->Io();
  // Read by the reporters: the partitions are shared, so the source stays
  // valid however long the group is read.
  io_metrics_->SetBackPressureSource([produced = produced_] {
    int64_t ns = 0;
    for (const auto& p : produced) ns += p->Pool().BackPressuredNanos();
    return ns;
  });
}

void StreamTask::PublishMetrics() {
  int64_t records_in = 0;
  Timestamp watermark = kMaxWatermark;
  for (size_t i = 0; i < processors_.size(); ++i) {
    if (processors_[i] == nullptr) continue;
    records_in += processors_[i]->RecordsIn();
    watermark = std::min(watermark, watermark_handler_->Current(static_cast<int>(i)));
  }
  int64_t records_out = 0;
  for (RecordWriter* w : writers_) records_out += w->RecordsOut();
  io_metrics_->Publish(records_in, records_out);
  if (watermark_handler_ != nullptr) io_metrics_->SetInputWatermark(watermark);
}

void StreamTask::WaitForInput(int64_t timeout_ns) {
  io_metrics_->BeginIdle();
  mailbox_.Wait(timeout_ns);
  io_metrics_->EndIdle();
}

void TaskProcessingTimeService::RegisterTimer(Timestamp time, std::function<void(Timestamp)> callback) {
  queue_.Add(time, std::move(callback));
}

void TaskProcessingTimeService::FireDue() {
  // A timer for t fires once the clock has passed t: records that arrive
  // during millisecond t still belong to a window ending at t + 1, and
  // firing at t would let them reopen it and fire it a second time.
  queue_.RunDue(clock_.NowMillis() - 1);
}

int64_t TaskProcessingTimeService::NanosUntilNext() const {
  if (queue_.Empty()) return -1;
  int64_t ms = queue_.NextTime() + 1 - clock_.NowMillis();
  return ms <= 0 ? 0 : ms * 1'000'000;
}

std::shared_ptr<ResultPartition> ShuffleEnvironment::CreatePartition(const PartitionId& id, int num_subpartitions,
                                                                     const ExecutionOptions& options) {
  int buffers = num_subpartitions * options.buffers_per_channel + options.floating_buffers;
  auto p = std::make_shared<ResultPartition>(id, num_subpartitions, static_cast<size_t>(options.segment_size), buffers);
  std::lock_guard lock(mu_);
  partitions_[id.Key()] = p;
  return p;
}

std::shared_ptr<ResultPartition> ShuffleEnvironment::Find(const PartitionId& id) {
  std::lock_guard lock(mu_);
  auto it = partitions_.find(id.Key());
  return it == partitions_.end() ? nullptr : it->second;
}

void ShuffleEnvironment::ReleaseJob(const std::string& job_id) {
  std::lock_guard lock(mu_);
  std::string prefix = job_id + "/";
  for (auto it = partitions_.begin(); it != partitions_.end();) {
    it = it->first.starts_with(prefix) ? partitions_.erase(it) : std::next(it);
  }
}

void ShuffleEnvironment::CancelJob(const std::string& job_id) {
  std::lock_guard lock(mu_);
  std::string prefix = job_id + "/";
  for (auto& [key, p] : partitions_) {
    if (key.starts_with(prefix)) p->Cancel();
  }
}

}  // namespace freshet::internal
