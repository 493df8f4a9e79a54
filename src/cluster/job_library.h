#pragma once
// Loading job libraries (see include/freshet/job.h) and running their
// program: embedded, or in plan mode to rebuild the job graph from the
// same library and arguments on the JobManager and every TaskManager.

#include <memory>
#include <string>
#include <vector>

#include "freshet/configuration.h"
#include "freshet/status.h"
#include "graph/stream_graph.h"

namespace freshet::internal {

class JobLibrary {
 public:
  /// Loads the shared library at `path` and checks its entry points and
  /// ABI. Every problem (unreadable, not a shared object, unresolved
  /// symbols, no entry point, another ABI) is an error naming the path.
  static Result<std::shared_ptr<JobLibrary>> Load(const std::string& path);
  ~JobLibrary();
  JobLibrary(const JobLibrary&) = delete;
  JobLibrary& operator=(const JobLibrary&) = delete;

  const std::string& Path() const { return path_; }
  /// Hex SHA-256 of the library's bytes.
  const std::string& Checksum() const { return checksum_; }

  /// Runs the program with `args` (argv[1..]) on this thread, with
  /// `config` imposed on the environments it creates; returns its exit code.
  /// An exception leaving the program is an error naming it.
  Result<int> RunMain(const std::vector<std::string>& args, const Configuration& config) const;

  /// Runs the program in plan mode: returns the graph its first Execute()
  /// would run. Errors: the program failed to build the graph (the
  /// reason), returned or threw without calling Execute().
  Result<StreamGraph> BuildPlan(const std::vector<std::string>& args, const Configuration& config) const;

 private:
  JobLibrary() = default;
  std::string path_;
  std::string checksum_;
  void* handle_ = nullptr;
  int (*main_)(int, char**) = nullptr;
};

/// Hex SHA-256 of a file's bytes.
Result<std::string> FileSha256(const std::string& path);
/// Hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

/// A digest of what makes two job graphs run the same tasks: vertices
/// (chains of operator names and uids, parallelism, max parallelism, slot
/// sharing group) and edges (ends, input, partitioning, side output). A
/// TaskManager compares its rebuilt graph's fingerprint with the
/// JobManager's before running a task.
std::string GraphFingerprint(const JobGraph& job);

}  // namespace freshet::internal
