// A JobManager process and two TaskManager processes on loopback: a job
// library submitted with the CLI runs on the TaskManagers (its library
// fetched and its graph rebuilt there), a TaskManager killed with SIGKILL
// is dropped by heartbeat timeout, and a job that had tasks on it resumes
// from its latest checkpoint on the slots left, exactly once.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <future>
#include <regex>

#include "deploy/deploy_env.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

using deploy_test::Cli;
using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::FreshetProcess;
using deploy_test::JobPath;
using deploy_test::WaitUntil;
using ::testing::HasSubstr;

class ClusterProcessTest : public ::testing::Test {
 protected:
  /// Starts the JobManager (REST and RPC on free ports, no local
  /// TaskManagers) and returns its REST "host:port".
  void StartJobManager() {
    ASSERT_TRUE(jm_.Start("jobmanager",
                          {"-D", "rest.port=0", "-D", "jobmanager.rpc.port=0", "-D", "taskmanager.local.count=0", "-D",
                           "heartbeat.interval=200", "-D", "heartbeat.timeout=2000", "-D",
                           "env.log.dir=" + dir_.Sub("log"), "-D", "web.upload.dir=" + dir_.Sub("uploads"), "-D",
                           "metrics.reporter.prom.port=0"},
                          dir_.Sub("jobmanager.err")));
    std::smatch m;
    std::string rest = jm_.ReadLine(std::chrono::seconds(30));
    ASSERT_TRUE(std::regex_match(rest, m, std::regex("REST endpoint: http://(.+):(\\d+)")))
        << rest << test_support::ReadFile(dir_.Sub("jobmanager.err"));
    rest_port_ = std::stoi(m[2].str());
    std::string rpc = jm_.ReadLine(std::chrono::seconds(30));
    ASSERT_TRUE(std::regex_match(rpc, m, std::regex("RPC endpoint: (.+):(\\d+)"))) << rpc;
    rpc_port_ = m[2].str();
    std::string prometheus = jm_.ReadLine(std::chrono::seconds(30));
    ASSERT_TRUE(std::regex_match(prometheus, m, std::regex("Prometheus endpoint: port (\\d+)"))) << prometheus;
    jm_prometheus_port_ = std::stoi(m[1].str());
  }

  /// Starts a TaskManager; returns its Prometheus port (0: none).
  int StartTaskManager(FreshetProcess& tm, const std::string& id, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"-D", "jobmanager.rpc.address=127.0.0.1", "-D", "jobmanager.rpc.port=" + rpc_port_,
                                     "-D", "taskmanager.resource-id=" + id, "-D", "taskmanager.host=127.0.0.1", "-D",
                                     "taskmanager.numberOfTaskSlots=1", "-D", "heartbeat.interval=200", "-D",
                                     "heartbeat.timeout=2000", "-D", "env.log.dir=" + dir_.Sub("log"), "-D",
                                     "blob.storage.directory=" + dir_.Sub("blobs-" + id)};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_TRUE(tm.Start("taskmanager", args, dir_.Sub(id + ".err")));
    std::string line = tm.ReadLine(std::chrono::seconds(30));
    EXPECT_THAT(line, HasSubstr("TaskManager " + id + ": RPC")) << test_support::ReadFile(dir_.Sub(id + ".err"));
    std::smatch m;
    return std::regex_search(line, m, std::regex("Prometheus port (\\d+)")) ? std::stoi(m[1].str()) : 0;
  }

  nlohmann::json GetJson(const std::string& path) {
    httplib::Client client("127.0.0.1", rest_port_);
    auto response = client.Get(path);
    if (!response || response->status != 200) return nlohmann::json();
    return nlohmann::json::parse(response->body, nullptr, false);
  }

  std::string JobState(const std::string& job_id) {
    nlohmann::json job = GetJson("/jobs/" + job_id);
    return job.contains("state") ? job["state"].get<std::string>() : "";
  }

  int64_t CompletedCheckpoints(const std::string& job_id) {
    nlohmann::json c = GetJson("/jobs/" + job_id + "/checkpoints");
    return c.contains("counts") ? c["counts"].value("completed", int64_t{0}) : 0;
  }

  size_t TaskManagerCount() {
    nlohmann::json tms = GetJson("/taskmanagers");
    return tms.contains("taskmanagers") ? tms["taskmanagers"].size() : 0;
  }

  test_support::TempDir dir_{"freshet-cluster-process"};
  FreshetProcess jm_;
  int rest_port_ = 0;
  std::string rpc_port_;
  int jm_prometheus_port_ = 0;
};

