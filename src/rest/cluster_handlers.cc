// /overview, /config, /taskmanagers/..., /jobmanager/...: the cluster as a
// whole, its TaskManagers and the JobManager process.

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "cluster/log_files.h"
#include "rest/metrics_json.h"
#include "rest/rest_handlers.h"

namespace freshet::internal {

namespace fs = std::filesystem;

namespace {

constexpr const char* kVersion = "Freshet " FRESHET_VERSION_STRING;

nlohmann::json HardwareJson(const HostResources& host) {
  return {{"cpuCores", host.cpu_cores},
          {"physicalMemory", host.physical_memory},
          {"freeMemory", host.free_memory},
          {"managedMemory", 0}};
}

int DataPort(const std::string& data_address) {
  size_t colon = data_address.rfind(':');
  if (colon == std::string::npos) return -1;
  try {
    return std::stoi(data_address.substr(colon + 1));
  } catch (const std::exception&) {
    return -1;
  }
}

nlohmann::json TaskManagerJson(const TaskManagerStatus& tm, const Clock& clock) {
  return {{"id", tm.id},
          {"path", tm.address},
          {"dataPort", DataPort(tm.data_address)},
          {"jmxPort", -1},
          // Flink's name for the time of the last heartbeat. In-process
          // TaskManagers need none: they are never late.
          {"timeSinceLastHeartbeat", tm.last_heartbeat_ms >= 0 ? tm.last_heartbeat_ms
                                     : tm.address == "local" ? clock.NowMillis()
                                                             : tm.registered_ms},
          {"slotsNumber", tm.slots_total},
          {"freeSlots", tm.slots_free},
          {"hardware", HardwareJson(tm.resources)}};
}

bool IsSecretKey(const std::string& key) {
  std::string lower = key;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* word : {"password", "secret", "token", "credential"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

Timestamp WallMillis(std::chrono::steady_clock::time_point t, const Clock& clock) {
  auto ago = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t);
  return clock.NowMillis() - ago.count();
}

nlohmann::json LogListJson(const std::vector<LogFileInfo>& files) {
  nlohmann::json logs = nlohmann::json::array();
  for (const LogFileInfo& f : files) logs.push_back({{"name", f.name}, {"size", f.size}, {"mtime", f.mtime_ms}});
  return {{"logs", std::move(logs)}};
}

nlohmann::json LogListJson(const std::string& dir) { return LogListJson(ListLogFiles(dir)); }

RestResponse LogTextResponse(Result<std::string> text) {
  if (!text.IsOk()) return ErrorResponse(text.GetStatus());
  RestResponse r;
  r.content_type = "text/plain; charset=UTF-8";
  r.body = std::move(text).Value();
  return r;
}

RestResponse LogFileResponse(const std::string& dir, const std::string& name) {
  return LogTextResponse(ReadLogFile(dir, name));
}

void AddClusterHandlers(RestRouter& router, const RestContext& ctx) {
  Dispatcher& dispatcher = *ctx.dispatcher;
  // The handlers are set up as the JobManager starts its REST endpoint:
  // this is the JobManager's start as far as monitoring can tell.
  const Timestamp started_ms = dispatcher.GetClock().NowMillis();

  router.Add("GET", "/overview", [&dispatcher, started_ms](const RestRequest&) {
    int running = 0, finished = 0, cancelled = 0, failed = 0;
    for (const JobSummary& job : dispatcher.Jobs()) {
      switch (job.status) {
        case JobStatus::kFinished:
          ++finished;
          break;
        case JobStatus::kCanceled:
          ++cancelled;
          break;
        case JobStatus::kFailed:
          ++failed;
          break;
        default:
          ++running;
      }
    }
    std::vector<TaskManagerStatus> tms = dispatcher.TaskManagers();
    int total = 0, free = 0;
    for (const TaskManagerStatus& tm : tms) {
      total += tm.slots_total;
      free += tm.slots_free;
    }
    return JsonResponse(200, {{"taskmanagers", tms.size()},
                              {"slots-total", total},
                              {"slots-available", free},
                              {"jobs-running", running},
                              {"jobs-finished", finished},
                              {"jobs-cancelled", cancelled},
                              {"jobs-failed", failed},
                              {"flink-version", kVersion},
                              {"flink-commit", ""},
                              // Not in Flink's shape: when the JobManager
                              // started and for how long it has run (ms), so
                              // a client need not trust its own clock.
                              {"jobmanager-start-time", started_ms},
                              {"jobmanager-uptime", dispatcher.GetClock().NowMillis() - started_ms}});
  });

  router.Add("GET", "/config", [&dispatcher](const RestRequest&) {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm local{};
    localtime_r(&t, &local);
    return JsonResponse(200, {{"refresh-interval", 3000},
                              {"timezone-name", local.tm_zone != nullptr ? local.tm_zone : "UTC"},
                              {"timezone-offset", static_cast<int64_t>(local.tm_gmtoff) * 1000},
                              {"flink-version", kVersion},
                              {"flink-revision", ""},
                              {"features",
                               {{"web-submit", true},
                                {"web-cancel", true},
                                {"web-rescale", false},
                                {"web-history", false}}}});
  });

  router.Add("GET", "/taskmanagers", [&dispatcher](const RestRequest&) {
    nlohmann::json list = nlohmann::json::array();
    for (const TaskManagerStatus& tm : dispatcher.TaskManagers()) {
      list.push_back(TaskManagerJson(tm, dispatcher.GetClock()));
    }
    return JsonResponse(200, {{"taskmanagers", std::move(list)}});
  });

  router.Add("GET", "/taskmanagers/:tmid", [&ctx, &dispatcher](const RestRequest& req) {
    Result<TaskManagerStatus> tm = dispatcher.TaskManager(req.Param("tmid"));
    if (!tm.IsOk()) return ErrorResponse(tm.GetStatus());
    nlohmann::json body = TaskManagerJson(*tm, dispatcher.GetClock());
    nlohmann::json slots = nlohmann::json::array();
    for (size_t i = 0; i < tm->slot_jobs.size(); ++i) {
      if (!tm->slot_jobs[i].empty()) slots.push_back({{"index", i}, {"jobId", tm->slot_jobs[i]}});
    }
    body["allocatedSlots"] = std::move(slots);
    body["metrics"] = TaskManagerMetricsObject(ctx.metrics, tm->id);
    return JsonResponse(200, body);
  });

  // An in-process TaskManager's logs are the JobManager's files; a
  // TaskManager process is asked for its own.
  router.Add("GET", "/taskmanagers/:tmid/logs", [&ctx, &dispatcher](const RestRequest& req) {
    Result<TaskManagerStatus> tm = dispatcher.TaskManager(req.Param("tmid"));
    if (!tm.IsOk()) return ErrorResponse(tm.GetStatus());
    if (!tm->log_dir.empty() || !ctx.list_remote_logs) return JsonResponse(200, LogListJson(tm->log_dir));
    Result<std::vector<LogFileInfo>> files = ctx.list_remote_logs(tm->id);
    if (!files.IsOk()) return ErrorResponse(files.GetStatus());
    return JsonResponse(200, LogListJson(*files));
  });

  router.Add("GET", "/taskmanagers/:tmid/logs/:name", [&ctx, &dispatcher](const RestRequest& req) {
    Result<TaskManagerStatus> tm = dispatcher.TaskManager(req.Param("tmid"));
    if (!tm.IsOk()) return ErrorResponse(tm.GetStatus());
    if (!tm->log_dir.empty() || !ctx.read_remote_log) return LogFileResponse(tm->log_dir, req.Param("name"));
    return LogTextResponse(ctx.read_remote_log(tm->id, req.Param("name")));
  });

  router.Add("GET", "/taskmanagers/:tmid/metrics", [&ctx, &dispatcher](const RestRequest& req) {
    Result<TaskManagerStatus> tm = dispatcher.TaskManager(req.Param("tmid"));
    if (!tm.IsOk()) return ErrorResponse(tm.GetStatus());
    return MetricsResponse(req, ReadTaskManagerMetrics(ctx.metrics, tm->id));
  });

  router.Add("GET", "/jobmanager/config", [&ctx](const RestRequest&) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [key, value] : ctx.config.Values()) {
      list.push_back({{"key", key}, {"value", IsSecretKey(key) ? "******" : value}});
    }
    return JsonResponse(200, list);
  });

  router.Add("GET", "/jobmanager/logs",
             [&ctx](const RestRequest&) { return JsonResponse(200, LogListJson(ctx.log_dir)); });

  router.Add("GET", "/jobmanager/logs/:name",
             [&ctx](const RestRequest& req) { return LogFileResponse(ctx.log_dir, req.Param("name")); });

  router.Add("GET", "/jobmanager/metrics",
             [&ctx](const RestRequest& req) { return MetricsResponse(req, ReadJobManagerMetrics(ctx.metrics)); });
}

void AddAllHandlers(RestRouter& router, const RestContext& context) {
  AddClusterHandlers(router, context);
  AddJobHandlers(router, context);
  AddJarHandlers(router, context);
  AddJobMetricHandlers(router, context);
}

}  // namespace freshet::internal
