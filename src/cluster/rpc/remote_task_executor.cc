#include "cluster/rpc/remote_task_executor.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "cluster/job_library.h"
#include "cluster/rpc/convert.h"
#include "cluster/rpc/metric_dump.h"
#include "common/logging.h"

namespace freshet::internal {

namespace pb = freshet::rpc;

namespace {
constexpr auto kDeployTimeout = std::chrono::seconds(60);  // the first task of a job fetches and loads its library
constexpr auto kCallTimeout = std::chrono::seconds(10);
}  // namespace

RemoteTaskExecutor::RemoteTaskExecutor(TaskManagerInfo info)
    : info_(std::move(info)), free_memory_(info_.resources.free_memory) {
  stub_ = pb::TaskManagerService::NewStub(grpc::CreateChannel(info_.rpc_address, grpc::InsecureChannelCredentials()));
  thread_ = std::thread([this] { Loop(); });
}

RemoteTaskExecutor::~RemoteTaskExecutor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status RemoteTaskExecutor::DeployTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job,
                                      TaskStateListener* listener) {
  if (job->artifact == nullptr) {
    return Status::FailedPrecondition(
        fmt::format("job {} was not submitted as a job library, so TaskManager {} cannot rebuild it", job->job_id,
                    info_.resource_id));
  }
  pb::DeployTaskRequest req;
  pb::JobArtifactProto* artifact = req.mutable_job();
  artifact->set_job_id(job->job_id);
  artifact->set_library_checksum(job->artifact->library_checksum);
  artifact->set_library_name(job->artifact->library_name);
  for (const std::string& a : job->artifact->args) artifact->add_args(a);
  for (const auto& [k, v] : job->artifact->config) (*artifact->mutable_config())[k] = v;
  std::string execution_id = tdd.ExecutionId();
  {
    std::lock_guard lock(mu_);
    if (lost_) return Status::Unavailable(fmt::format("TaskManager {} is lost", info_.resource_id));
    auto it = fingerprints_.find(job->job_id);
    if (it == fingerprints_.end()) it = fingerprints_.emplace(job->job_id, GraphFingerprint(*job)).first;
    artifact->set_graph_fingerprint(it->second);
    // Registered before the call: the task may report before it returns.
    executions_[execution_id] = listener;
  }
  *req.mutable_task() = rpc::ToProto(tdd);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeployTimeout);
  pb::StatusProto out;
  grpc::Status s = stub_->DeployTask(&context, req, &out);
  Status result = s.ok() ? rpc::FromProto(out)
                         : Status::Unavailable(fmt::format("cannot deploy {} to TaskManager {} ({}): {}", execution_id,
                                                           info_.resource_id, info_.rpc_address, s.error_message()));
  if (!result.IsOk()) {
    std::lock_guard lock(mu_);
    executions_.erase(execution_id);
    // Unreachable: no new tasks go there; the heartbeat monitor decides
    // whether it is lost.
    if (!s.ok() && s.error_code() == grpc::StatusCode::UNAVAILABLE) unreachable_ = true;
    return Status(result.Code(), fmt::format("TaskManager {}: {}", info_.resource_id, result.Message()));
  }
  return Status::Ok();
}

namespace {

pb::ExecutionRequest Execution(const std::string& execution_id) {
  pb::ExecutionRequest req;
  req.set_execution_id(execution_id);
  return req;
}

pb::CheckpointNotification Notification(const std::string& execution_id, CheckpointId id, bool aborted) {
  pb::CheckpointNotification req;
  req.set_execution_id(execution_id);
  req.set_checkpoint_id(id);
  req.set_aborted(aborted);
  return req;
}

}  // namespace

template <class Request>
void RemoteTaskExecutor::Send(Request req,
                              grpc::Status (pb::TaskManagerService::Stub::*method)(grpc::ClientContext*, const Request&,
                                                                                   pb::Empty*)) {
  Enqueue([req = std::move(req), method](pb::TaskManagerService::Stub& stub) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    pb::Empty out;
    return (stub.*method)(&c, req, &out);
  });
}

void RemoteTaskExecutor::StartTask(const std::string& execution_id) {
  Send(Execution(execution_id), &pb::TaskManagerService::Stub::StartTask);
}

