// The control plane in one process: a JobManager RPC server and
// TaskManagerRunners (each with its own executor, network stack and gRPC
// server) on loopback. Jobs come from job libraries the TaskManagers fetch
// and rebuild; a lost TaskManager fails its tasks and the job resumes from
// its latest checkpoint on the TaskManagers left and newly registered.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "cluster/job_library.h"
#include "cluster/job_master.h"
#include "cluster/mini_cluster.h"
#include "cluster/rpc/job_manager_service.h"
#include "cluster/rpc/remote_task_executor.h"
#include "cluster/taskmanager/task_manager_runner.h"
#include "deploy/deploy_env.h"
#include "metrics/metric_registry.h"
#include "rest/metric_fetcher.h"
#include "support/committed_files.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::JobPath;

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    JobManagerRpcSettings settings;
    settings.heartbeat_timeout = std::chrono::milliseconds(1500);
    jm_ = std::make_unique<JobManagerRpcServer>(settings);
    ASSERT_TRUE(jm_->Start().IsOk());
  }
  void TearDown() override {
    for (auto& tm : tms_) tm->Stop();
    jm_->Stop();
  }

  TaskManagerRunner& StartTaskManager(int slots, const std::string& id = "") {
    TaskManagerSettings s;
    s.resource_id = id.empty() ? "tm-" + std::to_string(tms_.size()) : id;
    s.num_slots = slots;
    s.jobmanager_address = jm_->Address();
    s.heartbeat_interval = std::chrono::milliseconds(100);
    s.heartbeat_timeout = std::chrono::milliseconds(1500);
    s.blob_directory = (fs::path(dir_.Path()) / ("blobs-" + s.resource_id)).string();
    tms_.push_back(std::make_unique<TaskManagerRunner>(s));
    Status started = tms_.back()->Start();
    EXPECT_TRUE(started.IsOk()) << started.Message();
    return *tms_.back();
  }

  /// The job graph of a library, as the JobManager builds it for a run.
  std::shared_ptr<const JobGraph> Job(const std::string& library_name, const std::vector<std::string>& args,
                                      const std::map<std::string, std::string>& config = {}) {
    auto library = JobLibrary::Load(JobPath(library_name));
    EXPECT_TRUE(library.IsOk()) << library.GetStatus().Message();
    Configuration conf;
    for (const auto& [k, v] : config) conf.Set(k, v);
    auto plan = (*library)->BuildPlan(args, conf);
    EXPECT_TRUE(plan.IsOk()) << plan.GetStatus().Message();
    auto job = std::make_shared<JobGraph>(
        BuildJobGraph(std::make_shared<const StreamGraph>(std::move(plan).Value()), NewJobId()));
    auto artifact = std::make_shared<JobArtifact>();
    artifact->library_path = JobPath(library_name);
    artifact->library_checksum = (*library)->Checksum();
    artifact->library_name = library_name + ".so";
    artifact->args = args;
    artifact->config = config;
    job->artifact = artifact;
    jm_->AddLibrary(artifact->library_checksum, artifact->library_path);
    return job;
  }

  test_support::TempDir dir_{"freshet-control-plane"};
  std::unique_ptr<JobManagerRpcServer> jm_;
  std::vector<std::unique_ptr<TaskManagerRunner>> tms_;
};

