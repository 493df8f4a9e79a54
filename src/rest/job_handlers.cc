// /jobs/...: listing, details, plan, exceptions, checkpoint statistics and
// checkpoints on request, savepoints and stop-with-savepoint, vertices;
// /savepoint-disposal.

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "rest/job_plan.h"
#include "rest/metrics_json.h"
#include "rest/rest_handlers.h"

namespace freshet::internal {

namespace {

const char* ExecutionStateName(ExecutionState state) {
  switch (state) {
    case ExecutionState::kCreated:
      return "CREATED";
    case ExecutionState::kRunning:
      return "RUNNING";
    case ExecutionState::kFinished:
      return "FINISHED";
    case ExecutionState::kCanceled:
      return "CANCELED";
    case ExecutionState::kFailed:
      return "FAILED";
  }
  return "CREATED";
}

// Flink's execution states, in the order its tasks counts list them.
constexpr const char* kAllExecutionStates[] = {"CREATED",   "SCHEDULED", "DEPLOYING",   "RUNNING",
                                               "FINISHED",  "CANCELING", "CANCELED",    "FAILED",
                                               "RECONCILING", "INITIALIZING"};

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

nlohmann::json TaskCounts(const std::map<ExecutionState, int>& tasks, bool lower_case) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* state : kAllExecutionStates) out[lower_case ? Lower(state) : state] = 0;
  for (const auto& [state, count] : tasks) {
    std::string key = ExecutionStateName(state);
    out[lower_case ? Lower(key) : key] = count;
  }
  return out;
}

/// The state of a vertex from its subtasks' states.
const char* VertexState(const std::map<ExecutionState, int>& tasks, int parallelism) {
  auto count = [&](ExecutionState s) {
    auto it = tasks.find(s);
    return it == tasks.end() ? 0 : it->second;
  };
  if (count(ExecutionState::kFailed) > 0) return "FAILED";
  if (count(ExecutionState::kRunning) > 0) return "RUNNING";
  if (count(ExecutionState::kFinished) == parallelism) return "FINISHED";
  if (count(ExecutionState::kCanceled) > 0) return "CANCELED";
  if (count(ExecutionState::kFinished) > 0) return "FINISHED";
  return "CREATED";
}

/// A steady-clock time as wall-clock ms; -1 when there is none.
Timestamp Wall(const std::optional<std::chrono::steady_clock::time_point>& t, const Clock& clock) {
  return t ? WallMillis(*t, clock) : -1;
}

Result<JobDetails> FindJob(const Dispatcher& dispatcher, const RestRequest& req) {
  FRESHET_ASSIGN_OR_RETURN(std::string job_id, HexIdParam(req, "jobid", "job id"));
  return dispatcher.Job(job_id);
}

/// The vertex named by the :vertexid parameter (its REST id).
Result<const JobVertex*> FindVertex(const JobDetails& job, const RestRequest& req) {
  FRESHET_ASSIGN_OR_RETURN(std::string vertex_id, HexIdParam(req, "vertexid", "vertex id"));
  for (const JobVertex& v : job.graph->vertices) {
    if (VertexRestId(v.id) == vertex_id) return &v;
  }
  return Status::NotFound(fmt::format("job {} has no vertex {}", job.summary.job_id, vertex_id));
}

/// The statistics of the checkpoint named by the :checkpointid parameter.
Result<const CheckpointRecord*> FindCheckpoint(const JobDetails& job, const RestRequest& req) {
  const std::string& text = req.Param("checkpointid");
  bool digits = !text.empty() && text.size() <= 18 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    return Status::InvalidArgument(
        fmt::format("'{}' is not a checkpoint id (a non-negative integer)", text.substr(0, 40)));
  }
  CheckpointId id = std::stoll(text);
  for (const CheckpointRecord& c : job.checkpoints) {
    if (c.id == id) return &c;
  }
  return Status::NotFound(fmt::format("job {} has no statistics of checkpoint {} (the latest 100 are kept)",
                                      job.summary.job_id, id));
}

nlohmann::json JobOverviewJson(const JobSummary& job, const Clock& clock) {
  Timestamp end = job.end_ms;
  Timestamp now = clock.NowMillis();
  return {{"jid", job.job_id},
          {"name", job.name},
          {"state", JobStatusName(job.status)},
          {"start-time", job.start_ms},
          {"end-time", end},
          {"duration", (end >= 0 ? end : now) - job.start_ms},
          {"last-modification", end >= 0 ? end : job.start_ms},
          {"tasks", [&] {
             nlohmann::json counts = TaskCounts(job.tasks, true);
             counts["total"] = job.total_tasks;
             return counts;
           }()}};
}

struct VertexFigures {
  std::map<ExecutionState, int> tasks;
  Timestamp start = -1;
  Timestamp end = -1;
};

VertexFigures FiguresOf(const JobDetails& job, const JobVertex& v, const Clock& clock) {
  VertexFigures f;
  bool all_ended = true;
  int seen = 0;
  for (const JobMaster::ExecutionView& e : job.view.executions) {
    if (e.vertex != v.id) continue;
    ++seen;
    ++f.tasks[e.state];
    if (e.ended) {
      f.end = std::max(f.end, WallMillis(*e.ended, clock));
    } else {
      all_ended = false;
    }
  }
  if (seen == 0) {
    f.tasks[ExecutionState::kCreated] = v.parallelism;
    return f;
  }
  f.start = WallMillis(job.view.attempt_start, clock);
  if (!all_ended) f.end = -1;
  return f;
}

