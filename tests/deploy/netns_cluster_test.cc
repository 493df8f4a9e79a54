// A JobManager and two TaskManagers on separate test hosts: Linux network
// namespaces joined by veth pairs to a bridge. The bridge lives in a
// namespace of its own, so the machine's interfaces and routes are never
// touched. Each host sees only its own address and its own loopback: a job
// whose keyed exchange spans both TaskManagers finishes only if every
// component binds to and advertises its host's address, and the exchange
// between the TaskManagers can only cross the bridge. Skipped (with the
// command that failed) where namespaces cannot be made: no root, no
// CAP_NET_ADMIN, no `ip`, no veth or bridge support.

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "deploy/deploy_env.h"
#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

using deploy_test::ExpectedSums;
using deploy_test::FinalSums;
using deploy_test::FreshetProcess;
using deploy_test::JobPath;
using deploy_test::Shell;
using deploy_test::WaitUntil;
using ::testing::HasSubstr;

/// Test hosts as network namespaces on one /24 behind a bridge. Names carry
/// the test process's pid, so concurrent runs never share them; whatever a
/// crashed run with the same pid left is removed first, and everything is
/// removed when the object goes away (whether the test passed or not).
class TestHosts {
 public:
  explicit TestHosts(std::vector<std::string> hosts)
      : prefix_("fr" + std::to_string(::getpid())), hosts_(std::move(hosts)) {}
  ~TestHosts() { Remove(); }
  TestHosts(const TestHosts&) = delete;
  TestHosts& operator=(const TestHosts&) = delete;

  /// Builds the namespaces and the network; returns the first command that
  /// failed, with its output, or nothing when all is up.
  std::optional<std::string> Create() {
    Remove();
    subnet_ = FreeSubnet();
    std::string bridge = prefix_ + "br";
    std::vector<std::string> commands = {"ip netns add " + bridge};
    for (const std::string& h : hosts_) commands.push_back("ip netns add " + Namespace(h));
    commands.push_back("ip -n " + bridge + " link add br0 type bridge");
    commands.push_back("ip -n " + bridge + " link set br0 up");
    for (const std::string& h : hosts_) {
      std::string ns = Namespace(h);
      // The host's end is created inside the host's namespace: it never
      // appears in the machine's own namespace.
      commands.push_back("ip -n " + bridge + " link add v" + h + " type veth peer name eth0 netns " + ns);
      commands.push_back("ip -n " + bridge + " link set v" + h + " master br0 up");
      commands.push_back("ip -n " + ns + " addr add " + Address(h) + "/24 dev eth0");
      commands.push_back("ip -n " + ns + " link set eth0 up");
      commands.push_back("ip -n " + ns + " link set lo up");
    }
    for (const std::string& c : commands) {
      created_ = true;
      auto [code, out] = Shell(c);
      if (code != 0) return "`" + c + "` failed (exit " + std::to_string(code) + "): " + out;
    }
    return std::nullopt;
  }

