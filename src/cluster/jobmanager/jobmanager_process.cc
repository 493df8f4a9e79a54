#include "cluster/jobmanager/jobmanager_process.h"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>

#include "common/config_options.h"
#include "common/logging.h"
#include "metrics/metric_registry.h"
#include "metrics/prometheus_reporter.h"
#include "rest/metric_fetcher.h"

namespace freshet::internal {

Result<int> TakeLocalTaskManagerCount(Configuration& conf) {
  std::optional<std::string> value = conf.Get(std::string(kLocalTaskManagersKey));
  if (!value) return 1;
  Configuration rest;
  for (const auto& [key, v] : conf.Values()) {
    if (key != kLocalTaskManagersKey) rest.Set(key, v);
  }
  conf = std::move(rest);
  int count = -1;
  auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), count);
  if (error != std::errc() || end != value->data() + value->size() || count < 0 || count > 64) {
    return Status::InvalidArgument(
        fmt::format("{}: '{}' is not a number of TaskManagers from 0 to 64", kLocalTaskManagersKey, *value));
  }
  return count;
}

Result<std::unique_ptr<JobManagerProcess>> JobManagerProcess::Start(Configuration conf, Clock& clock) {
  FRESHET_ASSIGN_OR_RETURN(int local_count, TakeLocalTaskManagerCount(conf));
  FRESHET_ASSIGN_OR_RETURN(ClusterOptions options, ClusterOptions::From(conf));
  auto process = std::unique_ptr<JobManagerProcess>(new JobManagerProcess());
  process->options_ = options;

  std::error_code ec;
  std::string log_dir = std::filesystem::absolute(options.log_dir, ec).lexically_normal().string();
  std::string log_file = ProcessLogFile();
  if (!log_file.empty()) log_dir = std::filesystem::path(log_file).parent_path().string();

  process->metrics_ = std::make_unique<MetricRegistry>();
  if (std::optional<std::string> port = conf.Get("metrics.reporter.prom.port")) {
    PrometheusReporterOptions prometheus;
    prometheus.host = conf.Get("metrics.reporter.prom.host").value_or("127.0.0.1");
    prometheus.port = *port;
    FRESHET_ASSIGN_OR_RETURN(process->prometheus_, PrometheusReporter::Start(*process->metrics_, prometheus));
  }
  process->metric_groups_.push_back(process->metrics_->CreateJobManagerGroup());

  JobManagerRpcSettings rpc_settings;
  rpc_settings.bind_host = options.jobmanager_bind_host;
  rpc_settings.port = options.jobmanager_rpc_port;
  rpc_settings.heartbeat_timeout = options.heartbeat_timeout;
  process->rpc_ = std::make_unique<JobManagerRpcServer>(rpc_settings);
  JobManagerRpcServer* rpc = process->rpc_.get();

  DispatcherOptions dispatcher_options;
  dispatcher_options.upload_dir = options.upload_dir;
  dispatcher_options.job_defaults = conf;
  dispatcher_options.metrics = process->metrics_.get();
  dispatcher_options.on_library = [rpc](const std::string& checksum, const std::string& path) {
    rpc->AddLibrary(checksum, path);
  };
  FRESHET_ASSIGN_OR_RETURN(process->dispatcher_, Dispatcher::Create(std::move(dispatcher_options), clock));
  JobManagerProcess* self = process.get();
  rpc->OnChange([self] {
    {
      std::lock_guard lock(self->sync_mu_);
      self->sync_pending_ = true;
    }
    self->sync_cv_.notify_all();
  });
  process->sync_thread_ = std::thread([self] { self->SyncTaskManagersLoop(); });
  FRESHET_RETURN_IF_ERROR(rpc->Start());

  for (int i = 0; i < local_count; ++i) {
    // In-process TaskManagers keep their TaskManager and task metric groups
    // in this process's registry and log into this process's log.
    auto executor = std::make_unique<TaskExecutor>(fmt::format("taskmanager-local-{}", i), options.task_slots, clock,
                                                   process->metrics_.get());
    FRESHET_RETURN_IF_ERROR(process->dispatcher_->RegisterTaskManager(executor.get(), {"local", log_dir}));
    process->executors_.push_back(std::move(executor));
  }

  // The REST API reads this registry and the TaskManager processes' ones.
  MetricFetcherOptions fetcher_options;
  FRESHET_ASSIGN_OR_RETURN(fetcher_options.update_interval,
                           GetDurationOption(conf, "metrics.fetcher.update-interval"));
  process->metric_fetcher_ = std::make_unique<MetricFetcher>(
      *process->metrics_, [rpc] { return rpc->TaskManagers(); }, fetcher_options);

  RestContext context;
  context.dispatcher = process->dispatcher_.get();
  context.config = conf;
  context.log_dir = log_dir;
  context.metrics = process->metric_fetcher_.get();
  // TaskManager processes' logs are read from them, one request at a time.
  auto remote = [rpc](const std::string& id) -> Result<std::shared_ptr<RemoteTaskExecutor>> {
    for (std::shared_ptr<RemoteTaskExecutor>& tm : rpc->TaskManagers()) {
      if (tm->Id() == id) return tm;
    }
    // Listed by the Dispatcher but no longer alive here.
    return Status::Unavailable(fmt::format("TaskManager {} is lost: its logs cannot be read", id));
  };
  context.list_remote_logs = [remote](const std::string& id) -> Result<std::vector<LogFileInfo>> {
    FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<RemoteTaskExecutor> tm, remote(id));
    return tm->ListLogs(std::chrono::seconds(5));
  };
  context.read_remote_log = [remote](const std::string& id, const std::string& name) -> Result<std::string> {
    FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<RemoteTaskExecutor> tm, remote(id));
    return tm->ReadLog(name, kMaxLogBytes, std::chrono::seconds(30));
  };
  RestServerOptions rest_options;
  rest_options.bind_address = options.rest_bind_address;
  rest_options.port = options.rest_port;
  rest_options.advertised_address = options.rest_address;
  process->rest_ = std::make_unique<RestServer>(std::move(context), rest_options);
  FRESHET_RETURN_IF_ERROR(process->rest_->Start());
  Log("jobmanager")->info("JobManager started: REST endpoint {}, RPC endpoint {}, {} local TaskManagers with {} slots "
                          "each, uploads in {}",
                          process->RestAddress(), process->RpcAddress(), local_count, options.task_slots,
                          process->dispatcher_->UploadDir());
  return process;
}

