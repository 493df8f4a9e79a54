#include "cluster/jobmanager/dispatcher.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <regex>
#include <set>

#include "cluster/job_library.h"
#include "cluster/job_metrics.h"
#include "common/config_options.h"
#include "common/logging.h"

namespace freshet::internal {

namespace fs = std::filesystem;

namespace {

std::string RandomHex(size_t bytes) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lock(mu);
  std::string out;
  while (out.size() < bytes * 2) out += fmt::format("{:016x}", rng());
  out.resize(bytes * 2);
  return out;
}

/// A random UUID in its text form (version 4 layout).
std::string RandomUuid() {
  std::string h = RandomHex(16);
  h[12] = '4';
  h[16] = "89ab"[h[16] % 4];
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4),
                     h.substr(20, 12));
}

bool IsJobId(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// A name an uploaded file may be stored under: one path component,
/// printable, not hidden.
Status CheckUploadName(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("the uploaded file has no name");
  if (name.size() > 200) {
    return Status::InvalidArgument(fmt::format("the uploaded file's name is {} bytes long; at most 200 are allowed",
                                               name.size()));
  }
  bool printable = std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
  if (!printable || name.find_first_of("/\\") != std::string::npos || name[0] == '.') {
    return Status::InvalidArgument(fmt::format(
        "'{}' is not a plain file name (no '/', '\\', control characters or leading '.')", printable ? name : "?"));
  }
  return Status::Ok();
}

Timestamp FileMillis(const fs::path& path) {
  std::error_code ec;
  auto t = fs::last_write_time(path, ec);
  if (ec) return 0;
  auto system = std::chrono::file_clock::to_sys(t);
  return std::chrono::duration_cast<std::chrono::milliseconds>(system.time_since_epoch()).count();
}

}  // namespace

// ---------------------------------------------------------------------------
// Slots

/// The slots of one TaskManager that one job holds, as a gateway of their
/// own: the JobMaster sees a TaskManager with exactly these slots (its
/// slot k is the TaskManager's slot slots_[k]).
class Dispatcher::LeasedSlots final : public TaskExecutorGateway {
 public:
  LeasedSlots(TaskExecutorGateway* target, std::vector<int> slots)
      : target_(target), id_(target->Id()), slots_(std::move(slots)) {}

  // The id is kept: monitoring asks for it after the TaskManager may be gone.
  const std::string& Id() const override { return id_; }
  int NumSlots() const override { return static_cast<int>(slots_.size()); }
  std::string DataAddress() const override { return target_->DataAddress(); }
  Status DeployTask(TaskDeploymentDescriptor tdd, std::shared_ptr<const JobGraph> job,
                    TaskStateListener* listener) override {
    if (tdd.slot < 0 || tdd.slot >= NumSlots()) {
      return Status::Internal(fmt::format("job slot {} of task manager {} is not leased ({} are)", tdd.slot, id_,
                                          slots_.size()));
    }
    tdd.slot = slots_[static_cast<size_t>(tdd.slot)];
    return target_->DeployTask(std::move(tdd), std::move(job), listener);
  }
  void StartTask(const std::string& execution_id) override { target_->StartTask(execution_id); }
  void CancelTask(const std::string& execution_id) override { target_->CancelTask(execution_id); }
  void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) override {
    target_->TriggerCheckpoint(execution_id, barrier);
  }
  void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) override {
    target_->NotifyCheckpointComplete(execution_id, id);
  }
  void NotifyCheckpointAborted(const std::string& execution_id, CheckpointId id) override {
    target_->NotifyCheckpointAborted(execution_id, id);
  }
  void RequestDrain(const std::string& execution_id) override { target_->RequestDrain(execution_id); }
  void ReleaseJob(const std::string& job_id) override { target_->ReleaseJob(job_id); }

 private:
  TaskExecutorGateway* target_;
  std::string id_;
  std::vector<int> slots_;
};

Result<std::vector<int>> PlanSlots(const std::vector<int>& free, const std::vector<bool>& networked, int needed) {
  std::vector<int> take(free.size(), 0);
  if (needed <= 0) return take;
  int total_free = std::accumulate(free.begin(), free.end(), 0);
  if (total_free < needed) {
    return Status::Unavailable(fmt::format(
        "the job needs {} task slots but only {} are free on {} TaskManagers; jobs do not wait for slots: cancel a "
        "job or add TaskManagers",
        needed, total_free, free.size()));
  }
  std::optional<size_t> best;
  for (size_t i = 0; i < free.size(); ++i) {
    if (free[i] >= needed && (!best || free[i] < free[*best])) best = i;
  }
  if (best) {
    take[*best] = needed;
    return take;
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < free.size(); ++i) {
    if (networked[i] && free[i] > 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return free[a] > free[b]; });
  int left = needed;
  for (size_t i : order) {
    if (left == 0) break;
    take[i] = std::min(left, free[i]);
    left -= take[i];
  }
  if (left > 0) {
    int most = *std::max_element(free.begin(), free.end());
    return Status::Unavailable(fmt::format(
        "the job needs {} task slots; {} are free in all, but at most {} on one TaskManager, and a job can only "
        "span TaskManagers that have a data network (in-process TaskManagers cannot exchange data with each other)",
        needed, total_free, most));
  }
  return take;
}

