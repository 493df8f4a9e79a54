#include "cluster/taskmanager/task_manager_runner.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "cluster/job_master.h"
#include "cluster/log_files.h"
#include "cluster/rpc/convert.h"
#include "cluster/rpc/metric_dump.h"
#include "common/logging.h"

namespace freshet::internal {

namespace pb = freshet::rpc;
namespace fs = std::filesystem;

namespace {

/// Deadline of one control-plane call.
constexpr auto kCallTimeout = std::chrono::seconds(10);

void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

std::string RandomId() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

}  // namespace

// ---------------------------------------------------------------------------
// Reporter: task callbacks -> JobManager, one ordered queue. A task's
// acknowledgements, end-of-data and termination must reach the JobManager
// in the order they happened, so one thread sends them all.

class TaskManagerRunner::Reporter final : public TaskStateListener {
 public:
  explicit Reporter(TaskManagerRunner& tm) : tm_(tm) {}
  ~Reporter() override { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  /// Sends what is queued (bounded by the retry time), then ends.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void OnTaskTerminated(const std::string& execution_id, ExecutionState state, Status status,
                        TaskResult result) override {
    pb::TaskTerminatedRequest req;
    req.set_resource_id(tm_.ResourceId());
    req.set_execution_id(execution_id);
    req.set_state(static_cast<int32_t>(state));
    *req.mutable_status() = rpc::ToProto(status);
    *req.mutable_result() = rpc::ToProto(result);
    Enqueue([req](pb::JobManagerService::Stub& stub, grpc::ClientContext& c) {
      pb::Empty out;
      return stub.TaskTerminated(&c, req, &out);
    });
  }
  void AcknowledgeCheckpoint(const std::string& execution_id, CheckpointId id, TaskStateSnapshot state) override {
    pb::CheckpointAckRequest req;
    req.set_resource_id(tm_.ResourceId());
    req.set_execution_id(execution_id);
    req.set_checkpoint_id(id);
    req.set_state(rpc::EncodeTaskState(state));
    *req.mutable_metrics() = rpc::ToProto(state.metrics);
    Enqueue([req](pb::JobManagerService::Stub& stub, grpc::ClientContext& c) {
      pb::Empty out;
      return stub.AcknowledgeCheckpoint(&c, req, &out);
    });
  }
  void DeclineCheckpoint(const std::string& execution_id, CheckpointId id, Status reason) override {
    pb::CheckpointDeclineRequest req;
    req.set_resource_id(tm_.ResourceId());
    req.set_execution_id(execution_id);
    req.set_checkpoint_id(id);
    *req.mutable_reason() = rpc::ToProto(reason);
    Enqueue([req](pb::JobManagerService::Stub& stub, grpc::ClientContext& c) {
      pb::Empty out;
      return stub.DeclineCheckpoint(&c, req, &out);
    });
  }
  void ReportEndOfData(const std::string& execution_id) override {
    SendEvent(execution_id, pb::ExecutionEventRequest::END_OF_DATA);
  }
  void ReportInitialized(const std::string& execution_id) override {
    SendEvent(execution_id, pb::ExecutionEventRequest::INITIALIZED);
  }

 private:
  using Call = std::function<grpc::Status(pb::JobManagerService::Stub&, grpc::ClientContext&)>;

  void SendEvent(const std::string& execution_id, pb::ExecutionEventRequest::Kind kind) {
    pb::ExecutionEventRequest req;
    req.set_resource_id(tm_.ResourceId());
    req.set_execution_id(execution_id);
    req.set_kind(kind);
    Enqueue([req](pb::JobManagerService::Stub& stub, grpc::ClientContext& c) {
      pb::Empty out;
      return stub.ReportExecutionEvent(&c, req, &out);
    });
  }

