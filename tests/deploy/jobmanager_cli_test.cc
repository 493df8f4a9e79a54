// A JobManager process (`freshet jobmanager`) driven by the CLI's cluster
// verbs, as a user drives one: run (attached and detached), list,
// savepoint, checkpoint, stop, cancel, savepoint disposal; clean exit on
// SIGTERM.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "deploy/deploy_env.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

namespace fs = std::filesystem;
using deploy_test::Cli;
using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::JobPath;
using deploy_test::WaitUntil;
using ::testing::HasSubstr;

/// "Job has been submitted with JobID <id>" -> id.
std::string SubmittedJobId(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex("submitted with JobID ([0-9a-f]{32})"))) return "";
  return m[1].str();
}

/// "Checkpoint <n> for job <id> completed." -> n (-1: no such line).
int64_t CompletedCheckpointId(const std::string& output, const std::string& job_id) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex("Checkpoint ([0-9]+) for job " + job_id + " completed\\."))) return -1;
  return std::stoll(m[1].str());
}

/// "Savepoint completed. Path: <path>" -> path.
std::string SavepointPath(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex("Savepoint completed\\. Path: (\\S+)"))) return "";
  return m[1].str();
}

class JobManagerCliTest : public ::testing::Test {
 protected:
  /// Starts a JobManager with `conf` lines in a -c file and `dynamic` -D
  /// settings; returns "localhost:<port>" of its REST endpoint.
  std::string StartJobManager(const std::string& conf, const std::vector<std::string>& dynamic) {
    std::ofstream(dir_.Sub("freshet.yaml")) << conf;
    // The control plane on a free port too (tests run concurrently).
    std::vector<std::string> args = {"-c", dir_.Sub("freshet.yaml"), "-D", "jobmanager.rpc.port=0"};
    for (const std::string& d : dynamic) {
      args.push_back("-D");
      args.push_back(d);
    }
    EXPECT_TRUE(jm_.Start("jobmanager", args, dir_.Sub("jobmanager.err")));
    std::string line = jm_.ReadLine(std::chrono::seconds(30));
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, std::regex("REST endpoint: http://(.+):(\\d+)")))
        << "first line: '" << line << "'; stderr:\n"
        << test_support::ReadFile(dir_.Sub("jobmanager.err"));
    if (m.empty()) return "";
    port_ = std::stoi(m[2].str());
    std::string rpc = jm_.ReadLine(std::chrono::seconds(30));
    EXPECT_TRUE(rpc.starts_with("RPC endpoint: ")) << rpc;
    return m[1].str() + ":" + m[2].str();
  }

  nlohmann::json GetJson(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    auto r = client.Get(path.c_str());
    if (!r) return nullptr;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  test_support::TempDir dir_{"freshet-jm-cli"};
  deploy_test::FreshetProcess jm_;
  int port_ = 0;
};

