#include "cluster/job_master.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace freshet::internal {

JobMaster::JobMaster(std::shared_ptr<const JobGraph> job, std::vector<TaskExecutorGateway*> executors, Clock& clock)
    : job_(std::move(job)), executors_(std::move(executors)), clock_(clock) {
  result_.job_id = job_->job_id;
  result_.job_name = job_->stream_graph->job_name;
  const ExecutionOptions& options = job_->stream_graph->options;
  coordinator_ = std::make_unique<CheckpointCoordinator>(job_, options.checkpoint, *this, clock_,
                                                         [this](Status s) { OnCheckpointFailure(std::move(s)); });
  restart_strategy_ = RestartStrategy::Create(options.restart, options.checkpoint.Enabled());
}

JobMaster::JobMaster(std::shared_ptr<const JobGraph> job, ExecutorProvider provider, Clock& clock)
    : JobMaster(std::move(job), provider(), clock) {
  provider_ = std::move(provider);
}

JobMaster::JobMaster(std::shared_ptr<const JobGraph> job, std::vector<TaskExecutorGateway*> executors,
                     ExecutorProvider provider, Clock& clock)
    : JobMaster(std::move(job), std::move(executors), clock) {
  provider_ = std::move(provider);
}

JobMaster::~JobMaster() {
  {
    std::lock_guard lock(mu_);
    stop_timer_ = true;
    timer_cv_.notify_all();
  }
  if (timer_thread_.joinable()) timer_thread_.join();
}

std::vector<OperatorRestoreRefs> RestoreRefsForTask(const JobGraph& job, const JobVertex& vertex, int subtask,
                                                    const CheckpointMetadata& metadata) {
  std::vector<OperatorRestoreRefs> refs;
  for (int node : vertex.chain) {
    const OperatorStateHandle* h = metadata.FindOperator(OperatorIdOf(job.stream_graph->Node(node)));
    refs.push_back(h != nullptr ? AssignRestore(*h, subtask, vertex.parallelism) : OperatorRestoreRefs{});
  }
  return refs;
}

int JobMaster::RequiredSlots(const JobGraph& job) {
  std::map<std::string, int> widest;
  for (const JobVertex& v : job.vertices) widest[v.slot_sharing_group] = std::max(widest[v.slot_sharing_group], v.parallelism);
  int total = 0;
  for (const auto& [group, width] : widest) total += width;
  return total;
}

Status JobMaster::Start() {
  const StreamGraph& g = *job_->stream_graph;
  int needed = RequiredSlots(*job_);
  if (needed > TotalSlots()) {
    return Status::Unavailable(fmt::format("the job needs {} slots, the cluster offers {}", needed, TotalSlots()));
  }
  const RestoreOptions& restore = g.options.restore;
  if (!restore.path.empty()) {
    std::string dir = restore.path;
    if (std::filesystem::path(dir).filename() == "_metadata") dir = std::filesystem::path(dir).parent_path().string();
    FRESHET_ASSIGN_OR_RETURN(CheckpointMetadata md, ReadMetadata(dir));
    Status verified = VerifyCheckpoint(dir, md);
    if (!verified.IsOk()) {
      return Status(verified.Code(), fmt::format("cannot restore from {}: {}", dir, verified.Message()));
    }
    std::vector<RestoreTarget> targets;
    for (const auto& [id, node] : g.nodes) {
      targets.push_back({OperatorIdOf(node), node.name, node.parallelism, node.max_parallelism});
    }
    Status compatible = CheckRestoreCompatibility(md, targets, restore.allow_non_restored_state);
    if (!compatible.IsOk()) {
      return Status(compatible.Code(), fmt::format("cannot restore from {}: {}", dir, compatible.Message()));
    }
    coordinator_->SetNextId(md.checkpoint_id + 1);
    restore_ = RestoreSource{dir, std::move(md)};
    result_.recovery_events.push_back(fmt::format("started from {} {} ({})",
                                                  restore_->metadata.savepoint ? "savepoint" : "checkpoint",
                                                  restore_->metadata.checkpoint_id, dir));
  }
  std::unique_lock lock(mu_);
  start_ = std::chrono::steady_clock::now();
  status_ = JobStatus::kRunning;
  Status s = DeployLocked(lock);
  if (!s.IsOk()) return s;
  timer_thread_ = std::thread([this] { TimerLoop(); });
  return Status::Ok();
}

