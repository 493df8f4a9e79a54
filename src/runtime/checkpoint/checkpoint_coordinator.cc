#include "runtime/checkpoint/checkpoint_coordinator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace freshet::internal {

namespace {

/// Deletes shared state files no retained checkpoint references; a file
/// already gone is fine, other failures are logged.
void RemoveSharedFiles(const std::vector<std::string>& files) {
  for (const std::string& f : files) {
    std::error_code ec;
    std::filesystem::remove(f, ec);
    if (ec) spdlog::warn("could not remove shared state file {}: {}", f, ec.message());
  }
}

}  // namespace

const char* CheckpointTypeName(CheckpointType type) {
  switch (type) {
    case CheckpointType::kConfigured:
      return "CONFIGURED";
    case CheckpointType::kFull:
      return "FULL";
    case CheckpointType::kIncremental:
      return "INCREMENTAL";
  }
  return "CONFIGURED";
}

std::string OperatorIdOf(const StreamNode& node) {
  if (!node.uid.empty()) return node.uid;
  return fmt::format("{}#{}", node.name, node.id);
}

CheckpointCoordinator::CheckpointCoordinator(std::shared_ptr<const JobGraph> job, CheckpointOptions options,
                                             CheckpointGateway& gateway, Clock& clock,
                                             std::function<void(Status)> on_failure)
    : job_(std::move(job)),
      options_(std::move(options)),
      gateway_(gateway),
      clock_(clock),
      on_failure_(std::move(on_failure)) {}

CheckpointCoordinator::~CheckpointCoordinator() {
  Actions actions;
  std::lock_guard lock(mu_);
  for (auto& [id, p] : pending_) {
    if (p.promise) p.promise->set_value(Status::Cancelled("the job ended before savepoint " + std::to_string(id) +
                                                          " completed"));
    if (p.requested) {
      p.requested->set_value(Status::Cancelled("the job ended before checkpoint " + std::to_string(id) +
                                               " completed"));
    }
  }
  pending_.clear();
  FailRequestsLocked(Status::Cancelled("the job ended before the requested checkpoint started"));
  if (drain_) drain_->second.set_value(Status::Cancelled("the job ended before the savepoint completed"));
  drain_.reset();
}

void CheckpointCoordinator::Run(Actions& actions) {
  for (auto& a : actions) a();
  actions.clear();
}

void CheckpointCoordinator::StartAttempt(std::map<std::pair<int, int>, std::string> tasks) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    std::vector<CheckpointId> ids;
    for (const auto& [id, p] : pending_) ids.push_back(id);
    for (CheckpointId id : ids) AbortLocked(id, Status::Cancelled("the job restarted"), false, actions);
    tasks_ = std::move(tasks);
    task_of_execution_.clear();
    sources_.clear();
    ended_sources_.clear();
    ended_tasks_.clear();
    for (const auto& [where, execution] : tasks_) {
      task_of_execution_[execution] = where;
      if (job_->vertices.at(static_cast<size_t>(where.first)).is_source) sources_.insert(execution);
    }
    running_ = true;
    final_triggered_ = false;
    auto now = std::chrono::steady_clock::now();
    next_trigger_ = now + std::chrono::milliseconds(options_.interval_ms);
    last_completion_ = now - std::chrono::hours(24);
  }
  Run(actions);
}

void CheckpointCoordinator::StopAttempt(const Status& reason) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    running_ = false;
    std::vector<CheckpointId> ids;
    for (const auto& [id, p] : pending_) ids.push_back(id);
    for (CheckpointId id : ids) AbortLocked(id, reason, false, actions);
    FailRequestsLocked(reason);
    if (drain_) {
      drain_->second.set_value(reason);
      drain_.reset();
    }
  }
  Run(actions);
}

void CheckpointCoordinator::SetNextId(CheckpointId id) {
  std::lock_guard lock(mu_);
  next_id_ = std::max(next_id_, id);
}

