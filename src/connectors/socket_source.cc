#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "freshet/connectors.h"

namespace freshet {

namespace {

/// Reads lines on a background thread into a bounded queue; the task
/// thread drains the queue. The queue bound pushes back on the server.
class SocketLineReader final : public SourceReader<std::string> {
 public:
  SocketLineReader(std::string host, int port, char delimiter, SourceReaderContext& ctx)
      : host_(std::move(host)), port_(port), delimiter_(delimiter), ctx_(ctx) {}
  ~SocketLineReader() override { Close(); }

  Status Open() override {
    std::string address = host_ + ":" + std::to_string(port_);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res);
    if (rc != 0) {
      return Status::Unavailable("socket source: cannot resolve " + address + ": " + ::gai_strerror(rc));
    }
    std::string last_error = "no address";
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        break;
      }
      last_error = std::strerror(errno);
      ::close(fd);
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) return Status::Unavailable("socket source: cannot connect to " + address + ": " + last_error);
    thread_ = std::thread([this] { ReadLoop(); });
    return Status::Ok();
  }

  /// A socket cannot be rewound: checkpoints store no position, and after a
  /// restore the reader reconnects and reads what arrives from then on.
  Result<std::vector<std::string>> SnapshotState(CheckpointId id) override {
    if (!warned_) {
      warned_ = true;
      spdlog::warn("socket source {}: a socket cannot be replayed; checkpoint {} stores no position, and lines "
                   "received between a checkpoint and a failure are lost on recovery (at-most-once)",
                   host_ + ":" + std::to_string(port_), id);
    }
    return std::vector<std::string>{};
  }
  Status RestoreState(std::vector<std::string>) override {
    spdlog::warn("socket source {}: restored from a snapshot; lines sent before the restart are not replayed",
                 host_ + ":" + std::to_string(port_));
    return Status::Ok();
  }

  Result<InputStatus> PollNext(ReaderOutput<std::string>& out) override {
    std::deque<std::string> batch;
    bool ended;
    std::string error;
    {
      std::lock_guard lock(mu_);
      batch.swap(lines_);
      ended = ended_;
      error = error_;
    }
    space_cv_.notify_one();
    for (const std::string& line : batch) out.Collect(line);
    if (!batch.empty()) return InputStatus::kMoreAvailable;
    if (!error.empty()) return Status::IoError(error);
    return ended ? InputStatus::kEndOfInput : InputStatus::kNothingAvailable;
  }

  Duration PollDelay() const override { return Duration(100); }

  void Close() override {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    space_cv_.notify_all();
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  static constexpr size_t kMaxQueued = 16 * 1024;

  void ReadLoop() {
    char buf[64 * 1024];
    std::string partial;
    while (true) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::lock_guard lock(mu_);
        if (n < 0 && !closing_) error_ = "socket source: read from " + host_ + ":" + std::to_string(port_) +
                                         " failed: " + std::strerror(errno);
        if (!partial.empty()) lines_.push_back(std::move(partial));
        ended_ = true;
        break;
      }
      std::unique_lock lock(mu_);
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == delimiter_) {
          if (delimiter_ == '\n' && !partial.empty() && partial.back() == '\r') partial.pop_back();
          lines_.push_back(std::move(partial));
          partial.clear();
        } else {
          partial.push_back(buf[i]);
        }
      }
      space_cv_.wait(lock, [this] { return lines_.size() < kMaxQueued || closing_; });
      if (closing_) return;
      lock.unlock();
      ctx_.NotifyAvailable();
    }
    ctx_.NotifyAvailable();
  }

  std::string host_;
  int port_;
  char delimiter_;
  SourceReaderContext& ctx_;
  int fd_ = -1;
  bool warned_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable space_cv_;
  std::deque<std::string> lines_;
  bool ended_ = false;
  bool closing_ = false;
  std::string error_;
};

}  // namespace

std::unique_ptr<SourceReader<std::string>> SocketTextSource::CreateReader(SourceReaderContext& ctx) const {
  return std::make_unique<SocketLineReader>(host_, port_, delimiter_, ctx);
}

}  // namespace freshet