  void Enqueue(Call call) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(call));
    }
    cv_.notify_one();
  }

  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      Call call = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      // Retried while the JobManager is unreachable, up to the heartbeat
      // timeout: after that the JobManager has given this TaskManager up
      // and the report no longer matters.
      auto give_up = std::chrono::steady_clock::now() + tm_.settings_.heartbeat_timeout;
      while (true) {
        grpc::ClientContext context;
        SetDeadline(context, kCallTimeout);
        auto start = std::chrono::steady_clock::now();
        grpc::Status s = call(*tm_.jm_, context);
        auto took = std::chrono::steady_clock::now() - start;
        if (took > std::chrono::seconds(1)) {
          Log("taskmanager")->warn("a report to the JobManager took {} ms",
                                   std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
        }
        if (s.ok() || s.error_code() != grpc::StatusCode::UNAVAILABLE ||
            std::chrono::steady_clock::now() > give_up) {
          if (!s.ok()) Log("taskmanager")->warn("report to the JobManager failed: {}", s.error_message());
          break;
        }
        std::unique_lock wait_lock(mu_);
        if (cv_.wait_for(wait_lock, std::chrono::milliseconds(200), [this] { return stop_; })) {
          // Stopping: one more try above is not worth blocking shutdown.
          break;
        }
      }
      lock.lock();
    }
  }

  TaskManagerRunner& tm_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Call> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// Service: the JobManager's calls.

class TaskManagerRunner::Service final : public pb::TaskManagerService::Service {
 public:
  explicit Service(TaskManagerRunner& tm) : tm_(tm) {}

  grpc::Status DeployTask(grpc::ServerContext*, const pb::DeployTaskRequest* req, pb::StatusProto* out) override {
    *out = rpc::ToProto(Deploy(*req));
    return grpc::Status::OK;
  }
  grpc::Status StartTask(grpc::ServerContext*, const pb::ExecutionRequest* req, pb::Empty*) override {
    tm_.executor_->StartTask(req->execution_id());
    return grpc::Status::OK;
  }
  grpc::Status CancelTask(grpc::ServerContext*, const pb::ExecutionRequest* req, pb::Empty*) override {
    tm_.executor_->CancelTask(req->execution_id());
    return grpc::Status::OK;
  }
  grpc::Status TriggerCheckpoint(grpc::ServerContext*, const pb::TriggerCheckpointRequest* req, pb::Empty*) override {
    const std::string& bytes = req->barrier();
    auto barrier = CheckpointBarrier::Decode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    if (!barrier.IsOk()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, barrier.GetStatus().Message());
    tm_.executor_->TriggerCheckpoint(req->execution_id(), *barrier);
    return grpc::Status::OK;
  }
  grpc::Status NotifyCheckpoint(grpc::ServerContext*, const pb::CheckpointNotification* req, pb::Empty*) override {
    if (req->aborted()) {
      tm_.executor_->NotifyCheckpointAborted(req->execution_id(), req->checkpoint_id());
    } else {
      tm_.executor_->NotifyCheckpointComplete(req->execution_id(), req->checkpoint_id());
    }
    return grpc::Status::OK;
  }
  grpc::Status RequestDrain(grpc::ServerContext*, const pb::ExecutionRequest* req, pb::Empty*) override {
    tm_.executor_->RequestDrain(req->execution_id());
    return grpc::Status::OK;
  }
  grpc::Status ReleaseJob(grpc::ServerContext*, const pb::ReleaseJobRequest* req, pb::Empty*) override {
    tm_.executor_->ReleaseJob(req->job_id());
    std::lock_guard lock(tm_.jobs_mu_);
    tm_.jobs_.erase(req->job_id());
    return grpc::Status::OK;
  }
  grpc::Status QueryMetrics(grpc::ServerContext*, const pb::Empty*, pb::MetricDump* out) override {
    // The JobManager's REST API shows this process's task metrics from it.
    *out = rpc::ToProto(tm_.metrics_->ReadTaskManagerAndTaskGroups());
    return grpc::Status::OK;
  }

  grpc::Status ListLogs(grpc::ServerContext*, const pb::Empty*, pb::LogList* out) override {
    for (const LogFileInfo& f : ListLogFiles(LogDirectory())) {
      pb::LogFileProto* file = out->add_files();
      file->set_name(f.name);
      file->set_size(f.size);
      file->set_mtime_ms(f.mtime_ms);
    }
    return grpc::Status::OK;
  }