void RemoteTaskExecutor::CancelTask(const std::string& execution_id) {
  Send(Execution(execution_id), &pb::TaskManagerService::Stub::CancelTask);
}

void RemoteTaskExecutor::TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) {
  pb::TriggerCheckpointRequest req;
  req.set_execution_id(execution_id);
  req.set_barrier(barrier.Encode());
  Send(std::move(req), &pb::TaskManagerService::Stub::TriggerCheckpoint);
}

void RemoteTaskExecutor::NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) {
  Send(Notification(execution_id, id, false), &pb::TaskManagerService::Stub::NotifyCheckpoint);
}

void RemoteTaskExecutor::NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) {
  Send(Notification(execution_id, id, true), &pb::TaskManagerService::Stub::NotifyCheckpoint);
}

void RemoteTaskExecutor::RequestDrain(const std::string& execution_id) {
  Send(Execution(execution_id), &pb::TaskManagerService::Stub::RequestDrain);
}

void RemoteTaskExecutor::ReleaseJob(const std::string& job_id) {
  {
    std::unique_lock lock(mu_);
    listener_calls_cv_.wait(lock, [this] { return listener_calls_ == 0; });
    fingerprints_.erase(job_id);
    // Executions that never started (their attempt was cancelled during
    // deployment) have nothing more to report.
    std::erase_if(executions_, [&job_id](const auto& e) { return e.first.starts_with(job_id + "/"); });
    if (lost_ || unreachable_) return;
  }
  // Synchronous: the caller redeploys the job next, and the TaskManager
  // must have dropped the old attempt's partitions by then.
  pb::ReleaseJobRequest req;
  req.set_job_id(job_id);
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  pb::Empty out;
  grpc::Status s = stub_->ReleaseJob(&c, req, &out);
  if (!s.ok()) Log("jobmanager")->warn("TaskManager {}: release of job {} failed: {}", Id(), job_id, s.error_message());
}

RemoteTaskExecutor::ListenerCall::~ListenerCall() {
  if (listener_ == nullptr) return;
  {
    std::lock_guard lock(owner_.mu_);
    --owner_.listener_calls_;
  }
  owner_.listener_calls_cv_.notify_all();
}

RemoteTaskExecutor::ListenerCall RemoteTaskExecutor::ListenerOf(const std::string& execution_id) {
  std::lock_guard lock(mu_);
  auto it = executions_.find(execution_id);
  if (it == executions_.end()) return ListenerCall(*this, nullptr);
  ++listener_calls_;
  return ListenerCall(*this, it->second);
}

RemoteTaskExecutor::ListenerCall RemoteTaskExecutor::TakeListener(const std::string& execution_id) {
  std::lock_guard lock(mu_);
  auto it = executions_.find(execution_id);
  if (it == executions_.end()) return ListenerCall(*this, nullptr);
  TaskStateListener* listener = it->second;
  executions_.erase(it);
  ++listener_calls_;
  return ListenerCall(*this, listener);
}

void RemoteTaskExecutor::MarkLost(const std::string& reason) {
  std::map<std::string, TaskStateListener*> executions;
  {
    std::lock_guard lock(mu_);
    if (lost_) return;
    lost_ = true;
    ++listener_calls_;
    executions.swap(executions_);
    queue_.clear();
  }
  Log("jobmanager")->warn("TaskManager {} ({}) lost: {}; failing its {} tasks", info_.resource_id, info_.rpc_address,
                          reason, executions.size());
  for (const auto& [id, listener] : executions) {
    listener->OnTaskTerminated(id, ExecutionState::kFailed,
                               Status::Unavailable(fmt::format("TaskManager {} ({}) lost: {}", info_.resource_id,
                                                               info_.host, reason)),
                               TaskResult{});
  }
  {
    std::lock_guard lock(mu_);
    --listener_calls_;
  }
  listener_calls_cv_.notify_all();
}

void RemoteTaskExecutor::MarkReachable() {
  std::lock_guard lock(mu_);
  unreachable_ = false;
}

bool RemoteTaskExecutor::IsUsable() const {
  std::lock_guard lock(mu_);
  return !lost_ && !unreachable_;
}

