// The REST API over HTTP, in one process: a Dispatcher with two in-process
// TaskManagers of two slots each behind a RestServer on an ephemeral port.
// Jobs come from job libraries uploaded as multipart forms, as the CLI and
// Flink's web UI upload them.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "cluster/job_library.h"
#include "cluster/jobmanager/dispatcher.h"
#include "metrics/metric_registry.h"
#include "deploy/deploy_env.h"
#include "rest/rest_server.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

namespace fs = std::filesystem;
using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::JobPath;
using deploy_test::WaitUntil;
using ::testing::HasSubstr;

struct Answer {
  int status = 0;
  nlohmann::json body;
  std::string text;
  std::string allow;  // the Allow header
};

/// The servers' request limit: above the job libraries of sanitizer builds
/// (about 17 MiB with ASan and debug information).
constexpr size_t kMaxBodyBytes = size_t{64} << 20;

class RestApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.Sub("logs"));
    std::ofstream(dir_.Sub("logs/freshet-jobmanager.log")) << "a log line\n";
    std::ofstream(dir_.Sub("secret.txt")) << "not for clients\n";
    for (const char* id : {"tm-a", "tm-b"}) {
      executors_.push_back(std::make_unique<TaskExecutor>(id, 2, Clock::System()));
    }
    DispatcherOptions options;
    options.upload_dir = dir_.Sub("uploads");
    // A cluster setting every job's configuration holds.
    options.job_defaults.Set("taskmanager.numberOfTaskSlots", "2");
    auto dispatcher = Dispatcher::Create(options);
    ASSERT_TRUE(dispatcher.IsOk()) << dispatcher.GetStatus().Message();
    dispatcher_ = std::move(dispatcher).Value();
    for (auto& e : executors_) {
      ASSERT_TRUE(dispatcher_->RegisterTaskManager(e.get(), {"local", dir_.Sub("logs")}).IsOk());
    }
    RestContext context;
    context.dispatcher = dispatcher_.get();
    context.config.Set("rest.port", "0").Set("s3.secret-key", "hunter2");
    context.log_dir = dir_.Sub("logs");
    RestServerOptions rest;
    rest.port = 0;
    rest.max_body_bytes = kMaxBodyBytes;
    server_ = std::make_unique<RestServer>(std::move(context), rest);
    Status started = server_->Start();
    ASSERT_TRUE(started.IsOk()) << started.Message();
    ASSERT_GT(server_->Port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->Port());
    client_->set_read_timeout(std::chrono::seconds(60));
  }

  void TearDown() override {
    client_.reset();
    server_->Stop();
    dispatcher_->Shutdown();
  }

  static Answer ToAnswer(const httplib::Result& r) {
    Answer a;
    if (!r) {
      ADD_FAILURE() << "no HTTP answer: " << httplib::to_string(r.error());
      return a;
    }
    a.status = r->status;
    a.text = r->body;
    a.allow = r->get_header_value("Allow");
    a.body = nlohmann::json::parse(r->body, nullptr, false);
    return a;
  }
  Answer Get(const std::string& path) { return ToAnswer(client_->Get(path.c_str())); }
  Answer Post(const std::string& path, const std::string& body) {
    return ToAnswer(client_->Post(path.c_str(), body, "application/json"));
  }
  Answer Post(const std::string& path, const nlohmann::json& body) { return Post(path, body.dump()); }
  Answer Patch(const std::string& path) { return ToAnswer(client_->Patch(path.c_str())); }
  Answer Delete(const std::string& path) { return ToAnswer(client_->Delete(path.c_str())); }
  Answer UploadBytes(const std::string& filename, std::string bytes, const std::string& field = "jarfile") {
    httplib::MultipartFormDataItems items = {{field, std::move(bytes), filename, "application/x-java-archive"}};
    return ToAnswer(client_->Post("/jars/upload", items));
  }

  /// Uploads a test job library; returns its jar id.
  std::string Upload(const std::string& job) {
    std::ifstream in(JobPath(job), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Answer a = UploadBytes(job + ".so", std::move(bytes));
    EXPECT_EQ(a.status, 200) << a.text;
    EXPECT_EQ(a.body.value("status", ""), "success") << a.text;
    return fs::path(a.body.value("filename", "")).filename().string();
  }

  std::string Run(const std::string& jar_id, const nlohmann::json& body) {
    Answer a = Post("/jars/" + jar_id + "/run", body);
    EXPECT_EQ(a.status, 200) << a.text;
    return a.body.value("jobid", "");
  }

  std::string StateOf(const std::string& job_id) { return Get("/jobs/" + job_id).body.value("state", ""); }

  /// Waits until the job is in `state`; false after 30 s.
  bool WaitForState(const std::string& job_id, const std::string& state) {
    return WaitUntil([&] { return StateOf(job_id) == state; });
  }

  /// Waits for an asynchronous savepoint operation; returns its final answer.
  Answer AwaitSavepoint(const std::string& job_id, const std::string& trigger) {
    Answer a;
    bool done = WaitUntil([&] {
      a = Get("/jobs/" + job_id + "/savepoints/" + trigger);
      return a.status != 200 || a.body["status"]["id"] == "COMPLETED";
    });
    EXPECT_TRUE(done) << "savepoint " << trigger << " still in progress: " << a.text;
    return a;
  }

  /// Waits for a checkpoint on request; returns its final answer.
  Answer AwaitCheckpoint(const std::string& job_id, const std::string& trigger) {
    Answer a;
    bool done = WaitUntil(
        [&] {
          a = Get("/jobs/" + job_id + "/checkpoints/" + trigger);
          return a.status != 200 || a.body["status"]["id"] == "COMPLETED";
        },
        std::chrono::seconds(120));
    EXPECT_TRUE(done) << "checkpoint " << trigger << " still in progress: " << a.text;
    return a;
  }

  void ExpectError(const Answer& a, int status, const std::string& part) {
    EXPECT_EQ(a.status, status) << a.text;
    ASSERT_TRUE(a.body.is_object() && a.body.contains("errors") && a.body["errors"].is_array()) << a.text;
    ASSERT_EQ(a.body["errors"].size(), 1u) << a.text;
    EXPECT_THAT(a.body["errors"][0].get<std::string>(), HasSubstr(part));
  }

  nlohmann::json TickerRun(int parallelism, const nlohmann::json& config = nlohmann::json::object()) {
    std::string output = dir_.Sub("ticks-" + std::to_string(runs_++));
    return {{"programArgsList", {"--rate", "400", "--keys", "4", "--output", output}},
            {"parallelism", parallelism},
            {"flinkConfiguration", config}};
  }

  test_support::TempDir dir_{"freshet-rest"};
  std::vector<std::unique_ptr<TaskExecutor>> executors_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<RestServer> server_;
  std::unique_ptr<httplib::Client> client_;
  int runs_ = 0;
};

