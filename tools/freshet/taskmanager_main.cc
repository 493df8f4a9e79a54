// `freshet taskmanager [-c <conf/freshet.yaml>] [-D <key>=<value>]...`: a
// TaskManager process. It registers with the JobManager at
// `jobmanager.rpc.address`:`jobmanager.rpc.port` (retrying while it is not
// there), offers `taskmanager.numberOfTaskSlots` slots and runs what the
// JobManager deploys until SIGTERM or SIGINT.

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "cluster/cluster_options.h"
#include "cluster/taskmanager/task_manager_runner.h"
#include "common/logging.h"
#include "freshet/configuration.h"

namespace freshet::internal {

namespace {

/// Reads `-c <file>` (default conf/freshet.yaml when it exists) and the
/// `-D key=value` arguments after argv[first].
Result<Configuration> LoadProcessConfiguration(const std::string& action, int argc, char** argv, int first) {
  std::string file;
  std::vector<std::string> dynamic;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--configuration") && i + 1 < argc) {
      file = argv[++i];
    } else if (a == "-D" && i + 1 < argc) {
      dynamic.emplace_back(argv[++i]);
    } else if (a.rfind("-D", 0) == 0 && a.size() > 2) {
      dynamic.push_back(a.substr(2));
    } else {
      return Status::InvalidArgument(fmt::format("{}: unexpected argument '{}' (expected -c <file> or -D <key>=<value>)",
                                                 action, a));
    }
  }
  Configuration conf;
  if (file.empty() && std::filesystem::exists("conf/freshet.yaml")) file = "conf/freshet.yaml";
  if (!file.empty()) {
    FRESHET_ASSIGN_OR_RETURN(conf, LoadConfigurationFile(file));
  }
  for (const std::string& d : dynamic) FRESHET_RETURN_IF_ERROR(ApplyDynamicProperty(conf, d));
  return conf;
}

/// The local address this host uses to reach `host`:`port` (no packet is
/// sent: connecting a UDP socket only picks the route). Errors name the
/// JobManager address that could not be routed to.
Result<std::string> LocalAddressTowards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    return Status::InvalidArgument(fmt::format("cannot resolve the JobManager's address '{}': {}", host,
                                               ::gai_strerror(rc)));
  }
  std::string address;
  for (addrinfo* a = found; a != nullptr && address.empty(); a = a->ai_next) {
    int fd = ::socket(a->ai_family, SOCK_DGRAM, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* raw = local.ss_family == AF_INET6
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
      if (::inet_ntop(local.ss_family, raw, text, sizeof text) != nullptr) address = text;
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (address.empty()) {
    return Status::Unavailable(fmt::format("no route to the JobManager at {}:{} to take this host's address from",
                                           host, port));
  }
  return address;
}

/// What the TaskManager advertises when `taskmanager.host` is not set: the
/// interface it binds to, or, bound to every interface, the address of the
/// interface that reaches the JobManager (as a TaskManager on another host
/// needs no address of its own configured).
Result<std::string> DefaultAdvertisedHost(const ClusterOptions& options) {
  const std::string& bind = options.taskmanager_bind_host;
  if (bind != "0.0.0.0" && bind != "::" && bind != "[::]") return bind;
  return LocalAddressTowards(options.jobmanager_rpc_address, options.jobmanager_rpc_port);
}

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

int TaskManagerAction(int argc, char** argv) {
  auto conf = LoadProcessConfiguration("taskmanager", argc, argv, 2);
  if (!conf.IsOk()) {
    std::fprintf(stderr, "freshet taskmanager: %s\n", conf.GetStatus().Message().c_str());
    return 1;
  }
  auto options = ClusterOptions::From(*conf);
  if (!options.IsOk()) {
    std::fprintf(stderr, "freshet taskmanager: %s\n", options.GetStatus().Message().c_str());
    return 1;
  }
  TaskManagerSettings settings;
  settings.resource_id = options->taskmanager_resource_id;
  settings.host = options->taskmanager_host;
  if (!conf->Get("taskmanager.host")) {
    Result<std::string> host = DefaultAdvertisedHost(*options);
    if (!host.IsOk()) {
      std::fprintf(stderr, "freshet taskmanager: taskmanager.host is not set and %s; set taskmanager.host\n",
                   host.GetStatus().Message().c_str());
      return 1;
    }
    settings.host = *host;
  }
  settings.bind_host = options->taskmanager_bind_host;
  settings.rpc_port = options->taskmanager_rpc_port;
  settings.data_port = options->taskmanager_data_port;
  settings.num_slots = options->task_slots;
  settings.jobmanager_address = fmt::format("{}:{}", options->jobmanager_rpc_address, options->jobmanager_rpc_port);
  settings.heartbeat_interval = options->heartbeat_interval;
  settings.heartbeat_timeout = options->heartbeat_timeout;
  settings.blob_directory = options->blob_dir;
  // A Prometheus endpoint when one is configured (as Flink starts a
  // reporter only when configured).
  if (auto port = conf->Get("metrics.reporter.prom.port")) settings.prometheus_port = *port;
  if (auto host = conf->Get("metrics.reporter.prom.host")) settings.prometheus_host = *host;
  TaskManagerRunner runner(settings);
  Status logging = InitProcessLogging(*conf, "taskmanager-" + runner.ResourceId());
  if (!logging.IsOk()) {
    std::fprintf(stderr, "freshet taskmanager: %s\n", logging.Message().c_str());
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  Status started = runner.Start();
  if (!started.IsOk()) {
    std::fprintf(stderr, "freshet taskmanager: %s\n", started.Message().c_str());
    return 1;
  }
  std::printf("TaskManager %s: RPC %s, data %s, %d slots, JobManager %s, log %s, Prometheus port %d\n",
              runner.ResourceId().c_str(), runner.RpcAddress().c_str(), runner.DataAddress().c_str(),
              settings.num_slots, settings.jobmanager_address.c_str(), ProcessLogFile().c_str(),
              runner.PrometheusPort());
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Log("taskmanager")->info("stopping on signal");
  runner.Stop();
  return 0;
}

}  // namespace freshet::internal