nlohmann::json VertexMetricsJson(const RestContext& ctx, const JobDetails& job, const JobVertex& v) {
  // Flink's per-vertex I/O figures, from the subtasks' metrics when the
  // process has a registry; "-complete" says every subtask reported.
  int64_t read_records = 0, write_records = 0, read_bytes = 0;
  std::set<int> reported;
  for (const RestMetric& m : ReadVertexMetrics(ctx.metrics, job.summary.job_id, v.id)) {
    size_t dot = m.id.find('.');
    if (dot == std::string::npos) continue;
    std::string name = m.id.substr(dot + 1);
    int subtask = std::atoi(m.id.substr(0, dot).c_str());
    if (name == "numRecordsIn") {
      read_records += static_cast<int64_t>(m.value);
      reported.insert(subtask);
    } else if (name == "numRecordsOut") {
      write_records += static_cast<int64_t>(m.value);
    } else if (name == "numBytesIn") {
      read_bytes += static_cast<int64_t>(m.value);
    }
  }
  bool complete = static_cast<int>(reported.size()) == v.parallelism;
  return {{"read-bytes", read_bytes},          {"read-bytes-complete", complete},
          {"write-bytes", 0},                  {"write-bytes-complete", false},
          {"read-records", read_records},      {"read-records-complete", complete},
          {"write-records", write_records},    {"write-records-complete", complete}};
}

nlohmann::json JobDetailsJson(const RestContext& ctx, const JobDetails& job) {
  const Clock& clock = ctx.dispatcher->GetClock();
  Timestamp now = clock.NowMillis();
  const JobSummary& s = job.summary;
  nlohmann::json vertices = nlohmann::json::array();
  std::map<std::string, int> status_counts;
  for (const char* state : kAllExecutionStates) status_counts[state] = 0;
  for (const JobVertex& v : job.graph->vertices) {
    VertexFigures f = FiguresOf(job, v, clock);
    const char* state = VertexState(f.tasks, v.parallelism);
    ++status_counts[state];
    vertices.push_back({{"id", VertexRestId(v.id)},
                        {"name", v.name},
                        {"maxParallelism", v.max_parallelism},
                        {"parallelism", v.parallelism},
                        {"status", state},
                        {"start-time", f.start},
                        {"end-time", f.end},
                        {"duration", f.start < 0 ? -1 : (f.end >= 0 ? f.end : now) - f.start},
                        {"tasks", TaskCounts(f.tasks, false)},
                        {"metrics", VertexMetricsJson(ctx, job, v)}});
  }
  nlohmann::json timestamps = {{"INITIALIZING", s.start_ms}, {"CREATED", s.start_ms}, {"RUNNING", s.start_ms}};
  if (s.end_ms >= 0) timestamps[JobStatusName(s.status)] = s.end_ms;
  JobStatus status = s.status;
  return {{"jid", s.job_id},
          {"name", s.name},
          {"isStoppable", false},
          {"state", JobStatusName(status)},
          {"job-type", "STREAMING"},
          {"start-time", s.start_ms},
          {"end-time", s.end_ms},
          {"duration", (s.end_ms >= 0 ? s.end_ms : now) - s.start_ms},
          {"maxParallelism", -1},
          {"now", now},
          {"timestamps", timestamps},
          {"vertices", std::move(vertices)},
          {"status-counts", status_counts},
          {"plan", JobPlanJson(*job.graph)},
          // Not in Flink's shape: the job's totals so far (records of the
          // subtasks that have ended, as the embedded JobExecutionResult
          // counts them), its restarts, and whether it takes periodic
          // checkpoints (else /checkpoints/config is 404, as in Flink).
          {"freshet",
           {{"records-in", job.view.records_in},
            {"records-out", job.view.records_out},
            {"restarts", job.view.restarts},
            {"checkpointing", job.graph->stream_graph->options.checkpoint.Enabled()}}}};
}

// ---- checkpoints -------------------------------------------------------------

const char* CheckpointStateName(CheckpointRecord::State state) {
  switch (state) {
    case CheckpointRecord::State::kInProgress:
      return "IN_PROGRESS";
    case CheckpointRecord::State::kCompleted:
      return "COMPLETED";
    case CheckpointRecord::State::kFailed:
      return "FAILED";
  }
  return "FAILED";
}

/// One vertex's share of a checkpoint (Flink's TaskCheckpointStatistics;
/// its `id` is the checkpoint's), from the acknowledgements of its subtasks.
nlohmann::json TaskCheckpointJson(const CheckpointRecord& c, const JobVertex& v) {
  int acknowledged = 0;
  Timestamp latest_ack = -1;
  int64_t state_size = 0, in_flight = 0, processed = 0, alignment = 0;
  for (const CheckpointRecord::SubtaskAck& a : c.acks) {
    if (a.vertex != v.id) continue;
    ++acknowledged;
    latest_ack = std::max(latest_ack, a.ack_ms);
    state_size += a.state_size;
    in_flight += a.in_flight_size;
    processed += a.metrics.processed_bytes;
    alignment = std::max(alignment, a.metrics.alignment_ms);
  }
  return {{"id", c.id},
          {"status", CheckpointStateName(c.state)},
          {"latest_ack_timestamp", latest_ack},
          {"checkpointed_size", state_size},
          {"state_size", state_size},
          {"end_to_end_duration", latest_ack >= 0 ? latest_ack - c.trigger_ms : -1},
          // Aligning tasks block the channels whose barrier came: nothing is
          // buffered (Flink has reported 0 here since 1.11 too).
          {"alignment_buffered", 0},
          {"processed_data", processed},
          {"persisted_data", in_flight},
          {"alignment_duration", alignment},
          {"num_subtasks", v.parallelism},
          {"num_acknowledged_subtasks", acknowledged}};
}