TEST_F(RestApiTest, RunsAnUploadedLibraryAndDescribesTheJob) {
  std::string jar = Upload("sum_job");
  EXPECT_THAT(jar, ::testing::MatchesRegex("[0-9a-f-]{36}_sum_job\\.so"));
  Answer jars = Get("/jars");
  ASSERT_EQ(jars.status, 200);
  ASSERT_EQ(jars.body["files"].size(), 1u) << jars.text;
  EXPECT_EQ(jars.body["files"][0]["id"], jar);
  EXPECT_EQ(jars.body["files"][0]["name"], "sum_job.so");
  EXPECT_EQ(jars.body["address"], server_->Address());

  fs::path output = dir_.Sub("sums");
  std::string job = Run(jar, {{"programArgs", "--count 4000 --keys 7 --output '" + output.string() + "'"},
                              {"parallelism", 2}});
  ASSERT_EQ(job.size(), 32u);
  ASSERT_TRUE(WaitForState(job, "FINISHED")) << Get("/jobs/" + job).text;
  EXPECT_EQ(FinalSums(output), ExpectedSums(4000, 7));
  // The job carries what a remote TaskManager needs to rebuild its graph.
  Result<JobDetails> submitted = dispatcher_->Job(job);
  ASSERT_TRUE(submitted.IsOk());
  ASSERT_NE(submitted->graph->artifact, nullptr);
  const JobArtifact& artifact = *submitted->graph->artifact;
  EXPECT_EQ(artifact.args, (std::vector<std::string>{"--count", "4000", "--keys", "7", "--output", output.string()}));
  EXPECT_EQ(artifact.config.at("parallelism.default"), "2");
  EXPECT_EQ(artifact.library_checksum, *FileSha256(JobPath("sum_job")));

  Answer overview = Get("/overview");
  ASSERT_EQ(overview.status, 200);
  EXPECT_EQ(overview.body["taskmanagers"], 2);
  EXPECT_EQ(overview.body["slots-total"], 4);
  EXPECT_TRUE(WaitUntil([&] { return Get("/overview").body["slots-available"] == 4; }));
  EXPECT_EQ(overview.body["jobs-finished"], 1);
  EXPECT_EQ(overview.body["jobs-running"], 0);
  EXPECT_TRUE(overview.body.contains("flink-version"));
  // The JobManager's start: before this request (and not long before, as
  // the fixture started it for this test), with the uptime counted from it.
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_TRUE(overview.body["jobmanager-start-time"].is_number_integer()) << overview.text;
  int64_t started_ms = overview.body["jobmanager-start-time"];
  EXPECT_LE(started_ms, now_ms);
  EXPECT_GT(started_ms, now_ms - 10 * 60 * 1000);
  int64_t uptime_ms = overview.body["jobmanager-uptime"];
  EXPECT_GE(uptime_ms, 0);
  EXPECT_LE(started_ms + uptime_ms, now_ms + 1000);
  Answer later = Get("/overview");
  EXPECT_EQ(later.body["jobmanager-start-time"], started_ms);
  EXPECT_GE(later.body["jobmanager-uptime"].get<int64_t>(), uptime_ms);

  Answer jobs = Get("/jobs");
  ASSERT_EQ(jobs.body["jobs"].size(), 1u);
  EXPECT_EQ(jobs.body["jobs"][0], nlohmann::json({{"id", job}, {"status", "FINISHED"}}));

  Answer list = Get("/jobs/overview");
  ASSERT_EQ(list.body["jobs"].size(), 1u) << list.text;
  const nlohmann::json& entry = list.body["jobs"][0];
  EXPECT_EQ(entry["jid"], job);
  EXPECT_EQ(entry["name"], "Sum Job");
  EXPECT_EQ(entry["state"], "FINISHED");
  EXPECT_EQ(entry["tasks"]["total"], 4);  // two vertices of parallelism 2
  EXPECT_EQ(entry["tasks"]["finished"], 4);
  EXPECT_GE(entry["end-time"].get<int64_t>(), entry["start-time"].get<int64_t>());
  EXPECT_EQ(entry["duration"], entry["end-time"].get<int64_t>() - entry["start-time"].get<int64_t>());

  Answer details = Get("/jobs/" + job);
  ASSERT_EQ(details.status, 200) << details.text;
  EXPECT_EQ(details.body["jid"], job);
  EXPECT_EQ(details.body["state"], "FINISHED");
  ASSERT_EQ(details.body["vertices"].size(), 2u);
  for (const nlohmann::json& v : details.body["vertices"]) {
    EXPECT_EQ(v["parallelism"], 2);
    EXPECT_EQ(v["status"], "FINISHED");
    EXPECT_EQ(v["tasks"]["FINISHED"], 2);
    EXPECT_EQ(v["tasks"]["RUNNING"], 0);
    EXPECT_GE(v["end-time"].get<int64_t>(), v["start-time"].get<int64_t>());
    EXPECT_TRUE(v["metrics"].contains("read-records"));
  }
  EXPECT_EQ(details.body["status-counts"]["FINISHED"], 2);
  EXPECT_EQ(details.body["freshet"]["records-in"], 4000);
  EXPECT_EQ(details.body["plan"]["nodes"].size(), 2u);

  Answer plan = Get("/jobs/" + job + "/plan");
  ASSERT_EQ(plan.status, 200);
  ASSERT_EQ(plan.body["plan"]["nodes"].size(), 2u);
  EXPECT_EQ(plan.body["plan"]["nodes"][1]["inputs"][0]["ship_strategy"], "HASH");
  EXPECT_EQ(plan.body["plan"]["nodes"][0]["id"], details.body["vertices"][0]["id"]);

  // Subtasks of a vertex: where they ran, in subtask order.
  std::string vertex = details.body["vertices"][1]["id"];
  Answer subtasks = Get("/jobs/" + job + "/vertices/" + vertex);
  ASSERT_EQ(subtasks.status, 200) << subtasks.text;
  ASSERT_EQ(subtasks.body["subtasks"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json& s = subtasks.body["subtasks"][i];
    EXPECT_EQ(s["subtask"], i);
    EXPECT_EQ(s["status"], "FINISHED");
    EXPECT_THAT(s["taskmanager-id"].get<std::string>(), ::testing::AnyOf("tm-a", "tm-b"));
  }
  // Both subtasks share one TaskManager: in-process TaskManagers cannot
  // exchange data, so a job takes its slots from one of them.
  EXPECT_EQ(subtasks.body["subtasks"][0]["taskmanager-id"], subtasks.body["subtasks"][1]["taskmanager-id"]);
  EXPECT_EQ(Get("/jobs/" + job + "/vertices/" + vertex + "/backpressure").body["status"], "deprecated");
  EXPECT_TRUE(Get("/jobs/" + job + "/vertices/" + vertex + "/watermarks").body.is_array());

  Answer checkpoints = Get("/jobs/" + job + "/checkpoints");
  ASSERT_EQ(checkpoints.status, 200);
  for (const char* key : {"counts", "summary", "latest", "history"}) EXPECT_TRUE(checkpoints.body.contains(key)) << key;
  EXPECT_EQ(checkpoints.body["counts"]["completed"], 0);
  EXPECT_TRUE(checkpoints.body["latest"]["completed"].is_null());
  ExpectError(Get("/jobs/" + job + "/checkpoints/config"), 404, "checkpointing is not enabled");

  Answer exceptions = Get("/jobs/" + job + "/exceptions");
  ASSERT_EQ(exceptions.status, 200);
  EXPECT_TRUE(exceptions.body["root-exception"].is_null());
  EXPECT_TRUE(exceptions.body["exceptionHistory"]["entries"].empty());

  Answer tms = Get("/taskmanagers");
  ASSERT_EQ(tms.body["taskmanagers"].size(), 2u);
  std::set<std::string> ids;
  for (const nlohmann::json& tm : tms.body["taskmanagers"]) {
    ids.insert(tm["id"]);
    EXPECT_EQ(tm["slotsNumber"], 2);
    EXPECT_EQ(tm["freeSlots"], 2);
    EXPECT_TRUE(tm["hardware"].contains("cpuCores"));
  }
  EXPECT_EQ(ids, (std::set<std::string>{"tm-a", "tm-b"}));
  Answer tm = Get("/taskmanagers/tm-a");
  ASSERT_EQ(tm.status, 200);
  EXPECT_TRUE(tm.body["allocatedSlots"].empty());
  EXPECT_EQ(Get("/taskmanagers/tm-a/logs").body["logs"][0]["name"], "freshet-jobmanager.log");
  EXPECT_TRUE(Get("/taskmanagers/tm-a/metrics").body.is_array());

  // The plan of a run without running it.
  Answer dry = Post("/jars/" + jar + "/plan", nlohmann::json{{"programArgsList", {"--output", dir_.Sub("none")}},
                                                             {"parallelism", 3}});
  ASSERT_EQ(dry.status, 200) << dry.text;
  EXPECT_EQ(dry.body["plan"]["nodes"][0]["parallelism"], 3);
  EXPECT_FALSE(fs::exists(dir_.Sub("none")));

  ASSERT_EQ(Delete("/jars/" + jar).status, 200);
  EXPECT_TRUE(Get("/jars").body["files"].empty());
  EXPECT_FALSE(fs::exists(dir_.Sub("uploads/" + jar)));
  EXPECT_EQ(Get("/v1/jobs/" + job).body["state"], "FINISHED");  // Flink's versioned prefix
}

TEST_F(RestApiTest, CancelsARunningJobAndGivesItsSlotsBack) {
  std::string jar = Upload("ticker_job");
  std::string job = Run(jar, TickerRun(2));
  ASSERT_TRUE(WaitForState(job, "RUNNING"));
  Answer overview = Get("/overview");
  EXPECT_EQ(overview.body["slots-available"], 2);
  EXPECT_EQ(overview.body["jobs-running"], 1);
  // One TaskManager holds both slots of the job.
  Answer tms = Get("/taskmanagers");
  int full = 0;
  for (const nlohmann::json& tm : tms.body["taskmanagers"]) full += tm["freeSlots"].get<int>() == 0 ? 1 : 0;
  EXPECT_EQ(full, 1) << tms.text;

  // No periodic checkpoints: no checkpoint configuration either.
  EXPECT_EQ(Get("/jobs/" + job).body["freshet"]["checkpointing"], false);
  ExpectError(Get("/jobs/" + job + "/checkpoints/config"), 404, "checkpointing is not enabled");

  // A second job of parallelism 2 fits on the other TaskManager; a third does not.
  std::string second = Run(jar, TickerRun(2));
  ASSERT_TRUE(WaitForState(second, "RUNNING"));
  ExpectError(Post("/jars/" + jar + "/run", TickerRun(1)), 503, "needs 1 task slots but only 0 are free");

  Answer cancel = Patch("/jobs/" + job + "?mode=cancel");
  EXPECT_EQ(cancel.status, 202) << cancel.text;
  ASSERT_TRUE(WaitForState(job, "CANCELED"));
  EXPECT_TRUE(WaitUntil([&] { return Get("/overview").body["slots-available"] == 2; }));
  ExpectError(Patch("/jobs/" + job + "?mode=cancel"), 409, "has ended");
  ASSERT_EQ(Patch("/jobs/" + second).status, 202);  // mode defaults to cancel
  ASSERT_TRUE(WaitForState(second, "CANCELED"));
  EXPECT_TRUE(WaitUntil([&] { return Get("/overview").body["slots-available"] == 4; }));
  Answer overview_after = Get("/overview");
  EXPECT_EQ(overview_after.body["jobs-cancelled"], 2);
  EXPECT_EQ(overview_after.body["jobs-running"], 0);
}

TEST_F(RestApiTest, SavepointsStopWithSavepointAndResume) {
  std::string jar = Upload("ticker_job");
  nlohmann::json checkpointing = {{"execution.checkpointing.interval", "100 ms"},
                                  {"state.checkpoints.dir", dir_.Sub("checkpoints")}};
  std::string job = Run(jar, TickerRun(2, checkpointing));
  ASSERT_TRUE(WaitForState(job, "RUNNING"));

  EXPECT_EQ(Get("/jobs/" + job).body["freshet"]["checkpointing"], true);
  Answer config = Get("/jobs/" + job + "/checkpoints/config");
  ASSERT_EQ(config.status, 200) << config.text;
  EXPECT_EQ(config.body["interval"], 100);
  EXPECT_EQ(config.body["mode"], "exactly_once");
  EXPECT_EQ(config.body["externalization"]["enabled"], true);

  nlohmann::json stats;
  ASSERT_TRUE(WaitUntil([&] {
    stats = Get("/jobs/" + job + "/checkpoints").body;
    return stats["counts"]["completed"].get<int64_t>() >= 1;
  }));
  const nlohmann::json& latest = stats["latest"]["completed"];
  ASSERT_TRUE(latest.is_object()) << stats.dump();
  EXPECT_EQ(latest["status"], "COMPLETED");
  EXPECT_EQ(latest["is_savepoint"], false);
  EXPECT_EQ(latest["num_subtasks"], 4);
  EXPECT_EQ(latest["num_acknowledged_subtasks"], 4);
  EXPECT_GE(latest["latest_ack_timestamp"].get<int64_t>(), latest["trigger_timestamp"].get<int64_t>());
  EXPECT_THAT(latest["external_path"].get<std::string>(), HasSubstr(dir_.Sub("checkpoints")));
  Answer detail = Get("/jobs/" + job + "/checkpoints/details/" + std::to_string(latest["id"].get<int64_t>()));
  ASSERT_EQ(detail.status, 200) << detail.text;
  EXPECT_EQ(detail.body["id"], latest["id"]);

  // Per vertex and per subtask: every subtask acknowledged within the
  // checkpoint's time range; the keyed vertex (its Sum) holds state.
  Answer job_details = Get("/jobs/" + job);
  ASSERT_EQ(job_details.body["vertices"].size(), 2u) << job_details.text;
  ASSERT_EQ(detail.body["tasks"].size(), 2u) << detail.text;
  int64_t trigger_ms = detail.body["trigger_timestamp"];
  int64_t end_ms = detail.body["latest_ack_timestamp"];
  int64_t total_size = 0;
  int keyed_vertices = 0;
  for (const nlohmann::json& v : job_details.body["vertices"]) {
    std::string vertex_id = v["id"];
    ASSERT_TRUE(detail.body["tasks"].contains(vertex_id)) << detail.text;
    const nlohmann::json& task = detail.body["tasks"][vertex_id];
    EXPECT_EQ(task["id"], latest["id"]);
    EXPECT_EQ(task["status"], "COMPLETED");
    EXPECT_EQ(task["num_subtasks"], v["parallelism"]);
    EXPECT_EQ(task["num_acknowledged_subtasks"], v["parallelism"]);
    EXPECT_GE(task["latest_ack_timestamp"].get<int64_t>(), trigger_ms);
    EXPECT_LE(task["latest_ack_timestamp"].get<int64_t>(), end_ms);
    total_size += task["state_size"].get<int64_t>();
    if (std::string(v["name"]).find("Keyed Aggregation") != std::string::npos) {
      ++keyed_vertices;
      EXPECT_GT(task["state_size"].get<int64_t>(), 0) << detail.text;
    }

    Answer subtasks = Get("/jobs/" + job + "/checkpoints/details/" + std::to_string(latest["id"].get<int64_t>()) +
                          "/subtasks/" + vertex_id);
    ASSERT_EQ(subtasks.status, 200) << subtasks.text;
    EXPECT_EQ(subtasks.body["num_subtasks"], v["parallelism"]);
    ASSERT_EQ(subtasks.body["subtasks"].size(), v["parallelism"].get<size_t>()) << subtasks.text;
    int64_t subtask_sizes = 0;
    for (size_t i = 0; i < subtasks.body["subtasks"].size(); ++i) {
      const nlohmann::json& s = subtasks.body["subtasks"][i];
      EXPECT_EQ(s["index"], i);
      EXPECT_EQ(s["status"], "completed");
      int64_t ack = s["ack_timestamp"];
      EXPECT_GE(ack, trigger_ms) << s.dump();
      EXPECT_LE(ack, end_ms) << s.dump();
      EXPECT_EQ(s["end_to_end_duration"].get<int64_t>(), ack - trigger_ms);
      // What the task measured: one after the other within the subtask's
      // end-to-end time (each figure rounded down to a millisecond).
      int64_t parts = s["start_delay"].get<int64_t>() + s["alignment"]["duration"].get<int64_t>() +
                      s["checkpoint"]["sync"].get<int64_t>() + s["checkpoint"]["async"].get<int64_t>();
      EXPECT_LE(parts, s["end_to_end_duration"].get<int64_t>() + 1) << s.dump();
      for (int64_t part : {s["start_delay"].get<int64_t>(), s["alignment"]["duration"].get<int64_t>(),
                           s["checkpoint"]["sync"].get<int64_t>(), s["checkpoint"]["async"].get<int64_t>(),
                           s["alignment"]["processed"].get<int64_t>()}) {
        EXPECT_GE(part, 0) << s.dump();
      }
      EXPECT_EQ(s["unaligned_checkpoint"], false);
      EXPECT_EQ(s["aborted"], false);
      subtask_sizes += s["state_size"].get<int64_t>();
    }
    EXPECT_EQ(subtask_sizes, task["state_size"].get<int64_t>());
    EXPECT_EQ(subtasks.body["summary"]["state_size"]["max"].is_number(), true) << subtasks.text;
  }
  EXPECT_EQ(total_size, detail.body["state_size"].get<int64_t>());
  EXPECT_EQ(keyed_vertices, 1) << job_details.text;
  std::string first_vertex = job_details.body["vertices"][0]["id"];
  ExpectError(Get("/jobs/" + job + "/checkpoints/details/" + std::to_string(latest["id"].get<int64_t>()) +
                  "/subtasks/" + std::string(32, 'f')),
              404, "has no vertex");
  ExpectError(Get("/jobs/" + job + "/checkpoints/details/999999/subtasks/" + first_vertex), 404,
              "no statistics of checkpoint 999999");
  ExpectError(Get("/jobs/" + job + "/checkpoints/details/x/subtasks/" + first_vertex), 400, "not a checkpoint id");

  // The job's configuration: what the run set.
  Answer job_config = Get("/jobs/" + job + "/config");
  ASSERT_EQ(job_config.status, 200) << job_config.text;
  EXPECT_EQ(job_config.body["jid"], job);
  EXPECT_EQ(job_config.body["name"], "Ticker Job");
  const nlohmann::json& execution = job_config.body["execution-config"];
  EXPECT_EQ(execution["job-parallelism"], 2) << job_config.text;
  EXPECT_EQ(execution["execution-mode"], "PIPELINED");
  EXPECT_EQ(execution["object-reuse-mode"], false);
  EXPECT_THAT(execution["restart-strategy"].get<std::string>(), HasSubstr("fixed delay")) << job_config.text;
  EXPECT_EQ(execution["user-config"]["execution.checkpointing.interval"], "100 ms") << job_config.text;
  EXPECT_EQ(execution["user-config"]["parallelism.default"], "2") << job_config.text;
  EXPECT_EQ(execution["user-config"]["state.checkpoints.dir"], dir_.Sub("checkpoints")) << job_config.text;
  // Only what the run set: none of the cluster's defaults.
  EXPECT_FALSE(execution["user-config"].contains("taskmanager.numberOfTaskSlots")) << job_config.text;
  EXPECT_EQ(execution["user-config"].size(), 3u) << job_config.text;

  // A savepoint while the job goes on.
  Answer trigger = Post("/jobs/" + job + "/savepoints", nlohmann::json{{"target-directory", dir_.Sub("savepoints")},
                                                                      {"cancel-job", false}});
  ASSERT_EQ(trigger.status, 202) << trigger.text;
  std::string trigger_id = trigger.body["request-id"];
  Answer done = AwaitSavepoint(job, trigger_id);
  ASSERT_EQ(done.status, 200) << done.text;
  ASSERT_TRUE(done.body["operation"].contains("location")) << done.text;
  std::string savepoint = done.body["operation"]["location"];
  EXPECT_THAT(savepoint, HasSubstr(dir_.Sub("savepoints")));
  EXPECT_TRUE(fs::exists(fs::path(savepoint) / "_metadata")) << savepoint;
  EXPECT_EQ(StateOf(job), "RUNNING");
  EXPECT_EQ(Get("/jobs/" + job + "/checkpoints").body["latest"]["savepoint"]["external_path"], savepoint);

  // Stop with a savepoint: the job finishes.
  Answer stop =
      Post("/jobs/" + job + "/stop", nlohmann::json{{"targetDirectory", dir_.Sub("stopped")}, {"drain", false}});
  ASSERT_EQ(stop.status, 202) << stop.text;
  Answer stopped = AwaitSavepoint(job, stop.body["request-id"]);
  ASSERT_TRUE(stopped.body["operation"].contains("location")) << stopped.text;
  std::string final_savepoint = stopped.body["operation"]["location"];
  EXPECT_TRUE(fs::exists(fs::path(final_savepoint) / "_metadata"));
  ASSERT_TRUE(WaitForState(job, "FINISHED"));
  ExpectError(Post("/jobs/" + job + "/savepoints", nlohmann::json{{"target-directory", dir_.Sub("late")}}), 409,
              "savepoints need a running job");

  // A new job resumes from the stop's savepoint.
  nlohmann::json resume = TickerRun(2, checkpointing);
  resume["savepointPath"] = final_savepoint;
  std::string resumed = Run(jar, resume);
  ASSERT_TRUE(WaitForState(resumed, "RUNNING"));
  Answer restored = Get("/jobs/" + resumed + "/checkpoints");
  EXPECT_EQ(restored.body["latest"]["restored"]["external_path"], final_savepoint) << restored.text;
  EXPECT_EQ(restored.body["latest"]["restored"]["is_savepoint"], true);
  EXPECT_EQ(restored.body["counts"]["restored"], 1);
  ASSERT_EQ(Patch("/jobs/" + resumed + "?mode=cancel").status, 202);
  ASSERT_TRUE(WaitForState(resumed, "CANCELED"));

  // A savepoint path that holds no savepoint: the run is refused.
  nlohmann::json bad = TickerRun(2);
  bad["savepointPath"] = dir_.Sub("no-such-savepoint");
  ExpectError(Post("/jars/" + jar + "/run", bad), 404, "no-such-savepoint");
}

TEST_F(RestApiTest, TriggersCheckpointsOnRequest) {
  std::string jar = Upload("ticker_job");
  // A periodic interval of an hour: every checkpoint below is one requested.
  nlohmann::json hourly = {{"execution.checkpointing.interval", "1 h"},
                           {"state.checkpoints.dir", dir_.Sub("checkpoints")},
                           {"state.checkpoints.num-retained", "3"}};
  std::string job = Run(jar, TickerRun(2, hourly));
  ASSERT_TRUE(WaitForState(job, "RUNNING"));
  EXPECT_EQ(Get("/jobs/" + job + "/checkpoints").body["counts"]["completed"], 0);

  // No body: CONFIGURED.
  Answer trigger = Post("/jobs/" + job + "/checkpoints", std::string());
  ASSERT_EQ(trigger.status, 202) << trigger.text;
  std::string trigger_id = trigger.body.value("request-id", "");
  ASSERT_THAT(trigger_id, ::testing::MatchesRegex("[0-9a-f]{32}"));
  Answer done = AwaitCheckpoint(job, trigger_id);
  ASSERT_EQ(done.status, 200) << done.text;
  ASSERT_FALSE(done.body["operation"].contains("failure-cause")) << done.text;
  ASSERT_TRUE(done.body["operation"]["checkpointId"].is_number_integer()) << done.text;
  int64_t first = done.body["operation"]["checkpointId"];
  EXPECT_GE(first, 1);

  // It is a regular checkpoint: in the history, completed, not a savepoint.
  Answer stats = Get("/jobs/" + job + "/checkpoints");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(stats.body["counts"]["completed"], 1) << stats.text;
  EXPECT_EQ(stats.body["latest"]["completed"]["id"], first) << stats.text;
  bool listed = false;
  for (const nlohmann::json& c : stats.body["history"]) {
    if (c["id"] != first) continue;
    listed = true;
    EXPECT_EQ(c["status"], "COMPLETED");
    EXPECT_EQ(c["is_savepoint"], false);
    EXPECT_EQ(c["num_acknowledged_subtasks"], 4);
    EXPECT_TRUE(fs::exists(fs::path(c["external_path"].get<std::string>()) / "_metadata")) << c.dump();
  }
  EXPECT_TRUE(listed) << stats.text;

  // FULL: a heap-state job's checkpoints are full ones; the ids go on.
  Answer full = Post("/jobs/" + job + "/checkpoints", nlohmann::json{{"checkpointType", "FULL"}});
  ASSERT_EQ(full.status, 202) << full.text;
  Answer full_done = AwaitCheckpoint(job, full.body["request-id"]);
  ASSERT_TRUE(full_done.body["operation"].contains("checkpointId")) << full_done.text;
  int64_t second = full_done.body["operation"]["checkpointId"];
  EXPECT_GT(second, first);
  EXPECT_EQ(Get("/jobs/" + job + "/checkpoints").body["counts"]["completed"], 2);
  // The other /checkpoints/... paths still answer as before.
  Answer detail = Get("/jobs/" + job + "/checkpoints/details/" + std::to_string(second));
  ASSERT_EQ(detail.status, 200) << detail.text;
  EXPECT_EQ(detail.body["status"], "COMPLETED");
  EXPECT_EQ(Get("/jobs/" + job).body["freshet"]["checkpointing"], true);
  Answer config = Get("/jobs/" + job + "/checkpoints/config");
  ASSERT_EQ(config.status, 200) << config.text;
  EXPECT_EQ(config.body["interval"], 3600000);

  // Bad requests, named.
  ExpectError(Post("/jobs/" + job + "/checkpoints", nlohmann::json{{"checkpointType", "SOMETIMES"}}), 400,
              "'checkpointType' is 'SOMETIMES'");
  ExpectError(Post("/jobs/" + job + "/checkpoints", nlohmann::json{{"checkpointType", "full"}}), 400, "'full'");
  ExpectError(Post("/jobs/" + job + "/checkpoints", nlohmann::json{{"checkpointType", 1}}), 400,
              "'checkpointType' must be a string");
  ExpectError(Post("/jobs/" + job + "/checkpoints", std::string("{\"checkpointType\"")), 400, "not valid JSON");
  ExpectError(Post("/jobs/" + job + "/checkpoints", nlohmann::json{{"checkpointType", "INCREMENTAL"}}), 409,
              "state.backend.incremental");
  ExpectError(Post("/jobs/not-a-job/checkpoints", nlohmann::json::object()), 400, "not a valid job id");
  std::string unknown = "0123456789abcdef0123456789abcdef";
  ExpectError(Post("/jobs/" + unknown + "/checkpoints", nlohmann::json::object()), 404, "was not found");
  ExpectError(Get("/jobs/" + unknown + "/checkpoints/" + trigger_id), 404, "was not found");
  ExpectError(Get("/jobs/" + job + "/checkpoints/" + unknown), 404, "has no checkpoint operation");
  ExpectError(Get("/jobs/" + job + "/checkpoints/xyz"), 400, "not a valid trigger id");
  ExpectError(Delete("/jobs/" + job + "/checkpoints/" + trigger_id), 405, "allowed: GET");
  // Savepoint and checkpoint operations are told apart.
  ExpectError(Get("/jobs/" + job + "/savepoints/" + trigger_id), 404, "has no savepoint operation");
  EXPECT_EQ(Get("/jobs/" + job + "/checkpoints").body["counts"]["completed"], 2) << "refusals start nothing";

  // Periodic checkpointing off but a checkpoint directory: allowed, as in Flink.
  std::string manual_only = Run(jar, TickerRun(1, {{"state.checkpoints.dir", dir_.Sub("manual")}}));
  ASSERT_TRUE(WaitForState(manual_only, "RUNNING"));
  Answer manual = Post("/jobs/" + manual_only + "/checkpoints", nlohmann::json::object());
  ASSERT_EQ(manual.status, 202) << manual.text;
  Answer manual_done = AwaitCheckpoint(manual_only, manual.body["request-id"]);
  ASSERT_TRUE(manual_done.body["operation"].contains("checkpointId")) << manual_done.text;
  EXPECT_EQ(Get("/jobs/" + manual_only + "/checkpoints").body["latest"]["completed"]["id"],
            manual_done.body["operation"]["checkpointId"]);

  // Neither periodic checkpointing nor a directory: refused, naming the setting.
  std::string plain = Run(jar, TickerRun(1));
  ASSERT_TRUE(WaitForState(plain, "RUNNING"));
  ExpectError(Post("/jobs/" + plain + "/checkpoints", nlohmann::json::object()), 409, "state.checkpoints.dir");

  // A job that ended: 409 as for savepoints.
  for (const std::string& j : {job, manual_only, plain}) {
    ASSERT_EQ(Patch("/jobs/" + j).status, 202);
    ASSERT_TRUE(WaitForState(j, "CANCELED"));
  }
  ExpectError(Post("/jobs/" + job + "/checkpoints", nlohmann::json::object()), 409, "checkpoints need a running job");
  // The finished operation is still reported.
  Answer after = Get("/jobs/" + job + "/checkpoints/" + trigger_id);
  ASSERT_EQ(after.status, 200) << after.text;
  EXPECT_EQ(after.body["operation"]["checkpointId"], first);
}

TEST_F(RestApiTest, AnswersBadRequestsWithFlinkErrorBodies) {
  // Unknown paths and methods.
  ExpectError(Get("/nope"), 404, "no such REST path");
  ExpectError(Get("/jobs/0123456789abcdef0123456789abcdef"), 404, "was not found");
  ExpectError(Get("/jobs/not-a-job"), 400, "not a valid job id");
  ExpectError(Get("/jobs/" + std::string(8000, 'f')), 400, "not a valid job id");
  Answer too_long = Get("/jobs/" + std::string(9000, 'f'));
  EXPECT_EQ(too_long.status, 414);
  EXPECT_TRUE(too_long.body.contains("errors")) << too_long.text;
  Answer wrong_method = Delete("/overview");
  ExpectError(wrong_method, 405, "method DELETE is not allowed");
  EXPECT_EQ(wrong_method.allow, "GET");
  ExpectError(Post("/jobs/overview", nlohmann::json::object()), 405, "allowed: GET");
  ExpectError(Patch("/jobs/0123456789abcdef0123456789abcdef?mode=stop"), 400, "mode 'stop' is not supported");
  ExpectError(Patch("/jobs/0123456789abcdef0123456789abcdef"), 404, "was not found");

  // Uploads.
  std::string jar = Upload("sum_job");
  ExpectError(Post("/jars/upload", nlohmann::json::object()), 400, "field 'jarfile'");
  ExpectError(UploadBytes("sum.so", "bytes", "file"), 400, "field 'jarfile'");
  ExpectError(UploadBytes("text.so", "this is not a shared object"), 400, "not a loadable job library");
  ExpectError(UploadBytes("../escape.so", "x"), 400, "not a plain file name");
  ExpectError(UploadBytes(".hidden.so", "x"), 400, "not a plain file name");
  ExpectError(UploadBytes(std::string(300, 'a'), "x"), 400, "at most 200");
  Answer huge = UploadBytes("huge.so", std::string(kMaxBodyBytes + (1 << 20), 'x'));
  EXPECT_EQ(huge.status, 413);
  EXPECT_TRUE(huge.body.contains("errors")) << huge.text;
  EXPECT_FALSE(fs::exists(dir_.Sub("escape.so")));
  std::set<std::string> stored;
  for (const auto& e : fs::directory_iterator(dir_.Sub("uploads"))) stored.insert(e.path().filename().string());
  EXPECT_EQ(stored, std::set<std::string>{jar}) << "refused uploads leave nothing behind";
  ASSERT_EQ(Get("/jars").body["files"].size(), 1u);

  // Run requests.
  std::string run = "/jars/" + jar + "/run";
  ExpectError(Post(run, std::string("{\"parallelism\": ")), 400, "not valid JSON");
  ExpectError(Post(run, std::string(100000, '[')), 400, "not valid JSON");
  ExpectError(Post(run, std::string("[1, 2]")), 400, "must be a JSON object");
  ExpectError(Post(run, nlohmann::json{{"parallelism", "two"}}), 400, "field 'parallelism' must be an integer");
  ExpectError(Post(run, nlohmann::json{{"parallelism", 0}}), 400, "from 1 to 32768, got 0");
  ExpectError(Post(run, nlohmann::json{{"parallelism", 1e30}}), 400, "'parallelism'");
  ExpectError(Post(run, nlohmann::json{{"programArgs", "a"}, {"programArgsList", {"b"}}}), 400, "not both");
  ExpectError(Post(run, nlohmann::json{{"programArgs", "--output 'unclosed"}}), 400, "unclosed ' quote");
  ExpectError(Post(run, nlohmann::json{{"programArgsList", {"--output", 3}}}), 400, "list of strings");
  ExpectError(Post(run, nlohmann::json{{"flinkConfiguration", {{"rest.prot", "1"}}}}), 400, "rest.prot");
  ExpectError(Post(run, nlohmann::json{{"flinkConfiguration", {{"parallelism.default", "x"}}}}), 400,
              "parallelism.default");
  ExpectError(Post(run, nlohmann::json{{"flinkConfiguration", "p=1"}}), 400, "'flinkConfiguration'");
  // The program itself fails before building its job.
  ExpectError(Post(run, nlohmann::json{{"programArgsList", {"--count", "1"}}}), 400, "without calling Execute()");
  // More slots than the cluster has, or than one in-process TaskManager has.
  nlohmann::json wide = {{"programArgsList", {"--output", dir_.Sub("w")}}, {"parallelism", 5}};
  ExpectError(Post(run, wide), 503, "needs 5 task slots but only 4 are free");
  wide["parallelism"] = 3;
  ExpectError(Post(run, wide), 503, "at most 2 on one TaskManager");
  EXPECT_EQ(Get("/overview").body["slots-available"], 4) << "refused jobs hold no slots";
  EXPECT_TRUE(Get("/jobs").body["jobs"].empty());

  // Jar ids and log names are looked up, never used as paths.
  ExpectError(Post("/jars/..%2F..%2Fsecret.txt/run", nlohmann::json::object()), 404, "no such REST path");
  ExpectError(Delete("/jars/..%2Fsecret.txt"), 404, "no such REST path");
  ExpectError(Delete("/jars/.."), 404, "was not found");
  ExpectError(Delete("/jars/secret.txt"), 404, "was not found");
  ExpectError(Post("/jars/nope/run", nlohmann::json::object()), 404, "jar nope was not found");
  EXPECT_TRUE(fs::exists(dir_.Sub("secret.txt")));
  ExpectError(Get("/jobmanager/logs/..%2Fsecret.txt"), 404, "no such REST path");
  ExpectError(Get("/jobmanager/logs/.."), 404, "no log file");
  ExpectError(Get("/jobmanager/logs/missing.log"), 404, "no log file");
  ExpectError(Get("/taskmanagers/tm-a/logs/.."), 404, "no log file");
  Answer log = Get("/jobmanager/logs/freshet-jobmanager.log");
  EXPECT_EQ(log.status, 200);
  EXPECT_EQ(log.text, "a log line\n");
  EXPECT_EQ(Get("/jobmanager/logs").body["logs"].size(), 1u);
  ExpectError(Get("/taskmanagers/tm-z"), 404, "tm-z is not registered");
  ExpectError(Get("/taskmanagers/tm-z/logs"), 404, "tm-z is not registered");

  // Configuration: secrets are masked.
  Answer config = Get("/jobmanager/config");
  ASSERT_TRUE(config.body.is_array());
  std::map<std::string, std::string> values;
  for (const nlohmann::json& e : config.body) values[e["key"]] = e["value"];
  EXPECT_EQ(values["rest.port"], "0");
  EXPECT_EQ(values["s3.secret-key"], "******");

  // Savepoint and checkpoint requests about jobs that are not there.
  std::string unknown = "0123456789abcdef0123456789abcdef";
  ExpectError(Post("/jobs/" + unknown + "/savepoints", nlohmann::json{{"target-directory", "/tmp"}}), 404,
              "was not found");
  ExpectError(Post("/jobs/" + unknown + "/savepoints", std::string("{")), 400, "not valid JSON");
  ExpectError(Post("/jobs/" + unknown + "/savepoints", nlohmann::json{{"cancel-job", "yes"}}), 400,
              "'cancel-job' must be true or false");
  ExpectError(Get("/jobs/" + unknown + "/savepoints/" + unknown), 404, "was not found");
  ExpectError(Get("/jobs/" + unknown + "/savepoints/xyz"), 400, "not a valid trigger id");
  ExpectError(Post("/jobs/" + unknown + "/stop", nlohmann::json{{"drain", 1}}), 400, "'drain'");
  ExpectError(Get("/savepoint-disposal/" + unknown), 404, "no savepoint disposal");
  ExpectError(Post("/savepoint-disposal", nlohmann::json::object()), 400, "'savepoint-path' is required");

  // A running job: savepoint requests without a target, checkpoint ids.
  std::string ticker = Run(Upload("ticker_job"), TickerRun(1));
  ASSERT_TRUE(WaitForState(ticker, "RUNNING"));
  ExpectError(Post("/jobs/" + ticker + "/savepoints", nlohmann::json::object()), 400, "no target directory");
  ExpectError(Get("/jobs/" + ticker + "/savepoints/" + unknown), 404, "has no savepoint operation");
  ExpectError(Get("/jobs/" + ticker + "/checkpoints/details/abc"), 400, "not a checkpoint id");
  ExpectError(Get("/jobs/" + ticker + "/checkpoints/details/99999999999999999999"), 400, "not a checkpoint id");
  ExpectError(Get("/jobs/" + ticker + "/checkpoints/details/7"), 404, "no statistics of checkpoint 7");
  ExpectError(Post("/jobs/" + ticker + "/checkpoints", nlohmann::json::object()), 409, "state.checkpoints.dir");
  ExpectError(Get("/jobs/" + ticker + "/vertices/" + unknown), 404, "has no vertex");
  ExpectError(Get("/jobs/" + unknown + "/config"), 404, "was not found");
  ExpectError(Get("/jobs/zz/config"), 400, "not a valid job id");
  Answer no_restart = Get("/jobs/" + ticker + "/config");
  ASSERT_EQ(no_restart.status, 200) << no_restart.text;
  EXPECT_EQ(no_restart.body["execution-config"]["job-parallelism"], 1);
  EXPECT_EQ(no_restart.body["execution-config"]["restart-strategy"], "No restart strategy") << no_restart.text;
  ExpectError(Get("/jobs/" + ticker + "/vertices/zz/backpressure"), 400, "not a valid vertex id");
  ASSERT_EQ(Patch("/jobs/" + ticker).status, 202);
  ASSERT_TRUE(WaitForState(ticker, "CANCELED"));

  // Bytes that are not HTTP: the connection is dropped, the server goes on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->Port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string junk = "\x01\x02 NOT HTTP \r\n\r\n" + std::string(10000, '\xff') + "\r\n\r\n";
  EXPECT_GT(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), 0);
  char reply[512];
  (void)::recv(fd, reply, sizeof(reply), 0);
  ::close(fd);
  EXPECT_EQ(Get("/overview").status, 200);
}