TEST_F(JobManagerCliTest, CliRunsListsSavepointsStopsAndCancelsJobs) {
  std::string m = StartJobManager("taskmanager.numberOfTaskSlots: 2\n"
                                  "env.log.dir: " + dir_.Sub("log") + "\n"
                                  "web.upload.dir: " + dir_.Sub("uploads") + "\n",
                                  {"rest.port=0", "taskmanager.local.count=2"});
  ASSERT_FALSE(m.empty());
  nlohmann::json overview = GetJson("/overview");
  EXPECT_EQ(overview["taskmanagers"], 2);
  EXPECT_EQ(overview["slots-total"], 4);
  // The process's metrics: its own, and each local TaskManager's.
  EXPECT_FALSE(GetJson("/jobmanager/metrics").empty());
  EXPECT_EQ(GetJson("/taskmanagers/taskmanager-local-1/metrics?get=taskSlotsTotal,taskSlotsAvailable"),
            nlohmann::json::parse(R"([{"id": "taskSlotsAvailable", "value": "2"},
                                      {"id": "taskSlotsTotal", "value": "2"}])"));

  // Attached run: the CLI follows the job to its end.
  fs::path sums = dir_.Sub("sums");
  auto [code, out] = Cli("run -m " + m + " -p 2 " + JobPath("sum_job") + " --count 3000 --keys 5 --output " +
                         sums.string());
  ASSERT_EQ(code, 0) << out;
  std::string sum_job = SubmittedJobId(out);
  ASSERT_FALSE(sum_job.empty()) << out;
  EXPECT_THAT(out, HasSubstr(sum_job + " FINISHED: records in 3000, out"));
  EXPECT_THAT(out, HasSubstr("has finished"));
  EXPECT_EQ(FinalSums(sums), ExpectedSums(3000, 5));

  // Detached runs of an endless, checkpointed job.
  std::string ticker_args = " -p 2 -D execution.checkpointing.interval=100ms -D state.checkpoints.dir=" +
                            dir_.Sub("checkpoints") + " " + JobPath("ticker_job") + " --rate 300 --output ";
  auto [detached, detached_out] = Cli("run -m " + m + " -d" + ticker_args + dir_.Sub("ticks-1"));
  ASSERT_EQ(detached, 0) << detached_out;
  std::string ticker = SubmittedJobId(detached_out);
  ASSERT_FALSE(ticker.empty()) << detached_out;

  auto [list_code, list] = Cli("list -m " + m);
  ASSERT_EQ(list_code, 0) << list;
  EXPECT_THAT(list, HasSubstr(" : " + ticker + " : Ticker Job (RUNNING)"));
  EXPECT_THAT(list, ::testing::Not(HasSubstr(sum_job)));
  auto [all_code, all] = Cli("list -m " + m + " -a");
  ASSERT_EQ(all_code, 0) << all;
  EXPECT_THAT(all, HasSubstr(" : " + sum_job + " : Sum Job (FINISHED)"));

  // A savepoint; the job goes on.
  auto [sp_code, sp_out] = Cli("savepoint -m " + m + " " + ticker + " " + dir_.Sub("savepoints"));
  ASSERT_EQ(sp_code, 0) << sp_out;
  std::string savepoint = SavepointPath(sp_out);
  EXPECT_TRUE(fs::exists(fs::path(savepoint) / "_metadata")) << sp_out;
  EXPECT_EQ(GetJson("/jobs/" + ticker)["state"], "RUNNING");

  // Stop with a savepoint, then resume from it and cancel.
  auto [stop_code, stop_out] = Cli("stop -m " + m + " --savepointPath " + dir_.Sub("stopped") + " " + ticker);
  ASSERT_EQ(stop_code, 0) << stop_out;
  std::string stopped = SavepointPath(stop_out);
  EXPECT_TRUE(fs::exists(fs::path(stopped) / "_metadata")) << stop_out;
  EXPECT_TRUE(WaitUntil([&] { return GetJson("/jobs/" + ticker)["state"] == "FINISHED"; }));
  auto [resume_code, resume_out] = Cli("run -m " + m + " -d -s " + stopped + ticker_args + dir_.Sub("ticks-2"));
  ASSERT_EQ(resume_code, 0) << resume_out;
  std::string resumed = SubmittedJobId(resume_out);
  EXPECT_EQ(GetJson("/jobs/" + resumed + "/checkpoints")["latest"]["restored"]["external_path"], stopped);
  auto [checkpoint_code, checkpoint_out] = Cli("checkpoint -m " + m + " " + resumed);
  EXPECT_EQ(checkpoint_code, 0) << checkpoint_out;
  EXPECT_GE(CompletedCheckpointId(checkpoint_out, resumed), 1) << checkpoint_out;
  auto [cancel_code, cancel_out] = Cli("cancel -m " + m + " " + resumed);
  ASSERT_EQ(cancel_code, 0) << cancel_out;
  EXPECT_THAT(cancel_out, HasSubstr("Cancelled job " + resumed + " (CANCELED)"));

  // Disposal deletes a savepoint; the path must be one.
  auto [dispose_code, dispose_out] = Cli("savepoint -m " + m + " -d " + savepoint);
  ASSERT_EQ(dispose_code, 0) << dispose_out;
  EXPECT_THAT(dispose_out, HasSubstr("disposed"));
  EXPECT_FALSE(fs::exists(savepoint));
  auto [not_sp, not_sp_out] = Cli("savepoint -m " + m + " -d " + dir_.Sub("log"));
  EXPECT_EQ(not_sp, 1);
  EXPECT_TRUE(fs::exists(dir_.Sub("log/freshet-jobmanager.log")));

  // Errors the JobManager reports, and the CLI's own.
  std::string unknown(32, 'e');
  auto [gone, gone_out] = Cli("cancel -m " + m + " " + unknown);
  EXPECT_EQ(gone, 1);
  EXPECT_THAT(gone_out, HasSubstr("job " + unknown + " was not found (HTTP 404)"));
  auto [bad_id, bad_id_out] = Cli("stop -m " + m + " not-a-job");
  EXPECT_EQ(bad_id, 1);
  EXPECT_THAT(bad_id_out, HasSubstr("'not-a-job' is not a job id"));
  auto [failing, failing_out] = Cli("run -m " + m + " " + JobPath("misbehaving_job") + " throw");
  EXPECT_EQ(failing, 1);
  EXPECT_THAT(failing_out, HasSubstr("the input path does not exist"));
  auto [no_target, no_target_out] = Cli("savepoint -m " + m + " " + sum_job);
  EXPECT_EQ(no_target, 1);
  EXPECT_THAT(no_target_out, HasSubstr("savepoints need a running job"));

  // SIGTERM with a job running: the JobManager cancels it and exits 0.
  auto [last_code, last_out] = Cli("run -m " + m + " -d" + ticker_args + dir_.Sub("ticks-3"));
  ASSERT_EQ(last_code, 0) << last_out;
  EXPECT_EQ(jm_.Stop(SIGTERM), 0);
  EXPECT_EQ(jm_.ReadLine(std::chrono::seconds(5)), "JobManager stopped.");
  std::string log = test_support::ReadFile(dir_.Sub("log/freshet-jobmanager.log"));
  EXPECT_THAT(log, HasSubstr("received SIGTERM"));
  EXPECT_THAT(log, HasSubstr("job " + SubmittedJobId(last_out) + " ended: CANCELED"));
}

