#pragma once
// The Dispatcher of a JobManager process: it owns the uploaded job
// libraries ("jars"), the TaskManagers registered with the process (a
// resource manager's view: slots, total and free), and the jobs, each run
// by its own JobMaster over the slots it was given. Finished jobs stay
// listed with their outcome.
//
// Slots: a job takes JobMaster::RequiredSlots() free slots when it is
// submitted and gives them back when it ends. A job that does not fit is
// refused at once with an error saying how many slots are free; unlike
// Flink, which waits for resources, nothing is queued. At every restart a
// job gives its slots back and takes them again from the TaskManagers
// registered then, so a job that lost a TaskManager resumes on the
// remaining and newly registered ones; too few free slots then count as a
// failed attempt of its restart strategy. A job's slots come
// from one TaskManager when one has enough free; spreading a job over
// several TaskManagers needs TaskManagers with a data network
// (TaskExecutorGateway::DataAddress), because in-process TaskExecutors
// cannot read each other's partitions.
//
// Threading: every public method is thread-safe. Long calls (running a job
// library's program to build a job graph, savepoints) hold no lock of the
// Dispatcher's.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/job_master.h"
#include "cluster/task_executor.h"
#include "freshet/configuration.h"
#include "freshet/job_client.h"
#include "freshet/status.h"
#include "graph/stream_graph.h"
#include "runtime/checkpoint/checkpoint_coordinator.h"

namespace freshet::internal {

class JobLibrary;
class MetricRegistry;

/// How a TaskManager registers.
struct TaskManagerDescription {
  /// Where it runs: "local" for a TaskExecutor in this process, else its
  /// RPC address.
  std::string address = "local";
  /// Directory of its log files (empty: none known).
  std::string log_dir;
};

/// A registered TaskManager as the resource manager sees it.
struct TaskManagerStatus {
  std::string id;
  std::string address;
  /// "host:port" of its data network (empty: none, in-process only).
  std::string data_address;
  std::string log_dir;
  int slots_total = 0;
  int slots_free = 0;
  /// Wall-clock milliseconds of its registration.
  Timestamp registered_ms = 0;
  /// Per slot: the id of the job holding it (empty: free).
  std::vector<std::string> slot_jobs;
  /// Its host's resources, and when it last sent a heartbeat (wall-clock
  /// ms; -1: in this process, it needs none).
  HostResources resources;
  Timestamp last_heartbeat_ms = -1;
};

/// An uploaded job library.
struct JarInfo {
  /// "<uuid>_<original name>", as Flink names uploaded jars.
  std::string id;
  std::string name;
  /// Where it is stored, under the upload directory.
  std::string path;
  Timestamp uploaded_ms = 0;
  int64_t size = 0;
};

/// How to run an uploaded job library (the body of POST /jars/:jarid/run).
struct JarRunRequest {
  /// The program's arguments (argv[1..]).
  std::vector<std::string> args;
  /// `parallelism.default` for the job; unset: the cluster's default.
  std::optional<int> parallelism;
  /// `execution.savepoint.path`: the savepoint or retained checkpoint to start from.
  std::string savepoint_path;
  /// `execution.savepoint.ignore-unclaimed-state`.
  bool allow_non_restored_state = false;
  /// Further settings for this job; override the cluster's. Checked like `-D`.
  std::map<std::string, std::string> config;
};

/// One job in a listing.
struct JobSummary {
  std::string job_id;
  std::string name;
  JobStatus status = JobStatus::kCreated;
  /// Wall-clock milliseconds; end_ms is -1 while the job runs.
  Timestamp start_ms = 0;
  Timestamp end_ms = -1;
  /// Subtasks of the current attempt per state, and their total.
  std::map<ExecutionState, int> tasks;
  int total_tasks = 0;
};

/// Everything the REST API shows of one job.
struct JobDetails {
  JobSummary summary;
  std::shared_ptr<const JobGraph> graph;
  JobMaster::View view;
  /// Checkpoint statistics (see CheckpointCoordinator::Records).
  std::vector<CheckpointRecord> checkpoints;
  int64_t checkpoints_completed = 0;
  int64_t checkpoints_aborted = 0;
  /// The job's outcome once it ended: its result (FINISHED) or why not.
  std::optional<Result<JobExecutionResult>> outcome;
};

/// A savepoint (or stop-with-savepoint, or disposal) the REST API runs in
/// the background and reports by trigger id.
struct AsyncOperation {
  bool done = false;
  /// When done: the savepoint's path, or (failed) why it failed.
  std::string location;
  std::optional<Status> failure;
  /// A checkpoint on request, when done and not failed: its id.
  CheckpointId checkpoint_id = 0;
};

struct DispatcherOptions {
  /// `web.upload.dir`: where uploaded job libraries are stored (created if
  /// missing; libraries already there are listed). Empty: a new directory
  /// under the system's temporary directory, removed with the Dispatcher.
  std::string upload_dir;
  /// Settings every job starts from (the cluster's configuration); a run's
  /// own settings override them.
  Configuration job_defaults;
  /// Ended jobs kept for listing; the oldest are forgotten first.
  size_t max_finished_jobs = 1000;
  /// Told the checksum and path of every job library a job is built from,
  /// before the job starts (remote TaskManagers fetch it by checksum).
  std::function<void(const std::string& checksum, const std::string& path)> on_library;
  /// Where each job's metric group (Flink's job metrics: numRestarts,
  /// uptime, checkpoint figures) is registered while the job runs; it goes
  /// once the job has ended, as in Flink. nullptr: no job metrics.
  /// REQUIRES: outlives the Dispatcher.
  MetricRegistry* metrics = nullptr;
};

/// How `needed` slots are taken from TaskManagers with `free[i]` free slots
/// (`networked[i]`: TaskManager i has a data network): the count to take
/// from each. One TaskManager with enough free slots is preferred, the one
/// with the fewest (best fit, keeping large blocks free); otherwise
/// networked TaskManagers with the most free slots first. Errors
/// (Unavailable) say what is free and why the job does not fit.
Result<std::vector<int>> PlanSlots(const std::vector<int>& free, const std::vector<bool>& networked, int needed);

class Dispatcher {
 public:
  static Result<std::unique_ptr<Dispatcher>> Create(DispatcherOptions options, Clock& clock = Clock::System());
  /// Shutdown().
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // ---- TaskManagers ---------------------------------------------------------
  /// Offers the gateway's slots to jobs. Errors: an id registered already,
  /// a TaskManager without slots.
  /// REQUIRES: `gateway` stays valid until UnregisterTaskManager returns or
  /// the Dispatcher is destroyed.
  Status RegisterTaskManager(TaskExecutorGateway* gateway, TaskManagerDescription description);
  /// Cancels the jobs holding slots on it, waits for them to end, and
  /// forgets it. Errors: unknown id.
  Status UnregisterTaskManager(const std::string& id);
  /// Forgets a TaskManager that is gone (heartbeat timeout, replaced by a
  /// restarted process) at once. Jobs holding slots on it are not
  /// cancelled: their tasks there fail (the gateway reports them), and the
  /// jobs restart on the slots left, as their restart strategy allows.
  /// REQUIRES: the gateway stays valid until the Dispatcher is destroyed
  /// (a job may still address it while it restarts). Errors: unknown id.
  Status RemoveLostTaskManager(const std::string& id);
  std::vector<TaskManagerStatus> TaskManagers() const;
  Result<TaskManagerStatus> TaskManager(const std::string& id) const;