TEST_F(RestApiTest, DisposesSavepointsAndRefusesWhatIsNotOne) {
  std::string jar = Upload("ticker_job");
  std::string job = Run(jar, TickerRun(1));
  ASSERT_TRUE(WaitForState(job, "RUNNING"));
  Answer trigger = Post("/jobs/" + job + "/savepoints", nlohmann::json{{"target-directory", dir_.Sub("sp")},
                                                                      {"cancel-job", true}});
  ASSERT_EQ(trigger.status, 202) << trigger.text;
  Answer done = AwaitSavepoint(job, trigger.body["request-id"]);
  std::string savepoint = done.body["operation"].value("location", "");
  ASSERT_TRUE(fs::exists(fs::path(savepoint) / "_metadata")) << done.text;
  ASSERT_TRUE(WaitForState(job, "CANCELED")) << "cancel-job cancels after the savepoint";

  auto dispose = [&](const std::string& path) {
    Answer t = Post("/savepoint-disposal", nlohmann::json{{"savepoint-path", path}});
    EXPECT_EQ(t.status, 202) << t.text;
    Answer a;
    EXPECT_TRUE(WaitUntil([&] {
      a = Get("/savepoint-disposal/" + t.body.value("request-id", ""));
      return a.body["status"]["id"] == "COMPLETED";
    }));
    return a;
  };
  Answer refused = dispose(dir_.Sub("logs"));
  ASSERT_TRUE(refused.body["operation"].contains("failure-cause")) << refused.text;
  EXPECT_TRUE(fs::exists(dir_.Sub("logs/freshet-jobmanager.log")));
  Answer disposed = dispose(savepoint);
  EXPECT_FALSE(disposed.body["operation"].contains("failure-cause")) << disposed.text;
  EXPECT_FALSE(fs::exists(savepoint));
}