TEST_F(JobManagerCliTest, CliTakesCheckpointsOnRequest) {
  std::string m = StartJobManager("taskmanager.numberOfTaskSlots: 2\n"
                                  "env.log.dir: " + dir_.Sub("log") + "\n"
                                  "web.upload.dir: " + dir_.Sub("uploads") + "\n",
                                  {"rest.port=0"});
  ASSERT_FALSE(m.empty());
  // Periodic checkpoints an hour apart: the checkpoints below are the CLI's.
  auto [run_code, run_out] = Cli("run -m " + m + " -d -p 2 -D execution.checkpointing.interval=1h" +
                                 " -D state.checkpoints.num-retained=2 -D state.checkpoints.dir=" +
                                 dir_.Sub("checkpoints") + " " + JobPath("ticker_job") + " --rate 300 --output " +
                                 dir_.Sub("ticks"));
  ASSERT_EQ(run_code, 0) << run_out;
  std::string job = SubmittedJobId(run_out);
  ASSERT_FALSE(job.empty()) << run_out;
  ASSERT_TRUE(WaitUntil([&] { return GetJson("/jobs/" + job)["state"] == "RUNNING"; }));

  auto [code, out] = Cli("checkpoint -m " + m + " " + job);
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("Triggering checkpoint for job " + job));
  int64_t first = CompletedCheckpointId(out, job);
  ASSERT_GE(first, 1) << out;
  nlohmann::json stats = GetJson("/jobs/" + job + "/checkpoints");
  EXPECT_EQ(stats["counts"]["completed"], 1) << stats.dump();
  EXPECT_EQ(stats["latest"]["completed"]["id"], first) << stats.dump();
  EXPECT_EQ(stats["latest"]["completed"]["status"], "COMPLETED");

  auto [full_code, full_out] = Cli("checkpoint --full -m " + m + " " + job);
  ASSERT_EQ(full_code, 0) << full_out;
  EXPECT_THAT(full_out, HasSubstr("Triggering full checkpoint for job " + job));
  int64_t second = CompletedCheckpointId(full_out, job);
  EXPECT_GT(second, first) << full_out;
  stats = GetJson("/jobs/" + job + "/checkpoints");
  EXPECT_EQ(stats["counts"]["completed"], 2) << stats.dump();
  std::set<int64_t> completed;
  for (const nlohmann::json& c : stats["history"]) {
    if (c["status"] == "COMPLETED") completed.insert(c["id"].get<int64_t>());
  }
  EXPECT_EQ(completed, (std::set<int64_t>{first, second})) << stats.dump();

  // Errors: an unknown job, a malformed id; both exit 1 and say why.
  std::string unknown(32, 'e');
  auto [gone, gone_out] = Cli("checkpoint -m " + m + " " + unknown);
  EXPECT_EQ(gone, 1);
  EXPECT_THAT(gone_out, HasSubstr("job " + unknown + " was not found (HTTP 404)"));
  EXPECT_EQ(CompletedCheckpointId(gone_out, unknown), -1) << gone_out;
  auto [bad, bad_out] = Cli("checkpoint -m " + m + " --fast " + job);
  EXPECT_EQ(bad, 1);
  EXPECT_THAT(bad_out, HasSubstr("unknown option '--fast'"));
  auto [none, none_out] = Cli("checkpoint -m " + m);
  EXPECT_EQ(none, 1);
  EXPECT_THAT(none_out, HasSubstr("give exactly one job id"));

  auto [cancel_code, cancel_out] = Cli("cancel -m " + m + " " + job);
  ASSERT_EQ(cancel_code, 0) << cancel_out;
  auto [ended, ended_out] = Cli("checkpoint -m " + m + " " + job);
  EXPECT_EQ(ended, 1);
  EXPECT_THAT(ended_out, HasSubstr("checkpoints need a running job (HTTP 409)"));
  EXPECT_EQ(jm_.Stop(SIGTERM), 0);
}

