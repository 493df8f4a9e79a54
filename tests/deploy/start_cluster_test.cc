// bin/start-cluster.sh and bin/stop-cluster.sh: a JobManager and one
// TaskManager per line of conf/workers as local processes, a job run on
// them, and everything stopped again.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "deploy/deploy_env.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

using deploy_test::Cli;
using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::JobPath;
using deploy_test::Shell;
using deploy_test::WaitUntil;
using ::testing::HasSubstr;

TEST(StartClusterTest, StartsAJobManagerAndTheWorkersRunsAJobAndStopsThem) {
  test_support::TempDir dir("freshet-start-cluster");
  std::filesystem::create_directories(dir.Sub("conf"));
  std::ofstream(dir.Sub("conf/freshet.yaml")) << "rest.port: 0\n"
                                                 "jobmanager.rpc.port: 0\n"
                                                 "taskmanager.local.count: 0\n"
                                                 "taskmanager.numberOfTaskSlots: 1\n"
                                                 "taskmanager.host: 127.0.0.1\n"
                                                 "heartbeat.interval: 200\n"
                                                 "heartbeat.timeout: 2000\n"
                                                 "web.upload.dir: " +
                                                     dir.Sub("uploads") + "\nblob.storage.directory: " +
                                                     dir.Sub("blobs") + "\n";
  std::ofstream(dir.Sub("conf/workers")) << "# two TaskManagers on this host\nlocalhost\nlocalhost\n";
  std::string env = "FRESHET_CONF_DIR=" + dir.Sub("conf") + " FRESHET_LOG_DIR=" + dir.Sub("log") +
                    " FRESHET_BIN=" + std::string(FRESHET_CLI) + " ";
  std::string scripts = FRESHET_SCRIPTS_DIR;

  auto [code, out] = Shell(env + scripts + "/start-cluster.sh");
  ASSERT_EQ(code, 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("REST http://[^:]+:(\\d+)"))) << out;
  int port = std::stoi(m[1].str());
  EXPECT_THAT(out, HasSubstr("TaskManager taskmanager-localhost-2 on localhost"));

  auto count = [port] {
    httplib::Client client("127.0.0.1", port);
    auto r = client.Get("/taskmanagers");
    if (!r || r->status != 200) return size_t{0};
    auto json = nlohmann::json::parse(r->body, nullptr, false);
    return json.contains("taskmanagers") ? json["taskmanagers"].size() : size_t{0};
  };
  EXPECT_TRUE(WaitUntil([&] { return count() == 2; })) << Shell("cat " + dir.Sub("log") + "/*.out").second;

  std::string output = dir.Sub("out");
  auto [run, run_out] = Cli("run -m 127.0.0.1:" + std::to_string(port) + " -p 2 " + JobPath("sum_job") +
                            " --count 50000 --keys 7 --output " + output);
  EXPECT_EQ(run, 0) << run_out;
  EXPECT_EQ(FinalSums(output), ExpectedSums(50000, 7));

  // A second start while the first cluster runs is refused.
  auto [again, again_out] = Shell(env + scripts + "/start-cluster.sh");
  EXPECT_EQ(again, 1);
  EXPECT_THAT(again_out, HasSubstr("already running"));

  auto [stop, stop_out] = Shell(env + scripts + "/stop-cluster.sh");
  EXPECT_EQ(stop, 0) << stop_out;
  EXPECT_THAT(stop_out, HasSubstr("Freshet cluster stopped"));
  EXPECT_THAT(stop_out, ::testing::Not(HasSubstr("killing")));
  for (const auto& e : std::filesystem::directory_iterator(dir.Sub("log"))) {
    EXPECT_NE(e.path().extension(), ".pid") << e.path();
  }
  // Nothing answers any more.
  httplib::Client client("127.0.0.1", port);
  EXPECT_FALSE(client.Get("/overview"));
}

}  // namespace
}  // namespace freshet::internal