// ---- without HTTP ------------------------------------------------------------

TEST(SlotPlanTest, PrefersOneTaskManagerAndSpreadsOnlyOverNetworkedOnes) {
  auto plan = PlanSlots({2, 1, 3}, {false, false, false}, 1);
  ASSERT_TRUE(plan.IsOk());
  EXPECT_EQ(*plan, (std::vector<int>{0, 1, 0}));  // best fit: the fewest free that suffice
  plan = PlanSlots({2, 1, 3}, {false, false, false}, 3);
  ASSERT_TRUE(plan.IsOk());
  EXPECT_EQ(*plan, (std::vector<int>{0, 0, 3}));
  plan = PlanSlots({2, 2}, {false, false}, 3);
  ASSERT_FALSE(plan.IsOk());
  EXPECT_EQ(plan.GetStatus().Code(), StatusCode::kUnavailable);
  EXPECT_THAT(plan.GetStatus().Message(), HasSubstr("at most 2 on one TaskManager"));
  plan = PlanSlots({2, 1, 2}, {true, true, true}, 5);
  ASSERT_TRUE(plan.IsOk());
  EXPECT_EQ(*plan, (std::vector<int>{2, 1, 2}));
  plan = PlanSlots({2, 3, 1}, {true, true, false}, 4);
  ASSERT_TRUE(plan.IsOk());
  EXPECT_EQ(*plan, (std::vector<int>{1, 3, 0}));  // most free first, networked only
  plan = PlanSlots({}, {}, 1);
  ASSERT_FALSE(plan.IsOk());
  EXPECT_THAT(plan.GetStatus().Message(), HasSubstr("only 0 are free on 0 TaskManagers"));
  EXPECT_EQ(*PlanSlots({1}, {false}, 0), (std::vector<int>{0}));
}