nlohmann::json StatsSummary(std::vector<int64_t> values);

/// Flink's TaskCheckpointStatisticsWithSubtaskDetails: the vertex's figures
/// plus one entry per subtask (acknowledged or not) and their summary.
nlohmann::json SubtaskCheckpointsJson(const CheckpointRecord& c, const JobVertex& v) {
  nlohmann::json out = TaskCheckpointJson(c, v);
  std::vector<const CheckpointRecord::SubtaskAck*> by_subtask(static_cast<size_t>(v.parallelism), nullptr);
  for (const CheckpointRecord::SubtaskAck& a : c.acks) {
    if (a.vertex != v.id || a.subtask < 0 || a.subtask >= v.parallelism) continue;
    by_subtask[static_cast<size_t>(a.subtask)] = &a;
  }
  std::vector<int64_t> sizes, durations, persisted, zeros, syncs, asyncs, processed, alignments, delays;
  nlohmann::json subtasks = nlohmann::json::array();
  for (int s = 0; s < v.parallelism; ++s) {
    const CheckpointRecord::SubtaskAck* a = by_subtask[static_cast<size_t>(s)];
    if (a == nullptr) {
      subtasks.push_back({{"className", ".PendingSubtaskCheckpointStatistics"},
                          {"index", s},
                          {"status", "pending_or_failed"}});
      continue;
    }
    sizes.push_back(a->state_size);
    durations.push_back(a->ack_ms - c.trigger_ms);
    persisted.push_back(a->in_flight_size);
    zeros.push_back(0);
    const SubtaskCheckpointMetrics& m = a->metrics;
    syncs.push_back(m.sync_ms);
    asyncs.push_back(m.async_ms);
    processed.push_back(m.processed_bytes);
    alignments.push_back(m.alignment_ms);
    delays.push_back(m.start_delay_ms);
    subtasks.push_back({{"className", ".CompletedSubtaskCheckpointStatistics"},
                        {"index", s},
                        {"status", "completed"},
                        {"ack_timestamp", a->ack_ms},
                        {"end_to_end_duration", a->ack_ms - c.trigger_ms},
                        {"checkpointed_size", a->state_size},
                        {"state_size", a->state_size},
                        {"checkpoint", {{"sync", m.sync_ms}, {"async", m.async_ms}}},
                        {"alignment", {{"buffered", 0}, {"processed", m.processed_bytes},
                                       {"persisted", a->in_flight_size}, {"duration", m.alignment_ms}}},
                        {"start_delay", m.start_delay_ms},
                        {"unaligned_checkpoint", m.unaligned},
                        {"aborted", c.state == CheckpointRecord::State::kFailed}});
  }
  out["summary"] = {{"checkpointed_size", StatsSummary(sizes)},
                    {"state_size", StatsSummary(sizes)},
                    {"end_to_end_duration", StatsSummary(durations)},
                    {"checkpoint_duration", {{"sync", StatsSummary(syncs)}, {"async", StatsSummary(asyncs)}}},
                    {"alignment",
                     {{"buffered", StatsSummary(zeros)},
                      {"processed", StatsSummary(processed)},
                      {"persisted", StatsSummary(persisted)},
                      {"duration", StatsSummary(alignments)}}},
                    {"start_delay", StatsSummary(delays)}};
  out["subtasks"] = std::move(subtasks);
  return out;
}

nlohmann::json CheckpointJson(const CheckpointRecord& c, const JobDetails& job) {
  bool unaligned = job.graph->stream_graph->options.checkpoint.unaligned;
  Timestamp end = c.end_ms > 0 ? c.end_ms : -1;
  int64_t processed = 0, alignment = 0;
  for (const CheckpointRecord::SubtaskAck& a : c.acks) {
    processed += a.metrics.processed_bytes;
    alignment = std::max(alignment, a.metrics.alignment_ms);
  }
  nlohmann::json j = {
      {"className", c.state == CheckpointRecord::State::kCompleted ? ".CompletedCheckpointStatistics"
                    : c.state == CheckpointRecord::State::kFailed  ? ".FailedCheckpointStatistics"
                                                                   : ".PendingCheckpointStatistics"},
      {"id", c.id},
      {"status", CheckpointStateName(c.state)},
      {"is_savepoint", c.savepoint},
      {"savepointFormat", c.savepoint ? nlohmann::json("CANONICAL") : nlohmann::json(nullptr)},
      {"trigger_timestamp", c.trigger_ms},
      {"latest_ack_timestamp", end},
      {"checkpointed_size", c.state_size},
      {"state_size", c.state_size},
      {"end_to_end_duration", end >= 0 ? end - c.trigger_ms : -1},
      {"alignment_buffered", 0},
      {"processed_data", processed},
      {"persisted_data", c.in_flight_size},
      // Not in Flink's API: the longest alignment of a subtask.
      {"alignment_duration", alignment},
      {"num_subtasks", c.num_tasks},
      {"num_acknowledged_subtasks", c.num_acknowledged},
      {"checkpoint_type", c.savepoint ? "SAVEPOINT" : unaligned ? "UNALIGNED_CHECKPOINT" : "CHECKPOINT"},
      {"tasks", [&] {
         nlohmann::json tasks = nlohmann::json::object();
         for (const JobVertex& v : job.graph->vertices) tasks[VertexRestId(v.id)] = TaskCheckpointJson(c, v);
         return tasks;
       }()}};
  if (c.state == CheckpointRecord::State::kCompleted) {
    std::error_code ec;
    j["external_path"] = c.directory;
    // Retention removes older checkpoints' directories.
    j["discarded"] = !std::filesystem::exists(std::filesystem::path(c.directory) / "_metadata", ec);
  } else if (c.state == CheckpointRecord::State::kFailed) {
    j["failure_timestamp"] = c.end_ms;
    j["failure_message"] = c.failure;
  }
  return j;
}

