#include "cluster/rpc/job_manager_service.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "cluster/rpc/convert.h"
#include "common/logging.h"

namespace freshet::internal {

namespace pb = freshet::rpc;

class JobManagerRpcServer::Service final : public pb::JobManagerService::Service {
 public:
  explicit Service(JobManagerRpcServer& jm) : jm_(jm) {}

  grpc::Status RegisterTaskManager(grpc::ServerContext*, const pb::RegisterTaskManagerRequest* req,
                                   pb::RegisterTaskManagerResponse* resp) override {
    if (req->resource_id().empty() || req->rpc_address().empty() || req->data_address().empty() ||
        req->num_slots() < 1 || req->num_slots() > 4096) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          fmt::format("registration of '{}' is incomplete or has {} slots", req->resource_id(),
                                      req->num_slots()));
    }
    // The host's figures are for monitoring: nonsense is shown as unknown.
    HostResources host{.cpu_cores = std::max(req->cpu_cores(), 0),
                       .physical_memory = req->physical_memory() > 0 ? req->physical_memory() : -1,
                       .free_memory = req->free_memory() >= 0 ? req->free_memory() : -1};
    TaskManagerInfo info{req->resource_id(), req->host(), req->rpc_address(), req->data_address(),
                         req->num_slots(), req->pid(), host};
    auto executor = std::make_shared<RemoteTaskExecutor>(info);
    std::shared_ptr<RemoteTaskExecutor> replaced;
    std::string registration_id = fmt::format("{:016x}", std::random_device{}() * 0x9E3779B97F4A7C15ULL);
    std::function<void()> on_change;
    {
      std::lock_guard lock(jm_.mu_);
      auto it = jm_.task_managers_.find(info.resource_id);
      if (it != jm_.task_managers_.end()) {
        replaced = it->second.executor;
        jm_.lost_.push_back(replaced);
        jm_.order_.erase(std::find(jm_.order_.begin(), jm_.order_.end(), info.resource_id));
      }
      jm_.task_managers_[info.resource_id] = Registered{executor, registration_id, std::chrono::steady_clock::now()};
      jm_.order_.push_back(info.resource_id);
      on_change = jm_.on_change_;
    }
    // A TaskManager registering again under its id restarted: what ran on
    // its previous incarnation is gone.
    if (replaced) replaced->MarkLost("it registered again (restarted)");
    Log("jobmanager")->info("TaskManager {} registered: {} slots, RPC {}, data {}", info.resource_id, info.num_slots,
                            info.rpc_address, info.data_address);
    jm_.cv_.notify_all();
    if (on_change) on_change();
    resp->set_registration_id(registration_id);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const pb::TaskManagerHeartbeat* req,
                         pb::HeartbeatResponse* resp) override {
    std::shared_ptr<RemoteTaskExecutor> executor;
    {
      std::lock_guard lock(jm_.mu_);
      auto it = jm_.task_managers_.find(req->resource_id());
      if (it != jm_.task_managers_.end() && it->second.registration_id == req->registration_id()) {
        it->second.last_heartbeat = std::chrono::steady_clock::now();
        executor = it->second.executor;
      }
    }
    if (executor) {
      executor->MarkReachable();
      executor->OnHeartbeat(Clock::System().NowMillis(), req->free_memory());
    }
    resp->set_known(executor != nullptr);
    return grpc::Status::OK;
  }

  grpc::Status TaskTerminated(grpc::ServerContext*, const pb::TaskTerminatedRequest* req, pb::Empty*) override {
    auto executor = jm_.Find(req->resource_id());
    if (!executor) return Unknown(req->resource_id());
    if (RemoteTaskExecutor::ListenerCall listener = executor->TakeListener(req->execution_id())) {
      int state = req->state();
      if (state < static_cast<int>(ExecutionState::kCreated) || state > static_cast<int>(ExecutionState::kFailed)) {
        state = static_cast<int>(ExecutionState::kFailed);
      }
      listener->OnTaskTerminated(req->execution_id(), static_cast<ExecutionState>(state),
                                 rpc::FromProto(req->status()), rpc::FromProto(req->result()));
    }
    return grpc::Status::OK;
  }

  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext*, const pb::CheckpointAckRequest* req, pb::Empty*) override {
    auto executor = jm_.Find(req->resource_id());
    if (!executor) return Unknown(req->resource_id());
    RemoteTaskExecutor::ListenerCall listener = executor->ListenerOf(req->execution_id());
    if (!listener) return grpc::Status::OK;  // the execution ended meanwhile
    Result<TaskStateSnapshot> state = rpc::DecodeTaskState(req->state());
    if (!state.IsOk()) {
      listener->DeclineCheckpoint(req->execution_id(), req->checkpoint_id(), state.GetStatus());
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, state.GetStatus().Message());
    }
    state->metrics = rpc::FromProto(req->metrics());
    listener->AcknowledgeCheckpoint(req->execution_id(), req->checkpoint_id(), std::move(state).Value());
    return grpc::Status::OK;
  }

  grpc::Status DeclineCheckpoint(grpc::ServerContext*, const pb::CheckpointDeclineRequest* req, pb::Empty*) override {
    auto executor = jm_.Find(req->resource_id());
    if (!executor) return Unknown(req->resource_id());
    if (RemoteTaskExecutor::ListenerCall listener = executor->ListenerOf(req->execution_id())) {
      Status reason = rpc::FromProto(req->reason());
      if (reason.IsOk()) reason = Status::Internal("declined without a reason");
      listener->DeclineCheckpoint(req->execution_id(), req->checkpoint_id(), reason);
    }
    return grpc::Status::OK;
  }

  grpc::Status ReportExecutionEvent(grpc::ServerContext*, const pb::ExecutionEventRequest* req, pb::Empty*) override {
    auto executor = jm_.Find(req->resource_id());
    if (!executor) return Unknown(req->resource_id());
    if (RemoteTaskExecutor::ListenerCall listener = executor->ListenerOf(req->execution_id())) {
      if (req->kind() == pb::ExecutionEventRequest::END_OF_DATA) {
        listener->ReportEndOfData(req->execution_id());
      } else {
        listener->ReportInitialized(req->execution_id());
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status FetchLibrary(grpc::ServerContext*, const pb::FetchLibraryRequest* req,
                            grpc::ServerWriter<pb::LibraryChunk>* writer) override {
    std::string path;
    {
      std::lock_guard lock(jm_.mu_);
      auto it = jm_.libraries_.find(req->checksum());
      if (it == jm_.libraries_.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job library with checksum " + req->checksum());
      }
      path = it->second;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot read " + path);
    pb::LibraryChunk chunk;
    std::string buffer(1 << 20, '\0');
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      if (in.gcount() <= 0) break;
      chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
      if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "the TaskManager went away");
    }
    return grpc::Status::OK;
  }

 private:
  static grpc::Status Unknown(const std::string& resource_id) {
    // The TaskManager was dropped (e.g. heartbeat timeout): it must
    // register again; its reports concern executions already failed.
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "unknown TaskManager " + resource_id);
  }

  JobManagerRpcServer& jm_;
};