// ---------------------------------------------------------------------------
// Construction, TaskManagers

Result<std::unique_ptr<Dispatcher>> Dispatcher::Create(DispatcherOptions options, Clock& clock) {
  std::string dir = options.upload_dir;
  bool generated = dir.empty();
  if (generated) dir = (fs::temp_directory_path() / ("freshet-web-upload-" + RandomHex(8))).string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    return Status::IoError(fmt::format("cannot create the upload directory '{}' (web.upload.dir): {}", dir,
                                       ec ? ec.message() : "not a directory"));
  }
  dir = fs::absolute(dir, ec).lexically_normal().string();
  auto dispatcher = std::unique_ptr<Dispatcher>(new Dispatcher(std::move(options), dir, clock));
  dispatcher->owns_upload_dir_ = generated;
  dispatcher->ScanUploadDir();
  return dispatcher;
}

Dispatcher::Dispatcher(DispatcherOptions options, std::string upload_dir, Clock& clock)
    : options_(std::move(options)), upload_dir_(std::move(upload_dir)), clock_(clock) {}

Dispatcher::~Dispatcher() {
  Shutdown();
  // A directory of our own making goes with us (as Flink's web upload
  // directory does); loaded libraries stay mapped after their file goes.
  if (owns_upload_dir_) {
    std::error_code ec;
    fs::remove_all(upload_dir_, ec);
  }
}

void Dispatcher::ScanUploadDir() {
  static const std::regex kStored("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_(.+)");
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(upload_dir_, ec)) {
    std::string file = e.path().filename().string();
    std::smatch m;
    if (!e.is_regular_file() || file.size() > 300 || !std::regex_match(file, m, kStored)) continue;
    JarEntry jar;
    jar.info = {file, m[1].str(), e.path().string(), FileMillis(e.path()), static_cast<int64_t>(e.file_size(ec))};
    jars_.emplace(file, std::move(jar));
  }
}

Status Dispatcher::RegisterTaskManager(TaskExecutorGateway* gateway, TaskManagerDescription description) {
  if (gateway == nullptr) return Status::InvalidArgument("no TaskManager given");
  if (gateway->NumSlots() < 1) {
    return Status::InvalidArgument(fmt::format("TaskManager {} offers no slots", gateway->Id()));
  }
  std::lock_guard lock(mu_);
  for (const auto& [id, tm] : task_managers_) {
    if (id == gateway->Id()) return Status::InvalidArgument(fmt::format("TaskManager {} is registered already", id));
  }
  TaskManagerEntry entry;
  entry.gateway = gateway;
  entry.description = std::move(description);
  entry.registered_ms = clock_.NowMillis();
  entry.slot_jobs.assign(static_cast<size_t>(gateway->NumSlots()), "");
  task_managers_.emplace_back(gateway->Id(), std::move(entry));
  Log("dispatcher")->info("TaskManager {} registered with {} slots ({})", gateway->Id(), gateway->NumSlots(),
                          task_managers_.back().second.description.address);
  return Status::Ok();
}

Status Dispatcher::UnregisterTaskManager(const std::string& id) {
  std::unique_lock lock(mu_);
  auto find = [&] {
    return std::find_if(task_managers_.begin(), task_managers_.end(), [&](const auto& tm) { return tm.first == id; });
  };
  auto it = find();
  if (it == task_managers_.end()) return Status::NotFound(fmt::format("TaskManager {} is not registered", id));
  std::set<std::string> holders(it->second.slot_jobs.begin(), it->second.slot_jobs.end());
  holders.erase("");
  for (const std::string& job : holders) {
    Log("dispatcher")->warn("cancelling job {}: TaskManager {} is leaving", job, id);
    JobEntry& entry = *jobs_.at(job);
    if (entry.starting) {
      entry.cancel_requested = true;
    } else {
      entry.master->Cancel();
    }
  }
  bool released = changed_.wait_for(lock, std::chrono::seconds(60), [&] {
    auto tm = find();
    return tm == task_managers_.end() ||
           std::all_of(tm->second.slot_jobs.begin(), tm->second.slot_jobs.end(), [](auto& j) { return j.empty(); });
  });
  it = find();
  if (it == task_managers_.end()) return Status::Ok();  // unregistered meanwhile
  if (!released) {
    return Status::Unavailable(fmt::format("the jobs on TaskManager {} did not end within 60 s; it stays registered",
                                           id));
  }
  task_managers_.erase(it);
  Log("dispatcher")->info("TaskManager {} unregistered", id);
  return Status::Ok();
}

