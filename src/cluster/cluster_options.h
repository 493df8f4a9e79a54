#pragma once
// Typed settings of the cluster processes (JobManager, TaskManagers, CLI),
// read from a Configuration (conf/freshet.yaml plus -D overrides) with the
// registered defaults of common/config_options.cc.

#include <chrono>
#include <string>

#include "common/config_options.h"
#include "freshet/configuration.h"
#include "freshet/status.h"

namespace freshet::internal {

/// Plain values; every field names its key. Immutable once read: a process
/// reads it at start and hands copies to its components.
struct ClusterOptions {
  /// `jobmanager.rpc.address`: where TaskManagers and clients reach the JobManager.
  std::string jobmanager_rpc_address = "localhost";
  /// `jobmanager.rpc.port`: the JobManager's RPC port (0: any free port, for tests).
  int jobmanager_rpc_port = 6123;
  /// `jobmanager.bind-host`: interface the JobManager's RPC endpoint listens on.
  std::string jobmanager_bind_host = "127.0.0.1";
  /// `rest.address`: where clients reach the REST endpoint.
  std::string rest_address = "localhost";
  /// `rest.port`: the REST endpoint's port (0: any free port, for tests).
  int rest_port = 8081;
  /// `rest.bind-address`: interface the REST endpoint listens on; loopback
  /// unless configured otherwise.
  std::string rest_bind_address = "127.0.0.1";
  /// `taskmanager.numberOfTaskSlots` (>= 1).
  int task_slots = 1;
  /// `taskmanager.host`: the address a TaskManager advertises.
  std::string taskmanager_host = "localhost";
  /// `taskmanager.bind-host`: interface a TaskManager's endpoints listen on.
  std::string taskmanager_bind_host = "127.0.0.1";
  /// `taskmanager.rpc.port` (0: any free port).
  int taskmanager_rpc_port = 0;
  /// `taskmanager.data.port` (0: any free port).
  int taskmanager_data_port = 0;
  /// `taskmanager.resource-id`; empty: the TaskManager generates one.
  std::string taskmanager_resource_id;
  /// `heartbeat.interval` (> 0).
  std::chrono::milliseconds heartbeat_interval{10'000};
  /// `heartbeat.timeout` (> heartbeat_interval).
  std::chrono::milliseconds heartbeat_timeout{50'000};
  /// `env.log.dir` (default ./log).
  std::string log_dir = "./log";
  /// `web.upload.dir`; empty: the process picks a directory under the
  /// system's temporary directory.
  std::string upload_dir;
  /// `blob.storage.directory`; empty as for upload_dir.
  std::string blob_dir;
  /// `metrics.reporter.prom.port`: each process takes the first free port
  /// of the range (a single port: first == last).
  PortRange prometheus_ports{9249, 9260};
  /// `metrics.reporter.prom.host`: interface of the Prometheus endpoint.
  std::string prometheus_host = "127.0.0.1";

  /// Reads every cluster key of `conf` (set value, else default), checks
  /// every key of `conf` as the file loader does, then the rules that span
  /// keys: heartbeat.timeout > heartbeat.interval > 0; non-empty addresses;
  /// jobmanager.rpc.port != rest.port and taskmanager.rpc.port !=
  /// taskmanager.data.port unless 0; a Prometheus range clear of the
  /// JobManager's ports. Errors name the keys and values.
  static Result<ClusterOptions> From(const Configuration& conf);
};

}  // namespace freshet::internal