nlohmann::json StatsSummary(std::vector<int64_t> values) {
  if (values.empty()) {
    return {{"min", 0}, {"max", 0}, {"avg", 0}, {"p50", 0}, {"p90", 0}, {"p95", 0}, {"p99", 0}, {"p999", 0}};
  }
  std::sort(values.begin(), values.end());
  auto quantile = [&](double q) {
    size_t index = static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
    return static_cast<double>(values[std::min(index, values.size() - 1)]);
  };
  int64_t sum = 0;
  for (int64_t v : values) sum += v;
  return {{"min", values.front()},
          {"max", values.back()},
          {"avg", sum / static_cast<int64_t>(values.size())},
          {"p50", quantile(0.5)},
          {"p90", quantile(0.9)},
          {"p95", quantile(0.95)},
          {"p99", quantile(0.99)},
          {"p999", quantile(0.999)}};
}

/// Restores of the job: from the snapshot it was started from and at each
/// restart from a checkpoint (the JobMaster's recovery events say which).
int RestoreCount(const JobMaster::View& view) {
  int restores = 0;
  for (const std::string& event : view.recovery_events) {
    bool initial = event.rfind("started from ", 0) == 0;
    bool restart = event.rfind("restarted (attempt", 0) == 0 && event.find("from the beginning") == std::string::npos;
    if (initial || restart) ++restores;
  }
  return restores;
}

nlohmann::json CheckpointingStatisticsJson(const JobDetails& job, const Clock& clock) {
  nlohmann::json history = nlohmann::json::array();
  nlohmann::json latest_completed = nullptr, latest_savepoint = nullptr, latest_failed = nullptr;
  std::vector<int64_t> sizes, durations, persisted, processed, alignments;
  int64_t in_progress = 0;
  for (const CheckpointRecord& c : job.checkpoints) {
    nlohmann::json j = CheckpointJson(c, job);
    if (c.state == CheckpointRecord::State::kInProgress) ++in_progress;
    if (c.state == CheckpointRecord::State::kCompleted) {
      sizes.push_back(c.state_size);
      durations.push_back(c.end_ms - c.trigger_ms);
      persisted.push_back(c.in_flight_size);
      processed.push_back(j["processed_data"].get<int64_t>());
      alignments.push_back(j["alignment_duration"].get<int64_t>());
      if (c.savepoint && latest_savepoint.is_null()) latest_savepoint = j;
      if (!c.savepoint && latest_completed.is_null()) latest_completed = j;
    }
    if (c.state == CheckpointRecord::State::kFailed && latest_failed.is_null()) latest_failed = j;
    history.push_back(std::move(j));
  }
  nlohmann::json restored = nullptr;
  if (!job.view.restored_directory.empty()) {
    restored = {{"id", job.view.restored_id},
                {"restore_timestamp", WallMillis(job.view.attempt_start, clock)},
                {"is_savepoint", job.view.restored_savepoint},
                {"external_path", job.view.restored_directory}};
  }
  return {{"counts",
           {{"restored", RestoreCount(job.view)},
            {"total", job.checkpoints_completed + job.checkpoints_aborted + in_progress},
            {"in_progress", in_progress},
            {"completed", job.checkpoints_completed},
            {"failed", job.checkpoints_aborted}}},
          {"summary",
           {{"checkpointed_size", StatsSummary(sizes)},
            {"state_size", StatsSummary(sizes)},
            {"end_to_end_duration", StatsSummary(durations)},
            {"alignment_buffered", StatsSummary({})},
            {"processed_data", StatsSummary(processed)},
            {"persisted_data", StatsSummary(persisted)},
            {"alignment_duration", StatsSummary(alignments)}}},
          {"latest",
           {{"completed", latest_completed},
            {"savepoint", latest_savepoint},
            {"failed", latest_failed},
            {"restored", restored}}},
          {"history", std::move(history)}};
}