Status Dispatcher::RemoveLostTaskManager(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(task_managers_.begin(), task_managers_.end(), [&](const auto& tm) { return tm.first == id; });
  if (it == task_managers_.end()) return Status::NotFound(fmt::format("TaskManager {} is not registered", id));
  std::set<std::string> holders(it->second.slot_jobs.begin(), it->second.slot_jobs.end());
  holders.erase("");
  task_managers_.erase(it);
  changed_.notify_all();
  Log("dispatcher")->warn("TaskManager {} is lost; {} job(s) had slots on it and restart as their restart strategy "
                          "allows",
                          id, holders.size());
  return Status::Ok();
}

namespace {
TaskManagerStatus StatusOf(const std::string& id, const TaskExecutorGateway& gateway,
                           const TaskManagerDescription& description, Timestamp registered_ms,
                           const std::vector<std::string>& slot_jobs) {
  TaskManagerStatus s;
  s.id = id;
  s.address = description.address;
  s.data_address = gateway.DataAddress();
  s.log_dir = description.log_dir;
  s.slots_total = static_cast<int>(slot_jobs.size());
  s.slots_free = static_cast<int>(std::count(slot_jobs.begin(), slot_jobs.end(), ""));
  s.registered_ms = registered_ms;
  s.slot_jobs = slot_jobs;
  s.resources = gateway.Resources();
  s.last_heartbeat_ms = gateway.LastHeartbeatMillis();
  return s;
}
}  // namespace

std::vector<TaskManagerStatus> Dispatcher::TaskManagers() const {
  std::lock_guard lock(mu_);
  std::vector<TaskManagerStatus> out;
  for (const auto& [id, tm] : task_managers_) {
    out.push_back(StatusOf(id, *tm.gateway, tm.description, tm.registered_ms, tm.slot_jobs));
  }
  return out;
}

Result<TaskManagerStatus> Dispatcher::TaskManager(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (const auto& [tm_id, tm] : task_managers_) {
    if (tm_id == id) return StatusOf(tm_id, *tm.gateway, tm.description, tm.registered_ms, tm.slot_jobs);
  }
  return Status::NotFound(fmt::format("TaskManager {} is not registered", id));
}

int Dispatcher::TotalSlots() const {
  std::lock_guard lock(mu_);
  int total = 0;
  for (const auto& [id, tm] : task_managers_) total += static_cast<int>(tm.slot_jobs.size());
  return total;
}

int Dispatcher::FreeSlots() const {
  std::lock_guard lock(mu_);
  int free = 0;
  for (const auto& [id, tm] : task_managers_) {
    free += static_cast<int>(std::count(tm.slot_jobs.begin(), tm.slot_jobs.end(), ""));
  }
  return free;
}

// ---------------------------------------------------------------------------
// Job libraries

Result<JarInfo> Dispatcher::UploadJar(const std::string& file_name, std::string_view bytes) {
  FRESHET_RETURN_IF_ERROR(CheckUploadName(file_name));
  std::string uuid = RandomUuid();
  JarInfo info;
  info.id = uuid + "_" + file_name;
  info.name = file_name;
  info.path = (fs::path(upload_dir_) / info.id).string();
  info.size = static_cast<int64_t>(bytes.size());
  fs::path part = fs::path(upload_dir_) / ("." + uuid + ".part");
  {
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(part, ec);
      return Status::IoError(fmt::format("cannot store the upload in {}: {}", upload_dir_, std::strerror(errno)));
    }
  }
  std::error_code ec;
  fs::rename(part, info.path, ec);
  if (ec) {
    fs::remove(part, ec);
    return Status::IoError(fmt::format("cannot store the upload as {}: {}", info.path, ec.message()));
  }
  Result<std::shared_ptr<JobLibrary>> library = JobLibrary::Load(info.path);
  if (!library.IsOk()) {
    fs::remove(info.path, ec);
    return library.GetStatus();
  }
  info.uploaded_ms = clock_.NowMillis();
  std::lock_guard lock(mu_);
  jars_[info.id] = JarEntry{info, std::move(library).Value()};
  Log("dispatcher")->info("job library {} uploaded ({} bytes)", info.id, info.size);
  return info;
}

std::vector<JarInfo> Dispatcher::Jars() const {
  std::lock_guard lock(mu_);
  std::vector<JarInfo> out;
  for (const auto& [id, jar] : jars_) out.push_back(jar.info);
  std::stable_sort(out.begin(), out.end(),
                   [](const JarInfo& a, const JarInfo& b) { return a.uploaded_ms > b.uploaded_ms; });
  return out;
}