TEST_F(ControlPlaneTest, RunsAJobLibraryOnTwoTaskManagers) {
  TaskManagerRunner& a = StartTaskManager(1);
  TaskManagerRunner& b = StartTaskManager(1);
  ASSERT_TRUE(jm_->WaitForTaskManagers(2, std::chrono::seconds(20)));
  fs::path output = fs::path(dir_.Path()) / "out";
  auto job = Job("sum_job", {"--count", "100000", "--keys", "13", "--output", output.string()},
                 {{"parallelism.default", "2"}});
  JobMaster master(job, [this] { return jm_->Gateways(); }, Clock::System());
  ASSERT_TRUE(master.Start().IsOk());
  auto result = master.Wait(Duration(60'000));
  ASSERT_TRUE(result.has_value()) << "the job did not finish";
  ASSERT_TRUE(result->IsOk()) << result->GetStatus().Message();
  EXPECT_EQ((*result)->records_in, 100000);

  EXPECT_EQ(FinalSums(output), ExpectedSums(100000, 13));
  // One subtask of each vertex ran on each TaskManager, and the keyed
  // exchange crossed between them over the data plane.
  for (TaskManagerRunner* tm : {&a, &b}) {
    NetworkStats stats = tm->Executor().Network()->Stats();
    EXPECT_GT(stats.data_buffers_sent, 0) << tm->ResourceId();
    EXPECT_GT(stats.data_buffers_received, 0) << tm->ResourceId();
  }
}

TEST_F(ControlPlaneTest, ADifferentGraphOnTheTaskManagerIsRefused) {
  StartTaskManager(2);
  ASSERT_TRUE(jm_->WaitForTaskManagers(1, std::chrono::seconds(20)));
  fs::path output = fs::path(dir_.Path()) / "out";
  auto job = Job("sum_job", {"--count", "10", "--output", output.string()}, {{"parallelism.default", "2"}});
  // The artifact claims other settings than the graph was built with: the
  // TaskManager rebuilds a graph of parallelism 1 and must refuse.
  auto tampered = std::make_shared<JobGraph>(*job);
  auto artifact = std::make_shared<JobArtifact>(*job->artifact);
  artifact->config["parallelism.default"] = "1";
  tampered->artifact = artifact;
  JobMaster master(tampered, [this] { return jm_->Gateways(); }, Clock::System());
  Status started = master.Start();
  ASSERT_FALSE(started.IsOk());
  EXPECT_THAT(started.Message(), HasSubstr("built a different graph"));
}

TEST_F(ControlPlaneTest, JobWithoutLibraryCannotRunRemotely) {
  StartTaskManager(1);
  ASSERT_TRUE(jm_->WaitForTaskManagers(1, std::chrono::seconds(20)));
  auto job = Job("sum_job", {"--count", "10", "--output", (fs::path(dir_.Path()) / "o").string()});
  auto bare = std::make_shared<JobGraph>(*job);
  bare->artifact = nullptr;
  JobMaster master(bare, [this] { return jm_->Gateways(); }, Clock::System());
  Status started = master.Start();
  ASSERT_FALSE(started.IsOk());
  EXPECT_THAT(started.Message(), HasSubstr("not submitted as a job library"));
}

TEST_F(ControlPlaneTest, LostTaskManagerIsReplacedAndTheJobResumesExactlyOnce) {
  StartTaskManager(1, "tm-a");
  StartTaskManager(1, "tm-b");
  ASSERT_TRUE(jm_->WaitForTaskManagers(2, std::chrono::seconds(20)));
  fs::path output = fs::path(dir_.Path()) / "out";
  fs::path checkpoints = fs::path(dir_.Path()) / "checkpoints";
  constexpr int64_t kKeys = 20, kPerKey = 1500;
  auto job = Job("oracle_job", {"--keys", std::to_string(kKeys), "--per-key", std::to_string(kPerKey), "--rate",
                                "6000", "--output", output.string(), "--checkpoints", checkpoints.string(),
                                "--interval", "100"});
  JobMaster master(job, [this] { return jm_->Gateways(); }, Clock::System());
  ASSERT_TRUE(master.Start().IsOk());
  // Let it checkpoint, then lose tm-b the way a crash looks from outside:
  // no more heartbeats and its tasks gone.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // (Only the newest checkpoint is retained: wait for chk-3 or later.)
  auto checkpointed = [&master] {
    auto done = master.CompletedCheckpoints();
    return !done.empty() && std::stoi(fs::path(done.front()).filename().string().substr(4)) >= 3;
  };
  while (!checkpointed() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(checkpointed());
  tms_[1]->Stop();
  // A replacement registers; the job restarts on tm-a and tm-c.
  StartTaskManager(1, "tm-c");
  auto result = master.Wait(Duration(90'000));
  ASSERT_TRUE(result.has_value()) << "the job did not finish";
  ASSERT_TRUE(result->IsOk()) << result->GetStatus().Message();
  EXPECT_GE((*result)->restarts, 1);
  bool from_checkpoint = false;
  for (const std::string& e : (*result)->recovery_events) from_checkpoint |= e.find("from checkpoint") != std::string::npos;
  EXPECT_TRUE(from_checkpoint) << ::testing::PrintToString((*result)->recovery_events);

  // Exactly one committed line per key: its last number, and no gap or
  // duplicate ever seen by the checker's (restored) state.
  deploy_test::ExpectExactlyOnce(deploy_test::ReadOracleOutput(output.string()), kKeys, kPerKey);
  EXPECT_GT(tms_[2]->Executor().Network()->Stats().data_buffers_sent, 0) << "the replacement ran tasks";
}


TEST_F(ControlPlaneTest, MetricFetcherReadsTaskManagersAndSkipsOnesThatDoNotAnswer) {
  StartTaskManager(1, "tm-a");
  StartTaskManager(1, "tm-b");
  ASSERT_TRUE(jm_->WaitForTaskManagers(2, std::chrono::seconds(20)));
  auto job = Job("ticker_job", {"--rate", "2000", "--keys", "64", "--output", (fs::path(dir_.Path()) / "t").string()},
                 {{"parallelism.default", "2"}});
  JobMaster master(job, [this] { return jm_->Gateways(); }, Clock::System());
  ASSERT_TRUE(master.Start().IsOk());
  int keyed = -1;
  for (const JobVertex& v : job->vertices) {
    if (!v.is_source) keyed = v.id;
  }
  ASSERT_GE(keyed, 0);

  // A TaskManager that accepts connections and never answers (hung).
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(silent, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto hung = std::make_shared<RemoteTaskExecutor>(
      TaskManagerInfo{"tm-hung", "127.0.0.1", "127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "", 1, 0, {}});

  MetricRegistry local;  // the JobManager's own: none of the job's tasks
  MetricFetcherOptions options;
  options.update_interval = std::chrono::milliseconds(0);  // every read fetches
  options.timeout = std::chrono::milliseconds(500);
  MetricFetcher fetcher(
      local,
      [&] {
        std::vector<std::shared_ptr<RemoteTaskExecutor>> tms = jm_->TaskManagers();
        tms.push_back(hung);
        return tms;
      },
      options);
  auto records_in = [&](int subtask) -> double {
    Result<std::vector<MetricReading>> r = fetcher.ReadSubtask(job->job_id, keyed, subtask, {"numRecordsIn"});
    return r.IsOk() && r->size() == 1 ? r->front().value : -1;
  };
  EXPECT_TRUE(deploy_test::WaitUntil([&] { return records_in(0) > 0 && records_in(1) > 0; },
                                     std::chrono::seconds(60)));
  EXPECT_EQ(local.ReadVertex(job->job_id, keyed).GetStatus().Code(), StatusCode::kNotFound);
  Result<std::vector<MetricReading>> vertex = fetcher.ReadVertex(job->job_id, keyed, {"0.numRecordsIn"});
  ASSERT_TRUE(vertex.IsOk()) << vertex.GetStatus().Message();
  EXPECT_EQ(vertex->size(), 1u);
  Result<std::vector<AggregatedMetric>> sum = fetcher.AggregateSubtasks(job->job_id, keyed, {"numRecordsIn"});
  ASSERT_TRUE(sum.IsOk() && sum->size() == 1u);
  EXPECT_EQ(sum->front().subtasks, 2);
  EXPECT_THAT(fetcher.TaskManagerIds(), ::testing::UnorderedElementsAre("tm-a", "tm-b"));
  Result<std::vector<MetricReading>> slots = fetcher.ReadTaskManager("tm-a", {"taskSlotsTotal"});
  ASSERT_TRUE(slots.IsOk() && slots->size() == 1u);
  EXPECT_EQ(slots->front().value, 1);

  // The hung one is waited for up to the timeout, once per fetch.
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(fetcher.FetchNow(), 2);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(400));
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_EQ(fetcher.ReadTaskManager("tm-hung").GetStatus().Code(), StatusCode::kNotFound);

  // A TaskManager that is gone has no metrics; the others still do.
  tms_[1]->Stop();
  EXPECT_TRUE(deploy_test::WaitUntil(
      [&] { return fetcher.ReadTaskManager("tm-b").GetStatus().Code() == StatusCode::kNotFound; }));
  EXPECT_TRUE(fetcher.ReadTaskManager("tm-a").IsOk());
  master.Cancel();
  EXPECT_TRUE(master.Wait(Duration(60'000)).has_value());
  ::close(silent);
}

}  // namespace
}  // namespace freshet::internal
