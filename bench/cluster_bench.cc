// The keyed workload across TaskManager processes against the same job
// embedded, in one run.
//
//   freshet_cluster_bench [--records N] [--runs R] [--dir DIR]
//
// Starts a JobManager process and two TaskManager processes with one slot
// each on loopback, then runs the keyed bench job library
// (bench/jobs/keyed_bench_job.cc: generator in a slot of its own, keyBy,
// running sum, counting sink) R times on the cluster with
// `freshet run -m` (the source and the sum land on different TaskManagers:
// every record crosses TCP between processes) and, alternating with it,
// R times embedded with `freshet run` (one process, local channels).
// The rate of a run is the sink's records divided by the time between its
// first and its last record, read the same way in both placements; the
// job's wall time with submission and deployment is printed alongside.
// Prints every run, the medians and the median of the per-round ratios.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// A child process whose stdout is read line by line (stderr goes to a file).
class Child {
 public:
  bool Start(const std::vector<std::string>& args, const std::string& stderr_path) {
    int out[2];
    if (::pipe(out) != 0) return false;
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::close(out[0]);
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
    return true;
  }
  /// The next line of its stdout (empty: none within the timeout).
  std::string ReadLine(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    ::close(fd_);
    pid_ = -1;
  }
  ~Child() { Stop(); }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
};

std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  char chunk[4096];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0) out.append(chunk, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

struct Measured {
  double rate = 0;       // records per second between the sink's first and last record
  double wall_s = 0;     // submission to end, as the client saw it
};

/// The sink's figures in `dir`; nullopt (with a message) when the count is wrong.
std::optional<Measured> ReadSink(const fs::path& dir, long long expected) {
  std::ifstream in(dir / "sink-0");
  long long records = 0, first = 0, last = 0;
  if (!(in >> records >> first >> last)) {
    std::fprintf(stderr, "no sink figures in %s\n", dir.c_str());
    return std::nullopt;
  }
  if (records != expected || last <= first) {
    std::fprintf(stderr, "the sink in %s saw %lld records, expected %lld\n", dir.c_str(), records, expected);
    return std::nullopt;
  }
  return Measured{static_cast<double>(records) / (static_cast<double>(last - first) / 1e9), 0};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  long long records = 50'000'000;
  int runs = 5;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--records" && i + 1 < argc) {
      records = std::atoll(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: freshet_cluster_bench [--records N] [--runs R] [--dir DIR]\n");
      return 2;
    }
  }
  if (records < 1 || runs < 1) {
    std::fprintf(stderr, "--records and --runs must be positive\n");
    return 2;
  }
  bool own_dir = dir.empty();
  if (own_dir) dir = (fs::temp_directory_path() / ("freshet-cluster-bench-" + std::to_string(::getpid()))).string();
  fs::create_directories(dir);
  const std::string cli = FRESHET_CLI;
  const std::string job = FRESHET_BENCH_JOB;

  Child jm;
  if (!jm.Start({cli, "jobmanager", "-D", "rest.port=0", "-D", "jobmanager.rpc.port=0", "-D",
                 "taskmanager.local.count=0", "-D", "env.log.dir=" + dir + "/log", "-D",
                 "web.upload.dir=" + dir + "/uploads"},
                dir + "/jobmanager.err")) {
    std::perror("cannot start the JobManager");
    return 1;
  }
  std::smatch m;
  std::string rest_line = jm.ReadLine(std::chrono::seconds(60));
  std::string rpc_line = jm.ReadLine(std::chrono::seconds(60));
  std::regex rest_re("REST endpoint: http://(.+)"), rpc_re("RPC endpoint: .+:(\\d+)");
  if (!std::regex_match(rest_line, m, rest_re)) {
    std::fprintf(stderr, "the JobManager did not start (see %s/jobmanager.err): %s\n", dir.c_str(), rest_line.c_str());
    return 1;
  }
  const std::string rest = m[1].str();
  if (!std::regex_match(rpc_line, m, rpc_re)) {
    std::fprintf(stderr, "the JobManager printed no RPC endpoint: %s\n", rpc_line.c_str());
    return 1;
  }
  const std::string rpc_port = m[1].str();
  std::vector<Child> tms(2);
  for (size_t i = 0; i < tms.size(); ++i) {
    std::string id = "bench-tm-" + std::to_string(i + 1);
    if (!tms[i].Start({cli, "taskmanager", "-D", "jobmanager.rpc.address=127.0.0.1", "-D",
                       "jobmanager.rpc.port=" + rpc_port, "-D", "taskmanager.resource-id=" + id, "-D",
                       "taskmanager.host=127.0.0.1", "-D", "taskmanager.numberOfTaskSlots=1", "-D",
                       "env.log.dir=" + dir + "/log", "-D", "blob.storage.directory=" + dir + "/blobs-" + id},
                      dir + "/" + id + ".err")) {
      std::perror("cannot start a TaskManager");
      return 1;
    }
    std::string line = tms[i].ReadLine(std::chrono::seconds(60));
    if (line.find("TaskManager " + id) == std::string::npos) {
      std::fprintf(stderr, "TaskManager %s did not start (see %s/%s.err): %s\n", id.c_str(), dir.c_str(), id.c_str(),
                   line.c_str());
      return 1;
    }
  }

  std::vector<double> cluster, embedded, ratios;
  for (int r = 0; r < runs; ++r) {
    Measured placed[2];
    for (int mode = 0; mode < 2; ++mode) {
      fs::path out = fs::path(dir) / ((mode == 0 ? "cluster-" : "embedded-") + std::to_string(r));
      fs::remove_all(out);
      fs::create_directories(out);
      std::string command = cli + " run " + (mode == 0 ? "-m " + rest + " " : std::string()) + job + " --records " +
                            std::to_string(records) + " --output " + out.string();
      std::pair<int, std::string> result;
      auto start = std::chrono::steady_clock::now();
      // The TaskManagers register within a few heartbeats: the first
      // cluster submission may find no free slots yet.
      for (int attempt = 0; attempt < 60; ++attempt) {
        start = std::chrono::steady_clock::now();
        result = Shell(command);
        if (result.first == 0 || result.second.find("task slots") == std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (result.first != 0) {
        std::fprintf(stderr, "%s failed (exit %d):\n%s\n", command.c_str(), result.first, result.second.c_str());
        return 1;
      }
      std::optional<Measured> measured = ReadSink(out, records);
      if (!measured) return 1;
      measured->wall_s = wall;
      placed[mode] = *measured;
      fs::remove_all(out);
    }
    cluster.push_back(placed[0].rate);
    embedded.push_back(placed[1].rate);
    ratios.push_back(placed[0].rate / placed[1].rate);
    std::printf("run %d: %.2f M records/s across two TaskManager processes (job %.2f s), %.2f M records/s embedded "
                "(job %.2f s); ratio %.3f\n",
                r + 1, placed[0].rate / 1e6, placed[0].wall_s, placed[1].rate / 1e6, placed[1].wall_s, ratios.back());
    std::fflush(stdout);
  }
  std::printf("median over %d runs of %lld records: %.2f M records/s across two TaskManager processes over TCP, "
              "%.2f M records/s embedded; median ratio %.3f\n",
              runs, records, Median(cluster) / 1e6, Median(embedded) / 1e6, Median(ratios));
  for (Child& tm : tms) tm.Stop();
  jm.Stop();
  if (own_dir) fs::remove_all(dir);
  return 0;
}