bool CheckpointCoordinator::CanTriggerLocked(std::chrono::steady_clock::time_point now) const {
  if (!running_ || !options_.Enabled() || final_triggered_ || drain_ || !ended_tasks_.empty()) return false;
  // Requests queued for a free slot go first.
  if (!requests_.empty() || PendingCheckpointsLocked() >= options_.max_concurrent) return false;
  if (now < next_trigger_) return false;
  return now - last_completion_ >= std::chrono::milliseconds(options_.min_pause_ms);
}

int CheckpointCoordinator::PendingCheckpointsLocked() const {
  int checkpoints = 0;
  for (const auto& [id, p] : pending_) checkpoints += p.barrier.savepoint ? 0 : 1;
  return checkpoints;
}

CheckpointId CheckpointCoordinator::TriggerLocked(bool savepoint, bool terminate, std::string directory,
                                                  std::optional<std::promise<Result<std::string>>> promise,
                                                  Actions& actions) {
  CheckpointId id = next_id_++;
  Pending p;
  p.barrier.id = id;
  p.barrier.timestamp = clock_.NowMillis();
  p.barrier.savepoint = savepoint;
  p.barrier.terminate = terminate;
  p.barrier.directory = directory.empty() ? CheckpointDirectory(options_.directory, job_->job_id, id) : directory;
  p.started = std::chrono::steady_clock::now();
  p.promise = std::move(promise);
  p.final = terminate;
  for (const auto& [execution, where] : task_of_execution_) p.waiting.insert(execution);
  CheckpointBarrier barrier = p.barrier;
  pending_.emplace(id, std::move(p));
  next_trigger_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.interval_ms);
  for (const std::string& source : sources_) {
    actions.push_back([this, source, barrier] { gateway_.TriggerCheckpoint(source, barrier); });
  }
  return id;
}

Status CheckpointCoordinator::CheckCheckpointRequestLocked(CheckpointType type) const {
  const std::string& job_id = job_->job_id;
  if (!running_) {
    return Status::FailedPrecondition(fmt::format("job {} is not running; checkpoints need a running job", job_id));
  }
  if (options_.directory.empty()) {
    return Status::FailedPrecondition(
        fmt::format("job {} has no checkpoint directory: set state.checkpoints.dir for the job to take checkpoints "
                    "(periodic checkpointing may stay off)",
                    job_id));
  }
  if (final_triggered_ || drain_) {
    return Status::FailedPrecondition(fmt::format("job {} is stopping; it takes no more checkpoints", job_id));
  }
  if (!ended_tasks_.empty()) {
    return Status::FailedPrecondition(fmt::format("task {} of job {} has finished; a checkpoint needs every task "
                                                  "running",
                                                  *ended_tasks_.begin(), job_id));
  }
  const StateBackendOptions& backend = job_->stream_graph->options.state_backend;
  bool incremental = backend.type == StateBackendOptions::Type::kRocksDB && backend.incremental;
  if (type == CheckpointType::kFull && incremental) {
    return Status::FailedPrecondition(
        fmt::format("job {} takes incremental checkpoints (state.backend.incremental: true) and cannot take a single "
                    "FULL one on request; request CONFIGURED, or take a savepoint for a self-contained snapshot",
                    job_id));
  }
  if (type == CheckpointType::kIncremental && !incremental) {
    return Status::FailedPrecondition(
        fmt::format("job {} takes full checkpoints; an INCREMENTAL one needs state.backend.type: rocksdb with "
                    "state.backend.incremental: true (request CONFIGURED or FULL)",
                    job_id));
  }
  return Status::Ok();
}

Status CheckpointCoordinator::CheckCheckpointRequest(CheckpointType type) const {
  std::lock_guard lock(mu_);
  return CheckCheckpointRequestLocked(type);
}

std::future<Result<CheckpointId>> CheckpointCoordinator::RequestCheckpoint(CheckpointType type) {
  std::promise<Result<CheckpointId>> promise;
  auto future = promise.get_future();
  Actions actions;
  {
    std::lock_guard lock(mu_);
    Status allowed = CheckCheckpointRequestLocked(type);
    if (!allowed.IsOk()) {
      promise.set_value(allowed);
      return future;
    }
    requests_.push_back({type, std::move(promise)});
    TriggerRequestedLocked(actions);
  }
  Run(actions);
  return future;
}