  std::string Namespace(const std::string& host) const { return prefix_ + host; }
  /// The address of `host` (one of the names given), or of a host on the
  /// subnet that does not exist for any other name.
  std::string Address(const std::string& host) const {
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i] == host) return subnet_ + std::to_string(i + 1);
    }
    return subnet_ + "99";
  }

  /// Runs `work` on a thread that joined `host`'s network namespace: the
  /// sockets it opens, and the processes it forks, are on that host (the
  /// namespace is per thread, so the rest of the test stays where it was).
  /// Forked processes outlive the thread: they must not ask to die with
  /// their parent thread (PR_SET_PDEATHSIG). Returns an error text when the
  /// namespace could not be joined.
  std::string RunOn(const std::string& host, const std::function<void()>& work) const {
    std::string error;
    std::thread([&] {
      std::string path = "/var/run/netns/" + Namespace(host);
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
        error = "cannot enter " + path + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return;
      }
      ::close(fd);
      work();
    }).join();
    return error;
  }

 private:
  /// 10.a.b. with a and b from the pid, skipping prefixes the machine
  /// already uses (the namespaces are private, but a clash would make
  /// reports confusing).
  std::string FreeSubnet() const {
    std::string used = Shell("ip -o -4 addr show; ip -4 route show").second;
    int pid = static_cast<int>(::getpid());
    for (int i = 0; i < 100 * 256; ++i) {
      int n = pid + i;
      std::string prefix = "10." + std::to_string(100 + n % 100) + "." + std::to_string((n / 100) % 256) + ".";
      if (used.find(prefix) == std::string::npos) return prefix;
    }
    return "10.254.254.";
  }

  void Remove() {
    if (!created_) {
      // Leftovers of an earlier process with this pid (names are listed
      // one a line, possibly followed by " (id: N)").
      std::string listed = Shell("ip netns list").second;
      if (listed.find(prefix_) == std::string::npos) return;
    }
    for (const std::string& h : hosts_) Shell("ip netns del " + Namespace(h));
    Shell("ip netns del " + prefix_ + "br");
    created_ = false;
  }

  std::string prefix_;
  std::vector<std::string> hosts_;
  std::string subnet_;
  bool created_ = false;
};

class NetnsClusterTest : public ::testing::Test {
 protected:
  static constexpr int kRestPort = 8081;
  static constexpr int kRpcPort = 6123;
  // The same TaskManager ports on both hosts: each namespace has its own
  // port space (on one host these would clash).
  static constexpr int kTmRpcPort = 6122;
  static constexpr int kTmDataPort = 6121;

  /// `freshet <action>` started on `host` with the settings every process
  /// shares (a configuration file of its own, not the checkout's
  /// conf/freshet.yaml) followed by `args`.
  bool StartOn(const std::string& host, FreshetProcess& process, const std::string& action, const std::string& name,
               const std::vector<std::string>& args) {
    std::vector<std::string> all = {"-c",
                                    dir_.Sub("freshet.yaml"),
                                    "-D",
                                    "heartbeat.interval=500",
                                    "-D",
                                    "heartbeat.timeout=20000",
                                    "-D",
                                    "env.log.dir=" + dir_.Sub("log")};
    all.insert(all.end(), args.begin(), args.end());
    bool started = false;
    std::string error =
        hosts_.RunOn(host, [&] { started = process.Start(action, all, dir_.Sub(name + ".err")); });
    EXPECT_EQ(error, "");
    return started;
  }

  std::vector<std::string> TaskManagerArgs(const std::string& id, const std::string& jobmanager,
                                           const std::string& host, const std::string& bind_host, int rpc_port,
                                           int data_port) {
    std::vector<std::string> args = {"-D", "jobmanager.rpc.address=" + jobmanager,
            "-D", "jobmanager.rpc.port=" + std::to_string(kRpcPort),
            "-D", "taskmanager.resource-id=" + id,
            "-D", "taskmanager.bind-host=" + bind_host,
            "-D", "taskmanager.rpc.port=" + std::to_string(rpc_port),
            "-D", "taskmanager.data.port=" + std::to_string(data_port),
            "-D", "taskmanager.numberOfTaskSlots=1",
            "-D", "blob.storage.directory=" + dir_.Sub("blobs-" + id)};
    // Empty: not configured, the TaskManager works its address out.
    if (!host.empty()) args.insert(args.end(), {"-D", "taskmanager.host=" + host});
    return args;
  }

  /// GET `path` from the REST endpoint, as a client on the JobManager's
  /// host (null when it does not answer 200 with JSON).
  nlohmann::json GetJson(const std::string& path) {
    nlohmann::json body;
    hosts_.RunOn("jm", [&] {
      httplib::Client client(hosts_.Address("jm"), kRestPort);
      client.set_connection_timeout(std::chrono::seconds(5));
      auto response = client.Get(path);
      if (response && response->status == 200) body = nlohmann::json::parse(response->body, nullptr, false);
    });
    return body.is_discarded() ? nlohmann::json() : body;
  }