Status JobMaster::DeployLocked(std::unique_lock<std::mutex>& lock) {
  const StreamGraph& g = *job_->stream_graph;
  // Slot sharing: group g owns slots [offset_g, offset_g + width_g).
  std::map<std::string, int> offsets;
  {
    std::map<std::string, int> widest;
    for (const JobVertex& v : job_->vertices) {
      widest[v.slot_sharing_group] = std::max(widest[v.slot_sharing_group], v.parallelism);
    }
    int offset = 0;
    for (const auto& [group, width] : widest) {
      offsets[group] = offset;
      offset += width;
    }
  }
  executions_.clear();
  execution_vertex_.clear();
  execution_ended_.clear();
  attempt_start_ = std::chrono::steady_clock::now();
  // Job slot s is slot s - (slots of the executors before it) of the
  // executor whose range holds s.
  std::vector<std::pair<TaskExecutorGateway*, int>> slots;
  for (TaskExecutorGateway* e : executors_) {
    for (int k = 0; k < e->NumSlots(); ++k) slots.emplace_back(e, k);
  }
  auto executor_of = [&](const JobVertex& v, int subtask) { return slots[offsets[v.slot_sharing_group] + subtask]; };
  {
    std::lock_guard placement_lock(placement_mu_);
    placement_.clear();
  }
  std::vector<std::string> ids;
  std::map<std::pair<int, int>, std::string> tasks;
  for (const JobVertex& v : job_->vertices) {
    for (int i = 0; i < v.parallelism; ++i) {
      TaskDeploymentDescriptor tdd;
      tdd.job_id = job_->job_id;
      tdd.vertex = v.id;
      tdd.subtask = i;
      tdd.parallelism = v.parallelism;
      tdd.max_parallelism = v.max_parallelism;
      tdd.attempt = attempt_;
      auto [executor, local_slot] = executor_of(v, i);
      tdd.slot = local_slot;
      tdd.key_groups = KeyGroupRangeForSubtask(i, v.parallelism, v.max_parallelism);
      for (int e : v.output_edges) {
        const JobVertex& consumer = job_->VertexOfNode(g.Edge(e).target);
        tdd.produced.push_back({e, PartitionId{job_->job_id, e, i}, consumer.parallelism});
      }
      for (int e : v.input_edges) {
        const StreamEdge& edge = g.Edge(e);
        const JobVertex& producer = job_->VertexOfNode(edge.source);
        InputGateDescriptor gate;
        gate.edge = e;
        gate.input_index = edge.target_input;
        for (int j = 0; j < producer.parallelism; ++j) {
          InputChannelDescriptor channel;
          channel.partition = PartitionId{job_->job_id, e, j};
          channel.subpartition = i;
          TaskExecutorGateway* producer_executor = executor_of(producer, j).first;
          if (producer_executor != executor) channel.producer_address = producer_executor->DataAddress();
          gate.channels.push_back(std::move(channel));
        }
        tdd.inputs.push_back(std::move(gate));
      }
      if (restore_) {
        tdd.restore_directory = restore_->directory;
        tdd.restore = RestoreRefsForTask(*job_, v, i, restore_->metadata);
      }
      std::string id = tdd.ExecutionId();
      {
        std::lock_guard placement_lock(placement_mu_);
        placement_[id] = executor;
      }
      Status s = executor->DeployTask(std::move(tdd), job_, this);
      if (!s.IsOk()) {
        // Tasks deployed so far have not started: cancelling them ends
        // them without a report.
        CancelAllLocked();
        executions_.clear();
        execution_vertex_.clear();
        if (s.Code() == StatusCode::kUnavailable && provider_ && status_ == JobStatus::kRunning) {
          // A TaskManager went away after it was chosen: like a task
          // failure, the restart strategy decides (the next attempt asks
          // for the executors again).
          FailLocked(s);
          if (status_ == JobStatus::kRunning) return Status::Ok();
          return failure_;
        }
        failure_ = s;
        status_ = JobStatus::kFailed;
        return s;
      }
      executions_[id] = ExecutionState::kCreated;
      execution_vertex_[id] = {v.id, i};
      tasks[{v.id, i}] = id;
      ids.push_back(std::move(id));
    }
  }
  running_ = static_cast<int>(ids.size());
  for (auto& [id, state] : executions_) state = ExecutionState::kRunning;
  initialized_.clear();
  start_problems_.clear();
  start_failures_.clear();
  start_problems_deadline_.reset();
  lock.unlock();
  coordinator_->StartAttempt(std::move(tasks));
  for (const std::string& id : ids) {
    if (TaskExecutorGateway* e = ExecutorOf(id)) e->StartTask(id);
  }
  lock.lock();
  return Status::Ok();
}