TEST(RestRouterTest, RoutesByPathAndMethodAndContainsHandlerFailures) {
  RestRouter router;
  router.Add("GET", "/a/:x", [](const RestRequest& r) { return JsonResponse(200, {{"x", r.Param("x")}}); });
  router.Add("POST", "/a/:x", [](const RestRequest&) -> RestResponse { throw std::runtime_error("boom"); });
  router.Add("GET", "/a/:x/b", [](const RestRequest&) { return JsonResponse(200, nlohmann::json::object()); });
  RestRequest get;
  get.method = "GET";
  get.path = "/a/42/";
  RestResponse r = router.Handle(get);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["x"], "42");
  RestRequest post = get;
  post.method = "POST";
  r = router.Handle(post);
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, HasSubstr("boom"));
  RestRequest put = get;
  put.method = "PUT";
  r = router.Handle(put);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["Allow"], "GET, POST");
  get.path = "/a";
  EXPECT_EQ(router.Handle(get).status, 404);
  // A literal segment wins over a parameter, whatever the order of Add.
  RestRouter precedence;
  precedence.Add("GET", "/a/:x/b", [](const RestRequest&) { return JsonResponse(200, {{"b", true}}); });
  precedence.Add("GET", "/a/:x/:y", [](const RestRequest& r) { return JsonResponse(200, {{"y", r.Param("y")}}); });
  precedence.Add("GET", "/a/:x/config", [](const RestRequest&) { return JsonResponse(200, {{"config", true}}); });
  get.path = "/a/1/config";
  EXPECT_EQ(nlohmann::json::parse(precedence.Handle(get).body), nlohmann::json({{"config", true}}));
  get.path = "/a/1/b";
  EXPECT_EQ(nlohmann::json::parse(precedence.Handle(get).body), nlohmann::json({{"b", true}}));
  get.path = "/a/1/2";
  EXPECT_EQ(nlohmann::json::parse(precedence.Handle(get).body), nlohmann::json({{"y", "2"}}));
  get.path = "/a/1/b/c";
  EXPECT_EQ(router.Handle(get).status, 404);
}