void CheckpointCoordinator::TriggerRequestedLocked(Actions& actions) {
  if (!running_ || final_triggered_ || drain_ || !ended_tasks_.empty()) return;
  while (!requests_.empty() && PendingCheckpointsLocked() < std::max(options_.max_concurrent, 1)) {
    CheckpointRequest request = std::move(requests_.front());
    requests_.pop_front();
    CheckpointId id = TriggerLocked(false, false, "", std::nullopt, actions);
    pending_.at(id).requested = std::move(request.promise);
    spdlog::info("job {}: checkpoint {} triggered on request ({})", job_->job_id, id, CheckpointTypeName(request.type));
  }
}

void CheckpointCoordinator::FailRequestsLocked(const Status& reason) {
  for (CheckpointRequest& request : requests_) request.promise.set_value(reason);
  requests_.clear();
}

Duration CheckpointCoordinator::Tick() {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    std::vector<CheckpointId> expired;
    for (const auto& [id, p] : pending_) {
      if (now - p.started >= std::chrono::milliseconds(options_.timeout_ms)) expired.push_back(id);
    }
    for (CheckpointId id : expired) {
      bool savepoint = pending_.at(id).barrier.savepoint;
      AbortLocked(id,
                  Status::Unavailable(fmt::format("{} {} expired before completing (timeout {} ms)",
                                                  savepoint ? "savepoint" : "checkpoint", id, options_.timeout_ms)),
                  !savepoint, actions);
    }
    bool all_ended = running_ && !sources_.empty() && ended_sources_.size() == sources_.size();
    if (all_ended && !final_triggered_) {
      // The final checkpoint subsumes the periodic ones still pending (not
      // a failure: their tasks would decline them on its barrier).
      std::vector<CheckpointId> subsumed;
      for (const auto& [id, p] : pending_) {
        if (!p.barrier.savepoint) subsumed.push_back(id);
      }
      for (CheckpointId id : subsumed) {
        AbortLocked(id, Status::Cancelled(fmt::format("checkpoint {} was subsumed by the final checkpoint", id)),
                    false, actions);
      }
      final_triggered_ = true;
      FailRequestsLocked(Status::FailedPrecondition(
          fmt::format("the sources of job {} have ended; it takes its final checkpoint and no other", job_->job_id)));
      if (drain_) {
        std::string dir = drain_->first;
        auto promise = std::move(drain_->second);
        drain_.reset();
        TriggerLocked(true, true, dir, std::move(promise), actions);
      } else {
        TriggerLocked(false, true, "", std::nullopt, actions);
      }
    } else {
      TriggerRequestedLocked(actions);
      if (CanTriggerLocked(now)) TriggerLocked(false, false, "", std::nullopt, actions);
    }
  }
  Run(actions);
  int64_t wait = options_.Enabled() ? std::min<int64_t>(options_.interval_ms, 50) : 50;
  return Duration(std::max<int64_t>(wait, 1));
}

void CheckpointCoordinator::Acknowledge(const std::string& execution_id, CheckpointId id, TaskStateSnapshot state) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // aborted, or from an earlier attempt
    Pending& p = it->second;
    if (p.waiting.erase(execution_id) == 0) return;
    std::pair<int, int> where = task_of_execution_.at(execution_id);
    CheckpointRecord::SubtaskAck ack{.vertex = where.first, .subtask = where.second, .ack_ms = clock_.NowMillis(),
                                     .metrics = state.metrics};
    for (const StateFileInfo& f : state.files) ack.state_size += static_cast<int64_t>(f.size);
    for (const OperatorSubtaskStateHandle& op : state.operators) {
      for (const auto& [name, list] : op.operator_state) {
        if (list.mode != OperatorStateMode::kChannel) continue;
        for (const BlockRef& b : list.entries) ack.in_flight_size += static_cast<int64_t>(b.length);
      }
    }
    p.acks.push_back(ack);
    p.states[where] = std::move(state);
    if (p.waiting.empty()) CompleteLocked(id, actions);
  }
  Run(actions);
}