nlohmann::json CheckpointConfigJson(const JobDetails& job) {
  const ExecutionOptions& options = job.graph->stream_graph->options;
  const CheckpointOptions& c = options.checkpoint;
  return {{"mode", c.mode == CheckpointingMode::kExactlyOnce ? "exactly_once" : "at_least_once"},
          {"interval", c.interval_ms},
          {"timeout", c.timeout_ms},
          {"min_pause", c.min_pause_ms},
          {"max_concurrent", c.max_concurrent},
          {"externalization", {{"enabled", true}, {"delete_on_cancellation", !c.retain_on_cancellation}}},
          {"state_backend", options.state_backend.type == StateBackendOptions::Type::kRocksDB
                                ? "EmbeddedRocksDBStateBackend"
                                : "HashMapStateBackend"},
          {"checkpoint_storage", "FileSystemCheckpointStorage"},
          {"unaligned_checkpoints", c.unaligned},
          {"tolerable_failed_checkpoints", c.tolerable_failures},
          {"aligned_checkpoint_timeout", c.aligned_checkpoint_timeout_ms},
          {"checkpoints_after_tasks_finish", true},
          {"state_changelog_enabled", false},
          {"changelog_periodic_materialization_interval", 0},
          {"changelog_storage", "memory"},
          {"checkpoints_retained", c.num_retained},
          {"checkpoint_directory", c.directory}};
}

// ---- job configuration ------------------------------------------------------------

std::string DurationText(int64_t ms) {
  if (ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
  return fmt::format("{} ms", ms);
}

/// The restart strategy in words, as Flink's job configuration shows it.
std::string RestartStrategyText(const ExecutionOptions& options) {
  using Kind = RestartStrategyOptions::Kind;
  const RestartStrategyOptions& r = options.restart;
  Kind kind = r.kind.value_or(options.checkpoint.Enabled() ? Kind::kFixedDelay : Kind::kNone);
  bool unlimited = !r.kind && kind == Kind::kFixedDelay;
  switch (kind) {
    case Kind::kNone:
      return "No restart strategy";
    case Kind::kFixedDelay:
      if (unlimited) {
        return fmt::format("Restart with fixed delay ({}), unlimited restart attempts", DurationText(1000));
      }
      return fmt::format("Restart with fixed delay ({}). #{} restart attempts", DurationText(r.fixed_delay_ms),
                         r.fixed_delay_attempts);
    case Kind::kFailureRate:
      return fmt::format("Failure rate restart with maximum of {} failures within interval {} and fixed delay {}",
                         r.failure_rate_max_failures, DurationText(r.failure_rate_interval_ms),
                         DurationText(r.failure_rate_delay_ms));
    case Kind::kExponentialDelay:
      return fmt::format("Restart with exponential delay: initial backoff {}, max backoff {}, multiplier {}",
                         DurationText(r.exponential_initial_backoff_ms), DurationText(r.exponential_max_backoff_ms),
                         r.exponential_multiplier);
  }
  return "No restart strategy";
}

/// Flink's job configuration (`GET /jobs/:jobid/config`). The user config
/// is what the run of a job library set (-p, -s, -D), not the cluster's
/// defaults; a job built in this process has none.
nlohmann::json JobConfigJson(const JobDetails& job) {
  const ExecutionOptions& options = job.graph->stream_graph->options;
  nlohmann::json user_config = nlohmann::json::object();
  if (job.graph->artifact) {
    for (const auto& [key, value] : job.graph->artifact->run_config) user_config[key] = value;
  }
  return {{"jid", job.summary.job_id},
          {"name", job.summary.name},
          {"execution-config",
           {{"execution-mode", "PIPELINED"},
            {"restart-strategy", RestartStrategyText(options)},
            {"job-parallelism", options.parallelism},
            {"object-reuse-mode", false},
            {"user-config", std::move(user_config)}}}};
}

// ---- exceptions and operations -------------------------------------------------

nlohmann::json ExceptionEntry(const std::string& message, Timestamp timestamp) {
  return {{"exceptionName", "JobFailure"},
          {"stacktrace", message},
          {"timestamp", timestamp},
          {"taskName", nullptr},
          {"location", nullptr},
          {"endpoint", nullptr},
          {"taskManagerId", nullptr},
          {"failureLabels", nlohmann::json::object()},
          {"concurrentExceptions", nlohmann::json::array()}};
}

nlohmann::json ExceptionsJson(const JobDetails& job) {
  // The JobMaster records the failures that led to restarts ("failure: ...")
  // without their time; the final failure's time is the job's end.
  nlohmann::json entries = nlohmann::json::array();
  std::string root;
  Timestamp root_time = -1;
  for (const std::string& event : job.view.recovery_events) {
    if (event.rfind("failure: ", 0) != 0) continue;
    root = event.substr(9);
    entries.push_back(ExceptionEntry(root, -1));
  }
  if (job.summary.status == JobStatus::kFailed && !job.view.failure.empty()) {
    root = job.view.failure;
    root_time = job.summary.end_ms;
    entries.push_back(ExceptionEntry(root, root_time));
  }
  std::reverse(entries.begin(), entries.end());  // newest first
  return {{"root-exception", root.empty() ? nlohmann::json(nullptr) : nlohmann::json(root)},
          {"timestamp", root_time >= 0 ? nlohmann::json(root_time) : nlohmann::json(nullptr)},
          {"all-exceptions", nlohmann::json::array()},
          {"truncated", false},
          {"exceptionHistory", {{"entries", std::move(entries)}, {"truncated", false}}}};
}

nlohmann::json FailureCause(const Status& status) {
  return {{"class", fmt::format("freshet.{}", StatusCodeName(status.Code()))},
          {"stack-trace", status.Message()},
          {"serialized-throwable", ""}};
}

RestResponse OperationResponse(const AsyncOperation& op, bool with_location) {
  if (!op.done) return JsonResponse(200, {{"status", {{"id", "IN_PROGRESS"}}}, {"operation", nullptr}});
  nlohmann::json operation = nlohmann::json::object();
  if (op.failure) {
    operation["failure-cause"] = FailureCause(*op.failure);
  } else if (with_location) {
    operation["location"] = op.location;
  }
  return JsonResponse(200, {{"status", {{"id", "COMPLETED"}}}, {"operation", operation}});
}

/// A checkpoint on request: its id once completed (Flink's
/// CheckpointInfo), or why it failed.
RestResponse CheckpointOperationResponse(const AsyncOperation& op) {
  if (!op.done) return JsonResponse(200, {{"status", {{"id", "IN_PROGRESS"}}}, {"operation", nullptr}});
  nlohmann::json operation = nlohmann::json::object();
  if (op.failure) {
    operation["failure-cause"] = FailureCause(*op.failure);
  } else {
    operation["checkpointId"] = op.checkpoint_id;
  }
  return JsonResponse(200, {{"status", {{"id", "COMPLETED"}}}, {"operation", operation}});
}

/// The `checkpointType` of a checkpoint request; absent means CONFIGURED.
Result<CheckpointType> CheckpointTypeField(const nlohmann::json& body) {
  FRESHET_ASSIGN_OR_RETURN(std::optional<std::string> text, StringField(body, "checkpointType"));
  if (!text) return CheckpointType::kConfigured;
  for (CheckpointType type : {CheckpointType::kConfigured, CheckpointType::kFull, CheckpointType::kIncremental}) {
    if (*text == CheckpointTypeName(type)) return type;
  }
  std::string shown = text->size() > 40 ? text->substr(0, 40) + "..." : *text;
  return Status::InvalidArgument(fmt::format(
      "field 'checkpointType' is '{}'; it must be CONFIGURED, FULL or INCREMENTAL", shown));
}

RestResponse Accepted(const std::string& request_id) { return JsonResponse(202, {{"request-id", request_id}}); }

}  // namespace