void JobMaster::CancelAllLocked() {
  for (const auto& [id, state] : executions_) {
    if (state == ExecutionState::kRunning || state == ExecutionState::kCreated) {
      if (TaskExecutorGateway* e = ExecutorOf(id)) e->CancelTask(id);
    }
  }
}

void JobMaster::Cancel() {
  std::lock_guard lock(mu_);
  if (status_ != JobStatus::kRunning && status_ != JobStatus::kCreated) return;
  status_ = JobStatus::kCanceling;
  restarting_ = false;
  restart_at_.reset();
  CancelAllLocked();
  if (running_ == 0) {
    status_ = JobStatus::kCanceled;
    end_ = std::chrono::steady_clock::now();
    coordinator_->Shutdown(!job_->stream_graph->options.checkpoint.retain_on_cancellation);
    done_cv_.notify_all();
  }
}

JobStatus JobMaster::GetStatus() const {
  std::lock_guard lock(mu_);
  if (status_ == JobStatus::kRunning && restarting_) return JobStatus::kRestarting;
  return status_;
}

void JobMaster::FailLocked(Status failure) {
  if (status_ != JobStatus::kRunning) return;
  if (!restarting_ && failure.Code() != StatusCode::kFailedPrecondition) {
    if (std::optional<int64_t> delay = restart_strategy_->OnFailure(clock_.MonotonicNanos() / 1'000'000)) {
      spdlog::warn("job {}: {}; restarting in {} ms ({})", job_->job_id, failure.Message(), *delay,
                   restart_strategy_->Describe());
      result_.recovery_events.push_back(fmt::format("failure: {}", failure.Message()));
      restarting_ = true;
      failure_ = std::move(failure);
      restart_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(*delay);
      CancelAllLocked();
      // Checkpoints in flight cannot complete any more.
      coordinator_->StopAttempt(Status::Cancelled("the job is restarting"));
      return;
    }
    failure = Status(failure.Code(), fmt::format("{} ({})", failure.Message(), restart_strategy_->ExhaustedReason()));
  }
  restarting_ = false;
  restart_at_.reset();
  failure_ = std::move(failure);
  status_ = JobStatus::kFailed;
  CancelAllLocked();
  coordinator_->StopAttempt(Status::Cancelled("the job failed"));
}