TEST(RestRouterTest, SplitsProgramArgumentsLikeAShell) {
  auto args = SplitArguments("  --output '/tmp/a b' --name \"x 'y'\" plain''  ''");
  ASSERT_TRUE(args.IsOk());
  EXPECT_EQ(*args, (std::vector<std::string>{"--output", "/tmp/a b", "--name", "x 'y'", "plain", ""}));
  EXPECT_TRUE(SplitArguments("")->empty());
  auto bad = SplitArguments("a \"b");
  ASSERT_FALSE(bad.IsOk());
  EXPECT_THAT(bad.GetStatus().Message(), HasSubstr("unclosed \" quote"));
}

TEST(DispatcherTest, RefusesJobIdsThatAreNotFlinkJobIdsAndLeavingTaskManagersCancelTheirJobs) {
  test_support::TempDir dir("freshet-dispatcher");
  TaskExecutor executor("tm-x", 2, Clock::System());
  DispatcherOptions options;
  options.upload_dir = dir.Sub("uploads");
  auto dispatcher = Dispatcher::Create(options);
  ASSERT_TRUE(dispatcher.IsOk());
  ASSERT_TRUE((*dispatcher)->RegisterTaskManager(&executor, {}).IsOk());
  Status twice = (*dispatcher)->RegisterTaskManager(&executor, {});
  EXPECT_THAT(twice.Message(), HasSubstr("registered already"));

  auto library = JobLibrary::Load(JobPath("ticker_job"));
  ASSERT_TRUE(library.IsOk());
  auto graph = (*library)->BuildPlan({"--output", dir.Sub("out")}, {});
  ASSERT_TRUE(graph.IsOk()) << graph.GetStatus().Message();
  auto stream_graph = std::make_shared<const StreamGraph>(std::move(graph).Value());
  auto bad = (*dispatcher)->SubmitJob(std::make_shared<const JobGraph>(BuildJobGraph(stream_graph, "job-1")));
  ASSERT_FALSE(bad.IsOk());
  EXPECT_THAT(bad.GetStatus().Message(), HasSubstr("not 32 lower-case hexadecimal digits"));

  std::string id(32, 'a');
  auto submitted = (*dispatcher)->SubmitJob(std::make_shared<const JobGraph>(BuildJobGraph(stream_graph, id)));
  ASSERT_TRUE(submitted.IsOk()) << submitted.GetStatus().Message();
  auto again = (*dispatcher)->SubmitJob(std::make_shared<const JobGraph>(BuildJobGraph(stream_graph, id)));
  EXPECT_THAT(again.GetStatus().Message(), HasSubstr("is in use"));
  EXPECT_EQ((*dispatcher)->FreeSlots(), 1);

  ASSERT_TRUE((*dispatcher)->UnregisterTaskManager("tm-x").IsOk());
  auto status = (*dispatcher)->WaitForJob(id, Duration(0));
  ASSERT_TRUE(status.IsOk());
  ASSERT_TRUE(status->has_value()) << "the job ended before its TaskManager left";
  EXPECT_EQ(**status, JobStatus::kCanceled);
  EXPECT_EQ((*dispatcher)->TotalSlots(), 0);
  EXPECT_EQ((*dispatcher)->UnregisterTaskManager("tm-x").Code(), StatusCode::kNotFound);
}