void CheckpointCoordinator::Decline(const std::string& execution_id, CheckpointId id, const Status& reason) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end() || !it->second.waiting.contains(execution_id)) return;
    bool savepoint = it->second.barrier.savepoint;
    AbortLocked(id,
                Status(reason.Code(), fmt::format("{} {} was declined by task {}: {}",
                                                  savepoint ? "savepoint" : "checkpoint", id, execution_id,
                                                  reason.Message())),
                // A task declines with Cancelled a checkpoint a newer one
                // superseded: not a failure of checkpointing.
                !savepoint && reason.Code() != StatusCode::kCancelled, actions);
  }
  Run(actions);
}

void CheckpointCoordinator::TaskEnded(const std::string& execution_id) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    if (!task_of_execution_.contains(execution_id)) return;
    ended_tasks_.insert(execution_id);
    FailRequestsLocked(Status::FailedPrecondition("task " + execution_id +
                                                  " has finished; a checkpoint needs every task running"));
    std::vector<CheckpointId> waiting;
    for (const auto& [id, p] : pending_) {
      if (p.waiting.contains(execution_id)) waiting.push_back(id);
    }
    for (CheckpointId id : waiting) {
      AbortLocked(id, Status::FailedPrecondition("task " + execution_id + " ended before it took part"), false,
                  actions);
    }
  }
  Run(actions);
}

void CheckpointCoordinator::ReportEndOfData(const std::string& execution_id) {
  {
    std::lock_guard lock(mu_);
    if (!sources_.contains(execution_id)) return;
    ended_sources_.insert(execution_id);
  }
  Tick();  // triggers the final checkpoint once every source ended
}

std::future<Result<std::string>> CheckpointCoordinator::TriggerSavepoint(const std::string& target,
                                                                         SavepointMode mode) {
  std::promise<Result<std::string>> promise;
  auto future = promise.get_future();
  Actions actions;
  {
    std::lock_guard lock(mu_);
    if (!running_) {
      promise.set_value(Status::FailedPrecondition("the job is not running"));
      return future;
    }
    if (target.empty()) {
      promise.set_value(Status::InvalidArgument(
          "no savepoint directory: pass a target directory (or set state.savepoints.dir)"));
      return future;
    }
    if (drain_ || final_triggered_) {
      promise.set_value(Status::FailedPrecondition("the job is already stopping"));
      return future;
    }
    if (!ended_tasks_.empty()) {
      promise.set_value(Status::FailedPrecondition("task " + *ended_tasks_.begin() +
                                                   " has finished; a savepoint needs every task running"));
      return future;
    }
    Result<std::string> dir = CreateSavepointDirectory(target, job_->job_id, next_id_);
    if (!dir.IsOk()) {
      promise.set_value(dir.GetStatus());
      return future;
    }
    if (mode != SavepointMode::kSavepoint) {
      FailRequestsLocked(Status::FailedPrecondition("job " + job_->job_id + " is stopping with a savepoint"));
    }
    if (mode == SavepointMode::kStopDrain) {
      drain_.emplace(*dir, std::move(promise));
      for (const std::string& source : sources_) {
        actions.push_back([this, source] { gateway_.RequestDrain(source); });
      }
    } else {
      TriggerLocked(true, mode == SavepointMode::kStop, *dir, std::move(promise), actions);
      if (mode == SavepointMode::kStop) final_triggered_ = true;
    }
  }
  Run(actions);
  return future;
}

Result<CheckpointMetadata> CheckpointCoordinator::BuildMetadataLocked(const Pending& p) const {
  CheckpointMetadata md;
  md.job_id = job_->job_id;
  md.checkpoint_id = p.barrier.id;
  md.timestamp = p.barrier.timestamp;
  md.savepoint = p.barrier.savepoint;
  const StreamGraph& g = *job_->stream_graph;
  for (const JobVertex& v : job_->vertices) {
    for (size_t pos = 0; pos < v.chain.size(); ++pos) {
      const StreamNode& node = g.Node(v.chain[pos]);
      OperatorStateHandle h;
      h.operator_id = OperatorIdOf(node);
      h.name = node.name;
      h.parallelism = v.parallelism;
      h.max_parallelism = v.max_parallelism;
      h.subtasks.resize(static_cast<size_t>(v.parallelism));
      for (int s = 0; s < v.parallelism; ++s) {
        auto it = p.states.find({v.id, s});
        if (it == p.states.end()) return Status::Internal("missing acknowledgement of " + v.name);
        const TaskStateSnapshot& ts = it->second;
        if (pos < ts.operators.size()) h.subtasks[static_cast<size_t>(s)] = ts.operators[pos];
        if (h.state_info.empty() && pos < ts.state_info.size()) h.state_info = ts.state_info[pos];
      }
      md.operators.push_back(std::move(h));
    }
  }
  for (const auto& [where, ts] : p.states) {
    for (const StateFileInfo& f : ts.files) md.files.push_back(f);
  }
  return md;
}

