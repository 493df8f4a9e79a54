#include "cluster/job_master.h"

#include <fmt/format.h>

#include <set>

namespace freshet::internal {

JobMaster::JobMaster(std::shared_ptr<const JobGraph> job, TaskExecutor& executor)
    : job_(std::move(job)), executor_(executor) {
  result_.job_id = job_->job_id;
  result_.job_name = job_->stream_graph->job_name;
}

JobMaster::~JobMaster() = default;

int JobMaster::RequiredSlots(const JobGraph& job) {
  std::map<std::string, int> widest;
  for (const JobVertex& v : job.vertices) widest[v.slot_sharing_group] = std::max(widest[v.slot_sharing_group], v.parallelism);
  int total = 0;
  for (const auto& [group, width] : widest) total += width;
  return total;
}

Status JobMaster::Start() {
  const StreamGraph& g = *job_->stream_graph;
  int needed = RequiredSlots(*job_);
  if (needed > executor_.NumSlots()) {
    return Status::Unavailable(fmt::format("the job needs {} slots, the cluster offers {}", needed, executor_.NumSlots()));
  }
  // Slot sharing: group g owns slots [offset_g, offset_g + width_g).
  std::map<std::string, int> offsets;
  {
    std::map<std::string, int> widest;
    for (const JobVertex& v : job_->vertices) {
      widest[v.slot_sharing_group] = std::max(widest[v.slot_sharing_group], v.parallelism);
    }
    int offset = 0;
    for (const auto& [group, width] : widest) {
      offsets[group] = offset;
      offset += width;
    }
  }

  std::vector<std::string> ids;
  std::unique_lock lock(mu_);
  start_ = std::chrono::steady_clock::now();
  status_ = JobStatus::kRunning;
  for (const JobVertex& v : job_->vertices) {
    for (int i = 0; i < v.parallelism; ++i) {
      TaskDeploymentDescriptor tdd;
      tdd.job_id = job_->job_id;
      tdd.vertex = v.id;
      tdd.subtask = i;
      tdd.parallelism = v.parallelism;
      tdd.max_parallelism = v.max_parallelism;
      tdd.slot = offsets[v.slot_sharing_group] + i;
      tdd.key_groups = KeyGroupRangeForSubtask(i, v.parallelism, v.max_parallelism);
      for (int e : v.output_edges) {
        const JobVertex& consumer = job_->VertexOfNode(g.Edge(e).target);
        tdd.produced.push_back({e, PartitionId{job_->job_id, e, i}, consumer.parallelism});
      }
      for (int e : v.input_edges) {
        const StreamEdge& edge = g.Edge(e);
        const JobVertex& producer = job_->VertexOfNode(edge.source);
        InputGateDescriptor gate;
        gate.edge = e;
        gate.input_index = edge.target_input;
        for (int j = 0; j < producer.parallelism; ++j) gate.channels.push_back({PartitionId{job_->job_id, e, j}, i});
        tdd.inputs.push_back(std::move(gate));
      }
      std::string id = tdd.ExecutionId();
      Status s = executor_.DeployTask(std::move(tdd), job_, this);
      if (!s.IsOk()) {
        failure_ = s;
        status_ = JobStatus::kFailed;
        CancelAllLocked();
        return s;
      }
      executions_[id] = ExecutionState::kCreated;
      execution_vertex_[id] = {v.id, i};
      ids.push_back(std::move(id));
    }
  }
  running_ = static_cast<int>(ids.size());
  for (auto& [id, state] : executions_) state = ExecutionState::kRunning;
  lock.unlock();
  for (const std::string& id : ids) executor_.StartTask(id);
  return Status::Ok();
}

void JobMaster::CancelAllLocked() {
  for (const auto& [id, state] : executions_) {
    if (state == ExecutionState::kRunning || state == ExecutionState::kCreated) executor_.CancelTask(id);
  }
}

void JobMaster::Cancel() {
  std::lock_guard lock(mu_);
  if (status_ != JobStatus::kRunning && status_ != JobStatus::kCreated) return;
  status_ = JobStatus::kCanceling;
  CancelAllLocked();
  if (running_ == 0) {
    status_ = JobStatus::kCanceled;
    done_cv_.notify_all();
  }
}

JobStatus JobMaster::GetStatus() const {
  std::lock_guard lock(mu_);
  return status_;
}

void JobMaster::OnTaskTerminated(const std::string& execution_id, ExecutionState state, Status status,
                                 TaskResult result) {
  std::lock_guard lock(mu_);
  auto it = executions_.find(execution_id);
  if (it == executions_.end()) return;
  it->second = state;
  --running_;
  result_.records_in += result.records_out;
  result_.records_out += result.records_in;
  for (const auto& [name, value] : result.counters) result_.counters[name] += value;
  for (auto& [name, bytes] : result.accumulators) {
    accumulators_[name][execution_vertex_[execution_id]] = std::move(bytes);
  }
  if (state == ExecutionState::kFailed && failure_.IsOk()) {
    failure_ = std::move(status);
    if (status_ == JobStatus::kRunning || status_ == JobStatus::kCanceling) {
      status_ = JobStatus::kFailed;
      CancelAllLocked();
    }
  }
  if (running_ == 0) {
    end_ = std::chrono::steady_clock::now();
    if (status_ == JobStatus::kRunning) status_ = JobStatus::kFinished;
    if (status_ == JobStatus::kCanceling) status_ = JobStatus::kCanceled;
    done_cv_.notify_all();
  }
}

Result<JobExecutionResult> JobMaster::OutcomeLocked() const {
  if (status_ == JobStatus::kFailed) {
    return Status(failure_.Code(), fmt::format("job '{}' ({}) failed: {}", result_.job_name, result_.job_id,
                                               failure_.Message()));
  }
  if (status_ == JobStatus::kCanceled) {
    return Status::Cancelled(fmt::format("job '{}' ({}) was cancelled", result_.job_name, result_.job_id));
  }
  JobExecutionResult r = result_;
  r.net_runtime = std::chrono::duration_cast<Duration>(end_ - start_);
  for (const auto& [name, parts] : accumulators_) {
    auto& out = r.accumulators[name];
    for (const auto& [where, bytes] : parts) out.push_back(bytes);
  }
  return r;
}

std::optional<Result<JobExecutionResult>> JobMaster::Wait(std::optional<Duration> timeout) {
  std::unique_lock lock(mu_);
  auto terminal = [this] {
    return running_ == 0 && (status_ == JobStatus::kFinished || status_ == JobStatus::kFailed ||
                             status_ == JobStatus::kCanceled);
  };
  if (timeout) {
    if (!done_cv_.wait_for(lock, *timeout, terminal)) return std::nullopt;
  } else {
    done_cv_.wait(lock, terminal);
  }
  return OutcomeLocked();
}

}  // namespace freshet::internal