  grpc::Status ReadLog(grpc::ServerContext*, const pb::ReadLogRequest* req,
                       grpc::ServerWriter<pb::LogChunk>* writer) override {
    size_t max_bytes = req->max_bytes() > 0 ? std::min<size_t>(static_cast<size_t>(req->max_bytes()), kMaxLogBytes)
                                            : kMaxLogBytes;
    Result<std::string> text = ReadLogFile(LogDirectory(), req->name(), max_bytes);
    if (!text.IsOk()) {
      auto code = text.GetStatus().Code() == StatusCode::kNotFound ? grpc::StatusCode::NOT_FOUND
                                                                   : grpc::StatusCode::INTERNAL;
      return grpc::Status(code, text.GetStatus().Message());
    }
    // In chunks: a message stays far below gRPC's 4 MiB limit.
    constexpr size_t kChunk = size_t{1} << 20;
    pb::LogChunk chunk;
    for (size_t offset = 0; offset < text->size(); offset += kChunk) {
      chunk.set_data(text->data() + offset, std::min(kChunk, text->size() - offset));
      if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "the JobManager went away");
    }
    return grpc::Status::OK;
  }

 private:
  /// Where this process's log file is (empty: it has none).
  static std::string LogDirectory() {
    std::string file = ProcessLogFile();
    return file.empty() ? std::string() : std::filesystem::path(file).parent_path().string();
  }

  Status Deploy(const pb::DeployTaskRequest& req) {
    const pb::JobArtifactProto& artifact = req.job();
    std::vector<std::string> args(artifact.args().begin(), artifact.args().end());
    std::map<std::string, std::string> config(artifact.config().begin(), artifact.config().end());
    FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<const JobGraph> job,
                             tm_.JobGraphFor(artifact.job_id(), artifact.library_checksum(), artifact.library_name(),
                                             args, config, artifact.graph_fingerprint()));
    FRESHET_ASSIGN_OR_RETURN(TaskDeploymentDescriptor tdd, rpc::FromProto(req.task(), artifact.job_id()));
    if (tdd.vertex < 0 || tdd.vertex >= static_cast<int>(job->vertices.size())) {
      return Status::InvalidArgument(fmt::format("task deployment: the job has no vertex {}", tdd.vertex));
    }
    const JobVertex& vertex = job->vertices[static_cast<size_t>(tdd.vertex)];
    if (tdd.parallelism != vertex.parallelism) {
      return Status::InvalidArgument(fmt::format("task deployment: vertex {} has parallelism {}, not {}", tdd.vertex,
                                                 vertex.parallelism, tdd.parallelism));
    }
    if (!tdd.restore_directory.empty()) {
      FRESHET_ASSIGN_OR_RETURN(CheckpointMetadata md, ReadMetadata(tdd.restore_directory));
      tdd.restore = RestoreRefsForTask(*job, vertex, tdd.subtask, md);
    }
    Log("taskmanager")->info("deploying {} ({} of job {})", tdd.ExecutionId(), vertex.name, artifact.job_id());
    return tm_.executor_->DeployTask(std::move(tdd), std::move(job), tm_.reporter_.get());
  }

  TaskManagerRunner& tm_;
};

// ---------------------------------------------------------------------------

TaskManagerRunner::TaskManagerRunner(TaskManagerSettings settings) : settings_(std::move(settings)) {
  if (settings_.resource_id.empty()) settings_.resource_id = "taskmanager-" + RandomId();
  if (settings_.blob_directory.empty()) {
    settings_.blob_directory = (fs::temp_directory_path() / ("freshet-blobs-" + settings_.resource_id)).string();
  }
  metrics_ = std::make_unique<MetricRegistry>();
  executor_ =
      std::make_unique<TaskExecutor>(settings_.resource_id, settings_.num_slots, Clock::System(), metrics_.get());
  reporter_ = std::make_unique<Reporter>(*this);
  service_ = std::make_unique<Service>(*this);
}

TaskManagerRunner::~TaskManagerRunner() { Stop(); }

