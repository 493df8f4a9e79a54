#pragma once
// A JobManager process: the Dispatcher, its REST endpoint, the control
// plane's RPC server (`jobmanager.rpc.port`) where TaskManager processes
// register, and `taskmanager.local.count` in-process TaskExecutors of
// `taskmanager.numberOfTaskSlots` slots each. Local and remote TaskManagers
// are registered with the Dispatcher alike; a remote one that is lost
// (heartbeat timeout) is unregistered again.
//
// Threading: Start and Shutdown from one thread; everything else runs on
// the components' own threads.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <string_view>
#include <vector>

#include "cluster/cluster_options.h"
#include "cluster/jobmanager/dispatcher.h"
#include "cluster/rpc/job_manager_service.h"
#include "cluster/task_executor.h"
#include "freshet/configuration.h"
#include "rest/rest_server.h"

namespace freshet::internal {

class MetricGroupImpl;
class MetricFetcher;
class MetricRegistry;
class PrometheusReporter;

/// Number of in-process TaskManagers of a JobManager in local mode
/// (default 1, at least 0: a JobManager that only serves REST).
inline constexpr std::string_view kLocalTaskManagersKey = "taskmanager.local.count";

/// Takes `taskmanager.local.count` out of `conf` (its value, or 1): the key
/// is this process's, not the registry's, so the rest of the configuration
/// can be checked strictly. Error: a value that is not an integer from 0
/// to 64.
Result<int> TakeLocalTaskManagerCount(Configuration& conf);

class JobManagerProcess {
 public:
  /// Reads the cluster options from `conf` (checked as the file loader
  /// checks), then starts the Dispatcher, the local TaskManagers and the
  /// REST endpoint. Errors name the key or address at fault.
  static Result<std::unique_ptr<JobManagerProcess>> Start(Configuration conf, Clock& clock = Clock::System());
  /// Shutdown().
  ~JobManagerProcess();
  JobManagerProcess(const JobManagerProcess&) = delete;
  JobManagerProcess& operator=(const JobManagerProcess&) = delete;

  /// "http://<rest.address>:<bound port>".
  std::string RestAddress() const { return rest_->Address(); }
  int RestPort() const { return rest_->Port(); }
  /// "host:port" of the control plane, where TaskManagers register.
  std::string RpcAddress() const { return rpc_->Address(); }
  /// The Prometheus endpoint's port (0: none; one is started when
  /// `metrics.reporter.prom.port` is set).
  int PrometheusPort() const;
  Dispatcher& GetDispatcher() { return *dispatcher_; }
  const ClusterOptions& Options() const { return options_; }

  /// Stops the REST endpoint, cancels the jobs and waits for them, and
  /// stops the TaskManagers. Idempotent.
  void Shutdown();

 private:
  JobManagerProcess() = default;
  /// Registers newly arrived remote TaskManagers with the Dispatcher and
  /// unregisters lost ones; runs on its own thread (unregistering waits for
  /// jobs), woken by the RPC server.
  void SyncTaskManagersLoop();

  ClusterOptions options_;
  std::unique_ptr<MetricRegistry> metrics_;
  std::unique_ptr<PrometheusReporter> prometheus_;
  // What the REST API reads metrics from; goes after the REST endpoint.
  std::unique_ptr<MetricFetcher> metric_fetcher_;
  // The process's own and each local TaskManager's metric groups; they
  // unregister when destroyed, before the registry goes.
  std::vector<std::unique_ptr<MetricGroupImpl>> metric_groups_;
  std::vector<std::unique_ptr<TaskExecutor>> executors_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<RestServer> rest_;
  std::unique_ptr<JobManagerRpcServer> rpc_;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool sync_pending_ = false;
  bool sync_stop_ = false;
  // Remote TaskManagers registered with the Dispatcher, by id. The RPC
  // server keeps every executor alive, lost ones too, until it is destroyed.
  std::map<std::string, const RemoteTaskExecutor*> remote_registered_;
  std::thread sync_thread_;
};

}  // namespace freshet::internal
