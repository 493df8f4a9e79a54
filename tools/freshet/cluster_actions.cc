#include "cluster_actions.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <thread>

#include "cluster/job_library.h"
#include "cluster/job_master.h"
#include "cluster/jobmanager/jobmanager_process.h"
#include "common/config_options.h"
#include "common/logging.h"
#include "rest_client.h"

namespace freshet::internal {

namespace {

using Clock = std::chrono::steady_clock;

bool IsJobId(const std::string& id) {
  return id.size() == 32 &&
         std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

Result<RestClient> Connect(const ClusterTarget& target) {
  FRESHET_ASSIGN_OR_RETURN(std::string address, ResolveJobManager(target));
  return RestClient::Create(address);
}

/// Local time of a wall-clock millisecond timestamp, `format` as strftime's.
std::string LocalTime(int64_t ms, const char* format) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm local{};
  localtime_r(&t, &local);
  char text[64];
  std::strftime(text, sizeof(text), format, &local);
  return text;
}

std::string StringOr(const nlohmann::json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

int64_t IntOr(const nlohmann::json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

bool Terminal(const std::string& state) { return state == "FINISHED" || state == "FAILED" || state == "CANCELED"; }

int FollowJob(RestClient& client, const std::string& job_id);

/// Polls an asynchronous operation (savepoint, stop, disposal) until it
/// completes; returns its "operation" object. Errors: the request failed,
/// the operation's failure cause, no answer within `timeout`.
Result<nlohmann::json> AwaitOperation(RestClient& client, const std::string& path, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    FRESHET_ASSIGN_OR_RETURN(nlohmann::json status, client.Get(path));
    if (status.contains("status") && StringOr(status["status"], "id", "") == "COMPLETED") {
      nlohmann::json operation = status.value("operation", nlohmann::json::object());
      if (operation.is_object() && operation.contains("failure-cause")) {
        return Status::Internal(StringOr(operation["failure-cause"], "stack-trace", "the operation failed"));
      }
      return operation;
    }
    if (Clock::now() >= deadline) {
      return Status::Unavailable(fmt::format("the operation did not complete within {} s (still IN_PROGRESS at {})",
                                             timeout.count(), client.Address() + path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

/// The job's progress line: state, records, the latest checkpoint.
std::string ProgressLine(RestClient& client, const std::string& job_id, const nlohmann::json& details) {
  std::string state = StringOr(details, "state", "UNKNOWN");
  nlohmann::json records = details.value("freshet", nlohmann::json::object());
  std::string checkpoint = "no checkpoint yet";
  Result<nlohmann::json> checkpoints = client.Get("/jobs/" + job_id + "/checkpoints");
  if (checkpoints.IsOk()) {
    const nlohmann::json& latest = (*checkpoints)["latest"]["completed"];
    if (latest.is_object()) {
      checkpoint = fmt::format("last checkpoint {} at {}", IntOr(latest, "id", 0),
                               LocalTime(IntOr(latest, "latest_ack_timestamp", 0), "%H:%M:%S"));
    }
  }
  return fmt::format("{} job {} {}: records in {}, out {}; {}",
                     LocalTime(std::time(nullptr) * int64_t{1000}, "%H:%M:%S"),
                     job_id, state, IntOr(records, "records-in", 0), IntOr(records, "records-out", 0), checkpoint);
}

}  // namespace

// ---------------------------------------------------------------------------

int JobManagerAction(int argc, char** argv) {
  // Before any thread starts: every thread inherits the mask, so SIGTERM
  // and SIGINT reach only the sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto options = ParseVerbOptions("jobmanager", argc, argv, 2, {}, {});
  if (!options.IsOk()) return Fail(options.GetStatus());
  if (options->target.jobmanager) return Fail(Status::InvalidArgument("jobmanager: -m is not an option here"));
  if (!options->positional.empty()) {
    return Fail(Status::InvalidArgument(fmt::format("jobmanager: unexpected argument '{}'", options->positional[0])));
  }
  Configuration conf;
  std::string file = options->target.config_file;
  if (file.empty()) {
    const char* dir = std::getenv("FRESHET_CONF_DIR");
    std::error_code ec;
    if (dir != nullptr && *dir != '\0' && std::filesystem::exists(std::filesystem::path(dir) / "freshet.yaml", ec)) {
      file = (std::filesystem::path(dir) / "freshet.yaml").string();
    }
  }
  if (!file.empty()) {
    auto loaded = LoadConfigurationFile(file);
    if (!loaded.IsOk()) return Fail(loaded.GetStatus());
    conf = std::move(loaded).Value();
  }
  for (const auto& [key, value] : options->target.dynamic.Values()) {
    // The local TaskManager count is this process's own key (see
    // jobmanager_process.h) unless the registry knows it.
    if (key == kLocalTaskManagersKey && FindConfigOption(key) == nullptr) {
      conf.Set(key, value);
      continue;
    }
    Status s = ApplyDynamicProperty(conf, key + "=" + value);
    if (!s.IsOk()) return Fail(s);
  }
  Status logging = InitProcessLogging(conf, "jobmanager");
  if (!logging.IsOk()) return Fail(logging);

  auto process = JobManagerProcess::Start(conf);
  if (!process.IsOk()) return Fail(process.GetStatus());
  std::printf("REST endpoint: %s\n", (*process)->RestAddress().c_str());
  std::printf("RPC endpoint: %s\n", (*process)->RpcAddress().c_str());
  if ((*process)->PrometheusPort() != 0) std::printf("Prometheus endpoint: port %d\n", (*process)->PrometheusPort());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log("jobmanager")->info("received {}; cancelling the jobs and shutting down",
                          signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*process)->Shutdown();
  process->reset();
  Log("jobmanager")->info("JobManager stopped");
  std::printf("JobManager stopped.\n");
  std::fflush(stdout);
  return 0;
}

int RunOnCluster(const ProgramOptions& options) {
  auto client = Connect(options.target);
  if (!client.IsOk()) return Fail(client.GetStatus());
  auto upload = client->Upload("/jars/upload", "jarfile", options.library);
  if (!upload.IsOk()) return Fail(upload.GetStatus());
  std::string jar_id = std::filesystem::path(StringOr(*upload, "filename", "")).filename().string();
  nlohmann::json body = {{"programArgsList", options.args},
                         {"allowNonRestoredState", options.allow_non_restored_state}};
  if (options.parallelism) body["parallelism"] = *options.parallelism;
  if (!options.savepoint_path.empty()) body["savepointPath"] = options.savepoint_path;
  nlohmann::json config = nlohmann::json::object();
  for (const auto& [key, value] : options.target.dynamic.Values()) config[key] = value;
  body["flinkConfiguration"] = std::move(config);
  auto run = client->Post("/jars/" + jar_id + "/run", body);
  if (!run.IsOk()) return Fail(run.GetStatus());
  std::string job_id = StringOr(*run, "jobid", "");
  std::printf("Job has been submitted with JobID %s\n", job_id.c_str());
  std::fflush(stdout);
  if (options.detached) return 0;
  return FollowJob(*client, job_id);
}

namespace {

/// Attached runs: follows the job, a line of progress every 2 s, until it
/// ends; 0 when it FINISHED, else 1 with its state and root exception.
int FollowJob(RestClient& client, const std::string& job_id) {
  auto last_line = Clock::now() - std::chrono::seconds(2);
  nlohmann::json details;
  while (true) {
    auto got = client.Get("/jobs/" + job_id);
    if (!got.IsOk()) return Fail(got.GetStatus());
    details = std::move(got).Value();
    std::string state = StringOr(details, "state", "UNKNOWN");
    if (Terminal(state) || Clock::now() - last_line >= std::chrono::seconds(2)) {
      std::printf("%s\n", ProgressLine(client, job_id, details).c_str());
      std::fflush(stdout);
      last_line = Clock::now();
    }
    if (Terminal(state)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::string state = StringOr(details, "state", "UNKNOWN");
  if (state == "FINISHED") {
    std::printf("Job %s has finished (runtime %lld ms).\n", job_id.c_str(),
                static_cast<long long>(IntOr(details, "duration", 0)));
    return 0;
  }
  std::string cause;
  auto exceptions = client.Get("/jobs/" + job_id + "/exceptions");
  if (exceptions.IsOk()) cause = StringOr(*exceptions, "root-exception", "");
  return Fail(Status::Internal(fmt::format("job {} {}{}", job_id, state, cause.empty() ? "" : ": " + cause)));
}

}  // namespace

namespace {

/// Slots the job the library's program builds needs, planned in this
/// process before the JobManager starts so its TaskManager is large enough.
/// Errors: the library does not load, the program builds no graph.
Result<int> RequiredSlotsOf(const std::string& library_path, const std::vector<std::string>& args,
                            const Configuration& config) {
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> library, JobLibrary::Load(library_path));
  // The graph holds the library's code: it goes before the library.
  FRESHET_ASSIGN_OR_RETURN(StreamGraph graph, library->BuildPlan(args, config));
  JobGraph job = BuildJobGraph(std::make_shared<const StreamGraph>(std::move(graph)), "");
  return JobMaster::RequiredSlots(job);
}

/// The JobManager configuration of an embedded run with the web UI: the
/// configuration file, -D on top, one local TaskManager of at least
/// `required_slots` slots; the control plane on any free port and uploads in
/// a temporary directory unless -D names them (a cluster's file must not
/// make this run collide with that cluster).
Result<Configuration> WebUiConfiguration(const ProgramOptions& options) {
  Configuration conf;
  std::string file = ConfigurationFileOf(options.target);
  if (!file.empty()) {
    FRESHET_ASSIGN_OR_RETURN(Configuration loaded, LoadConfigurationFile(file));
    for (const auto& [key, value] : loaded.Values()) {
      if (key != "web.upload.dir" && key != "jobmanager.rpc.port") conf.Set(key, value);
    }
  }
  conf.Set("jobmanager.rpc.port", "0");
  for (const auto& [key, value] : options.target.dynamic.Values()) {
    FRESHET_RETURN_IF_ERROR(ApplyDynamicProperty(conf, key + "=" + value));
  }
  conf.Set(std::string(kLocalTaskManagersKey), "1");
  return conf;
}

}  // namespace

int RunWithWebUi(const ProgramOptions& options) {
  // Before any thread starts (see JobManagerAction): SIGINT and SIGTERM
  // reach only the watcher below, which cancels the job.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto conf = WebUiConfiguration(options);
  if (!conf.IsOk()) return Fail(conf.GetStatus());
  Configuration job_conf = *conf;
  for (const auto& [key, value] : options.config.Values()) job_conf.Set(key, value);
  auto required = RequiredSlotsOf(options.library, options.args, job_conf);
  if (!required.IsOk()) return Fail(required.GetStatus());
  auto configured = GetIntOption(*conf, "taskmanager.numberOfTaskSlots");
  if (!configured.IsOk()) return Fail(configured.GetStatus());
  conf->Set("taskmanager.numberOfTaskSlots", std::to_string(std::max<int64_t>(*configured, *required)));
  // The log the web UI's JobManager page shows: <env.log.dir>/freshet-client.log.
  // Without it the run goes on, logging to stderr only.
  Status logging = InitProcessLogging(*conf, "client");
  if (!logging.IsOk()) {
    std::fprintf(stderr, "freshet run: no log file, logging to stderr only: %s\n", logging.Message().c_str());
  }

  auto started = JobManagerProcess::Start(*conf);
  if (!started.IsOk()) return Fail(started.GetStatus().WithContext("run: the web UI cannot start"));
  std::unique_ptr<JobManagerProcess> process = std::move(started).Value();
  std::printf("Web UI: %s\n", process->RestAddress().c_str());
  std::fflush(stdout);

  // The watcher: a signal cancels the job (or, before it is submitted,
  // keeps it from starting) and ends the linger.
  std::mutex mu;
  std::condition_variable signalled;
  int received = 0;
  bool stop_watching = false;
  std::string job_id;
  Dispatcher& dispatcher = process->GetDispatcher();
  std::thread watcher([&] {
    const timespec tick{0, 100'000'000};
    while (true) {
      {
        std::lock_guard lock(mu);
        if (stop_watching) return;
      }
      int number = sigtimedwait(&signals, nullptr, &tick);
      if (number <= 0) continue;
      std::string to_cancel;
      {
        std::lock_guard lock(mu);
        received = number;
        to_cancel = job_id;
      }
      signalled.notify_all();
      Log("cli")->info("received {}; cancelling the job", number == SIGTERM ? "SIGTERM" : "SIGINT");
      if (!to_cancel.empty()) dispatcher.CancelJob(to_cancel).IgnoreError();
    }
  });
  auto finish = [&](int code) {
    {
      std::lock_guard lock(mu);
      stop_watching = true;
    }
    watcher.join();
    process->Shutdown();
    return code;
  };

  // As POST /jars/upload and /jars/:jarid/run do: the library is listed in
  // the web UI and the job is built from the uploaded copy.
  std::string bytes;
  {
    std::ifstream in(options.library, std::ios::binary);
    if (in.is_open()) bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.is_open() || in.bad()) {
      return finish(Fail(Status::IoError(fmt::format("run: cannot read {}", options.library))));
    }
  }
  auto jar = dispatcher.UploadJar(std::filesystem::path(options.library).filename().string(), bytes);
  if (!jar.IsOk()) return finish(Fail(jar.GetStatus()));
  JarRunRequest request;
  request.args = options.args;
  request.parallelism = options.parallelism;
  request.savepoint_path = options.savepoint_path;
  request.allow_non_restored_state = options.allow_non_restored_state;
  // Already in the JobManager's configuration; given again so that the job
  // lists them as what its run set.
  request.config = options.target.dynamic.Values();
  {
    std::lock_guard lock(mu);
    if (received != 0) return finish(Fail(Status::Cancelled("run: interrupted before the job started")));
  }
  auto submitted = dispatcher.RunJar(jar->id, request);
  if (!submitted.IsOk()) return finish(Fail(submitted.GetStatus()));
  bool cancel_now = false;
  {
    std::lock_guard lock(mu);
    job_id = *submitted;
    cancel_now = received != 0;
  }
  // A signal between the submission and job_id being set found no job.
  if (cancel_now) dispatcher.CancelJob(*submitted).IgnoreError();
  std::printf("Job has been submitted with JobID %s\n", submitted->c_str());
  std::fflush(stdout);

  std::string host = process->Options().rest_bind_address;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  auto client = RestClient::Create(fmt::format("{}:{}", host, process->RestPort()));
  if (!client.IsOk()) return finish(Fail(client.GetStatus()));
  int code = FollowJob(*client, *submitted);

  if (options.web_ui_linger_s > 0) {
    std::printf("Web UI stays up for %d s at %s (SIGINT or SIGTERM ends it).\n", options.web_ui_linger_s,
                process->RestAddress().c_str());
    std::fflush(stdout);
    std::unique_lock lock(mu);
    signalled.wait_for(lock, std::chrono::seconds(options.web_ui_linger_s), [&] { return received != 0; });
  }
  return finish(code);
}

int ListAction(int argc, char** argv) {
  auto options = ParseVerbOptions("list", argc, argv, 2, {}, {"-r", "--running", "-s", "--scheduled", "-a", "--all"});
  if (!options.IsOk()) return Fail(options.GetStatus());
  if (!options->positional.empty()) {
    return Fail(Status::InvalidArgument(fmt::format("list: unexpected argument '{}'", options->positional[0])));
  }
  bool all = options->Has({"-a", "--all"});
  bool running = all || options->Has({"-r", "--running"}) || !options->Has({"-s", "--scheduled"});
  bool scheduled = all || options->Has({"-s", "--scheduled"}) || !options->Has({"-r", "--running"});
  auto client = Connect(options->target);
  if (!client.IsOk()) return Fail(client.GetStatus());
  auto overview = client->Get("/jobs/overview");
  if (!overview.IsOk()) return Fail(overview.GetStatus());
  std::vector<std::string> running_lines, scheduled_lines, ended_lines;
  for (const nlohmann::json& job : (*overview)["jobs"]) {
    std::string state = StringOr(job, "state", "UNKNOWN");
    std::string line = fmt::format("{} : {} : {} ({})", LocalTime(IntOr(job, "start-time", 0), "%d.%m.%Y %H:%M:%S"),
                                   StringOr(job, "jid", "?"), StringOr(job, "name", ""), state);
    if (state == "CREATED") {
      scheduled_lines.push_back(line);
    } else if (Terminal(state)) {
      ended_lines.push_back(line);
    } else {
      running_lines.push_back(line);
    }
  }
  auto print = [](const char* title, const char* none, const std::vector<std::string>& lines) {
    if (lines.empty()) {
      std::printf("%s\n", none);
      return;
    }
    std::printf("%s\n", title);
    for (const std::string& l : lines) std::printf("%s\n", l.c_str());
    std::printf("--------------------------------------------------------------\n");
  };
  if (running) {
    print("------------------ Running/Restarting Jobs -------------------", "No running jobs.", running_lines);
  }
  if (scheduled) {
    print("----------------------- Scheduled Jobs -----------------------", "No scheduled jobs.", scheduled_lines);
  }
  if (all) print("---------------------- Terminated Jobs -----------------------", "No terminated jobs.", ended_lines);
  return 0;
}

int CancelAction(int argc, char** argv) {
  auto options = ParseVerbOptions("cancel", argc, argv, 2, {}, {});
  if (!options.IsOk()) return Fail(options.GetStatus());
  if (options->positional.size() != 1) return Fail(Status::InvalidArgument("cancel: give exactly one job id"));
  const std::string& job_id = options->positional[0];
  if (!IsJobId(job_id)) {
    return Fail(Status::InvalidArgument(fmt::format("cancel: '{}' is not a job id (32 hexadecimal digits)", job_id)));
  }
  auto client = Connect(options->target);
  if (!client.IsOk()) return Fail(client.GetStatus());
  std::printf("Cancelling job %s.\n", job_id.c_str());
  auto cancelled = client->Patch("/jobs/" + job_id + "?mode=cancel");
  if (!cancelled.IsOk()) return Fail(cancelled.GetStatus());
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (true) {
    auto details = client->Get("/jobs/" + job_id);
    if (!details.IsOk()) return Fail(details.GetStatus());
    std::string state = StringOr(*details, "state", "UNKNOWN");
    if (Terminal(state)) {
      std::printf("Cancelled job %s (%s).\n", job_id.c_str(), state.c_str());
      return 0;
    }
    if (Clock::now() >= deadline) {
      return Fail(Status::Unavailable(fmt::format("cancel: job {} is still {} after 60 s", job_id, state)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int StopAction(int argc, char** argv) {
  auto options = ParseVerbOptions("stop", argc, argv, 2, {"-p", "--savepointPath"}, {"-d", "--drain"});
  if (!options.IsOk()) return Fail(options.GetStatus());
  if (options->positional.size() != 1) return Fail(Status::InvalidArgument("stop: give exactly one job id"));
  const std::string& job_id = options->positional[0];
  if (!IsJobId(job_id)) {
    return Fail(Status::InvalidArgument(fmt::format("stop: '{}' is not a job id (32 hexadecimal digits)", job_id)));
  }
  auto client = Connect(options->target);
  if (!client.IsOk()) return Fail(client.GetStatus());
  nlohmann::json body = {{"drain", options->Has({"-d", "--drain"})}};
  if (const std::string* path = options->Value({"-p", "--savepointPath"})) body["targetDirectory"] = *path;
  std::printf("Suspending job \"%s\" with a savepoint.\n", job_id.c_str());
  auto trigger = client->Post("/jobs/" + job_id + "/stop", body);
  if (!trigger.IsOk()) return Fail(trigger.GetStatus());
  auto done = AwaitOperation(*client, "/jobs/" + job_id + "/savepoints/" + StringOr(*trigger, "request-id", ""),
                             std::chrono::seconds(600));
  if (!done.IsOk()) return Fail(done.GetStatus().WithContext("stop: the savepoint failed"));
  std::printf("Savepoint completed. Path: %s\n", StringOr(*done, "location", "").c_str());
  return 0;
}

int SavepointAction(int argc, char** argv) {
  auto options = ParseVerbOptions("savepoint", argc, argv, 2, {"-d", "--dispose"}, {});
  if (!options.IsOk()) return Fail(options.GetStatus());
  if (const std::string* path = options->Value({"-d", "--dispose"})) {
    if (!options->positional.empty()) {
      return Fail(Status::InvalidArgument("savepoint: --dispose takes the savepoint path and nothing else"));
    }
    auto client = Connect(options->target);
    if (!client.IsOk()) return Fail(client.GetStatus());
    auto trigger = client->Post("/savepoint-disposal", {{"savepoint-path", *path}});
    if (!trigger.IsOk()) return Fail(trigger.GetStatus());
    auto done = AwaitOperation(*client, "/savepoint-disposal/" + StringOr(*trigger, "request-id", ""),
                               std::chrono::seconds(600));
    if (!done.IsOk()) return Fail(done.GetStatus().WithContext("savepoint: disposing " + *path + " failed"));
    std::printf("Savepoint '%s' disposed.\n", path->c_str());
    return 0;
  }
  if (options->positional.empty() || options->positional.size() > 2) {
    return Fail(Status::InvalidArgument("savepoint: give a job id and optionally a target directory"));
  }
  const std::string& job_id = options->positional[0];
  if (!IsJobId(job_id)) {
    return Fail(
        Status::InvalidArgument(fmt::format("savepoint: '{}' is not a job id (32 hexadecimal digits)", job_id)));
  }
  auto client = Connect(options->target);
  if (!client.IsOk()) return Fail(client.GetStatus());
  nlohmann::json body = {{"cancel-job", false}};
  if (options->positional.size() == 2) body["target-directory"] = options->positional[1];
  std::printf("Triggering savepoint for job %s.\n", job_id.c_str());
  auto trigger = client->Post("/jobs/" + job_id + "/savepoints", body);
  if (!trigger.IsOk()) return Fail(trigger.GetStatus());
  auto done = AwaitOperation(*client, "/jobs/" + job_id + "/savepoints/" + StringOr(*trigger, "request-id", ""),
                             std::chrono::seconds(600));
  if (!done.IsOk()) return Fail(done.GetStatus().WithContext("savepoint failed"));
  std::printf("Savepoint completed. Path: %s\n", StringOr(*done, "location", "").c_str());
  std::printf("You can resume your program from this savepoint with the run command (-s).\n");
  return 0;
}

int CheckpointAction(int argc, char** argv) {
  auto options = ParseVerbOptions("checkpoint", argc, argv, 2, {}, {"--full"});
  if (!options.IsOk()) return Fail(options.GetStatus());
  if (options->positional.size() != 1) return Fail(Status::InvalidArgument("checkpoint: give exactly one job id"));
  const std::string& job_id = options->positional[0];
  if (!IsJobId(job_id)) {
    return Fail(
        Status::InvalidArgument(fmt::format("checkpoint: '{}' is not a job id (32 hexadecimal digits)", job_id)));
  }
  auto client = Connect(options->target);
  if (!client.IsOk()) return Fail(client.GetStatus());
  bool full = options->Has({"--full"});
  std::printf("Triggering %scheckpoint for job %s.\n", full ? "full " : "", job_id.c_str());
  std::fflush(stdout);
  auto trigger = client->Post("/jobs/" + job_id + "/checkpoints",
                              nlohmann::json{{"checkpointType", full ? "FULL" : "CONFIGURED"}});
  if (!trigger.IsOk()) return Fail(trigger.GetStatus().WithContext("checkpoint"));
  // A checkpoint waits for max-concurrent-checkpoints in flight and ends
  // by the job's checkpoint timeout at the latest (10 min by default).
  auto done = AwaitOperation(*client, "/jobs/" + job_id + "/checkpoints/" + StringOr(*trigger, "request-id", ""),
                             std::chrono::seconds(1800));
  if (!done.IsOk()) return Fail(done.GetStatus().WithContext("checkpoint for job " + job_id + " failed"));
  std::printf("Checkpoint %lld for job %s completed.\n", static_cast<long long>(IntOr(*done, "checkpointId", -1)),
              job_id.c_str());
  return 0;
}

}  // namespace freshet::internal
