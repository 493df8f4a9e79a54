#pragma once
// The JobManager's handle on a TaskManager process: a TaskExecutorGateway
// whose calls go over gRPC. Deployments are synchronous (their outcome
// matters to the JobMaster); every other call is queued and sent in order
// by the gateway's own thread, so a slow or dead TaskManager never blocks
// a JobMaster. Reports coming back from the TaskManager are routed to the
// listener of the execution they concern.

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

#include "cluster/log_files.h"
#include "cluster/rpc/control.grpc.pb.h"
#include "cluster/task_executor.h"
#include "metrics/metric_view.h"

namespace freshet::internal {

struct TaskManagerInfo {
  std::string resource_id;
  std::string host;
  std::string rpc_address;
  std::string data_address;
  int num_slots = 0;
  int64_t pid = 0;
  HostResources resources;  // as registered
};

class RemoteTaskExecutor final : public TaskExecutorGateway {
 public:
  explicit RemoteTaskExecutor(TaskManagerInfo info);
  ~RemoteTaskExecutor() override;

  const TaskManagerInfo& Info() const { return info_; }
  const std::string& Id() const override { return info_.resource_id; }
  int NumSlots() const override { return info_.num_slots; }
  std::string DataAddress() const override { return info_.data_address; }
  HostResources Resources() const override;
  Timestamp LastHeartbeatMillis() const override;
  /// A heartbeat arrived at wall-clock `now_ms`, reporting `free_memory`
  /// on its host (-1: not reported).
  void OnHeartbeat(Timestamp now_ms, int64_t free_memory);

  Status DeployTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job,
                    TaskStateListener* listener) override;
  void StartTask(const std::string& execution_id) override;
  void CancelTask(const std::string& execution_id) override;
  void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) override;
  void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) override;
  void NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) override;
  void RequestDrain(const std::string& execution_id) override;
  void ReleaseJob(const std::string& job_id) override;

  /// A listener handed out for one report. ReleaseJob waits until every
  /// ListenerCall has been destroyed: its caller may destroy the job's
  /// JobMaster (the listener) as soon as it returns.
  class [[nodiscard]] ListenerCall {
   public:
    ListenerCall(RemoteTaskExecutor& owner, TaskStateListener* listener) : owner_(owner), listener_(listener) {}
    ~ListenerCall();
    ListenerCall(const ListenerCall&) = delete;
    ListenerCall& operator=(const ListenerCall&) = delete;
    explicit operator bool() const { return listener_ != nullptr; }
    TaskStateListener* operator->() const { return listener_; }

   private:
    RemoteTaskExecutor& owner_;
    TaskStateListener* listener_;
  };
  /// The listener of a live execution here (empty: unknown or ended).
  ListenerCall ListenerOf(const std::string& execution_id);
  /// The TaskManager reported that an execution ended: forgets it and
  /// returns its listener (empty when already reported, e.g. as lost), so
  /// that each execution ends exactly once.
  ListenerCall TakeListener(const std::string& execution_id);
  /// The TaskManager is gone (heartbeat timeout, re-registration): every
  /// execution still running here fails with `reason`; later calls are
  /// no-ops and deployments fail.
  void MarkLost(const std::string& reason);
  bool IsLost() const;
  /// Not lost and answering: the executor may get new tasks.
  bool IsUsable() const;
  /// A heartbeat arrived: a failed deployment no longer bars it.
  void MarkReachable();
  /// Executions deployed here and not ended.
  int LiveExecutions() const;
  /// The TaskManager's task manager and task metric groups (its
  /// QueryMetrics), waiting at most `timeout`. Bypasses the ordered call
  /// queue and holds no lock during the call, so it never waits for or
  /// delays the JobMaster's calls. Errors: Unavailable when the TaskManager
  /// is lost, unreachable or does not answer in time.
  Result<std::vector<GroupReadings>> QueryMetrics(std::chrono::milliseconds timeout) const;
  /// The TaskManager's log files, and the last `max_bytes` of one of them,
  /// like QueryMetrics. Errors: Unavailable as there; NotFound for a name
  /// that is not one of its log files.
  Result<std::vector<LogFileInfo>> ListLogs(std::chrono::milliseconds timeout) const;
  Result<std::string> ReadLog(const std::string& name, size_t max_bytes, std::chrono::milliseconds timeout) const;

 private:
  using Call = std::function<grpc::Status(freshet::rpc::TaskManagerService::Stub&)>;
  void Enqueue(Call call);
  /// Queues a call of `method` with `req` (sent in order by the thread).
  template <class Request>
  void Send(Request req, grpc::Status (freshet::rpc::TaskManagerService::Stub::*method)(grpc::ClientContext*,
                                                                                      const Request&,
                                                                                      freshet::rpc::Empty*));
  void Loop();

  TaskManagerInfo info_;
  // Updated by heartbeats (guarded by mu_).
  int64_t free_memory_ = -1;
  Timestamp last_heartbeat_ms_ = -1;
  std::unique_ptr<freshet::rpc::TaskManagerService::Stub> stub_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Call> queue_;
  bool stop_ = false;
  bool lost_ = false;
  bool unreachable_ = false;  // a deployment found it unreachable
  // Listener calls in progress (ListenerCall objects alive, MarkLost
  // reporting); ReleaseJob waits for them to end.
  int listener_calls_ = 0;
  std::condition_variable listener_calls_cv_;
  std::map<std::string, TaskStateListener*> executions_;
  std::map<std::string, std::string> fingerprints_;  // job id -> graph fingerprint
  std::thread thread_;
};

}  // namespace freshet::internal