JobManagerRpcServer::JobManagerRpcServer(JobManagerRpcSettings settings)
    : settings_(std::move(settings)), service_(std::make_unique<Service>(*this)) {}

JobManagerRpcServer::~JobManagerRpcServer() { Stop(); }

Status JobManagerRpcServer::Start() {
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(fmt::format("{}:{}", settings_.bind_host, settings_.port),
                           grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound == 0) {
    return Status::IoError(fmt::format("jobmanager.rpc: cannot listen on {}:{}", settings_.bind_host, settings_.port));
  }
  address_ = fmt::format("{}:{}", settings_.bind_host, bound);
  monitor_ = std::thread([this] { MonitorLoop(); });
  return Status::Ok();
}

void JobManagerRpcServer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (monitor_.joinable()) monitor_.join();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void JobManagerRpcServer::AddLibrary(const std::string& checksum, const std::string& path) {
  std::lock_guard lock(mu_);
  libraries_[checksum] = path;
}

std::vector<std::shared_ptr<RemoteTaskExecutor>> JobManagerRpcServer::TaskManagers() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<RemoteTaskExecutor>> out;
  for (const std::string& id : order_) {
    const auto& executor = task_managers_.at(id).executor;
    if (executor->IsUsable()) out.push_back(executor);
  }
  return out;
}

std::vector<TaskExecutorGateway*> JobManagerRpcServer::Gateways() const {
  std::vector<TaskExecutorGateway*> out;
  for (const auto& e : TaskManagers()) out.push_back(e.get());
  return out;
}

bool JobManagerRpcServer::WaitForTaskManagers(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return task_managers_.size() >= n; });
}

void JobManagerRpcServer::OnChange(std::function<void()> callback) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(callback);
}

std::shared_ptr<RemoteTaskExecutor> JobManagerRpcServer::Find(const std::string& resource_id) const {
  std::lock_guard lock(mu_);
  auto it = task_managers_.find(resource_id);
  return it == task_managers_.end() ? nullptr : it->second.executor;
}

void JobManagerRpcServer::MonitorLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<RemoteTaskExecutor>> lost;
    for (auto it = task_managers_.begin(); it != task_managers_.end();) {
      if (now - it->second.last_heartbeat > settings_.heartbeat_timeout) {
        lost.push_back(it->second.executor);
        lost_.push_back(it->second.executor);
        order_.erase(std::find(order_.begin(), order_.end(), it->first));
        it = task_managers_.erase(it);
      } else {
        ++it;
      }
    }
    if (!lost.empty()) {
      std::function<void()> on_change = on_change_;
      lock.unlock();
      for (const auto& e : lost) {
        e->MarkLost(fmt::format("no heartbeat for {} ms (heartbeat.timeout)", settings_.heartbeat_timeout.count()));
      }
      if (on_change) on_change();
      lock.lock();
      continue;
    }
    auto period = std::max(std::chrono::milliseconds(10), settings_.heartbeat_timeout / 10);
    cv_.wait_for(lock, period, [this] { return stopping_; });
  }
}

}  // namespace freshet::internal
