#pragma once
// The handlers of the REST endpoint, by area, in the paths and JSON shapes
// of Flink's REST API v1 (/v1/... is served as well as the bare paths):
//
//   cluster_handlers.cc  /overview, /config, /taskmanagers/..., /jobmanager/...
//   job_handlers.cc      /jobs/..., /savepoint-disposal/...
//   jar_handlers.cc      /jars/...
//
// Every handler only reads the Dispatcher or asks it to act; none blocks
// for long except running a job library's program to build its graph
// (/jars/:jarid/run and /plan).

#include <functional>
#include <string>

#include "cluster/jobmanager/dispatcher.h"
#include "cluster/log_files.h"
#include "freshet/configuration.h"
#include "rest/rest_router.h"

namespace freshet::internal {

class MetricView;

/// What the handlers work on. Outlives the router that holds them.
struct RestContext {
  Dispatcher* dispatcher = nullptr;
  /// The JobManager's configuration, shown by /jobmanager/config.
  Configuration config;
  /// Directory of the JobManager's log files; empty: none.
  std::string log_dir;
  /// "http://host:port" of the endpoint, once bound.
  std::function<std::string()> address;
  /// Metrics of jobs, tasks and processes (a MetricRegistry, or the
  /// JobManager process's MetricFetcher); nullptr: the metric endpoints
  /// answer with empty lists.
  const MetricView* metrics = nullptr;
  /// The log files of a TaskManager in another process, and the tail of
  /// one of them, fetched from it; unset: only in-process TaskManagers'
  /// logs are served.
  std::function<Result<std::vector<LogFileInfo>>(const std::string& tm_id)> list_remote_logs;
  std::function<Result<std::string>(const std::string& tm_id, const std::string& name)> read_remote_log;
};

void AddClusterHandlers(RestRouter& router, const RestContext& context);
void AddJobHandlers(RestRouter& router, const RestContext& context);
void AddJarHandlers(RestRouter& router, const RestContext& context);

/// Every handler above.
void AddAllHandlers(RestRouter& router, const RestContext& context);

/// Wall-clock milliseconds of a steady-clock time point, by its distance
/// from now.
Timestamp WallMillis(std::chrono::steady_clock::time_point t, const Clock& clock);

/// The log files of a directory: {"logs": [{"name", "size", "mtime"}]}.
nlohmann::json LogListJson(const std::string& dir);
/// Serves the file `name` of `dir` as text when `name` is one of its
/// regular files (never a path: no traversal); else 404.
RestResponse LogFileResponse(const std::string& dir, const std::string& name);

}  // namespace freshet::internal