/// The endpoint as a JobManager process serves it: the TaskExecutors' tasks
/// and the Dispatcher's jobs report to one registry the handlers read.
class RestMetricsTest : public RestApiTest {
 protected:
  void SetUp() override {
    for (const char* id : {"tm-a", "tm-b"}) {
      executors_.push_back(std::make_unique<TaskExecutor>(id, 2, Clock::System(), &metrics_));
    }
    DispatcherOptions options;
    options.upload_dir = dir_.Sub("uploads");
    options.metrics = &metrics_;
    auto dispatcher = Dispatcher::Create(options);
    ASSERT_TRUE(dispatcher.IsOk()) << dispatcher.GetStatus().Message();
    dispatcher_ = std::move(dispatcher).Value();
    for (auto& e : executors_) ASSERT_TRUE(dispatcher_->RegisterTaskManager(e.get(), {"local", ""}).IsOk());
    RestContext context;
    context.dispatcher = dispatcher_.get();
    context.metrics = &metrics_;
    RestServerOptions rest;
    rest.port = 0;
    rest.max_body_bytes = kMaxBodyBytes;
    server_ = std::make_unique<RestServer>(std::move(context), rest);
    Status started = server_->Start();
    ASSERT_TRUE(started.IsOk()) << started.Message();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->Port());
    client_->set_read_timeout(std::chrono::seconds(60));
  }

  /// GET /jobs/:id/metrics?get=<names>: id -> value (as Flink, a string).
  std::map<std::string, std::string> JobMetrics(const std::string& job, const std::string& names) {
    std::map<std::string, std::string> out;
    Answer a = Get("/jobs/" + job + "/metrics?get=" + names);
    EXPECT_EQ(a.status, 200) << a.text;
    if (!a.body.is_array()) return out;
    for (const nlohmann::json& m : a.body) out[m.value("id", "")] = m.value("value", "");
    return out;
  }
  static int64_t Number(const std::string& text) { return text.empty() ? -12345 : std::stoll(text); }

  MetricRegistry metrics_;
};