TEST_F(ClusterProcessTest, RunsAJobLibraryOnTaskManagerProcessesAndDropsAKilledOne) {
  StartJobManager();
  FreshetProcess tm1, tm2;
  int prometheus = StartTaskManager(tm1, "tm-1", {"-D", "metrics.reporter.prom.port=0"});
  ASSERT_GT(prometheus, 0);
  StartTaskManager(tm2, "tm-2");
  ASSERT_TRUE(WaitUntil([&] { return TaskManagerCount() == 2; })) << GetJson("/taskmanagers").dump();

  // Attached run: the CLI uploads the library, runs it and follows it to
  // the end. Parallelism 2 over two one-slot TaskManagers: the keyed
  // exchange crosses between the processes.
  std::string output = dir_.Sub("out");
  auto [code, out] = Cli("run -m 127.0.0.1:" + std::to_string(rest_port_) + " -p 2 " + JobPath("sum_job") +
                         " --count 200000 --keys 11 --output " + output);
  ASSERT_EQ(code, 0) << out << test_support::ReadFile(dir_.Sub("jobmanager.err"));
  EXPECT_THAT(out, HasSubstr("FINISHED"));
  EXPECT_EQ(FinalSums(output), ExpectedSums(200000, 11));
  // Each TaskManager fetched the library once, by checksum.
  for (const char* id : {"tm-1", "tm-2"}) {
    int libraries = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.Sub(std::string("blobs-") + id))) {
      libraries += e.path().extension() == ".so";
    }
    EXPECT_EQ(libraries, 1) << id;
  }

  // tm-1's Prometheus endpoint serves its metrics, labelled with its id.
  {
    httplib::Client client("127.0.0.1", prometheus);
    auto scrape = client.Get("/metrics");
    ASSERT_TRUE(scrape);
    EXPECT_EQ(scrape->status, 200);
    EXPECT_THAT(scrape->body, HasSubstr("taskSlotsTotal"));
    EXPECT_THAT(scrape->body, HasSubstr("\"tm-1\""));
  }

  // The JobManager's endpoint too (its own metrics, e.g. taskSlotsTotal
  // of the TaskManagers it knows).
  {
    httplib::Client client("127.0.0.1", jm_prometheus_port_);
    auto scrape = client.Get("/metrics");
    ASSERT_TRUE(scrape);
    EXPECT_EQ(scrape->status, 200);
    EXPECT_THAT(scrape->body, HasSubstr("freshet_jobmanager"));
  }

  // SIGKILL: no goodbye; the JobManager notices by heartbeat timeout.
  ::kill(tm2.Pid(), SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return TaskManagerCount() == 1; }, std::chrono::seconds(20)))
      << GetJson("/taskmanagers").dump();
  // A restarted TaskManager rejoins.
  FreshetProcess tm3;
  StartTaskManager(tm3, "tm-3");
  EXPECT_TRUE(WaitUntil([&] { return TaskManagerCount() == 2; })) << GetJson("/taskmanagers").dump();

  EXPECT_EQ(tm1.Stop(SIGTERM), 0);
  EXPECT_EQ(tm3.Stop(SIGTERM), 0);
  EXPECT_EQ(jm_.Stop(SIGTERM), 0);
}