Status Dispatcher::DeleteJar(const std::string& jar_id) {
  std::lock_guard lock(mu_);
  auto it = jars_.find(jar_id);
  if (it == jars_.end()) return Status::NotFound(fmt::format("jar {} was not found", jar_id));
  std::error_code ec;
  fs::remove(it->second.info.path, ec);
  if (ec) return Status::IoError(fmt::format("cannot delete {}: {}", it->second.info.path, ec.message()));
  // The library stays loaded: running jobs still use its code.
  jars_.erase(it);
  return Status::Ok();
}

Result<std::shared_ptr<JobLibrary>> Dispatcher::LibraryOf(const std::string& jar_id) {
  std::string path;
  {
    std::lock_guard lock(mu_);
    auto it = jars_.find(jar_id);
    if (it == jars_.end()) return Status::NotFound(fmt::format("jar {} was not found", jar_id));
    if (it->second.library) return it->second.library;
    path = it->second.info.path;
  }
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> library, JobLibrary::Load(path));
  std::lock_guard lock(mu_);
  auto it = jars_.find(jar_id);
  if (it != jars_.end() && !it->second.library) it->second.library = library;
  return library;
}

Result<Configuration> Dispatcher::JobConfiguration(const JarRunRequest& request) const {
  Configuration config = options_.job_defaults;
  for (const auto& [key, value] : request.config) {
    Status s = CheckConfigEntry(key, value);
    if (!s.IsOk()) return Status::InvalidArgument("configuration of the run: " + s.Message());
    config.Set(key, value);
  }
  if (request.parallelism) {
    if (*request.parallelism < 1 || *request.parallelism > 32768) {
      return Status::InvalidArgument(
          fmt::format("parallelism must be a number from 1 to 32768, got {}", *request.parallelism));
    }
    config.Set("parallelism.default", std::to_string(*request.parallelism));
  }
  if (!request.savepoint_path.empty()) config.Set("execution.savepoint.path", request.savepoint_path);
  if (request.allow_non_restored_state) config.Set("execution.savepoint.ignore-unclaimed-state", "true");
  return config;
}

Result<std::shared_ptr<const JobGraph>> Dispatcher::BuildGraph(const std::string& jar_id,
                                                               const JarRunRequest& request, std::string job_id) {
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> library, LibraryOf(jar_id));
  FRESHET_ASSIGN_OR_RETURN(Configuration config, JobConfiguration(request));
  FRESHET_ASSIGN_OR_RETURN(StreamGraph graph, library->BuildPlan(request.args, config));
  JobGraph job = BuildJobGraph(std::make_shared<const StreamGraph>(std::move(graph)), std::move(job_id));
  // What a remote TaskManager needs to rebuild the same graph.
  auto artifact = std::make_shared<JobArtifact>();
  artifact->library_path = library->Path();
  artifact->library_checksum = library->Checksum();
  artifact->library_name = fs::path(library->Path()).filename().string();
  artifact->args = request.args;
  artifact->config = config.Values();
  for (const auto& [key, value] : artifact->config) {
    bool set_by_run = request.config.contains(key) ||
                      (key == "parallelism.default" && request.parallelism.has_value()) ||
                      (key == "execution.savepoint.path" && !request.savepoint_path.empty()) ||
                      (key == "execution.savepoint.ignore-unclaimed-state" && request.allow_non_restored_state);
    if (set_by_run) artifact->run_config[key] = value;
  }
  if (options_.on_library) options_.on_library(artifact->library_checksum, artifact->library_path);
  job.artifact = std::move(artifact);
  return std::make_shared<const JobGraph>(std::move(job));
}

Result<std::shared_ptr<const JobGraph>> Dispatcher::PlanJar(const std::string& jar_id,
                                                            const JarRunRequest& request) {
  return BuildGraph(jar_id, request, "");
}

Result<std::string> Dispatcher::RunJar(const std::string& jar_id, const JarRunRequest& request) {
  FRESHET_ASSIGN_OR_RETURN(std::shared_ptr<const JobGraph> job, BuildGraph(jar_id, request, RandomHex(16)));
  return SubmitJob(std::move(job));
}

// ---------------------------------------------------------------------------
// Jobs

