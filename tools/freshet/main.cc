// freshet: the command-line client, modelled on Flink's `flink` program,
// and the JobManager process.
//
//   freshet run [options] <job.so> [program arguments]
//   freshet info [options] <job.so> [program arguments]
//   freshet jobmanager [-c conf] [-D key=value]...
//   freshet taskmanager [-c conf] [-D key=value]...
//   freshet list | cancel | stop | savepoint | checkpoint [-m host:port] ...
//
// `run` without a JobManager (-m, or rest.address/rest.port from -D or -c)
// runs the job embedded: on a mini-cluster in this process, or with
// --web-ui (rest.enabled) in an in-process JobManager serving the web UI.

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli_options.h"
#include "cluster/job_library.h"
#include "cluster_actions.h"
#include "freshet/configuration.h"
#include "graph/stream_graph.h"
#include "rest/job_plan.h"

namespace freshet::internal {
namespace {

constexpr const char* kUsage = R"(Usage: freshet <action> [options] [arguments]

Actions:
  run [options] <job.so> [args]    runs a job library's program
      -p, --parallelism <n>        default parallelism of the job
      -s, --fromSavepoint <path>   starts the job from a savepoint
      -n, --allowNonRestoredState  skips savepoint state that maps to no operator
      -D <key>=<value>             a configuration setting (repeatable)
      -m, --jobmanager <host:port> runs on that JobManager (REST address)
                                   instead of embedded
      -c, --config <file>          configuration file naming the JobManager
      -d, --detached               on a JobManager: submit and return
      --web-ui                     runs embedded in an in-process JobManager that
                                   serves the REST API and web UI (at
                                   rest.bind-address:rest.port, default
                                   127.0.0.1:8081, 0: any free port) while the
                                   job runs; -D rest.enabled=true does the same
      --web-ui-linger <seconds>    --web-ui, and the web UI stays up that long
                                   after the job ended (default 0)
  info [options] <job.so> [args]   prints the job's plan as JSON (same options)
  jobmanager [-c <file>] [-D <key>=<value>]...
                                   runs a JobManager with in-process
                                   TaskManagers (taskmanager.local.count, default
                                   1) until SIGTERM or SIGINT
  taskmanager [-c <file>] [-D <key>=<value>]...
                                   runs a TaskManager that registers with the
                                   JobManager at jobmanager.rpc.address:port
  list [-r | -s | -a]              lists running (-r), scheduled (-s) or all (-a) jobs
  cancel <jobid>                   cancels a job
  stop [-p <dir>] [-d] <jobid>     stops a job with a savepoint
      -p, --savepointPath <dir>    directory of the savepoint
      -d, --drain                  ends the input first (event time to the end)
  savepoint <jobid> [<dir>]        takes a savepoint of a running job
  savepoint -d <path>              disposes (deletes) a savepoint
  checkpoint [--full] <jobid>      takes a checkpoint of a running job now and
                                   waits for it (needs state.checkpoints.dir)
      --full                       a full (non-incremental) checkpoint; refused
                                   for jobs that take incremental checkpoints
  help                             prints this text

The cluster actions (list, cancel, stop, savepoint, checkpoint) take
-m <host:port>, -c <file> and -D rest.address=... / -D rest.port=... to find
the JobManager's REST endpoint (default localhost:8081).
)";

int RunAction(int argc, char** argv) {
  auto options = ParseProgramOptions("run", argc, argv, 2);
  if (!options.IsOk()) return Fail(options.GetStatus());
  auto web_ui = WantsWebUi(*options);
  if (!web_ui.IsOk()) return Fail(web_ui.GetStatus());
  if (*web_ui) {
    // rest.address and rest.port then name this process's own endpoint.
    if (options->target.jobmanager) {
      return Fail(Status::InvalidArgument(
          "run: --web-ui (or rest.enabled) runs the job in this process; it cannot be combined with -m"));
    }
    if (options->detached) {
      return Fail(Status::InvalidArgument(
          "run: -d (detached) cannot be combined with --web-ui (or rest.enabled): the web UI ends with this process"));
    }
    return RunWithWebUi(*options);
  }
  if (NamesJobManager(options->target)) return RunOnCluster(*options);
  if (options->detached) {
    return Fail(Status::InvalidArgument("run: -d (detached) needs a JobManager (-m host:port)"));
  }
  auto library = JobLibrary::Load(options->library);
  if (!library.IsOk()) return Fail(library.GetStatus());
  auto code = (*library)->RunMain(options->args, options->config);
  if (!code.IsOk()) return Fail(code.GetStatus());
  return *code;
}

int InfoAction(int argc, char** argv) {
  auto options = ParseProgramOptions("info", argc, argv, 2);
  if (!options.IsOk()) return Fail(options.GetStatus());
  auto library = JobLibrary::Load(options->library);
  if (!library.IsOk()) return Fail(library.GetStatus());
  auto graph = (*library)->BuildPlan(options->args, options->config);
  if (!graph.IsOk()) return Fail(graph.GetStatus());
  JobGraph job = BuildJobGraph(std::make_shared<const StreamGraph>(std::move(graph).Value()), "");
  std::cout << JobPlanJson(job).dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace freshet::internal

int main(int argc, char** argv) {
  using namespace freshet::internal;
  if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : 0;
  }
  std::string action = argv[1];
  if (action == "run") return RunAction(argc, argv);
  if (action == "info") return InfoAction(argc, argv);
  if (action == "jobmanager") return JobManagerAction(argc, argv);
  if (action == "taskmanager") return TaskManagerAction(argc, argv);
  if (action == "list") return ListAction(argc, argv);
  if (action == "cancel") return CancelAction(argc, argv);
  if (action == "stop") return StopAction(argc, argv);
  if (action == "savepoint") return SavepointAction(argc, argv);
  if (action == "checkpoint") return CheckpointAction(argc, argv);
  std::fprintf(stderr, "freshet: unknown action '%s' (see `freshet help`)\n", argv[1]);
  return 1;
}
