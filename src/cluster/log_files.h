#pragma once
// A process's log directory as the REST API shows it: the regular files in
// it, and the tail of one of them chosen by name. Used by the JobManager for
// its own logs and in-process TaskManagers, and by TaskManager processes to
// answer the JobManager's log requests (ListLogs, ReadLog).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "freshet/status.h"

namespace freshet::internal {

struct LogFileInfo {
  std::string name;
  int64_t size = 0;
  /// Last modification, wall-clock milliseconds (0: unknown).
  int64_t mtime_ms = 0;
};

/// The most of a log file the REST API serves: its last 64 MiB.
inline constexpr size_t kMaxLogBytes = size_t{64} << 20;

/// The regular files of `dir`, sorted by name; empty when `dir` is empty or
/// not a directory.
std::vector<LogFileInfo> ListLogFiles(const std::string& dir);

/// The last `max_bytes` of the file `name` of `dir`. `name` must be one of
/// the directory's regular files, so no path a client sends is ever opened
/// (no traversal). Errors: NotFound (no such file, naming it), IoError.
Result<std::string> ReadLogFile(const std::string& dir, const std::string& name, size_t max_bytes = kMaxLogBytes);

}  // namespace freshet::internal
