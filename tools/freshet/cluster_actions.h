#pragma once
// The `freshet` program's cluster actions: the JobManager process, and the
// verbs that drive a JobManager over its REST endpoint (as Flink's `flink`
// program does). Each returns the process exit code.

#include "cli_options.h"

namespace freshet::internal {

/// `freshet jobmanager [-c conf] [-D k=v]...`: runs until SIGTERM or SIGINT.
int JobManagerAction(int argc, char** argv);
/// `freshet taskmanager [-c conf] [-D k=v]...` (taskmanager_main.cc): a
/// TaskManager process registering with the JobManager's RPC endpoint.
int TaskManagerAction(int argc, char** argv);

/// `run -m ...`: uploads the library, runs it; attached (no -d) it follows
/// the job until it ends and exits 0 only when it FINISHED.
int RunOnCluster(const ProgramOptions& options);

/// `run --web-ui` (or rest.enabled): runs the job embedded, in an
/// in-process JobManager (one local TaskManager with the slots the job
/// needs) whose REST API and web UI serve at rest.bind-address:rest.port
/// until the job ended (and --web-ui-linger seconds more); prints the web
/// UI's address first, then follows the job as an attached run does.
/// SIGINT and SIGTERM cancel the job.
int RunWithWebUi(const ProgramOptions& options);

int ListAction(int argc, char** argv);
int CancelAction(int argc, char** argv);
int StopAction(int argc, char** argv);
int SavepointAction(int argc, char** argv);
int CheckpointAction(int argc, char** argv);

}  // namespace freshet::internal