void JobMaster::OnTaskTerminated(const std::string& execution_id, ExecutionState state, Status status,
                                 TaskResult result) {
  coordinator_->TaskEnded(execution_id);
  std::lock_guard lock(mu_);
  auto it = executions_.find(execution_id);
  if (it == executions_.end()) return;
  it->second = state;
  execution_ended_[execution_id] = std::chrono::steady_clock::now();
  --running_;
  result_.records_in += result.records_out;
  result_.records_out += result.records_in;
  for (const auto& [name, value] : result.counters) result_.counters[name] += value;
  for (auto& [name, bytes] : result.accumulators) {
    accumulators_[name][execution_vertex_[execution_id]] = std::move(bytes);
  }
  if (state == ExecutionState::kFailed && !restarting_ && status_ == JobStatus::kRunning &&
      status.Code() == StatusCode::kFailedPrecondition && initialized_.count(execution_id) == 0) {
    // Could not start (restored state that does not match): wait for the
    // other tasks to start or fail too, and report every problem at once.
    const std::string& message = status.Message();
    bool listed = false;
    for (size_t at = message.find("\n  - "); at != std::string::npos; at = message.find("\n  - ", at + 1)) {
      size_t end = message.find("\n  - ", at + 1);
      std::string line = message.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
      listed = true;
      if (std::find(start_problems_.begin(), start_problems_.end(), line) == start_problems_.end()) {
        start_problems_.push_back(std::move(line));
      }
    }
    if (!listed && std::find(start_problems_.begin(), start_problems_.end(), message) == start_problems_.end()) {
      start_problems_.push_back(message);
    }
    start_failures_.push_back(execution_id);
    if (!start_problems_deadline_) {
      start_problems_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      timer_cv_.notify_all();
    }
    MaybeFailForStartProblemsLocked();
  } else if (state == ExecutionState::kFailed && !restarting_ && status_ == JobStatus::kRunning) {
    FailLocked(std::move(status));
  } else if (state == ExecutionState::kFailed && status_ == JobStatus::kCanceling && failure_.IsOk()) {
    failure_ = std::move(status);
  }
  if (running_ > 0) return;
  if (restarting_) {
    timer_cv_.notify_all();  // the timer thread redeploys at restart_at_
    return;
  }
  end_ = std::chrono::steady_clock::now();
  if (status_ == JobStatus::kRunning) status_ = JobStatus::kFinished;
  if (status_ == JobStatus::kCanceling) status_ = JobStatus::kCanceled;
  bool delete_checkpoints = status_ == JobStatus::kFinished ||
                            (status_ == JobStatus::kCanceled &&
                             !job_->stream_graph->options.checkpoint.retain_on_cancellation);
  coordinator_->Shutdown(delete_checkpoints);
  done_cv_.notify_all();
}

std::optional<JobMaster::RestoreSource> JobMaster::LatestValidCheckpoint() {
  for (const CompletedCheckpoint& c : coordinator_->Completed()) {
    Result<CheckpointMetadata> md = ReadMetadata(c.directory);
    Status s = md.IsOk() ? VerifyCheckpoint(c.directory, *md) : md.GetStatus();
    if (s.IsOk()) return RestoreSource{c.directory, std::move(*md)};
    std::string event = fmt::format("{} {} at {} is damaged ({}); trying an older one",
                                    c.savepoint ? "savepoint" : "checkpoint", c.id, c.directory, s.Message());
    spdlog::warn("job {}: {}", job_->job_id, event);
    std::lock_guard lock(mu_);
    result_.recovery_events.push_back(std::move(event));
  }
  return std::nullopt;
}

void JobMaster::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stop_timer_) {
    auto now = std::chrono::steady_clock::now();
    if (restart_at_ && running_ == 0 && now >= *restart_at_) {
      restart_at_.reset();
      lock.unlock();
      for (TaskExecutorGateway* e : executors_) e->ReleaseJob(job_->job_id);  // every task thread has ended
      bool had_checkpoints = !coordinator_->Completed().empty();
      std::optional<RestoreSource> latest = LatestValidCheckpoint();
      // Only this thread changes the executors once the job runs.
      std::optional<std::vector<TaskExecutorGateway*>> offered;
      if (provider_) offered = provider_();
      lock.lock();
      if (status_ != JobStatus::kRunning || !restarting_) continue;  // cancelled meanwhile
      if (!latest && had_checkpoints) {
        restarting_ = false;
        failure_ = Status::Corruption("no intact checkpoint is left to restore from; the job cannot recover");
        status_ = JobStatus::kFailed;
        end_ = std::chrono::steady_clock::now();
        done_cv_.notify_all();
        continue;
      }
      if (latest) restore_ = std::move(latest);
      ++attempt_;
      ++result_.restarts;
      result_.recovery_events.push_back(
          restore_ ? fmt::format("restarted (attempt {}) from {} {}", attempt_,
                                 restore_->metadata.savepoint ? "savepoint" : "checkpoint",
                                 restore_->metadata.checkpoint_id)
                   : fmt::format("restarted (attempt {}) from the beginning", attempt_));
      restarting_ = false;
      failure_ = Status::Ok();
      result_.records_in = result_.records_out = 0;
      result_.counters.clear();
      accumulators_.clear();
      if (offered) {
        executors_ = std::move(*offered);
        int needed = RequiredSlots(*job_);
        if (needed > TotalSlots()) {
          // Lost TaskManagers not replaced yet: wait for the next attempt.
          FailLocked(Status::Unavailable(
              fmt::format("not enough slots to restart: the job needs {}, the cluster offers {}", needed,
                          TotalSlots())));
          if (status_ == JobStatus::kFailed) {  // no restart left
            end_ = std::chrono::steady_clock::now();
            done_cv_.notify_all();
          }
          continue;
        }
      }
      Status s = DeployLocked(lock);
      if (!s.IsOk()) {
        end_ = std::chrono::steady_clock::now();
        done_cv_.notify_all();
      }
      continue;
    }
    Duration wait{50};
    if (status_ == JobStatus::kRunning && !restarting_) {
      lock.unlock();
      wait = coordinator_->Tick();
      lock.lock();
    }
    if (start_problems_deadline_ && std::chrono::steady_clock::now() >= *start_problems_deadline_) {
      MaybeFailForStartProblemsLocked();
    }
    auto deadline = std::chrono::steady_clock::now() + wait;
    if (start_problems_deadline_) deadline = std::min(deadline, *start_problems_deadline_);
    if (restart_at_ && running_ == 0) deadline = std::min(deadline, *restart_at_);
    timer_cv_.wait_until(lock, deadline);
  }
}

