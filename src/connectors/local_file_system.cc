// The local file system through POSIX calls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "freshet/file_system.h"

namespace freshet {

namespace {

std::string Reason() { return std::strerror(errno); }

// Makes a file's directory entry (a creation or a rename) durable.
Status SyncParentDirectory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = std::filesystem::path(".");
  const std::string dir = parent.string();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot open directory '" + dir + "': " + Reason());
  int rc = ::fsync(fd);
  std::string reason = rc != 0 ? Reason() : "";
  ::close(fd);
  if (rc != 0) return Status::IoError("cannot sync directory '" + dir + "': " + reason);
  return Status::Ok();
}

class LocalReadableFile final : public ReadableFile {
 public:
  LocalReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~LocalReadableFile() override { ::close(fd_); }
  Result<size_t> Read(char* out, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_, out, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno == EINTR) continue;
      return Status::IoError("cannot read '" + path_ + "': " + Reason());
    }
  }

 private:
  int fd_;
  std::string path_;
};

class LocalWritableFile final : public WritableFile {
 public:
  LocalWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~LocalWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Append(const char* data, size_t n) override {
    while (n > 0) {
      ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::IoError("cannot write '" + path_ + "': " + Reason());
      }
      data += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  Status Sync() override {
    if (fd_ < 0) return Status::FailedPrecondition("cannot sync '" + path_ + "': the file is closed");
    if (::fsync(fd_) != 0) return Status::IoError("cannot sync '" + path_ + "': " + Reason());
    return SyncParentDirectory(path_);
  }
  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int r = ::close(fd_);
    fd_ = -1;
    if (r != 0) return Status::IoError("cannot close '" + path_ + "': " + Reason());
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
};

class LocalFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                    "cannot open '" + path + "': " + Reason());
    }
    return std::unique_ptr<ReadableFile>(new LocalReadableFile(fd, path));
  }
  Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Status::IoError("cannot create '" + path + "': " + Reason());
    return std::unique_ptr<WritableFile>(new LocalWritableFile(fd, path));
  }
  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                    "cannot access '" + path + "': " + Reason());
    }
    return FileInfo{path, S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_size)};
  }
  Result<std::vector<FileInfo>> List(const std::string& directory) override {
    DIR* dir = ::opendir(directory.c_str());
    if (dir == nullptr) return Status::IoError("cannot list '" + directory + "': " + Reason());
    std::vector<FileInfo> out;
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name.empty() || name[0] == '.' || name[0] == '_') continue;
      std::string path = directory + (directory.ends_with('/') ? "" : "/") + name;
      auto info = Stat(path);
      if (info.IsOk()) out.push_back(*info);
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end(), [](const FileInfo& a, const FileInfo& b) { return a.path < b.path; });
    return out;
  }
  Status CreateDirectories(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return Status::IoError("cannot create directory '" + path + "': " + ec.message());
    return Status::Ok();
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                    "cannot rename '" + from + "' to '" + to + "': " + Reason());
    }
    return SyncParentDirectory(to);
  }
  Status Delete(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                    "cannot delete '" + path + "': " + Reason());
    }
    return Status::Ok();
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                    "cannot open '" + path + "': " + Reason());
    }
    int rc = ::ftruncate(fd, static_cast<off_t>(size));
    if (rc == 0) rc = ::fsync(fd);
    std::string reason = rc != 0 ? Reason() : "";
    ::close(fd);
    if (rc != 0) return Status::IoError("cannot truncate '" + path + "' to " + std::to_string(size) + " bytes: " + reason);
    return Status::Ok();
  }
};

}  // namespace

std::shared_ptr<FileSystem> FileSystem::Local() {
  static auto fs = std::make_shared<LocalFileSystem>();
  return fs;
}

}  // namespace freshet