void AddJobHandlers(RestRouter& router, const RestContext& ctx) {
  Dispatcher& dispatcher = *ctx.dispatcher;

  router.Add("GET", "/jobs", [&dispatcher](const RestRequest&) {
    nlohmann::json jobs = nlohmann::json::array();
    for (const JobSummary& j : dispatcher.Jobs()) {
      jobs.push_back({{"id", j.job_id}, {"status", JobStatusName(j.status)}});
    }
    return JsonResponse(200, {{"jobs", std::move(jobs)}});
  });

  router.Add("GET", "/jobs/overview", [&dispatcher](const RestRequest&) {
    nlohmann::json jobs = nlohmann::json::array();
    for (const JobSummary& j : dispatcher.Jobs()) jobs.push_back(JobOverviewJson(j, dispatcher.GetClock()));
    return JsonResponse(200, {{"jobs", std::move(jobs)}});
  });

  router.Add("GET", "/jobs/:jobid", [&ctx, &dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    return JsonResponse(200, JobDetailsJson(ctx, *job));
  });

  router.Add("PATCH", "/jobs/:jobid", [&dispatcher](const RestRequest& req) {
    Result<std::string> job_id = HexIdParam(req, "jobid", "job id");
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    auto mode = req.query.find("mode");
    if (mode != req.query.end() && mode->second != "cancel") {
      return ErrorResponse(400, fmt::format("mode '{}' is not supported; the only mode is 'cancel' (use POST "
                                            "/jobs/:jobid/stop to stop with a savepoint)",
                                            mode->second.substr(0, 40)));
    }
    Status s = dispatcher.CancelJob(*job_id);
    if (!s.IsOk()) return ErrorResponse(s);
    return JsonResponse(202, nlohmann::json::object());
  });

  router.Add("GET", "/jobs/:jobid/plan", [&dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    return JsonResponse(200, {{"plan", JobPlanJson(*job->graph)}});
  });

  router.Add("GET", "/jobs/:jobid/exceptions", [&dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    return JsonResponse(200, ExceptionsJson(*job));
  });

  router.Add("GET", "/jobs/:jobid/checkpoints", [&dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    return JsonResponse(200, CheckpointingStatisticsJson(*job, dispatcher.GetClock()));
  });

  router.Add("POST", "/jobs/:jobid/checkpoints", [&dispatcher](const RestRequest& req) {
    Result<std::string> job_id = HexIdParam(req, "jobid", "job id");
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    Result<nlohmann::json> body = JsonBody(req);
    if (!body.IsOk()) return ErrorResponse(body.GetStatus());
    Result<CheckpointType> type = CheckpointTypeField(*body);
    if (!type.IsOk()) return ErrorResponse(type.GetStatus());
    Result<std::string> trigger = dispatcher.TriggerCheckpoint(*job_id, *type);
    if (!trigger.IsOk()) return ErrorResponse(trigger.GetStatus());
    return Accepted(*trigger);
  });

  router.Add("GET", "/jobs/:jobid/checkpoints/config", [&dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    if (!job->graph->stream_graph->options.checkpoint.Enabled()) {
      return ErrorResponse(404, fmt::format("checkpointing is not enabled for job {}", job->summary.job_id));
    }
    return JsonResponse(200, CheckpointConfigJson(*job));
  });

  router.Add("GET", "/jobs/:jobid/checkpoints/details/:checkpointid", [&dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    Result<const CheckpointRecord*> checkpoint = FindCheckpoint(*job, req);
    if (!checkpoint.IsOk()) return ErrorResponse(checkpoint.GetStatus());
    return JsonResponse(200, CheckpointJson(**checkpoint, *job));
  });

  router.Add("GET", "/jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid",
             [&dispatcher](const RestRequest& req) {
               Result<JobDetails> job = FindJob(dispatcher, req);
               if (!job.IsOk()) return ErrorResponse(job.GetStatus());
               Result<const CheckpointRecord*> checkpoint = FindCheckpoint(*job, req);
               if (!checkpoint.IsOk()) return ErrorResponse(checkpoint.GetStatus());
               Result<const JobVertex*> vertex = FindVertex(*job, req);
               if (!vertex.IsOk()) return ErrorResponse(vertex.GetStatus());
               return JsonResponse(200, SubtaskCheckpointsJson(**checkpoint, **vertex));
             });

  router.Add("GET", "/jobs/:jobid/config", [&dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    return JsonResponse(200, JobConfigJson(*job));
  });

  // The router matches /checkpoints/config (a literal segment) before this.
  router.Add("GET", "/jobs/:jobid/checkpoints/:triggerid", [&dispatcher](const RestRequest& req) {
    Result<std::string> job_id = HexIdParam(req, "jobid", "job id");
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    Result<std::string> trigger_id = HexIdParam(req, "triggerid", "trigger id");
    if (!trigger_id.IsOk()) return ErrorResponse(trigger_id.GetStatus());
    Result<AsyncOperation> op = dispatcher.CheckpointOperation(*job_id, *trigger_id);
    if (!op.IsOk()) return ErrorResponse(op.GetStatus());
    return CheckpointOperationResponse(*op);
  });

  router.Add("POST", "/jobs/:jobid/savepoints", [&dispatcher](const RestRequest& req) {
    Result<std::string> job_id = HexIdParam(req, "jobid", "job id");
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    Result<nlohmann::json> body = JsonBody(req);
    if (!body.IsOk()) return ErrorResponse(body.GetStatus());
    auto target = StringField(*body, "target-directory");
    if (!target.IsOk()) return ErrorResponse(target.GetStatus());
    auto cancel = BoolField(*body, "cancel-job");
    if (!cancel.IsOk()) return ErrorResponse(cancel.GetStatus());
    Result<std::string> trigger = dispatcher.TriggerSavepoint(*job_id, target->value_or(""), SavepointMode::kSavepoint,
                                                              cancel->value_or(false));
    if (!trigger.IsOk()) return ErrorResponse(trigger.GetStatus());
    return Accepted(*trigger);
  });

  router.Add("GET", "/jobs/:jobid/savepoints/:triggerid", [&dispatcher](const RestRequest& req) {
    Result<std::string> job_id = HexIdParam(req, "jobid", "job id");
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    Result<std::string> trigger_id = HexIdParam(req, "triggerid", "trigger id");
    if (!trigger_id.IsOk()) return ErrorResponse(trigger_id.GetStatus());
    Result<AsyncOperation> op = dispatcher.SavepointOperation(*job_id, *trigger_id);
    if (!op.IsOk()) return ErrorResponse(op.GetStatus());
    return OperationResponse(*op, true);
  });

  router.Add("POST", "/jobs/:jobid/stop", [&dispatcher](const RestRequest& req) {
    Result<std::string> job_id = HexIdParam(req, "jobid", "job id");
    if (!job_id.IsOk()) return ErrorResponse(job_id.GetStatus());
    Result<nlohmann::json> body = JsonBody(req);
    if (!body.IsOk()) return ErrorResponse(body.GetStatus());
    auto target = StringField(*body, "targetDirectory");
    if (!target.IsOk()) return ErrorResponse(target.GetStatus());
    auto drain = BoolField(*body, "drain");
    if (!drain.IsOk()) return ErrorResponse(drain.GetStatus());
    Result<std::string> trigger = dispatcher.TriggerSavepoint(
        *job_id, target->value_or(""), drain->value_or(false) ? SavepointMode::kStopDrain : SavepointMode::kStop);
    if (!trigger.IsOk()) return ErrorResponse(trigger.GetStatus());
    return Accepted(*trigger);
  });

  router.Add("GET", "/jobs/:jobid/vertices/:vertexid", [&ctx, &dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    Result<const JobVertex*> vertex = FindVertex(*job, req);
    if (!vertex.IsOk()) return ErrorResponse(vertex.GetStatus());
    const JobVertex& v = **vertex;
    const Clock& clock = dispatcher.GetClock();
    Timestamp now = clock.NowMillis();
    std::map<std::string, std::string> addresses;
    for (const TaskManagerStatus& tm : dispatcher.TaskManagers()) addresses[tm.id] = tm.address;
    nlohmann::json subtasks = nlohmann::json::array();
    for (const JobMaster::ExecutionView& e : job->view.executions) {
      if (e.vertex != v.id) continue;
      Timestamp start = WallMillis(job->view.attempt_start, clock);
      Timestamp end = Wall(e.ended, clock);
      nlohmann::json metrics = nlohmann::json::object();
      for (const RestMetric& m : ReadSubtaskMetrics(ctx.metrics, job->summary.job_id, v.id, e.subtask)) {
        if (m.id == "numRecordsIn") metrics["read-records"] = static_cast<int64_t>(m.value);
        if (m.id == "numRecordsOut") metrics["write-records"] = static_cast<int64_t>(m.value);
        if (m.id == "numBytesIn") metrics["read-bytes"] = static_cast<int64_t>(m.value);
      }
      auto address = addresses.find(e.executor);
      subtasks.push_back({{"subtask", e.subtask},
                          {"status", ExecutionStateName(e.state)},
                          {"attempt", job->view.attempt},
                          {"endpoint", address != addresses.end() ? address->second : e.executor},
                          {"start-time", start},
                          {"end-time", end},
                          {"duration", (end >= 0 ? end : now) - start},
                          {"metrics", metrics},
                          {"taskmanager-id", e.executor}});
    }
    std::sort(subtasks.begin(), subtasks.end(),
              [](const nlohmann::json& a, const nlohmann::json& b) { return a["subtask"] < b["subtask"]; });
    return JsonResponse(200, {{"id", VertexRestId(v.id)},
                              {"name", v.name},
                              {"parallelism", v.parallelism},
                              {"maxParallelism", v.max_parallelism},
                              {"now", now},
                              {"subtasks", std::move(subtasks)}});
  });

  router.Add("GET", "/jobs/:jobid/vertices/:vertexid/backpressure", [&ctx, &dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    Result<const JobVertex*> vertex = FindVertex(*job, req);
    if (!vertex.IsOk()) return ErrorResponse(vertex.GetStatus());
    // From the subtasks' time metrics (ms per second); without them there
    // is nothing to report, which Flink marks "deprecated" (no fresh stats).
    std::map<int, std::map<std::string, double>> per_subtask;
    for (const RestMetric& m : ReadVertexMetrics(ctx.metrics, job->summary.job_id, (*vertex)->id)) {
      size_t dot = m.id.find('.');
      if (dot == std::string::npos) continue;
      per_subtask[std::atoi(m.id.substr(0, dot).c_str())][m.id.substr(dot + 1)] = m.value;
    }
    auto level = [](double ratio) { return ratio <= 0.10 ? "ok" : ratio <= 0.5 ? "low" : "high"; };
    nlohmann::json subtasks = nlohmann::json::array();
    double worst = 0;
    for (const auto& [subtask, values] : per_subtask) {
      auto value = [&](const char* name) {
        auto it = values.find(name);
        return it == values.end() ? 0.0 : it->second / 1000.0;
      };
      double ratio = value("backPressuredTimeMsPerSecond");
      worst = std::max(worst, ratio);
      subtasks.push_back({{"subtask", subtask},
                          {"attempt-number", job->view.attempt},
                          {"backpressureLevel", level(ratio)},
                          {"ratio", ratio},
                          {"idleRatio", value("idleTimeMsPerSecond")},
                          {"busyRatio", value("busyTimeMsPerSecond")}});
    }
    return JsonResponse(200, {{"status", per_subtask.empty() ? "deprecated" : "ok"},
                              {"backpressureLevel", level(worst)},
                              {"end-timestamp", dispatcher.GetClock().NowMillis()},
                              {"subtasks", std::move(subtasks)}});
  });

  router.Add("GET", "/jobs/:jobid/vertices/:vertexid/watermarks", [&ctx, &dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    Result<const JobVertex*> vertex = FindVertex(*job, req);
    if (!vertex.IsOk()) return ErrorResponse(vertex.GetStatus());
    nlohmann::json out = nlohmann::json::array();
    for (const RestMetric& m : ReadVertexMetrics(ctx.metrics, job->summary.job_id, (*vertex)->id)) {
      if (m.id.size() > 22 && m.id.ends_with(".currentInputWatermark")) {
        out.push_back({{"id", m.id}, {"value", MetricValueText(m.value)}});
      }
    }
    return JsonResponse(200, out);
  });

  router.Add("GET", "/jobs/:jobid/vertices/:vertexid/metrics", [&ctx, &dispatcher](const RestRequest& req) {
    Result<JobDetails> job = FindJob(dispatcher, req);
    if (!job.IsOk()) return ErrorResponse(job.GetStatus());
    Result<const JobVertex*> vertex = FindVertex(*job, req);
    if (!vertex.IsOk()) return ErrorResponse(vertex.GetStatus());
    return MetricsResponse(req, ReadVertexMetrics(ctx.metrics, job->summary.job_id, (*vertex)->id));
  });

  router.Add("POST", "/savepoint-disposal", [&dispatcher](const RestRequest& req) {
    Result<nlohmann::json> body = JsonBody(req);
    if (!body.IsOk()) return ErrorResponse(body.GetStatus());
    auto path = StringField(*body, "savepoint-path");
    if (!path.IsOk()) return ErrorResponse(path.GetStatus());
    if (!*path || (*path)->empty()) return ErrorResponse(400, "field 'savepoint-path' is required");
    return Accepted(dispatcher.TriggerDisposal(**path));
  });

  router.Add("GET", "/savepoint-disposal/:triggerid", [&dispatcher](const RestRequest& req) {
    Result<std::string> trigger_id = HexIdParam(req, "triggerid", "trigger id");
    if (!trigger_id.IsOk()) return ErrorResponse(trigger_id.GetStatus());
    Result<AsyncOperation> op = dispatcher.DisposalOperation(*trigger_id);
    if (!op.IsOk()) return ErrorResponse(op.GetStatus());
    return OperationResponse(*op, false);
  });
}

}  // namespace freshet::internal