Result<std::string> Dispatcher::SubmitJob(std::shared_ptr<const JobGraph> job) {
  if (job == nullptr) return Status::InvalidArgument("no job given");
  const std::string job_id = job->job_id;
  if (!IsJobId(job_id)) {
    return Status::InvalidArgument(fmt::format("job id '{}' is not 32 lower-case hexadecimal digits", job_id));
  }
  std::shared_ptr<JobMaster> master;
  std::vector<TaskExecutorGateway*> executors;
  {
    std::lock_guard lock(mu_);
    if (shut_down_) return Status::Unavailable("the JobManager is shutting down");
    if (jobs_.count(job_id) != 0) return Status::InvalidArgument(fmt::format("job id {} is in use", job_id));
    auto entry = std::make_shared<JobEntry>();
    entry->graph = job;
    Result<std::vector<TaskExecutorGateway*>> leased = LeaseSlotsLocked(job_id, *entry, JobMaster::RequiredSlots(*job));
    if (!leased.IsOk()) {
      return Status(leased.GetStatus().Code(), fmt::format("cannot run job '{}' ({}): {}", job->stream_graph->job_name,
                                                           job_id, leased.GetStatus().Message()));
    }
    executors = std::move(leased).Value();
    entry->master = std::make_shared<JobMaster>(job, executors,
                                                [this, job_id] { return ReleaseAndLeaseAgain(job_id); }, clock_);
    entry->start_ms = clock_.NowMillis();
    entry->sequence = next_sequence_++;
    master = entry->master;
    jobs_.emplace(job_id, std::move(entry));
    ++starting_;
  }
  Status started = master->Start();
  // The job's metric group lives until its watcher has seen the job end.
  // Made and dropped without mu_: the registry's gauges read the Dispatcher.
  std::shared_ptr<JobMetricGroup> job_metrics;
  if (started.IsOk() && options_.metrics != nullptr) {
    job_metrics = RegisterJobMetrics(*options_.metrics, *job, master, clock_);
  }
  std::vector<std::shared_ptr<JobEntry>> dropped;
  std::vector<std::thread> finished;
  bool cancel = false;
  {
    std::lock_guard lock(mu_);
    --starting_;
    changed_.notify_all();
    JobEntry& entry = *jobs_.at(job_id);
    entry.starting = false;
    if (started.IsOk()) {
      // A cancellation that came while the master was starting (it cannot
      // be cancelled before it runs).
      cancel = entry.cancel_requested;
      ReapThreadsLocked(finished);
      uint64_t thread_id = next_thread_++;
      threads_.emplace(thread_id, std::thread([this, job_id, master, thread_id, job_metrics]() mutable {
                         WatchJob(job_id, master);
                         job_metrics.reset();
                         std::lock_guard inner(mu_);
                         finished_threads_.push_back(thread_id);
                       }));
    } else {
      ReleaseSlotsLocked(job_id);
      dropped.push_back(jobs_.at(job_id));
      jobs_.erase(job_id);
    }
  }
  for (std::thread& t : finished) t.join();
  if (cancel) master->Cancel();
  if (!started.IsOk()) {
    for (TaskExecutorGateway* e : executors) e->ReleaseJob(job_id);
    dropped.clear();
    return Status(started.Code(), fmt::format("cannot start job '{}' ({}): {}", job->stream_graph->job_name, job_id,
                                              started.Message()));
  }
  Log("dispatcher")->info("job '{}' ({}) started: {} slots", job->stream_graph->job_name, job_id,
                          JobMaster::RequiredSlots(*job));
  return job_id;
}

Result<std::vector<TaskExecutorGateway*>> Dispatcher::LeaseSlotsLocked(const std::string& job_id, JobEntry& entry,
                                                                         int needed) {
  std::vector<int> free;
  std::vector<bool> networked;
  int total = 0;
  for (const auto& [id, tm] : task_managers_) {
    free.push_back(static_cast<int>(std::count(tm.slot_jobs.begin(), tm.slot_jobs.end(), "")));
    networked.push_back(!tm.gateway->DataAddress().empty());
    total += static_cast<int>(tm.slot_jobs.size());
  }
  Result<std::vector<int>> plan = PlanSlots(free, networked, needed);
  if (!plan.IsOk()) {
    return Status(plan.GetStatus().Code(), fmt::format("{} (the cluster has {} slots)", plan.GetStatus().Message(),
                                                       total));
  }
  std::vector<TaskExecutorGateway*> executors;
  size_t before = entry.leases.size();
  for (size_t i = 0; i < task_managers_.size(); ++i) {
    int take = (*plan)[i];
    if (take == 0) continue;
    TaskManagerEntry& tm = task_managers_[i].second;
    std::vector<int> slots;
    for (size_t s = 0; s < tm.slot_jobs.size() && static_cast<int>(slots.size()) < take; ++s) {
      if (tm.slot_jobs[s].empty()) {
        tm.slot_jobs[s] = job_id;
        slots.push_back(static_cast<int>(s));
      }
    }
    entry.leases.push_back(std::make_unique<LeasedSlots>(tm.gateway, std::move(slots)));
    executors.push_back(entry.leases.back().get());
  }
  entry.current_leases = entry.leases.size() - before;
  return executors;
}

