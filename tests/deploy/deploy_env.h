#pragma once
// What the REST and CLI tests share: the test job libraries, the sum job's
// expected output, running the `freshet` program, and waiting for a
// condition with a deadline.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/committed_files.h"

namespace freshet::deploy_test {

inline std::string JobPath(const std::string& name) {
  return std::string(FRESHET_TEST_JOBS_DIR) + "/" + name + ".so";
}

/// Runs a shell command; returns its exit code and output (stdout and stderr).
inline std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  std::array<char, 4096> chunk;
  size_t n;
  while ((n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0) out.append(chunk.data(), n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// `freshet <arguments>` (the CLI built with the tests).
inline std::pair<int, std::string> Cli(const std::string& arguments) {
  return Shell(std::string(FRESHET_CLI) + " " + arguments);
}

/// Final sum per key of the sum job's text output (the largest running sum).
inline std::map<int64_t, int64_t> FinalSums(const std::filesystem::path& output) {
  std::map<int64_t, int64_t> sums;
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(output)) {
    for (const auto& e : std::filesystem::directory_iterator(output)) files.push_back(e.path());
  } else {
    files.push_back(output);
  }
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      long long key = 0, sum = 0;
      if (std::sscanf(line.c_str(), "(%lld,%lld)", &key, &sum) != 2) {
        ADD_FAILURE() << "unexpected line in " << f << ": " << line;
        continue;
      }
      sums[key] = std::max<int64_t>(sums[key], sum);
    }
  }
  return sums;
}

inline std::map<int64_t, int64_t> ExpectedSums(int64_t count, int64_t keys) {
  std::map<int64_t, int64_t> sums;
  for (int64_t x = 1; x <= count; ++x) sums[x % keys] += x;
  return sums;
}

/// What the oracle job committed: per key, its lines "last violations"
/// (more than one line for a key means a duplicate commit).
struct OracleOutput {
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> keys;
  int64_t lines = 0;
};

inline OracleOutput ReadOracleOutput(const std::string& output) {
  OracleOutput result;
  for (const auto& f : test_support::ReadCommittedFiles(output).visible) {
    std::istringstream in(f.text);
    long long key = 0, last = 0, violations = 0;
    while (in >> key >> last >> violations) {
      result.keys[key].emplace_back(last, violations);
      ++result.lines;
    }
  }
  return result;
}

/// Checks that every one of `keys` keys was committed exactly once with its
/// last number `per_key - 1` and no gap or duplicate seen by its state.
inline void ExpectExactlyOnce(const OracleOutput& out, int64_t keys, int64_t per_key) {
  EXPECT_EQ(out.lines, keys);
  EXPECT_EQ(static_cast<int64_t>(out.keys.size()), keys);
  for (const auto& [key, lines] : out.keys) {
    ASSERT_EQ(lines.size(), 1u) << "key " << key << " was committed " << lines.size() << " times";
    EXPECT_EQ(lines[0].first, per_key - 1) << "key " << key;
    EXPECT_EQ(lines[0].second, 0) << "key " << key << ": violations seen by the checker";
  }
}

/// Calls `condition` every 20 ms until it holds or `timeout` passes;
/// returns whether it held.
inline bool WaitUntil(const std::function<bool()>& condition,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

/// `freshet <action> ...` (a JobManager or TaskManager) as a child process
/// whose stdout the test reads. Killed (SIGKILL) when destroyed.
class FreshetProcess {
 public:
  ~FreshetProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }

  /// Starts it; false when fork or exec failed.
  bool Start(const std::string& action, const std::vector<std::string>& args, const std::string& stderr_file) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) return false;
    std::vector<std::string> argv_storage = {FRESHET_CLI, action};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      ::dup2(pipe_fds[1], STDOUT_FILENO);
      int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      ::close(pipe_fds[0]);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(pipe_fds[1]);
    out_ = pipe_fds[0];
    return true;
  }

  /// The next line of its stdout ("" after `timeout` or at its end).
  std::string ReadLine(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(out_, chunk, sizeof(chunk));
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  /// Sends `signal` and waits for the exit; returns the exit code (-1:
  /// killed by a signal or still running after 30 s).
  int Stop(int signal) {
    ::kill(pid_, signal);
    int status = 0;
    bool exited = WaitUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
    if (!exited) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  pid_t Pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};


}  // namespace freshet::deploy_test