TEST_F(ClusterProcessTest, JobResumesExactlyOnceAfterATaskManagerIsKilled) {
  StartJobManager();
  FreshetProcess tm1, tm2;
  StartTaskManager(tm1, "tm-1");
  StartTaskManager(tm2, "tm-2");
  ASSERT_TRUE(WaitUntil([&] { return TaskManagerCount() == 2; })) << GetJson("/taskmanagers").dump();

  // Detached run over both TaskManagers (one slot each): every key carries
  // its numbers in order to a checker whose state counts gaps and
  // duplicates, committed by an exactly-once file sink at the end.
  constexpr int64_t kKeys = 20, kPerKey = 2500;
  std::string output = dir_.Sub("oracle-out");
  auto [code, out] = Cli("run -d -m 127.0.0.1:" + std::to_string(rest_port_) + " -p 2 " + JobPath("oracle_job") +
                         " --keys " + std::to_string(kKeys) + " --per-key " + std::to_string(kPerKey) +
                         " --rate 8000 --interval 100 --parallelism 2 --output " + output + " --checkpoints " +
                         dir_.Sub("oracle-checkpoints"));
  ASSERT_EQ(code, 0) << out << test_support::ReadFile(dir_.Sub("jobmanager.err"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("JobID ([0-9a-f]{32})"))) << out;
  const std::string job_id = m[1].str();
  ASSERT_TRUE(WaitUntil([&] { return CompletedCheckpoints(job_id) >= 3; }, std::chrono::seconds(60)))
      << GetJson("/jobs/" + job_id + "/checkpoints").dump();
  ASSERT_EQ(JobState(job_id), "RUNNING");

  // SIGKILL mid-job; a new TaskManager joins. The job restarts from its
  // latest checkpoint on tm-1 and tm-3 (tm-2's slot is gone with it).
  ::kill(tm2.Pid(), SIGKILL);
  FreshetProcess tm3;
  StartTaskManager(tm3, "tm-3");
  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == "FINISHED" || JobState(job_id) == "FAILED"; },
                        std::chrono::seconds(120)))
      << GetJson("/jobs/" + job_id).dump();
  ASSERT_EQ(JobState(job_id), "FINISHED") << GetJson("/jobs/" + job_id + "/exceptions").dump()
                                          << test_support::ReadFile(dir_.Sub("jobmanager.err"));
  nlohmann::json exceptions = GetJson("/jobs/" + job_id + "/exceptions");
  EXPECT_FALSE(exceptions["exceptionHistory"]["entries"].empty()) << "the failover left no trace: " << exceptions.dump();
  std::printf("failover: %s\n", exceptions["root-exception"].dump().c_str());
  // The last attempt started from a checkpoint taken before the kill.
  nlohmann::json restored = GetJson("/jobs/" + job_id + "/checkpoints")["latest"]["restored"];
  ASSERT_TRUE(restored.is_object()) << GetJson("/jobs/" + job_id + "/checkpoints").dump();
  EXPECT_GE(restored.value("id", int64_t{0}), 3);

  deploy_test::ExpectExactlyOnce(deploy_test::ReadOracleOutput(output), kKeys, kPerKey);
  // The replacement ran part of the job: it fetched the library.
  int libraries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.Sub("blobs-tm-3"))) {
    libraries += e.path().extension() == ".so";
  }
  EXPECT_EQ(libraries, 1);
  // Every slot is free again.
  nlohmann::json overview = GetJson("/overview");
  EXPECT_EQ(overview.value("slots-available", -1), 2) << overview.dump();

  EXPECT_EQ(tm1.Stop(SIGTERM), 0);
  EXPECT_EQ(tm3.Stop(SIGTERM), 0);
  EXPECT_EQ(jm_.Stop(SIGTERM), 0);
}


