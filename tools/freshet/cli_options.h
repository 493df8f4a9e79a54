#pragma once
// Command-line options of the `freshet` program's actions, and where the
// cluster verbs find the JobManager.

#include <optional>
#include <string>
#include <vector>

#include "freshet/configuration.h"
#include "freshet/status.h"

namespace freshet::internal {

/// Where a cluster verb sends its requests: -m, else rest.address and
/// rest.port from -D or the configuration file (-c, else
/// $FRESHET_CONF_DIR/freshet.yaml when set), else localhost:8081.
struct ClusterTarget {
  std::optional<std::string> jobmanager;  // -m / --jobmanager
  std::string config_file;                // -c / --config
  Configuration dynamic;                  // -D settings, in order of precedence over the file
};

/// The JobManager's REST address ("host:port"). Errors: an unreadable or
/// invalid configuration file.
Result<std::string> ResolveJobManager(const ClusterTarget& target);
/// Whether -m, a -D or the -c file names the JobManager (rest.address or
/// rest.port): `run` then submits to it instead of running embedded.
bool NamesJobManager(const ClusterTarget& target);

/// The configuration file a client reads: -c, else
/// $FRESHET_CONF_DIR/freshet.yaml if that exists; empty: none.
std::string ConfigurationFileOf(const ClusterTarget& target);

/// Options of the actions that take a job library (run, info).
struct ProgramOptions {
  /// Every setting for an embedded run: -D, and -p/-s/-n as their keys.
  Configuration config;
  std::string library;
  std::vector<std::string> args;
  // The same flags for a run on a cluster.
  std::optional<int> parallelism;
  std::string savepoint_path;
  bool allow_non_restored_state = false;
  bool detached = false;  // -d: submit and return
  /// --web-ui: an embedded run inside an in-process JobManager whose REST
  /// API and web UI stay up while the job runs (rest.enabled does the same).
  bool web_ui = false;
  /// --web-ui-linger <seconds>: how long the web UI stays up after the job
  /// ended (0: it stops with the job).
  int web_ui_linger_s = 0;
  ClusterTarget target;
};

/// Parses `[options] <job.so> [args]`: options end at the first argument
/// that is not an option, which names the library; the rest are the
/// program's own arguments.
Result<ProgramOptions> ParseProgramOptions(const std::string& action, int argc, char** argv, int first);

/// Whether `run` runs the job in an in-process JobManager with the web UI:
/// --web-ui, else `rest.enabled` from -D, else from the configuration file.
/// Error: a value that is no boolean (a file that does not load counts as
/// no request).
Result<bool> WantsWebUi(const ProgramOptions& options);

/// Options of the cluster verbs: -m, -c and -D (the target), the flags of
/// `flags_with_value` (with their values) and of `switches`, positional
/// arguments in order. Errors: an unknown option, a missing value.
struct VerbOptions {
  ClusterTarget target;
  std::vector<std::pair<std::string, std::string>> values;  // flag, value
  std::vector<std::string> switches;
  std::vector<std::string> positional;

  const std::string* Value(const std::vector<std::string>& names) const;
  bool Has(const std::vector<std::string>& names) const;
};
Result<VerbOptions> ParseVerbOptions(const std::string& action, int argc, char** argv, int first,
                                     const std::vector<std::string>& flags_with_value,
                                     const std::vector<std::string>& switches);

/// Prints "freshet: <message>" to stderr; returns 1.
int Fail(const Status& status);

}  // namespace freshet::internal
