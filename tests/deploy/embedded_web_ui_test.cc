// `freshet run --web-ui` (and rest.enabled): an embedded run inside an
// in-process JobManager whose REST API and web UI serve while the job runs,
// driven as a user would: the CLI as a child process, HTTP against the
// address it prints.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "deploy/deploy_env.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

using deploy_test::Cli;
using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::JobPath;
using deploy_test::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;

class EmbeddedWebUiTest : public ::testing::Test {
 protected:
  /// Starts `freshet run <args>` and reads up to its "Web UI: ..." line;
  /// returns the port it names (0: no such line; `lines_` holds what came).
  int StartRun(std::vector<std::string> args) {
    // The run's log file goes to the test's directory.
    args.insert(args.begin(), {"-D", "env.log.dir=" + dir_.Sub("log")});
    EXPECT_TRUE(run_.Start("run", args, dir_.Sub("run.err")));
    std::regex web_ui("Web UI: http://(.+):(\\d+)");
    for (int i = 0; i < 50; ++i) {
      std::string line = run_.ReadLine(std::chrono::seconds(60));
      if (line.empty()) break;
      lines_ += line + "\n";
      std::smatch m;
      if (std::regex_match(line, m, web_ui)) return std::stoi(m[2].str());
    }
    ADD_FAILURE() << "no 'Web UI:' line; stdout:\n" << lines_ << "stderr:\n" << Stderr();
    return 0;
  }

  /// Reads stdout until a line contains `text` (false: the output ended or
  /// two minutes passed first).
  bool ReadUntil(const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string line = run_.ReadLine(std::chrono::seconds(10));
      lines_ += line + "\n";
      if (line.find(text) != std::string::npos) return true;
      if (line.empty() && ::kill(run_.Pid(), 0) != 0) return false;
    }
    return false;
  }

  std::string Stderr() { return test_support::ReadFile(dir_.Sub("run.err")); }

  static httplib::Result Get(int port, const std::string& path) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(std::chrono::seconds(10));
    return client.Get(path.c_str());
  }

  /// The state /jobs/overview lists for the job named `name` ("" if none).
  static std::string OverviewState(int port, const std::string& name) {
    auto r = Get(port, "/jobs/overview");
    if (!r || r->status != 200) return "";
    nlohmann::json overview = nlohmann::json::parse(r->body, nullptr, false);
    if (!overview.is_object() || !overview["jobs"].is_array()) return "";
    for (const nlohmann::json& job : overview["jobs"]) {
      if (job.value("name", "") == name) return job.value("state", "");
    }
    return "";
  }

  test_support::TempDir dir_{"freshet-web-ui"};
  deploy_test::FreshetProcess run_;
  std::string lines_;
};

TEST_F(EmbeddedWebUiTest, ServesTheWebUiWhileTheJobRunsAndExitsZeroWhenItFinishes) {
  // 2 keys x 600 numbers at 200 per second: about six seconds.
  int port = StartRun({"--web-ui", "-D", "rest.port=0", JobPath("oracle_job"), "--keys", "2", "--per-key", "600",
                       "--rate", "200", "--interval", "1000", "--output", dir_.Sub("out"), "--checkpoints",
                       dir_.Sub("checkpoints")});
  ASSERT_NE(port, 0);

  auto index = Get(port, "/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_THAT(index->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(index->body, HasSubstr("<html"));

  EXPECT_TRUE(WaitUntil([&] { return OverviewState(port, "Oracle Job") == "RUNNING"; }, std::chrono::seconds(60)))
      << "the job was never listed RUNNING; stdout:\n" << lines_ << "stderr:\n" << Stderr();
  // The library was registered as an upload is, so the web UI lists it.
  auto jars = Get(port, "/jars");
  ASSERT_TRUE(jars);
  EXPECT_THAT(jars->body, HasSubstr("oracle_job.so"));
  // The JobManager's log page lists the run's log file, which holds the
  // in-process JobManager's lines about the job.
  auto logs = Get(port, "/jobmanager/logs");
  ASSERT_TRUE(logs);
  EXPECT_THAT(logs->body, HasSubstr("freshet-client.log"));
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("log/freshet-client.log")));
  auto log = Get(port, "/jobmanager/logs/freshet-client.log");
  ASSERT_TRUE(log);
  EXPECT_EQ(log->status, 200);
  EXPECT_THAT(log->body, HasSubstr("Oracle Job"));

  ASSERT_TRUE(ReadUntil("has finished")) << "stdout:\n" << lines_ << "stderr:\n" << Stderr();
  EXPECT_THAT(lines_, HasSubstr("Job has been submitted with JobID"));
  EXPECT_TRUE(std::regex_search(lines_, std::regex("job [0-9a-f]{32} FINISHED: records in 1200")))
      << lines_;
  // Signal 0 sends nothing: this only waits for the exit.
  EXPECT_EQ(run_.Stop(0), 0) << Stderr();
  deploy_test::ExpectExactlyOnce(deploy_test::ReadOracleOutput(dir_.Sub("out")), 2, 600);
  // The endpoint ended with the job (no linger).
  EXPECT_FALSE(Get(port, "/jobs/overview"));
}

