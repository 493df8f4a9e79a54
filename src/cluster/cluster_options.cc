#include "cluster/cluster_options.h"

namespace freshet::internal {

namespace {

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

Status RequireNonEmpty(const Configuration& conf, std::string_view key, std::string& out) {
  out = OptionValue(conf, key);
  if (out.empty()) return Status::InvalidArgument(std::string(key) + " must not be empty");
  return Status::Ok();
}

}  // namespace

Result<ClusterOptions> ClusterOptions::From(const Configuration& conf) {
  FRESHET_RETURN_IF_ERROR(ValidateConfiguration(conf, "configuration"));
  ClusterOptions o;
  FRESHET_RETURN_IF_ERROR(RequireNonEmpty(conf, "jobmanager.rpc.address", o.jobmanager_rpc_address));
  FRESHET_ASSIGN_OR_RETURN(o.jobmanager_rpc_port, GetPortOption(conf, "jobmanager.rpc.port"));
  FRESHET_RETURN_IF_ERROR(RequireNonEmpty(conf, "jobmanager.bind-host", o.jobmanager_bind_host));
  FRESHET_RETURN_IF_ERROR(RequireNonEmpty(conf, "rest.address", o.rest_address));
  FRESHET_ASSIGN_OR_RETURN(o.rest_port, GetPortOption(conf, "rest.port"));
  FRESHET_RETURN_IF_ERROR(RequireNonEmpty(conf, "rest.bind-address", o.rest_bind_address));
  FRESHET_ASSIGN_OR_RETURN(int64_t slots, GetIntOption(conf, "taskmanager.numberOfTaskSlots"));
  o.task_slots = static_cast<int>(slots);
  FRESHET_RETURN_IF_ERROR(RequireNonEmpty(conf, "taskmanager.host", o.taskmanager_host));
  FRESHET_RETURN_IF_ERROR(RequireNonEmpty(conf, "taskmanager.bind-host", o.taskmanager_bind_host));
  FRESHET_ASSIGN_OR_RETURN(o.taskmanager_rpc_port, GetPortOption(conf, "taskmanager.rpc.port"));
  FRESHET_ASSIGN_OR_RETURN(o.taskmanager_data_port, GetPortOption(conf, "taskmanager.data.port"));
  o.taskmanager_resource_id = OptionValue(conf, "taskmanager.resource-id");
  FRESHET_ASSIGN_OR_RETURN(o.heartbeat_interval, GetDurationOption(conf, "heartbeat.interval"));
  FRESHET_ASSIGN_OR_RETURN(o.heartbeat_timeout, GetDurationOption(conf, "heartbeat.timeout"));
  o.log_dir = OptionValue(conf, "env.log.dir");
  if (o.log_dir.empty()) o.log_dir = "./log";
  o.upload_dir = OptionValue(conf, "web.upload.dir");
  o.blob_dir = OptionValue(conf, "blob.storage.directory");
  FRESHET_ASSIGN_OR_RETURN(o.prometheus_ports, GetPortRangeOption(conf, "metrics.reporter.prom.port"));
  FRESHET_RETURN_IF_ERROR(RequireNonEmpty(conf, "metrics.reporter.prom.host", o.prometheus_host));

  if (o.heartbeat_interval.count() <= 0) {
    return Status::InvalidArgument("heartbeat.interval must be positive, got " + Millis(o.heartbeat_interval));
  }
  if (o.heartbeat_timeout <= o.heartbeat_interval) {
    return Status::InvalidArgument("heartbeat.timeout (" + Millis(o.heartbeat_timeout) +
                                   ") must exceed heartbeat.interval (" + Millis(o.heartbeat_interval) + ")");
  }
  if (o.jobmanager_rpc_port != 0 && o.jobmanager_rpc_port == o.rest_port) {
    return Status::InvalidArgument("jobmanager.rpc.port and rest.port are both " +
                                   std::to_string(o.rest_port) + "; the JobManager needs two ports");
  }
  if (o.taskmanager_rpc_port != 0 && o.taskmanager_rpc_port == o.taskmanager_data_port) {
    return Status::InvalidArgument("taskmanager.rpc.port and taskmanager.data.port are both " +
                                   std::to_string(o.taskmanager_rpc_port) + "; a TaskManager needs two ports");
  }
  // The JobManager opens its RPC, REST and Prometheus endpoints; a range
  // made only of ports it already holds leaves the reporter nothing to take.
  const PortRange& prom = o.prometheus_ports;
  auto held = [&](int port) { return port != 0 && (port == o.jobmanager_rpc_port || port == o.rest_port); };
  if (prom.first != 0) {
    bool any_free = false;
    for (int port = prom.first; port <= prom.last && !any_free; ++port) any_free = !held(port);
    if (!any_free) {
      return Status::InvalidArgument("metrics.reporter.prom.port (" + std::to_string(prom.first) +
                                     (prom.first == prom.last ? "" : "-" + std::to_string(prom.last)) +
                                     ") holds only ports taken by jobmanager.rpc.port or rest.port");
    }
  }
  return o;
}

}  // namespace freshet::internal