TEST_F(ClusterProcessTest, RestShowsTaskMetricsFetchedFromTaskManagersAndALostOneDoesNotHangIt) {
  StartJobManager();
  FreshetProcess tm1, tm2;
  StartTaskManager(tm1, "tm-1");
  StartTaskManager(tm2, "tm-2");
  ASSERT_TRUE(WaitUntil([&] { return TaskManagerCount() == 2; })) << GetJson("/taskmanagers").dump();

  // Parallelism 2 over two one-slot TaskManagers: every subtask runs in a
  // TaskManager process, none in the JobManager's.
  auto [code, out] = Cli("run -d -m 127.0.0.1:" + std::to_string(rest_port_) + " -p 2 " + JobPath("ticker_job") +
                         " --rate 2000 --keys 64 --output " + dir_.Sub("ticks"));
  ASSERT_EQ(code, 0) << out << test_support::ReadFile(dir_.Sub("jobmanager.err"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("JobID ([0-9a-f]{32})"))) << out;
  const std::string job_id = m[1].str();
  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == "RUNNING"; })) << GetJson("/jobs/" + job_id).dump();

  // The keyed vertex reads records over the network in both subtasks:
  // numRecordsIn of each, as the TaskManagers count them.
  nlohmann::json vertices = GetJson("/jobs/" + job_id)["vertices"];
  ASSERT_EQ(vertices.size(), 2u) << vertices.dump();
  std::string keyed;
  for (const nlohmann::json& v : vertices) {
    if (v.value("name", "").find("Source") == std::string::npos) keyed = v.value("id", "");
  }
  ASSERT_FALSE(keyed.empty()) << vertices.dump();
  const std::string vertex_path = "/jobs/" + job_id + "/vertices/" + keyed;
  auto records_in = [&](int subtask) -> int64_t {
    nlohmann::json r = GetJson(vertex_path + "/metrics?get=" + std::to_string(subtask) + ".numRecordsIn");
    if (!r.is_array() || r.size() != 1) return -1;
    return std::stoll(r[0].value("value", "-1"));
  };
  EXPECT_TRUE(WaitUntil([&] { return records_in(0) > 0 && records_in(1) > 0; }, std::chrono::seconds(60)))
      << GetJson(vertex_path + "/metrics").dump();
  // The vertex details read the same metrics per subtask.
  EXPECT_TRUE(WaitUntil([&] {
    nlohmann::json details = GetJson(vertex_path);
    if (!details.contains("subtasks") || details["subtasks"].size() != 2) return false;
    for (const nlohmann::json& st : details["subtasks"]) {
      if (st["metrics"].value("read-records", int64_t{0}) <= 0) return false;
    }
    return true;
  })) << GetJson(vertex_path).dump();
  // A TaskManager's own metrics, from its process.
  nlohmann::json slots = GetJson("/taskmanagers/tm-1/metrics?get=taskSlotsTotal");
  ASSERT_EQ(slots.size(), 1u) << slots.dump();
  EXPECT_EQ(slots[0].value("value", ""), "1");
  // The job's metrics live in the JobManager, on REST and Prometheus.
  nlohmann::json restarts = GetJson("/jobs/" + job_id + "/metrics?get=numRestarts");
  ASSERT_EQ(restarts.size(), 1u) << restarts.dump();
  EXPECT_EQ(restarts[0].value("value", ""), "0");
  {
    httplib::Client client("127.0.0.1", jm_prometheus_port_);
    auto scrape = client.Get("/metrics");
    ASSERT_TRUE(scrape);
    EXPECT_THAT(scrape->body, HasSubstr("freshet_jobmanager_job_numRestarts"));
    EXPECT_THAT(scrape->body, HasSubstr(job_id));
  }

  // Its host's resources as it reported them, and its heartbeats' time.
  {
    nlohmann::json tm = GetJson("/taskmanagers/tm-1");
    EXPECT_GT(tm["hardware"].value("cpuCores", 0), 0) << tm.dump();
    EXPECT_GT(tm["hardware"].value("physicalMemory", int64_t{0}), 0) << tm.dump();
    EXPECT_GT(tm["hardware"].value("freeMemory", int64_t{0}), 0) << tm.dump();
    auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    int64_t heartbeat = tm.value("timeSinceLastHeartbeat", int64_t{0});
    EXPECT_GT(heartbeat, now_ms - 10'000) << tm.dump();
    EXPECT_LE(heartbeat, now_ms + 1'000) << tm.dump();
    EXPECT_TRUE(WaitUntil([&] {
      return GetJson("/taskmanagers/tm-1").value("timeSinceLastHeartbeat", int64_t{0}) > heartbeat;
    })) << "no later heartbeat";
  }

  // A TaskManager process's logs, read from it over its RPC service.
  {
    nlohmann::json logs = GetJson("/taskmanagers/tm-1/logs");
    std::vector<std::string> names;
    for (const nlohmann::json& l : logs["logs"]) names.push_back(l.value("name", ""));
    EXPECT_THAT(names, ::testing::Contains("freshet-taskmanager-tm-1.log")) << logs.dump();
    httplib::Client client("127.0.0.1", rest_port_);
    auto log = client.Get("/taskmanagers/tm-1/logs/freshet-taskmanager-tm-1.log");
    ASSERT_TRUE(log);
    EXPECT_EQ(log->status, 200);
    EXPECT_THAT(log->get_header_value("Content-Type"), HasSubstr("text/plain"));
    EXPECT_THAT(log->body, HasSubstr("TaskManager tm-1 started"));
    auto missing = client.Get("/taskmanagers/tm-1/logs/no-such.log");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    EXPECT_THAT(missing->body, HasSubstr("there is no log file 'no-such.log'"));
    // A path is never opened, however it is spelled.
    auto escape = client.Get("/taskmanagers/tm-1/logs/..%2Fjobmanager.err");
    ASSERT_TRUE(escape);
    EXPECT_EQ(escape->status, 404) << escape->body;
  }

  // tm-2 hangs (SIGSTOP): its answer never comes, and the metric requests
  // still return, bounded by the fetch timeout.
  // Requests go on for longer than the fetcher's update interval (1 s), so
  // at least one fetch asks tm-2 while it hangs.
  ::kill(tm2.Pid(), SIGSTOP);
  auto stopped = std::chrono::steady_clock::now();
  // Its logs are asked for meanwhile: 503 naming it, after the request's
  // deadline (or at once when the heartbeat timeout declared it lost).
  auto hung_logs = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", rest_port_);
    client.set_read_timeout(std::chrono::seconds(60));
    auto start = std::chrono::steady_clock::now();
    auto r = client.Get("/taskmanagers/tm-2/logs");
    std::pair<int, std::string> answer = r ? std::pair(r->status, r->body) : std::pair(0, std::string());
    return std::pair(answer, std::chrono::steady_clock::now() - start);
  });
  for (int i = 0; i < 3 || std::chrono::steady_clock::now() - stopped < std::chrono::milliseconds(1500); ++i) {
    auto start = std::chrono::steady_clock::now();
    httplib::Client client("127.0.0.1", rest_port_);
    client.set_read_timeout(std::chrono::seconds(60));
    auto r = client.Get(vertex_path + "/metrics");
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->status == 200 || r->status == 404) << r->status << " " << r->body;
    EXPECT_LT(took, std::chrono::seconds(15)) << "request " << i;
  }
  {
    auto [answer, took] = hung_logs.get();
    EXPECT_EQ(answer.first, 503) << answer.second;
    EXPECT_THAT(answer.second, ::testing::AnyOf(HasSubstr("cannot list the log files of TaskManager tm-2"),
                                                HasSubstr("TaskManager tm-2 is lost")));
    EXPECT_LT(took, std::chrono::seconds(15));
  }
  // Killed: lost by heartbeat timeout; its metrics are simply gone.
  ::kill(tm2.Pid(), SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return TaskManagerCount() == 1; }, std::chrono::seconds(20)));
  EXPECT_TRUE(WaitUntil([&] {
    httplib::Client client("127.0.0.1", rest_port_);
    auto r = client.Get("/taskmanagers/tm-2/metrics");
    return r && (r->status == 404 || r->body == "[]");
  }));
  nlohmann::json tm1_slots = GetJson("/taskmanagers/tm-1/metrics?get=taskSlotsTotal");
  EXPECT_EQ(tm1_slots.size(), 1u) << tm1_slots.dump();

  EXPECT_EQ(tm1.Stop(SIGTERM), 0);
  EXPECT_EQ(jm_.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace freshet::internal