TEST_F(RestMetricsTest, JobMetricsInFlinksShapeFollowTheJobAndGoWithIt) {
  nlohmann::json checkpointing = {{"execution.checkpointing.interval", "100 ms"},
                                  {"state.checkpoints.dir", dir_.Sub("checkpoints")}};
  std::string job = Run(Upload("ticker_job"), TickerRun(2, checkpointing));
  ASSERT_TRUE(WaitForState(job, "RUNNING"));

  // Without `get`: the available ids, each an object with only "id".
  Answer list = Get("/jobs/" + job + "/metrics");
  ASSERT_EQ(list.status, 200) << list.text;
  ASSERT_TRUE(list.body.is_array()) << list.text;
  std::set<std::string> ids;
  for (const nlohmann::json& m : list.body) {
    ASSERT_TRUE(m.is_object() && m.size() == 1 && m.contains("id")) << m.dump();
    ids.insert(m["id"].get<std::string>());
  }
  for (const char* name : {"numRestarts", "fullRestarts", "uptime", "downtime", "lastCheckpointDuration",
                           "lastCheckpointSize", "numberOfCompletedCheckpoints", "numberOfFailedCheckpoints",
                           "numberOfInProgressCheckpoints", "totalNumberOfCheckpoints",
                           "lastCheckpointRestoreTimestamp"}) {
    EXPECT_EQ(ids.count(name), 1u) << name << " missing from " << list.text;
  }

  // With `get`: [{"id", "value"}] with string values; unknown names are
  // left out, as Flink does.
  const std::string names = "numRestarts,uptime,downtime,numberOfCompletedCheckpoints,lastCheckpointSize";
  std::map<std::string, std::string> values;
  ASSERT_TRUE(WaitUntil([&] {
    values = JobMetrics(job, names);
    return Number(values["numberOfCompletedCheckpoints"]) >= 1 && Number(values["uptime"]) > 0;
  })) << Get("/jobs/" + job + "/metrics?get=" + names).text;
  EXPECT_EQ(values["numRestarts"], "0");
  EXPECT_EQ(values["downtime"], "0");
  EXPECT_GT(Number(values["lastCheckpointSize"]), 0);
  Answer picked = Get("/jobs/" + job + "/metrics?get=numRestarts,noSuchMetric");
  ASSERT_EQ(picked.status, 200) << picked.text;
  ASSERT_EQ(picked.body.size(), 1u) << picked.text;
  EXPECT_EQ(picked.body[0]["id"], "numRestarts");
  EXPECT_TRUE(picked.body[0]["value"].is_string()) << picked.text;

  // The tasks' metrics of the in-process TaskManagers reach the vertex
  // endpoints through the same registry.
  nlohmann::json vertices = Get("/jobs/" + job).body["vertices"];
  ASSERT_FALSE(vertices.empty());
  EXPECT_TRUE(WaitUntil([&] {
    for (const nlohmann::json& v : vertices) {
      Answer m = Get("/jobs/" + job + "/vertices/" + v["id"].get<std::string>() + "/metrics?get=0.numRecordsIn");
      if (m.body.is_array() && !m.body.empty() && Number(m.body[0].value("value", "")) > 0) return true;
    }
    return false;
  }));

  // Errors name what was wrong.
  ExpectError(Get("/jobs/not-a-job/metrics"), 400, "job id");
  ExpectError(Get("/jobs/" + std::string(32, 'f') + "/metrics"), 404, std::string(32, 'f'));

  // Flink drops a job's metrics when it ends; the job stays listed.
  ASSERT_EQ(Patch("/jobs/" + job + "?mode=cancel").status, 202);
  ASSERT_TRUE(WaitForState(job, "CANCELED"));
  EXPECT_TRUE(WaitUntil([&] {
    Answer a = Get("/jobs/" + job + "/metrics");
    return a.status == 200 && a.body.is_array() && a.body.empty();
  })) << Get("/jobs/" + job + "/metrics").text;
}

}  // namespace
}  // namespace freshet::internal