  nlohmann::json TaskManagers() {
    nlohmann::json tms = GetJson("/taskmanagers");
    return tms.contains("taskmanagers") ? tms["taskmanagers"] : nlohmann::json::array();
  }

  std::string Logs(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& n : names) text += "\n--- " + n + ".err:\n" + test_support::ReadFile(dir_.Sub(n + ".err"));
    return text + Shell("tail -n 30 " + dir_.Sub("log") + "/*.log").second;
  }

  // Declared first: removed last, after every process below is killed.
  TestHosts hosts_{{"jm", "t1", "t2"}};
  test_support::TempDir dir_{"freshet-netns-cluster"};
};

TEST_F(NetnsClusterTest, TaskManagersOnSeparateHostsExchangeDataAcrossTheBridge) {
  if (std::optional<std::string> failure = hosts_.Create()) {
    GTEST_SKIP() << "network namespaces are not available on this machine, multi-host test skipped: " << *failure;
  }
  test_support::WriteFile(dir_.Sub("freshet.yaml"), "# settings come as -D arguments\n");
  const std::string jm_ip = hosts_.Address("jm");
  const std::string t1_ip = hosts_.Address("t1");
  const std::string t2_ip = hosts_.Address("t2");
  const std::string absent_ip = hosts_.Address("nobody");

  FreshetProcess jm, tm1, tm2, lost;
  ASSERT_TRUE(StartOn("jm", jm, "jobmanager", "jobmanager",
                      {"-D", "jobmanager.rpc.address=" + jm_ip, "-D", "jobmanager.bind-host=" + jm_ip, "-D",
                       "jobmanager.rpc.port=" + std::to_string(kRpcPort), "-D", "rest.address=" + jm_ip, "-D",
                       "rest.bind-address=" + jm_ip, "-D", "rest.port=" + std::to_string(kRestPort), "-D",
                       "taskmanager.local.count=0", "-D", "web.upload.dir=" + dir_.Sub("uploads")}));
  EXPECT_EQ(jm.ReadLine(std::chrono::seconds(30)), "REST endpoint: http://" + jm_ip + ":8081") << Logs({"jobmanager"});
  EXPECT_EQ(jm.ReadLine(std::chrono::seconds(30)), "RPC endpoint: " + jm_ip + ":6123") << Logs({"jobmanager"});

  // tm-1 binds to its host's address and advertises it; tm-2 binds to
  // every interface with no taskmanager.host: it advertises the address
  // of its interface towards the JobManager.
  ASSERT_TRUE(StartOn("t1", tm1, "taskmanager", "tm-1",
                      TaskManagerArgs("tm-1", jm_ip, t1_ip, t1_ip, kTmRpcPort, kTmDataPort)));
  ASSERT_TRUE(StartOn("t2", tm2, "taskmanager", "tm-2",
                      TaskManagerArgs("tm-2", jm_ip, "", "0.0.0.0", kTmRpcPort, kTmDataPort)));
  // A TaskManager told a JobManager address where no host answers: it
  // starts, says it cannot register, and keeps trying (ports of its own:
  // it shares tm-2's host).
  ASSERT_TRUE(StartOn("t2", lost, "taskmanager", "tm-lost", TaskManagerArgs("tm-lost", absent_ip, t2_ip, t2_ip, 0, 0)));
  EXPECT_THAT(tm1.ReadLine(std::chrono::seconds(30)),
              HasSubstr("TaskManager tm-1: RPC " + t1_ip + ":6122, data " + t1_ip + ":6121"))
      << Logs({"tm-1"});
  EXPECT_THAT(tm2.ReadLine(std::chrono::seconds(30)),
              HasSubstr("TaskManager tm-2: RPC " + t2_ip + ":6122, data " + t2_ip + ":6121"))
      << Logs({"tm-2"});
  EXPECT_THAT(lost.ReadLine(std::chrono::seconds(30)), HasSubstr("JobManager " + absent_ip + ":6123"))
      << Logs({"tm-lost"});

  // The JobManager lists both, under their hosts' addresses.
  ASSERT_TRUE(WaitUntil([&] { return TaskManagers().size() == 2; }))
      << TaskManagers().dump() << Logs({"jobmanager", "tm-1", "tm-2"});
  std::map<std::string, std::string> paths;
  for (const nlohmann::json& tm : TaskManagers()) {
    paths[tm.value("id", "")] = tm.value("path", "");
    EXPECT_EQ(tm.value("dataPort", 0), kTmDataPort) << tm.dump();
  }
  EXPECT_EQ(paths, (std::map<std::string, std::string>{{"tm-1", t1_ip + ":6122"}, {"tm-2", t2_ip + ":6122"}}));

  // The CLI as a client on tm-1's host: parallelism 2 over two one-slot
  // TaskManagers, so each keyed subtask reads from both hosts.
  std::string output = dir_.Sub("out");
  auto [code, out] = Shell("ip netns exec " + hosts_.Namespace("t1") + " " + FRESHET_CLI + " run -m " + jm_ip +
                           ":8081 -p 2 " + JobPath("sum_job") + " --count 200000 --keys 11 --output " + output);
  ASSERT_EQ(code, 0) << out << Logs({"jobmanager", "tm-1", "tm-2"});
  EXPECT_THAT(out, HasSubstr("FINISHED"));
  EXPECT_EQ(FinalSums(output), ExpectedSums(200000, 11));

  // Where the subtasks ran: the keyed vertex (the one fed by a HASH
  // exchange) had one subtask on each host.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("JobID ([0-9a-f]+)"))) << out;
  std::string job_id = m[1].str();
  nlohmann::json job = GetJson("/jobs/" + job_id);
  ASSERT_TRUE(job.contains("plan")) << job.dump();
  std::string keyed;
  for (const nlohmann::json& node : job["plan"].value("nodes", nlohmann::json::array())) {
    for (const nlohmann::json& input : node.value("inputs", nlohmann::json::array())) {
      if (input.value("ship_strategy", "") == "HASH") keyed = node.value("id", "");
    }
  }
  ASSERT_NE(keyed, "") << job["plan"].dump();
  nlohmann::json vertex = GetJson("/jobs/" + job_id + "/vertices/" + keyed);
  std::set<std::string> endpoints;
  for (const nlohmann::json& subtask : vertex.value("subtasks", nlohmann::json::array())) {
    endpoints.insert(subtask.value("endpoint", ""));
  }
  EXPECT_EQ(endpoints, (std::set<std::string>{t1_ip + ":6122", t2_ip + ":6122"})) << vertex.dump();

  // The lost TaskManager said clearly what it cannot reach, never joined,
  // and still stops promptly.
  std::string lost_log = dir_.Sub("log/freshet-taskmanager-tm-lost.log");
  std::string complaint;
  EXPECT_TRUE(WaitUntil([&] {
    std::string log = test_support::ReadFile(lost_log);
    size_t at = log.find("cannot register with the JobManager");
    if (at == std::string::npos) return false;
    complaint = log.substr(at, log.find('\n', at) - at);
    return true;
  })) << Logs({"tm-lost"});
  EXPECT_THAT(complaint, HasSubstr(absent_ip + ":6123"));
  EXPECT_EQ(TaskManagers().size(), 2u);
  EXPECT_EQ(lost.Stop(SIGTERM), 0) << Logs({"tm-lost"});

  // A client given an address where no host answers fails with an error
  // naming it, within the CLI's connection timeout.
  auto started = std::chrono::steady_clock::now();
  auto [bad_code, bad_out] = Shell("ip netns exec " + hosts_.Namespace("t2") + " " + FRESHET_CLI + " list -m " +
                                   absent_ip + ":8081");
  EXPECT_NE(bad_code, 0) << bad_out;
  EXPECT_THAT(bad_out, HasSubstr("cannot reach the JobManager at http://" + absent_ip + ":8081"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));

  EXPECT_EQ(tm1.Stop(SIGTERM), 0);
  EXPECT_EQ(tm2.Stop(SIGTERM), 0);
  EXPECT_EQ(jm.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace freshet::internal
