#pragma once
// A TaskManager process's core: a TaskExecutor with its network stack, the
// gRPC TaskManagerService through which the JobManager deploys and drives
// tasks, and the connection to the JobManager (registration, heartbeats,
// task reports). Jobs arrive as job libraries: the first task of a job
// fetches the library from the JobManager (checked against its SHA-256),
// loads it and rebuilds the job graph in plan mode, and refuses to run if
// the graph differs from the JobManager's (fingerprint).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/job_library.h"
#include "cluster/task_executor.h"
#include "metrics/metric_registry.h"
#include "metrics/prometheus_reporter.h"

#include "cluster/rpc/control.grpc.pb.h"

namespace freshet::internal {

struct TaskManagerSettings {
  std::string resource_id;               // empty: generated
  std::string host = "127.0.0.1";        // announced to others
  std::string bind_host = "127.0.0.1";   // where the RPC and data servers listen
  int rpc_port = 0;
  int data_port = 0;
  int num_slots = 1;
  std::string jobmanager_address;  // host:port of the JobManager's RPC server
  std::chrono::milliseconds heartbeat_interval{10'000};
  std::chrono::milliseconds heartbeat_timeout{50'000};
  std::string blob_directory;  // where fetched job libraries are kept
  /// `metrics.reporter.prom.port` (a port, a range or "0"); empty: no
  /// Prometheus endpoint.
  std::string prometheus_port;
  std::string prometheus_host = "127.0.0.1";
};

class TaskManagerRunner {
 public:
  explicit TaskManagerRunner(TaskManagerSettings settings);
  ~TaskManagerRunner();
  TaskManagerRunner(const TaskManagerRunner&) = delete;
  TaskManagerRunner& operator=(const TaskManagerRunner&) = delete;

  /// Starts the network, the RPC server and the thread that registers with
  /// the JobManager and heartbeats (retrying while it is unreachable).
  Status Start();
  /// Cancels running tasks, leaves the JobManager, stops every server.
  void Stop();

  const std::string& ResourceId() const { return settings_.resource_id; }
  std::string RpcAddress() const { return rpc_address_; }
  /// The data endpoint as peers reach it: the advertised host and the port
  /// bound (the bound interface may be 0.0.0.0).
  std::string DataAddress() const;
  bool IsRegistered() const { return registered_.load(); }
  TaskExecutor& Executor() { return *executor_; }
  /// The Prometheus endpoint's port (0: none).
  int PrometheusPort() const;

 private:
  class Service;
  class Reporter;
  friend class Service;

  /// The job graph of `job_id`, rebuilt from its library on first use.
  Result<std::shared_ptr<const JobGraph>> JobGraphFor(const std::string& job_id, const std::string& checksum,
                                                      const std::string& library_name,
                                                      const std::vector<std::string>& args,
                                                      const std::map<std::string, std::string>& config,
                                                      const std::string& fingerprint);
  Result<std::shared_ptr<JobLibrary>> LibraryFor(const std::string& checksum, const std::string& library_name);
  void HeartbeatLoop();
  Status Register();

  TaskManagerSettings settings_;
  // Before the executor: its task metric groups live in this registry.
  std::unique_ptr<MetricRegistry> metrics_;
  std::unique_ptr<PrometheusReporter> prometheus_;
  std::unique_ptr<TaskExecutor> executor_;
  std::unique_ptr<Reporter> reporter_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string rpc_address_;
  std::shared_ptr<grpc::Channel> jm_channel_;
  std::unique_ptr<freshet::rpc::JobManagerService::Stub> jm_;
  std::atomic<bool> registered_{false};
  std::string registration_id_;

  std::mutex jobs_mu_;
  std::map<std::string, std::shared_ptr<const JobGraph>> jobs_;
  std::map<std::string, std::shared_ptr<JobLibrary>> libraries_;  // by checksum

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread heartbeat_thread_;
};

}  // namespace freshet::internal