TEST_F(EmbeddedWebUiTest, SigintCancelsTheJobAndEndsTheProcess) {
  int port = StartRun({"--web-ui", "-D", "rest.port=0", JobPath("ticker_job"), "--rate", "100", "--keys", "2",
                       "--output", dir_.Sub("ticks")});
  ASSERT_NE(port, 0);
  ASSERT_TRUE(WaitUntil([&] { return OverviewState(port, "Ticker Job") == "RUNNING"; }, std::chrono::seconds(60)))
      << "stdout:\n" << lines_ << "stderr:\n" << Stderr();
  // An endless job: only the signal ends it; the run reports it cancelled.
  EXPECT_EQ(run_.Stop(SIGINT), 1);
  EXPECT_THAT(Stderr(), HasSubstr("CANCELED"));
  EXPECT_FALSE(Get(port, "/jobs/overview"));
}

TEST_F(EmbeddedWebUiTest, LingerKeepsTheWebUiUpAfterTheJobEnded) {
  int port = StartRun({"--web-ui-linger", "600", "-D", "rest.port=0", JobPath("sum_job"), "--count", "500", "--keys",
                       "5", "--output", dir_.Sub("sums")});
  ASSERT_NE(port, 0);
  ASSERT_TRUE(ReadUntil("Web UI stays up for 600 s")) << "stdout:\n" << lines_ << "stderr:\n" << Stderr();
  EXPECT_THAT(lines_, HasSubstr("has finished"));
  EXPECT_EQ(OverviewState(port, "Sum Job"), "FINISHED");
  EXPECT_EQ(FinalSums(dir_.Sub("sums")), ExpectedSums(500, 5));
  // SIGTERM ends the linger; the job had finished, so the run succeeded.
  EXPECT_EQ(run_.Stop(SIGTERM), 0) << Stderr();
}

TEST_F(EmbeddedWebUiTest, RestEnabledInTheConfigurationFileTurnsTheWebUiOn) {
  std::ofstream(dir_.Sub("freshet.yaml")) << "rest.enabled: true\nrest.port: 0\n";
  auto [code, out] = Cli("run -c " + dir_.Sub("freshet.yaml") + " -D env.log.dir=" + dir_.Sub("log") + " " +
                         JobPath("sum_job") +
                         " --count 300 --keys 3 --output " + dir_.Sub("sums"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("Web UI: http://[^:]+:[0-9]+\n"))) << out;
  EXPECT_THAT(out, HasSubstr("has finished"));
  EXPECT_EQ(FinalSums(dir_.Sub("sums")), ExpectedSums(300, 3));
}

TEST_F(EmbeddedWebUiTest, PortInUseIsAClearErrorNamingThePort) {
  int busy = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(busy, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(busy, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(busy, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(busy, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);

  auto [code, out] = Cli("run --web-ui -D env.log.dir=" + dir_.Sub("log") + " -D rest.port=" +
                         std::to_string(port) + " " + JobPath("sum_job") +
                         " --count 100 --keys 2 --output " + dir_.Sub("sums"));
  ::close(busy);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("the web UI cannot start"));
  EXPECT_THAT(out, HasSubstr("127.0.0.1:" + std::to_string(port)));
  EXPECT_THAT(out, HasSubstr("rest.port"));
  EXPECT_THAT(out, Not(HasSubstr("Web UI:")));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("sums")));
}

TEST_F(EmbeddedWebUiTest, ConflictingOrMalformedOptionsAreRefused) {
  auto [with_m, out_m] = Cli("run --web-ui -m localhost:1 " + JobPath("sum_job"));
  EXPECT_EQ(with_m, 1);
  EXPECT_THAT(out_m, HasSubstr("cannot be combined with -m"));
  auto [detached, out_d] = Cli("run --web-ui -d " + JobPath("sum_job"));
  EXPECT_EQ(detached, 1);
  EXPECT_THAT(out_d, HasSubstr("-d (detached) cannot be combined with --web-ui"));
  auto [linger, out_l] = Cli("run --web-ui-linger soon " + JobPath("sum_job"));
  EXPECT_EQ(linger, 1);
  EXPECT_THAT(out_l, HasSubstr("--web-ui-linger must be a number of seconds"));
  EXPECT_THAT(out_l, HasSubstr("'soon'"));
  auto [enabled, out_e] = Cli("run -D rest.enabled=maybe " + JobPath("sum_job"));
  EXPECT_EQ(enabled, 1);
  EXPECT_THAT(out_e, HasSubstr("rest.enabled"));
  auto [library, out_lib] = Cli("run --web-ui -D env.log.dir=" + dir_.Sub("log") + " -D rest.port=0 " +
                                dir_.Sub("missing.so"));
  EXPECT_EQ(library, 1);
  EXPECT_THAT(out_lib, HasSubstr("missing.so"));
  EXPECT_THAT(out_lib, Not(HasSubstr("Web UI:")));
}

}  // namespace
}  // namespace freshet::internal
