#pragma once
/// The file-system seam: connectors reach files only through a FileSystem,
/// so tests can inject failures. `FileSystem::Local()` is the real one.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "freshet/status.h"

namespace freshet {

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  /// Reads up to `n` bytes; 0 at the end of the file.
  virtual Result<size_t> Read(char* out, size_t n) = 0;
};

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(const char* data, size_t n) = 0;
  virtual Status Flush() = 0;
  /// Makes everything appended so far durable (fsync), together with the
  /// file's entry in its directory.
  virtual Status Sync() { return Status::FailedPrecondition("this file system cannot sync files"); }
  virtual Status Close() = 0;
};

struct FileInfo {
  std::string path;
  bool is_directory = false;
  uint64_t size = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  /// Errors name the path and the reason ("no such file", "permission denied").
  virtual Result<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) = 0;
  virtual Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path) = 0;
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
  /// Entries of a directory, sorted by path; hidden files (".x", "_x") excluded.
  virtual Result<std::vector<FileInfo>> List(const std::string& directory) = 0;
  virtual Status CreateDirectories(const std::string& path) = 0;
  /// Renames `from` to `to` atomically, replacing `to` if it exists, and
  /// makes the rename durable. Both paths are in the same file system.
  virtual Status Rename(const std::string& from, const std::string& to) {
    return Status::FailedPrecondition("this file system cannot rename '" + from + "' to '" + to + "'");
  }
  /// Removes a file; NotFound when it does not exist.
  virtual Status Delete(const std::string& path) {
    return Status::FailedPrecondition("this file system cannot delete '" + path + "'");
  }
  /// Cuts a file to its first `size` bytes and makes that durable.
  virtual Status Truncate(const std::string& path, uint64_t size) {
    return Status::FailedPrecondition("this file system cannot truncate '" + path + "' to " + std::to_string(size) +
                                      " bytes");
  }

  /// The local file system (thread-safe, process-wide).
  static std::shared_ptr<FileSystem> Local();
};

}  // namespace freshet