bool RemoteTaskExecutor::IsLost() const {
  std::lock_guard lock(mu_);
  return lost_;
}

int RemoteTaskExecutor::LiveExecutions() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(executions_.size());
}

Result<std::vector<GroupReadings>> RemoteTaskExecutor::QueryMetrics(std::chrono::milliseconds timeout) const {
  if (IsLost()) return Status::Unavailable(fmt::format("TaskManager {} is lost", info_.resource_id));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::Empty req;
  pb::MetricDump out;
  grpc::Status s = stub_->QueryMetrics(&c, req, &out);
  if (!s.ok()) {
    return Status::Unavailable(fmt::format("cannot query the metrics of TaskManager {} ({}): {}", info_.resource_id,
                                           info_.rpc_address, s.error_message()));
  }
  return rpc::FromProto(out);
}

HostResources RemoteTaskExecutor::Resources() const {
  HostResources r = info_.resources;
  std::lock_guard lock(mu_);
  r.free_memory = free_memory_;
  return r;
}

Timestamp RemoteTaskExecutor::LastHeartbeatMillis() const {
  std::lock_guard lock(mu_);
  return last_heartbeat_ms_;
}

void RemoteTaskExecutor::OnHeartbeat(Timestamp now_ms, int64_t free_memory) {
  std::lock_guard lock(mu_);
  last_heartbeat_ms_ = now_ms;
  if (free_memory >= 0) free_memory_ = free_memory;
}

Result<std::vector<LogFileInfo>> RemoteTaskExecutor::ListLogs(std::chrono::milliseconds timeout) const {
  if (IsLost()) return Status::Unavailable(fmt::format("TaskManager {} is lost", info_.resource_id));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::Empty req;
  pb::LogList out;
  grpc::Status s = stub_->ListLogs(&c, req, &out);
  if (!s.ok()) {
    return Status::Unavailable(fmt::format("cannot list the log files of TaskManager {} ({}): {}", info_.resource_id,
                                           info_.rpc_address, s.error_message()));
  }
  std::vector<LogFileInfo> files;
  for (const pb::LogFileProto& f : out.files()) files.push_back({f.name(), f.size(), f.mtime_ms()});
  return files;
}

Result<std::string> RemoteTaskExecutor::ReadLog(const std::string& name, size_t max_bytes,
                                                std::chrono::milliseconds timeout) const {
  if (IsLost()) return Status::Unavailable(fmt::format("TaskManager {} is lost", info_.resource_id));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::ReadLogRequest req;
  req.set_name(name);
  req.set_max_bytes(static_cast<int64_t>(max_bytes));
  std::unique_ptr<grpc::ClientReader<pb::LogChunk>> reader = stub_->ReadLog(&c, req);
  std::string text;
  pb::LogChunk chunk;
  while (reader->Read(&chunk)) {
    if (text.size() + chunk.data().size() > max_bytes) {
      c.TryCancel();
      return Status::Internal(fmt::format("TaskManager {} sent more than the {} bytes of log asked for",
                                          info_.resource_id, max_bytes));
    }
    text += chunk.data();
  }
  grpc::Status s = reader->Finish();
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return Status::NotFound(s.error_message());
  if (!s.ok()) {
    return Status::Unavailable(fmt::format("cannot read log file of TaskManager {} ({}): {}", info_.resource_id,
                                           info_.rpc_address, s.error_message()));
  }
  return text;
}

void RemoteTaskExecutor::Enqueue(Call call) {
  {
    std::lock_guard lock(mu_);
    if (lost_ || stop_) return;
    queue_.push_back(std::move(call));
  }
  cv_.notify_one();
}

void RemoteTaskExecutor::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Call call = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    auto start = std::chrono::steady_clock::now();
    grpc::Status s = call(*stub_);
    if (!s.ok()) Log("jobmanager")->warn("TaskManager {}: call failed: {}", info_.resource_id, s.error_message());
    auto took = std::chrono::steady_clock::now() - start;
    if (took > std::chrono::seconds(1)) {
      Log("jobmanager")->warn("TaskManager {}: a call took {} ms", info_.resource_id,
                              std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
    }
    lock.lock();
  }
}

}  // namespace freshet::internal