void CheckpointCoordinator::CompleteLocked(CheckpointId id, Actions& actions) {
  Pending& p = pending_.at(id);
  Result<CheckpointMetadata> md = BuildMetadataLocked(p);
  // Shared files are referenced, not written, by most checkpoints: check
  // that each is still there before the checkpoint counts as complete.
  std::vector<std::string> shared_files;
  Status written = md.GetStatus();
  if (md.IsOk()) {
    for (const StateFileInfo& f : md->files) {
      if (!f.shared) continue;
      std::string path = (std::filesystem::path(p.barrier.directory) / f.file).lexically_normal().string();
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) {
        written = Status::NotFound("shared state file " + path + " is missing");
        break;
      }
      shared_files.push_back(std::move(path));
    }
  }
  if (written.IsOk()) written = WriteMetadata(p.barrier.directory, *md);
  if (!written.IsOk()) {
    AbortLocked(id, Status(written.Code(), "writing the metadata of checkpoint " + std::to_string(id) + ": " +
                                               written.Message()),
                !p.barrier.savepoint, actions);
    return;
  }
  CheckpointStats stats;
  stats.id = id;
  stats.savepoint = p.barrier.savepoint;
  stats.duration = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - p.started);
  for (const auto& [where, ts] : p.states) {
    for (const StateFileInfo& f : ts.files) stats.state_size += static_cast<int64_t>(f.size);
    for (const OperatorSubtaskStateHandle& op : ts.operators) {
      for (const auto& [name, list] : op.operator_state) {
        if (list.mode != OperatorStateMode::kChannel) continue;
        for (const BlockRef& b : list.entries) stats.in_flight_size += static_cast<int64_t>(b.length);
      }
    }
  }
  for (const CheckpointRecord::SubtaskAck& a : p.acks) {
    stats.max_start_delay = std::max(stats.max_start_delay, Duration(a.metrics.start_delay_ms));
    stats.max_alignment = std::max(stats.max_alignment, Duration(a.metrics.alignment_ms));
    stats.max_sync = std::max(stats.max_sync, Duration(a.metrics.sync_ms));
    stats.max_async = std::max(stats.max_async, Duration(a.metrics.async_ms));
    stats.processed_bytes += a.metrics.processed_bytes;
  }
  history_.push_back(stats);
  if (history_.size() > 1000) history_.pop_front();
  records_.push_back({.id = id, .savepoint = p.barrier.savepoint, .state = CheckpointRecord::State::kCompleted,
                      .trigger_ms = p.barrier.timestamp, .end_ms = clock_.NowMillis(),
                      .num_tasks = static_cast<int>(p.states.size()),
                      .num_acknowledged = static_cast<int>(p.states.size()),
                      .state_size = stats.state_size, .in_flight_size = stats.in_flight_size,
                      .directory = p.barrier.directory, .failure = {}, .acks = std::move(p.acks)});
  if (records_.size() > 100) records_.pop_front();
  CompletedCheckpoint done{id, p.barrier.directory, p.barrier.savepoint, std::move(shared_files)};
  shared_files_.Register(done.shared_files);
  auto promise = std::move(p.promise);
  auto requested = std::move(p.requested);
  pending_.erase(id);
  ++num_completed_;
  consecutive_failures_ = 0;
  last_completion_ = std::chrono::steady_clock::now();
  completed_.push_front(done);
  spdlog::info("job {}: {} {} complete ({})", job_->job_id, done.savepoint ? "savepoint" : "checkpoint", id,
               done.directory);
  // Older pending checkpoints are subsumed by this one.
  std::vector<CheckpointId> older;
  for (const auto& [other, q] : pending_) {
    if (other < id && !q.barrier.savepoint) older.push_back(other);
  }
  for (CheckpointId o : older) AbortLocked(o, Status::Cancelled("subsumed by checkpoint " + std::to_string(id)), false, actions);
  // Retention: keep the newest `num_retained` checkpoints; savepoints belong to the user.
  int kept = 0;
  for (auto it = completed_.begin(); it != completed_.end();) {
    if (it->savepoint) {
      ++it;
      continue;
    }
    if (++kept <= options_.num_retained) {
      ++it;
      continue;
    }
    std::string dir = it->directory;
    std::vector<std::string> unused = shared_files_.Release(it->shared_files);
    actions.push_back([dir, unused = std::move(unused)] {
      Status s = DisposeCheckpoint(dir);
      if (!s.IsOk()) spdlog::warn("could not remove checkpoint {}: {}", dir, s.ToString());
      RemoveSharedFiles(unused);
    });
    it = completed_.erase(it);
  }
  for (const auto& [execution, where] : task_of_execution_) {
    actions.push_back([this, execution, id] { gateway_.NotifyCheckpointComplete(execution, id); });
  }
  if (promise) promise->set_value(done.directory);
  if (requested) requested->set_value(id);
}