TEST_F(JobManagerCliTest, CliSaysWhenTheJobManagerIsUnreachable) {
  // Port 1 on loopback: nothing listens there.
  auto [code, out] = Cli("list -m 127.0.0.1:1");
  EXPECT_EQ(code, 1);
  EXPECT_THAT(out, HasSubstr("cannot reach the JobManager at http://127.0.0.1:1"));
  auto [from_d, from_d_out] = Cli("cancel -D rest.address=127.0.0.1 -D rest.port=1 " + std::string(32, 'a'));
  EXPECT_EQ(from_d, 1);
  EXPECT_THAT(from_d_out, HasSubstr("cannot reach the JobManager at http://127.0.0.1:1"));
  // A run that names a JobManager goes to it, never embedded.
  auto [run, run_out] = Cli("run -D rest.port=1 " + JobPath("sum_job") + " --output " + dir_.Sub("never"));
  EXPECT_EQ(run, 1);
  EXPECT_THAT(run_out, HasSubstr("cannot reach the JobManager at http://localhost:1"));
  EXPECT_FALSE(fs::exists(dir_.Sub("never")));
  auto [bad_m, bad_m_out] = Cli("list -m nowhere");
  EXPECT_EQ(bad_m, 1);
  EXPECT_THAT(bad_m_out, HasSubstr("'nowhere' is not a JobManager address"));
  auto [no_id, no_id_out] = Cli("cancel -m 127.0.0.1:1");
  EXPECT_EQ(no_id, 1);
  EXPECT_THAT(no_id_out, HasSubstr("give exactly one job id"));
  auto [detached, detached_out] = Cli("run -d " + JobPath("sum_job"));
  EXPECT_EQ(detached, 1);
  EXPECT_THAT(detached_out, HasSubstr("-d (detached) needs a JobManager"));
}

TEST_F(JobManagerCliTest, JobManagerRefusesBadSettingsAndTakenPorts) {
  auto [typo, typo_out] = Cli("jobmanager -D rest.prot=0");
  EXPECT_EQ(typo, 1);
  EXPECT_THAT(typo_out, HasSubstr("unknown key 'rest.prot'"));
  auto [count, count_out] = Cli("jobmanager -D rest.port=0 -D taskmanager.local.count=many -D env.log.dir=" +
                                dir_.Sub("log"));
  EXPECT_EQ(count, 1);
  EXPECT_THAT(count_out, HasSubstr("taskmanager.local.count: 'many'"));

  std::string m = StartJobManager("env.log.dir: " + dir_.Sub("log") + "\n", {"rest.port=0"});
  ASSERT_FALSE(m.empty());
  // `timeout`: a JobManager that wrongly shares the port would run on.
  auto [taken, taken_out] = deploy_test::Shell("timeout -s KILL 30 " + std::string(FRESHET_CLI) +
                                               " jobmanager -D jobmanager.rpc.port=0 -D rest.port=" + std::to_string(port_) +
                                               " -D env.log.dir=" + dir_.Sub("log2"));
  EXPECT_EQ(taken, 1);
  EXPECT_THAT(taken_out, HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(port_)));
  EXPECT_EQ(jm_.Stop(SIGINT), 0);
}

}  // namespace
}  // namespace freshet::internal