void JobMaster::OnCheckpointFailure(Status failure) {
  std::lock_guard lock(mu_);
  if (status_ != JobStatus::kRunning || restarting_) return;
  FailLocked(std::move(failure));
}

Result<std::string> JobMaster::TriggerSavepoint(const std::string& target, SavepointMode mode) {
  {
    std::lock_guard lock(mu_);
    if (status_ != JobStatus::kRunning || restarting_) {
      return Status::FailedPrecondition(fmt::format("job {} is {}; savepoints need a running job", job_->job_id,
                                                    JobStatusName(restarting_ ? JobStatus::kRestarting : status_)));
    }
  }
  return coordinator_->TriggerSavepoint(target, mode).get();
}

Result<CheckpointId> JobMaster::TriggerCheckpointNow(CheckpointType type) {
  {
    std::lock_guard lock(mu_);
    if (status_ != JobStatus::kRunning || restarting_) {
      return Status::FailedPrecondition(fmt::format("job {} is {}; checkpoints need a running job", job_->job_id,
                                                    JobStatusName(restarting_ ? JobStatus::kRestarting : status_)));
    }
  }
  // No lock held while waiting: the checkpoint completes on task callbacks.
  return coordinator_->RequestCheckpoint(type).get();
}

JobMaster::View JobMaster::Describe() const {
  View v;
  std::lock_guard lock(mu_);
  v.status = status_ == JobStatus::kRunning && restarting_ ? JobStatus::kRestarting : status_;
  v.attempt = attempt_;
  v.start = start_;
  bool terminal = running_ == 0 && !restarting_ &&
                  (status_ == JobStatus::kFinished || status_ == JobStatus::kFailed || status_ == JobStatus::kCanceled);
  if (terminal) v.end = end_;
  v.attempt_start = attempt_start_;
  if (!failure_.IsOk()) v.failure = failure_.Message();
  v.recovery_events = result_.recovery_events;
  v.restarts = result_.restarts;
  v.records_in = result_.records_in;
  v.records_out = result_.records_out;
  if (restore_) {
    v.restored_directory = restore_->directory;
    v.restored_id = restore_->metadata.checkpoint_id;
    v.restored_savepoint = restore_->metadata.savepoint;
  }
  for (const auto& [id, state] : executions_) {
    ExecutionView e;
    e.execution_id = id;
    auto where = execution_vertex_.find(id);
    if (where != execution_vertex_.end()) {
      e.vertex = where->second.first;
      e.subtask = where->second.second;
    }
    e.state = state;
    if (TaskExecutorGateway* executor = ExecutorOf(id)) e.executor = executor->Id();
    auto ended = execution_ended_.find(id);
    if (ended != execution_ended_.end()) e.ended = ended->second;
    v.executions.push_back(std::move(e));
  }
  return v;
}

std::vector<std::string> JobMaster::CompletedCheckpoints() const {
  std::vector<std::string> out;
  for (const CompletedCheckpoint& c : coordinator_->Completed()) out.push_back(c.directory);
  return out;
}