std::vector<TaskExecutorGateway*> Dispatcher::ReleaseAndLeaseAgain(const std::string& job_id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second->ended || shut_down_) return {};
  JobEntry& entry = *it->second;
  ReleaseSlotsLocked(job_id);
  entry.current_leases = 0;
  Result<std::vector<TaskExecutorGateway*>> leased = LeaseSlotsLocked(job_id, entry,
                                                                      JobMaster::RequiredSlots(*entry.graph));
  changed_.notify_all();
  if (!leased.IsOk()) {
    // The JobMaster counts the attempt as failed for want of slots.
    Log("dispatcher")->warn("job {} cannot restart now: {}", job_id, leased.GetStatus().Message());
    return {};
  }
  std::string where;
  for (TaskExecutorGateway* e : *leased) where += fmt::format("{}{} ({} slots)", where.empty() ? "" : ", ", e->Id(),
                                                            e->NumSlots());
  Log("dispatcher")->info("job {} restarts on {}", job_id, where);
  return std::move(leased).Value();
}

void Dispatcher::WatchJob(std::string job_id, std::shared_ptr<JobMaster> master) {
  Result<JobExecutionResult> outcome = *master->Wait(std::nullopt);
  // Every task has reported its end; wait for their threads and drop the
  // job's partitions before the slots go to another job. The TaskManagers
  // of earlier attempts were told when those attempts ended.
  std::vector<TaskExecutorGateway*> executors;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    std::set<std::string> seen;
    if (it != jobs_.end()) {
      const auto& leases = it->second->leases;
      for (size_t i = leases.size() - it->second->current_leases; i < leases.size(); ++i) {
        if (seen.insert(leases[i]->Id()).second) executors.push_back(leases[i].get());
      }
    }
  }
  for (TaskExecutorGateway* e : executors) e->ReleaseJob(job_id);
  std::vector<std::shared_ptr<JobEntry>> dropped;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it != jobs_.end()) {
      it->second->ended = true;
      it->second->end_ms = clock_.NowMillis();
      it->second->outcome = outcome;
    }
    ReleaseSlotsLocked(job_id);
    ForgetOldJobsLocked(dropped);
    changed_.notify_all();
  }
  Log("dispatcher")->info("job {} ended: {}", job_id, JobStatusName(master->GetStatus()));
  // Destroying a dropped master joins its timer thread: without the lock.
  dropped.clear();
}

void Dispatcher::ReleaseSlotsLocked(const std::string& job_id) {
  for (auto& [id, tm] : task_managers_) {
    for (std::string& holder : tm.slot_jobs) {
      if (holder == job_id) holder.clear();
    }
  }
}

void Dispatcher::ForgetOldJobsLocked(std::vector<std::shared_ptr<JobEntry>>& dropped) {
  std::vector<std::pair<uint64_t, std::string>> ended;
  for (const auto& [id, entry] : jobs_) {
    if (entry->ended) ended.emplace_back(entry->sequence, id);
  }
  if (ended.size() <= options_.max_finished_jobs) return;
  std::sort(ended.begin(), ended.end());
  for (size_t i = 0; i < ended.size() - options_.max_finished_jobs; ++i) {
    dropped.push_back(jobs_.at(ended[i].second));
    jobs_.erase(ended[i].second);
  }
}

void Dispatcher::ReapThreadsLocked(std::vector<std::thread>& finished) {
  for (uint64_t id : finished_threads_) {
    auto it = threads_.find(id);
    if (it == threads_.end()) continue;
    finished.push_back(std::move(it->second));
    threads_.erase(it);
  }
  finished_threads_.clear();
}

JobSummary Dispatcher::SummaryLocked(const std::string& job_id, const JobEntry& entry) const {
  JobSummary s;
  s.job_id = job_id;
  s.name = entry.graph->stream_graph->job_name;
  JobMaster::View view = entry.master->Describe();
  s.status = view.status;
  s.start_ms = entry.start_ms;
  s.end_ms = entry.ended ? entry.end_ms : -1;
  for (const JobMaster::ExecutionView& e : view.executions) ++s.tasks[e.state];
  s.total_tasks = static_cast<int>(view.executions.size());
  if (s.total_tasks == 0) {
    // Not deployed (yet): count the subtasks the graph will run.
    for (const JobVertex& v : entry.graph->vertices) s.total_tasks += v.parallelism;
    s.tasks[ExecutionState::kCreated] = s.total_tasks;
  }
  return s;
}

std::vector<JobSummary> Dispatcher::Jobs() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::pair<bool, uint64_t>, JobSummary>> sorted;
  for (const auto& [id, entry] : jobs_) {
    sorted.push_back({{entry->ended, UINT64_MAX - entry->sequence}, SummaryLocked(id, *entry)});
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<JobSummary> out;
  for (auto& [key, summary] : sorted) out.push_back(std::move(summary));
  return out;
}