void CheckpointCoordinator::AbortLocked(CheckpointId id, const Status& reason, bool count_failure,
                                        Actions& actions) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.final) final_triggered_ = false;  // the final checkpoint is tried again
  spdlog::warn("job {}: {} {} aborted: {}", job_->job_id, p.barrier.savepoint ? "savepoint" : "checkpoint", id,
               reason.Message());
  ++num_aborted_;
  records_.push_back({.id = id, .savepoint = p.barrier.savepoint, .state = CheckpointRecord::State::kFailed,
                      .trigger_ms = p.barrier.timestamp, .end_ms = clock_.NowMillis(),
                      .num_tasks = static_cast<int>(p.states.size() + p.waiting.size()),
                      .num_acknowledged = static_cast<int>(p.states.size()), .state_size = 0,
                      .in_flight_size = 0, .directory = p.barrier.directory, .failure = reason.Message(),
                      .acks = std::move(p.acks)});
  if (records_.size() > 100) records_.pop_front();
  std::string dir = p.barrier.directory;
  // Shared files uploaded for this checkpoint that no retained one
  // references.
  std::vector<std::string> uploaded;
  for (const auto& [where, ts] : p.states) {
    for (const StateFileInfo& f : ts.files) {
      if (!f.shared) continue;
      std::string path = (std::filesystem::path(dir) / f.file).lexically_normal().string();
      if (!shared_files_.Referenced(path)) uploaded.push_back(std::move(path));
    }
  }
  actions.push_back([dir, uploaded = std::move(uploaded)] {
    (void)DisposeCheckpoint(dir);
    RemoveSharedFiles(uploaded);
  });
  if (running_) {
    for (const auto& [execution, where] : task_of_execution_) {
      actions.push_back([this, execution, id] { gateway_.NotifyCheckpointAborted(execution, id); });
    }
  }
  if (p.promise) p.promise->set_value(reason);
  if (p.requested) p.requested->set_value(reason);
  if (!count_failure) return;
  ++num_failed_;
  if (++consecutive_failures_ > options_.tolerable_failures) {
    Status failure(reason.Code(), fmt::format("exceeded the number of tolerable failed checkpoints ({}); last "
                                              "failure: {}",
                                              options_.tolerable_failures, reason.Message()));
    consecutive_failures_ = 0;
    actions.push_back([this, failure] { on_failure_(failure); });
  }
}

std::vector<CompletedCheckpoint> CheckpointCoordinator::Completed() const {
  std::lock_guard lock(mu_);
  return {completed_.begin(), completed_.end()};
}

int64_t CheckpointCoordinator::NumCompleted() const {
  std::lock_guard lock(mu_);
  return num_completed_;
}