Status TaskManagerRunner::Start() {
  if (settings_.num_slots < 1) {
    return Status::InvalidArgument(
        fmt::format("taskmanager.numberOfTaskSlots must be at least 1, got {}", settings_.num_slots));
  }
  if (settings_.jobmanager_address.empty()) return Status::InvalidArgument("no JobManager address to register with");
  std::error_code ec;
  fs::create_directories(settings_.blob_directory, ec);
  if (ec) {
    return Status::IoError(
        fmt::format("cannot create the blob directory {}: {}", settings_.blob_directory, ec.message()));
  }
  if (!settings_.prometheus_port.empty()) {
    FRESHET_ASSIGN_OR_RETURN(prometheus_,
                             PrometheusReporter::Start(*metrics_, {settings_.prometheus_host, settings_.prometheus_port}));
  }
  NetworkOptions network;
  network.bind_host = settings_.bind_host;
  network.port = static_cast<uint16_t>(settings_.data_port);
  FRESHET_RETURN_IF_ERROR(executor_->EnableNetwork(network));

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(fmt::format("{}:{}", settings_.bind_host, settings_.rpc_port),
                           grpc::InsecureServerCredentials(), &bound_port);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port == 0) {
    return Status::IoError(
        fmt::format("cannot listen for RPC on {}:{}", settings_.bind_host, settings_.rpc_port));
  }
  rpc_address_ = fmt::format("{}:{}", settings_.host, bound_port);

  jm_channel_ = grpc::CreateChannel(settings_.jobmanager_address, grpc::InsecureChannelCredentials());
  jm_ = pb::JobManagerService::NewStub(jm_channel_);
  reporter_->Start();
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  Log("taskmanager")->info("TaskManager {} started: {} slots, RPC {}, data {}, JobManager {}", settings_.resource_id,
                           settings_.num_slots, rpc_address_, DataAddress(), settings_.jobmanager_address);
  return Status::Ok();
}

void TaskManagerRunner::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  // Tasks end first (their last reports are queued), then the reporter
  // sends what it can, then the servers go.
  for (const std::string& job : executor_->JobIds()) {
    for (const std::string& id : executor_->ExecutionsOf(job)) executor_->CancelTask(id);
    executor_->ReleaseJob(job);
  }
  reporter_->Stop();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

int TaskManagerRunner::PrometheusPort() const { return prometheus_ ? prometheus_->Port() : 0; }

std::string TaskManagerRunner::DataAddress() const {
  std::string bound = executor_->DataAddress();
  size_t colon = bound.rfind(':');
  return colon == std::string::npos ? bound : settings_.host + bound.substr(colon);
}

Status TaskManagerRunner::Register() {
  pb::RegisterTaskManagerRequest req;
  req.set_resource_id(settings_.resource_id);
  req.set_host(settings_.host);
  req.set_rpc_address(rpc_address_);
  req.set_data_address(DataAddress());
  req.set_num_slots(settings_.num_slots);
  req.set_pid(::getpid());
  HostResources host = LocalHostResources();
  req.set_cpu_cores(host.cpu_cores);
  req.set_physical_memory(host.physical_memory);
  req.set_free_memory(host.free_memory);
  pb::RegisterTaskManagerResponse resp;
  grpc::ClientContext context;
  SetDeadline(context, std::chrono::milliseconds(5000));
  grpc::Status s = jm_->RegisterTaskManager(&context, req, &resp);
  // Named here: gRPC's message leaves the address out when the deadline
  // passes before a connection fails.
  if (!s.ok()) {
    return Status::Unavailable(
        fmt::format("cannot register with the JobManager at {}: {}", settings_.jobmanager_address, s.error_message()));
  }
  registration_id_ = resp.registration_id();
  registered_ = true;
  Log("taskmanager")->info("registered with the JobManager at {}", settings_.jobmanager_address);
  return Status::Ok();
}