Result<JobDetails> Dispatcher::Job(const std::string& job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status::NotFound(fmt::format("job {} was not found", job_id));
  const JobEntry& entry = *it->second;
  JobDetails d;
  d.summary = SummaryLocked(job_id, entry);
  d.graph = entry.graph;
  d.view = entry.master->Describe();
  const CheckpointCoordinator& coordinator = entry.master->Coordinator();
  d.checkpoints = coordinator.Records();
  d.checkpoints_completed = coordinator.NumCompleted();
  d.checkpoints_aborted = coordinator.NumAborted();
  d.outcome = entry.outcome;
  return d;
}

Status Dispatcher::CancelJob(const std::string& job_id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status::NotFound(fmt::format("job {} was not found", job_id));
  JobStatus status = it->second->master->GetStatus();
  if (it->second->ended || status == JobStatus::kFinished || status == JobStatus::kFailed ||
      status == JobStatus::kCanceled) {
    return Status::FailedPrecondition(fmt::format("job {} has ended ({}); there is nothing to cancel", job_id,
                                                  JobStatusName(status)));
  }
  if (it->second->starting) {
    it->second->cancel_requested = true;
  } else {
    it->second->master->Cancel();
  }
  Log("dispatcher")->info("job {}: cancellation requested", job_id);
  return Status::Ok();
}

Result<std::optional<JobStatus>> Dispatcher::WaitForJob(const std::string& job_id, Duration timeout) const {
  std::unique_lock lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status::NotFound(fmt::format("job {} was not found", job_id));
  std::shared_ptr<JobEntry> entry = it->second;
  if (!changed_.wait_for(lock, timeout, [&] { return entry->ended; })) return std::optional<JobStatus>();
  return std::optional<JobStatus>(entry->master->GetStatus());
}

// ---------------------------------------------------------------------------
// Savepoints and disposal

std::string Dispatcher::OperationBook::Add(std::string job_id) {
  std::string id = RandomHex(16);
  std::lock_guard lock(mu);
  operations.emplace(id, Operation{std::move(job_id), {}});
  order.push_back(id);
  // Forget the oldest finished operations beyond 1000.
  while (order.size() > 1000) {
    auto oldest = std::find_if(order.begin(), order.end(),
                               [&](const std::string& o) { return operations.at(o).state.done; });
    if (oldest == order.end()) break;
    operations.erase(*oldest);
    order.erase(oldest);
  }
  return id;
}

void Dispatcher::OperationBook::Finish(const std::string& id, std::string location, std::optional<Status> failure) {
  std::lock_guard lock(mu);
  auto it = operations.find(id);
  if (it == operations.end()) return;
  it->second.state.done = true;
  it->second.state.location = std::move(location);
  it->second.state.failure = std::move(failure);
}

void Dispatcher::OperationBook::FinishCheckpoint(const std::string& id, const Result<CheckpointId>& result) {
  std::lock_guard lock(mu);
  auto it = operations.find(id);
  if (it == operations.end()) return;
  it->second.state.done = true;
  if (result.IsOk()) {
    it->second.state.checkpoint_id = *result;
  } else {
    it->second.state.failure = result.GetStatus();
  }
}

Result<std::string> Dispatcher::TriggerSavepoint(const std::string& job_id, const std::string& target_directory,
                                                 SavepointMode mode, bool cancel_job) {
  std::shared_ptr<JobMaster> master;
  std::string target;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return Status::NotFound(fmt::format("job {} was not found", job_id));
    master = it->second->master;
    JobStatus status = master->GetStatus();
    if (status != JobStatus::kRunning || it->second->starting) {
      return Status::FailedPrecondition(
          fmt::format("job {} is {}; savepoints need a running job", job_id, JobStatusName(status)));
    }
    if (target_directory.empty()) {
      return Status::InvalidArgument(
          "no target directory given for the savepoint (and Freshet has no default savepoint directory)");
    }
    if (shut_down_) return Status::Unavailable("the JobManager is shutting down");
  }
  std::error_code ec;
  target = fs::absolute(target_directory, ec).lexically_normal().string();
  if (ec) target = target_directory;
  std::string trigger_id = operations_->Add(job_id);
  // Detached: a savepoint waits for the job's tasks, and a stop-with-drain
  // of a job cancelled meanwhile may never be answered; the thread keeps
  // only what it shares (the master, the operation book), never the
  // Dispatcher. A cancel after the savepoint finds the job ended once the
  // Dispatcher has shut down, and touches nothing then.
  std::thread([book = operations_, master, target, mode, cancel_job, trigger_id] {
    Result<std::string> r = master->TriggerSavepoint(target, mode);
    if (r.IsOk() && cancel_job) master->Cancel();
    if (r.IsOk()) {
      book->Finish(trigger_id, *r, std::nullopt);
    } else {
      book->Finish(trigger_id, "", r.GetStatus());
    }
  }).detach();
  Log("dispatcher")->info("job {}: {} triggered ({})", job_id,
                          mode == SavepointMode::kSavepoint ? "savepoint" : "stop-with-savepoint", trigger_id);
  return trigger_id;
}