void JobMaster::AcknowledgeCheckpoint(const std::string& execution_id, CheckpointId id, TaskStateSnapshot state) {
  coordinator_->Acknowledge(execution_id, id, std::move(state));
}

void JobMaster::DeclineCheckpoint(const std::string& execution_id, CheckpointId id, Status reason) {
  coordinator_->Decline(execution_id, id, reason);
}

void JobMaster::ReportEndOfData(const std::string& execution_id) { coordinator_->ReportEndOfData(execution_id); }

void JobMaster::ReportInitialized(const std::string& execution_id) {
  std::lock_guard lock(mu_);
  if (executions_.count(execution_id) == 0) return;
  initialized_.insert(execution_id);
  MaybeFailForStartProblemsLocked();
}

void JobMaster::MaybeFailForStartProblemsLocked() {
  if (start_failures_.empty() || status_ != JobStatus::kRunning || restarting_) return;
  bool everyone = initialized_.size() + start_failures_.size() >= executions_.size();
  bool waited = start_problems_deadline_ && std::chrono::steady_clock::now() >= *start_problems_deadline_;
  if (!everyone && !waited) return;
  std::string message = fmt::format("the job cannot start: the restored state does not match it ({} {} in {} of {} "
                                    "tasks{}):",
                                    start_problems_.size(), start_problems_.size() == 1 ? "problem" : "problems",
                                    start_failures_.size(), executions_.size(),
                                    everyone ? "" : "; the others had not started after 10 s");
  for (const std::string& p : start_problems_) message += "\n  - " + p;
  start_problems_deadline_.reset();
  FailLocked(Status::FailedPrecondition(std::move(message)));
}

void JobMaster::TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) {
  if (TaskExecutorGateway* e = ExecutorOf(execution_id)) e->TriggerCheckpoint(execution_id, barrier);
}

void JobMaster::NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) {
  if (TaskExecutorGateway* e = ExecutorOf(execution_id)) e->NotifyCheckpointComplete(execution_id, id);
}

void JobMaster::NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) {
  if (TaskExecutorGateway* e = ExecutorOf(execution_id)) e->NotifyCheckpointAborted(execution_id, id);
}

void JobMaster::RequestDrain(const std::string& execution_id) {
  if (TaskExecutorGateway* e = ExecutorOf(execution_id)) e->RequestDrain(execution_id);
}

TaskExecutorGateway* JobMaster::ExecutorOf(const std::string& execution_id) const {
  std::lock_guard lock(placement_mu_);
  auto it = placement_.find(execution_id);
  return it == placement_.end() ? nullptr : it->second;
}

int JobMaster::TotalSlots() const {
  int total = 0;
  for (const TaskExecutorGateway* e : executors_) total += e->NumSlots();
  return total;
}

Result<JobExecutionResult> JobMaster::OutcomeLocked() const {
  if (status_ == JobStatus::kFailed) {
    return Status(failure_.Code(), fmt::format("job '{}' ({}) failed: {}", result_.job_name, result_.job_id,
                                               failure_.Message()));
  }
  if (status_ == JobStatus::kCanceled) {
    return Status::Cancelled(fmt::format("job '{}' ({}) was cancelled", result_.job_name, result_.job_id));
  }
  JobExecutionResult r = result_;
  r.net_runtime = std::chrono::duration_cast<Duration>(end_ - start_);
  r.checkpoints_completed = coordinator_->NumCompleted();
  r.checkpoints_failed = coordinator_->NumFailed();
  r.checkpoint_history = coordinator_->History();
  for (const auto& [name, parts] : accumulators_) {
    auto& out = r.accumulators[name];
    for (const auto& [where, bytes] : parts) out.push_back(bytes);
  }
  return r;
}

std::optional<Result<JobExecutionResult>> JobMaster::Wait(std::optional<Duration> timeout) {
  std::unique_lock lock(mu_);
  auto terminal = [this] {
    return running_ == 0 && !restarting_ &&
           (status_ == JobStatus::kFinished || status_ == JobStatus::kFailed || status_ == JobStatus::kCanceled);
  };
  if (timeout) {
    if (!done_cv_.wait_for(lock, *timeout, terminal)) return std::nullopt;
  } else {
    done_cv_.wait(lock, terminal);
  }
  return OutcomeLocked();
}

}  // namespace freshet::internal