void TaskManagerRunner::HeartbeatLoop() {
  auto last_contact = std::chrono::steady_clock::now();
  bool warned = false;
  while (true) {
    {
      std::unique_lock lock(mu_);
      auto wait = registered_ ? settings_.heartbeat_interval
                              : std::min(settings_.heartbeat_interval, std::chrono::milliseconds(500));
      if (cv_.wait_for(lock, wait, [this] { return stopping_; })) return;
    }
    if (!registered_) {
      Status s = Register();
      if (s.IsOk()) {
        last_contact = std::chrono::steady_clock::now();
        warned = false;
      } else if (!warned) {
        Log("taskmanager")->warn("{} (retrying)", s.Message());
        warned = true;
      }
      continue;
    }
    pb::TaskManagerHeartbeat hb;
    hb.set_resource_id(settings_.resource_id);
    hb.set_registration_id(registration_id_);
    hb.set_free_memory(LocalHostResources().free_memory);
    pb::HeartbeatResponse resp;
    grpc::ClientContext context;
    SetDeadline(context, settings_.heartbeat_interval);
    grpc::Status s = jm_->Heartbeat(&context, hb, &resp);
    if (s.ok()) {
      last_contact = std::chrono::steady_clock::now();
      if (!resp.known()) {
        Log("taskmanager")->warn("the JobManager does not know this TaskManager any more: registering again");
        registered_ = false;
      }
      continue;
    }
    if (std::chrono::steady_clock::now() - last_contact > settings_.heartbeat_timeout) {
      // The JobManager has given this TaskManager up by now: its tasks
      // belong to no job any more.
      Log("taskmanager")->error("no answer from the JobManager for {} ms: cancelling all tasks",
                                settings_.heartbeat_timeout.count());
      for (const std::string& job : executor_->JobIds()) {
        for (const std::string& id : executor_->ExecutionsOf(job)) executor_->CancelTask(id);
      }
      registered_ = false;
    }
  }
}

Result<std::shared_ptr<JobLibrary>> TaskManagerRunner::LibraryFor(const std::string& checksum,
                                                                  const std::string& library_name) {
  if (auto it = libraries_.find(checksum); it != libraries_.end()) return it->second;
  if (checksum.size() != 64 || checksum.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::InvalidArgument("job library checksum '" + checksum + "' is not a hex SHA-256");
  }
  fs::path path = fs::path(settings_.blob_directory) / (checksum + ".so");
  if (!fs::exists(path)) {
    fs::path temp = path;
    temp += ".part";
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      if (!out) return Status::IoError("cannot write " + temp.string());
      pb::FetchLibraryRequest req;
      req.set_checksum(checksum);
      grpc::ClientContext context;
      SetDeadline(context, std::chrono::milliseconds(60'000));
      auto reader = jm_->FetchLibrary(&context, req);
      pb::LibraryChunk chunk;
      while (reader->Read(&chunk)) out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      grpc::Status s = reader->Finish();
      if (!s.ok()) {
        return Status::Unavailable(fmt::format("cannot fetch job library {} ({}) from the JobManager: {}",
                                               library_name, checksum, s.error_message()));
      }
      if (!out.flush()) return Status::IoError("cannot write " + temp.string());
    }
    FRESHET_ASSIGN_OR_RETURN(std::string received, FileSha256(temp.string()));
    if (received != checksum) {
      fs::remove(temp);
      return Status::Corruption(fmt::format("job library {} arrived damaged: SHA-256 {}, expected {}", library_name,
                                            received, checksum));
    }
    fs::rename(temp, path);
  }
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> library, JobLibrary::Load(path.string()));
  if (library->Checksum() != checksum) {
    return Status::Corruption(fmt::format("stored job library {} does not match its checksum", path.string()));
  }
  libraries_[checksum] = library;
  return library;
}

Result<std::shared_ptr<const JobGraph>> TaskManagerRunner::JobGraphFor(
    const std::string& job_id, const std::string& checksum, const std::string& library_name,
    const std::vector<std::string>& args, const std::map<std::string, std::string>& config,
    const std::string& fingerprint) {
  std::lock_guard lock(jobs_mu_);
  if (auto it = jobs_.find(job_id); it != jobs_.end()) return it->second;
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> library, LibraryFor(checksum, library_name));
  Configuration conf;
  for (const auto& [k, v] : config) conf.Set(k, v);
  FRESHET_ASSIGN_OR_RETURN(StreamGraph plan, library->BuildPlan(args, conf));
  auto job = std::make_shared<JobGraph>(BuildJobGraph(std::make_shared<const StreamGraph>(std::move(plan)), job_id));
  std::string mine = GraphFingerprint(*job);
  if (mine != fingerprint) {
    return Status::FailedPrecondition(
        fmt::format("job {}: the program of {} built a different graph on this TaskManager than on the JobManager "
                    "(it must build the same graph from the same arguments)",
                    job_id, library_name));
  }
  jobs_[job_id] = job;
  return std::shared_ptr<const JobGraph>(std::move(job));
}

}  // namespace freshet::internal