std::vector<CheckpointStats> CheckpointCoordinator::History() const {
  std::lock_guard lock(mu_);
  return {history_.begin(), history_.end()};
}

std::vector<CheckpointRecord> CheckpointCoordinator::Records() const {
  std::lock_guard lock(mu_);
  std::vector<CheckpointRecord> out;
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    const Pending& p = it->second;
    out.push_back({.id = it->first, .savepoint = p.barrier.savepoint, .state = CheckpointRecord::State::kInProgress,
                   .trigger_ms = p.barrier.timestamp, .end_ms = 0,
                   .num_tasks = static_cast<int>(p.states.size() + p.waiting.size()),
                   .num_acknowledged = static_cast<int>(p.states.size()), .state_size = 0, .in_flight_size = 0,
                   .directory = p.barrier.directory, .failure = {}, .acks = p.acks});
  }
  out.insert(out.end(), records_.rbegin(), records_.rend());
  return out;
}

CheckpointCoordinator::Summary CheckpointCoordinator::Summarize() const {
  std::lock_guard lock(mu_);
  Summary s;
  s.in_progress = static_cast<int>(pending_.size());
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    if (it->state != CheckpointRecord::State::kCompleted) continue;
    s.last_duration_ms = std::max<int64_t>(0, it->end_ms - it->trigger_ms);
    s.last_state_size = it->state_size;
    break;
  }
  return s;
}

int64_t CheckpointCoordinator::NumAborted() const {
  std::lock_guard lock(mu_);
  return num_aborted_;
}

int64_t CheckpointCoordinator::NumFailed() const {
  std::lock_guard lock(mu_);
  return num_failed_;
}

void CheckpointCoordinator::Shutdown(bool delete_checkpoints) {
  std::vector<std::string> dirs;
  std::vector<std::string> shared;
  Actions actions;
  std::vector<std::string> orphans;
  {
    std::lock_guard lock(mu_);
    running_ = false;
    FailRequestsLocked(Status::Cancelled("the job ended before the requested checkpoint completed"));
    // Checkpoints in flight end with the job: their callers (a savepoint's,
    // a checkpoint on request's) learn it, and the files their tasks
    // uploaded go (AbortLocked keeps what a retained checkpoint shares).
    std::vector<CheckpointId> ids;
    for (const auto& [id, p] : pending_) ids.push_back(id);
    for (CheckpointId id : ids) {
      bool savepoint = pending_.at(id).barrier.savepoint;
      AbortLocked(id,
                  Status::Cancelled(fmt::format("the job ended before {} {} completed",
                                                savepoint ? "savepoint" : "checkpoint", id)),
                  /*count_failure=*/false, actions);
    }
    if (drain_) {
      drain_->second.set_value(Status::Cancelled("the job ended before its sources drained for the savepoint"));
      drain_.reset();
    }
    if (delete_checkpoints) {
      for (const CompletedCheckpoint& c : completed_) {
        if (c.savepoint) continue;
        dirs.push_back(c.directory);
        std::vector<std::string> unused = shared_files_.Release(c.shared_files);
        shared.insert(shared.end(), unused.begin(), unused.end());
      }
      std::erase_if(completed_, [](const CompletedCheckpoint& c) { return !c.savepoint; });
    }
    // Files in this job's own shared directory that no retained checkpoint
    // references: uploads of tasks that were cancelled before they could
    // acknowledge. Every task has ended, so none is still being written.
    // Other jobs' directories (a checkpoint this job was restored from) are
    // never swept.
    if (!options_.directory.empty()) {
      std::string own = SharedDirectoryOf(CheckpointDirectory(options_.directory, job_->job_id, 0));
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(own, ec)) {
        std::string path = entry.path().lexically_normal().string();
        if (entry.is_regular_file(ec) && !shared_files_.Referenced(path) &&
            std::find(shared.begin(), shared.end(), path) == shared.end()) {
          orphans.push_back(std::move(path));
        }
      }
    }
  }
  Run(actions);
  for (const std::string& d : dirs) (void)DisposeCheckpoint(d);
  RemoveSharedFiles(shared);
  RemoveSharedFiles(orphans);
}

}  // namespace freshet::internal