  // ---- job libraries -------------------------------------------------------
  /// Stores `bytes` as a job library named `file_name` (a plain file name)
  /// and loads it to check it. Errors: a name that is not a plain file
  /// name, a library that does not load (the loader's reason).
  Result<JarInfo> UploadJar(const std::string& file_name, std::string_view bytes);
  /// Newest first.
  std::vector<JarInfo> Jars() const;
  /// Deletes the stored file; jobs already running from it go on.
  Status DeleteJar(const std::string& jar_id);
  /// The job graph a run of the library would submit (job id empty).
  Result<std::shared_ptr<const JobGraph>> PlanJar(const std::string& jar_id, const JarRunRequest& request);
  /// Builds the job graph from the library and submits it; returns the job id.
  Result<std::string> RunJar(const std::string& jar_id, const JarRunRequest& request);

  // ---- jobs ----------------------------------------------------------------
  /// Takes the slots the job needs, starts its JobMaster and returns the
  /// job id. Errors: not enough free slots (Unavailable), a job id in use,
  /// the JobMaster's start errors (a savepoint that does not fit...).
  Result<std::string> SubmitJob(std::shared_ptr<const JobGraph> job);
  /// Running jobs first, then ended ones, newest first within each.
  std::vector<JobSummary> Jobs() const;
  Result<JobDetails> Job(const std::string& job_id) const;
  /// Requests cancellation; returns at once. Errors: unknown job; a job
  /// that already ended (FailedPrecondition).
  Status CancelJob(const std::string& job_id);
  /// Blocks until the job has ended and released its slots (nullopt: the
  /// timeout passed first). Errors: unknown job.
  Result<std::optional<JobStatus>> WaitForJob(const std::string& job_id, Duration timeout) const;

  /// Starts a savepoint of a running job into a new directory under
  /// `target_directory` in the background; returns the trigger id. With
  /// `cancel_job` the job is cancelled once the savepoint is complete.
  /// Errors: unknown job, a job that is not running, no target directory.
  Result<std::string> TriggerSavepoint(const std::string& job_id, const std::string& target_directory,
                                       SavepointMode mode, bool cancel_job = false);
  /// The savepoint operation `trigger_id` of `job_id`. Errors: unknown job
  /// or trigger id.
  Result<AsyncOperation> SavepointOperation(const std::string& job_id, const std::string& trigger_id) const;
  /// Starts a regular checkpoint of a running job in the background (see
  /// JobMaster::TriggerCheckpointNow); returns the trigger id. Errors:
  /// unknown job (NotFound), a job that is not running or cannot take that
  /// checkpoint (FailedPrecondition, e.g. no state.checkpoints.dir).
  Result<std::string> TriggerCheckpoint(const std::string& job_id, CheckpointType type);
  /// The checkpoint operation `trigger_id` of `job_id`. Errors: unknown job
  /// or trigger id.
  Result<AsyncOperation> CheckpointOperation(const std::string& job_id, const std::string& trigger_id) const;
  /// Deletes a savepoint directory (DisposeSavepoint); returns the trigger id.
  std::string TriggerDisposal(const std::string& path);
  Result<AsyncOperation> DisposalOperation(const std::string& trigger_id) const;