Result<AsyncOperation> Dispatcher::SavepointOperation(const std::string& job_id, const std::string& trigger_id) const {
  {
    std::lock_guard lock(mu_);
    if (jobs_.count(job_id) == 0) return Status::NotFound(fmt::format("job {} was not found", job_id));
  }
  std::lock_guard lock(operations_->mu);
  auto it = operations_->operations.find(trigger_id);
  if (it == operations_->operations.end() || it->second.job_id != job_id || it->second.checkpoint) {
    return Status::NotFound(fmt::format("job {} has no savepoint operation {}", job_id, trigger_id));
  }
  return it->second.state;
}

Result<std::string> Dispatcher::TriggerCheckpoint(const std::string& job_id, CheckpointType type) {
  std::shared_ptr<JobMaster> master;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return Status::NotFound(fmt::format("job {} was not found", job_id));
    master = it->second->master;
    JobStatus status = master->GetStatus();
    if (status != JobStatus::kRunning || it->second->starting) {
      return Status::FailedPrecondition(
          fmt::format("job {} is {}; checkpoints need a running job", job_id, JobStatusName(status)));
    }
    if (shut_down_) return Status::Unavailable("the JobManager is shutting down");
  }
  // Refusals the coordinator can tell now are answered at once, not as a
  // failed operation.
  FRESHET_RETURN_IF_ERROR(master->Coordinator().CheckCheckpointRequest(type));
  std::string trigger_id = operations_->Add(job_id);
  {
    std::lock_guard lock(operations_->mu);
    operations_->operations.at(trigger_id).checkpoint = true;
  }
  // Detached for the same reasons as a savepoint's thread: it shares only
  // the master and the operation book. The coordinator answers every
  // request when the job ends, so the thread does not outlive the job.
  std::thread([book = operations_, master, type, trigger_id] {
    book->FinishCheckpoint(trigger_id, master->TriggerCheckpointNow(type));
  }).detach();
  Log("dispatcher")->info("job {}: checkpoint ({}) requested ({})", job_id, CheckpointTypeName(type), trigger_id);
  return trigger_id;
}

Result<AsyncOperation> Dispatcher::CheckpointOperation(const std::string& job_id,
                                                        const std::string& trigger_id) const {
  {
    std::lock_guard lock(mu_);
    if (jobs_.count(job_id) == 0) return Status::NotFound(fmt::format("job {} was not found", job_id));
  }
  std::lock_guard lock(operations_->mu);
  auto it = operations_->operations.find(trigger_id);
  if (it == operations_->operations.end() || it->second.job_id != job_id || !it->second.checkpoint) {
    return Status::NotFound(fmt::format("job {} has no checkpoint operation {}", job_id, trigger_id));
  }
  return it->second.state;
}

std::string Dispatcher::TriggerDisposal(const std::string& path) {
  std::string trigger_id = operations_->Add("");
  std::thread([book = operations_, path, trigger_id] {
    Status s = path.empty() ? Status::InvalidArgument("no savepoint path given") : DisposeSavepoint(path);
    book->Finish(trigger_id, path, s.IsOk() ? std::nullopt : std::optional<Status>(s));
  }).detach();
  return trigger_id;
}

Result<AsyncOperation> Dispatcher::DisposalOperation(const std::string& trigger_id) const {
  std::lock_guard lock(operations_->mu);
  auto it = operations_->operations.find(trigger_id);
  if (it == operations_->operations.end() || !it->second.job_id.empty()) {
    return Status::NotFound(fmt::format("there is no savepoint disposal {}", trigger_id));
  }
  return it->second.state;
}

// ---------------------------------------------------------------------------

void Dispatcher::Shutdown() {
  std::map<uint64_t, std::thread> threads;
  {
    std::unique_lock lock(mu_);
    shut_down_ = true;
    // A job between slot assignment and Start() must be running before it
    // can be cancelled.
    changed_.wait(lock, [&] { return starting_ == 0; });
    for (auto& [id, entry] : jobs_) {
      if (!entry->ended) entry->master->Cancel();
    }
    threads.swap(threads_);
    finished_threads_.clear();
  }
  for (auto& [id, t] : threads) {
    if (t.joinable()) t.join();
  }
  std::map<std::string, std::shared_ptr<JobEntry>> jobs;
  {
    std::lock_guard lock(mu_);
    jobs.swap(jobs_);
  }
  jobs.clear();
}

}  // namespace freshet::internal
