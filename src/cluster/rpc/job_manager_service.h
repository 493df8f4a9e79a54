#pragma once
// The JobManager's side of the control plane: the gRPC server TaskManagers
// talk to, and the registry of TaskManagers (the resource manager's view:
// who is there, with how many slots, alive by heartbeat). A TaskManager
// silent for longer than the heartbeat timeout, or registering again
// under the same id (it restarted), is lost: its running executions fail,
// so their jobs restart on what is left.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/rpc/remote_task_executor.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace freshet::internal {

struct JobManagerRpcSettings {
  std::string bind_host = "127.0.0.1";
  int port = 0;  // 0: any free port
  std::chrono::milliseconds heartbeat_timeout{50'000};
};

class JobManagerRpcServer {
 public:
  explicit JobManagerRpcServer(JobManagerRpcSettings settings);
  ~JobManagerRpcServer();
  JobManagerRpcServer(const JobManagerRpcServer&) = delete;
  JobManagerRpcServer& operator=(const JobManagerRpcServer&) = delete;

  Status Start();
  void Stop();
  /// "host:port" bound. REQUIRES: Start() succeeded.
  std::string Address() const { return address_; }

  /// Makes a job library fetchable by TaskManagers.
  void AddLibrary(const std::string& checksum, const std::string& path);

  /// TaskManagers registered and alive, in registration order.
  std::vector<std::shared_ptr<RemoteTaskExecutor>> TaskManagers() const;
  /// The same as gateways, for JobMaster's executor provider.
  std::vector<TaskExecutorGateway*> Gateways() const;
  /// Blocks until at least `n` TaskManagers are registered (false: timeout).
  bool WaitForTaskManagers(size_t n, std::chrono::milliseconds timeout) const;
  /// Called after a TaskManager registered, and after one was lost.
  void OnChange(std::function<void()> callback);

 private:
  class Service;
  friend class Service;
  struct Registered {
    std::shared_ptr<RemoteTaskExecutor> executor;
    std::string registration_id;
    std::chrono::steady_clock::time_point last_heartbeat;
  };
  void MonitorLoop();
  /// The executor of a report, if its sender is registered.
  std::shared_ptr<RemoteTaskExecutor> Find(const std::string& resource_id) const;

  JobManagerRpcSettings settings_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<std::string> order_;  // resource ids in registration order
  std::map<std::string, Registered> task_managers_;
  // Lost executors stay alive: JobMasters may still hold their pointers.
  std::vector<std::shared_ptr<RemoteTaskExecutor>> lost_;
  std::map<std::string, std::string> libraries_;  // checksum -> path
  std::function<void()> on_change_;
  bool stopping_ = false;
  std::thread monitor_;
};

}  // namespace freshet::internal