  /// Slots over all TaskManagers.
  int TotalSlots() const;
  int FreeSlots() const;
  const std::string& UploadDir() const { return upload_dir_; }
  const Configuration& JobDefaults() const { return options_.job_defaults; }
  Clock& GetClock() const { return clock_; }

  /// Cancels every running job and waits for it to end and for background
  /// operations to finish. New submissions are refused afterwards.
  /// Idempotent.
  void Shutdown();

 private:
  class LeasedSlots;
  struct TaskManagerEntry {
    TaskExecutorGateway* gateway = nullptr;
    TaskManagerDescription description;
    Timestamp registered_ms = 0;
    std::vector<std::string> slot_jobs;  // job id per slot; empty: free
  };
  struct JobEntry {
    std::shared_ptr<const JobGraph> graph;
    // Every lease of every attempt (the current ones are the last
    // `current_leases`). Declared before the master: the master points at
    // them and goes first.
    std::vector<std::unique_ptr<LeasedSlots>> leases;
    size_t current_leases = 0;
    std::shared_ptr<JobMaster> master;
    Timestamp start_ms = 0;
    Timestamp end_ms = -1;
    bool ended = false;  // the master ended and the slots are back
    bool starting = true;  // Start() has not returned yet
    bool cancel_requested = false;  // CancelJob while starting: cancel once started
    std::optional<Result<JobExecutionResult>> outcome;
    uint64_t sequence = 0;  // submission order
  };
  struct JarEntry {
    JarInfo info;
    std::shared_ptr<JobLibrary> library;  // loaded on first use
  };
  struct Operation {
    std::string job_id;  // empty: a disposal
    AsyncOperation state;
    bool checkpoint = false;  // a checkpoint on request, not a savepoint
  };
  /// The asynchronous operations by trigger id. Shared with the threads
  /// running them, which may outlive the Dispatcher.
  struct OperationBook {
    std::mutex mu;
    std::map<std::string, Operation> operations;
    std::vector<std::string> order;  // oldest first, to forget the oldest
    std::string Add(std::string job_id);
    void Finish(const std::string& id, std::string location, std::optional<Status> failure);
    void FinishCheckpoint(const std::string& id, const Result<CheckpointId>& result);
  };

  Dispatcher(DispatcherOptions options, std::string upload_dir, Clock& clock);
  void ScanUploadDir();
  Result<std::shared_ptr<JobLibrary>> LibraryOf(const std::string& jar_id);
  Result<Configuration> JobConfiguration(const JarRunRequest& request) const;
  Result<std::shared_ptr<const JobGraph>> BuildGraph(const std::string& jar_id, const JarRunRequest& request,
                                                     std::string job_id);
  /// The waiter thread of a job: waits for its end, releases its tasks and slots.
  void WatchJob(std::string job_id, std::shared_ptr<JobMaster> master);
  /// Takes `needed` free slots for `entry` (PlanSlots) and adds their
  /// leases; returns the gateways of the new leases.
  Result<std::vector<TaskExecutorGateway*>> LeaseSlotsLocked(const std::string& job_id, JobEntry& entry,
                                                             int needed);
  /// The executor provider of a job's JobMaster: at a restart, the job's
  /// slots are given back and taken again from the TaskManagers there are.
  std::vector<TaskExecutorGateway*> ReleaseAndLeaseAgain(const std::string& job_id);
  void ReleaseSlotsLocked(const std::string& job_id);
  void ForgetOldJobsLocked(std::vector<std::shared_ptr<JobEntry>>& dropped);
  JobSummary SummaryLocked(const std::string& job_id, const JobEntry& entry) const;
  void ReapThreadsLocked(std::vector<std::thread>& finished);

  DispatcherOptions options_;
  std::string upload_dir_;
  bool owns_upload_dir_ = false;  // generated, not configured: removed at the end
  Clock& clock_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;  // a job ended or finished starting
  bool shut_down_ = false;
  int starting_ = 0;  // submissions between slot assignment and Start()
  std::vector<std::pair<std::string, TaskManagerEntry>> task_managers_;  // registration order
  std::map<std::string, JarEntry> jars_;
  std::map<std::string, std::shared_ptr<JobEntry>> jobs_;
  uint64_t next_sequence_ = 0;
  std::shared_ptr<OperationBook> operations_ = std::make_shared<OperationBook>();
  // The waiter thread of each job. Ended ones are joined as new ones start
  // and at shutdown.
  std::map<uint64_t, std::thread> threads_;
  std::vector<uint64_t> finished_threads_;
  uint64_t next_thread_ = 0;
};

}  // namespace freshet::internal