JobManagerProcess::~JobManagerProcess() { Shutdown(); }

int JobManagerProcess::PrometheusPort() const { return prometheus_ ? prometheus_->Port() : 0; }

void JobManagerProcess::SyncTaskManagersLoop() {
  std::unique_lock lock(sync_mu_);
  while (true) {
    sync_cv_.wait(lock, [this] { return sync_pending_ || sync_stop_; });
    if (sync_stop_) return;
    sync_pending_ = false;
    lock.unlock();
    std::vector<std::shared_ptr<RemoteTaskExecutor>> alive = rpc_->TaskManagers();
    std::map<std::string, const RemoteTaskExecutor*> present;
    for (const std::shared_ptr<RemoteTaskExecutor>& tm : alive) present[tm->Id()] = tm.get();
    // Lost ones first, and ones replaced by a restarted process under the
    // same id (a new executor): their jobs restart elsewhere.
    for (auto it = remote_registered_.begin(); it != remote_registered_.end();) {
      auto now = present.find(it->first);
      if (now != present.end() && now->second == it->second) {
        ++it;
        continue;
      }
      dispatcher_->RemoveLostTaskManager(it->first).IgnoreError();
      it = remote_registered_.erase(it);
    }
    for (const std::shared_ptr<RemoteTaskExecutor>& tm : alive) {
      if (remote_registered_.count(tm->Id()) != 0) continue;
      Status s = dispatcher_->RegisterTaskManager(tm.get(), {tm->Info().rpc_address, ""});
      if (s.IsOk()) {
        remote_registered_[tm->Id()] = tm.get();
      } else {
        Log("jobmanager")->warn("TaskManager {}: {}", tm->Id(), s.Message());
      }
    }
    lock.lock();
  }
}

void JobManagerProcess::Shutdown() {
  if (rest_) rest_->Stop();
  if (sync_thread_.joinable()) {
    {
      std::lock_guard lock(sync_mu_);
      sync_stop_ = true;
    }
    sync_cv_.notify_all();
    sync_thread_.join();
  }
  if (dispatcher_) {
    dispatcher_->Shutdown();
    for (const auto& executor : executors_) dispatcher_->UnregisterTaskManager(executor->Id()).IgnoreError();
    for (const auto& [id, tm] : remote_registered_) dispatcher_->UnregisterTaskManager(id).IgnoreError();
    remote_registered_.clear();
  }
  // Remote TaskManagers' last reports arrive through the RPC server: it
  // stops after the jobs ended.
  if (rpc_) rpc_->Stop();
  // The TaskExecutors go after every job that used them has ended.
  executors_.clear();
  metric_groups_.clear();
}

}  // namespace freshet::internal
