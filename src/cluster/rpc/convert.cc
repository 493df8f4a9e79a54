#include "cluster/rpc/convert.h"

#include <fmt/format.h>

#include <algorithm>

namespace freshet::internal::rpc {

namespace pb = freshet::rpc;

pb::StatusProto ToProto(const Status& status) {
  pb::StatusProto proto;
  proto.set_code(static_cast<int32_t>(status.Code()));
  proto.set_message(status.Message());
  return proto;
}

Status FromProto(const pb::StatusProto& proto) {
  if (proto.code() == 0) return Status::Ok();
  return Status(static_cast<StatusCode>(proto.code()), proto.message());
}

pb::TaskDeploymentProto ToProto(const TaskDeploymentDescriptor& tdd) {
  pb::TaskDeploymentProto p;
  p.set_vertex(tdd.vertex);
  p.set_subtask(tdd.subtask);
  p.set_parallelism(tdd.parallelism);
  p.set_max_parallelism(tdd.max_parallelism);
  p.set_attempt(tdd.attempt);
  p.set_slot(tdd.slot);
  p.set_key_group_start(tdd.key_groups.start);
  p.set_key_group_end(tdd.key_groups.end);
  for (const ProducedPartitionDescriptor& produced : tdd.produced) {
    auto* out = p.add_produced();
    out->set_edge(produced.edge);
    out->mutable_id()->set_edge(produced.id.edge);
    out->mutable_id()->set_producer_subtask(produced.id.producer_subtask);
    out->set_num_subpartitions(produced.num_subpartitions);
  }
  for (const InputGateDescriptor& gate : tdd.inputs) {
    auto* g = p.add_inputs();
    g->set_edge(gate.edge);
    g->set_input_index(gate.input_index);
    for (const InputChannelDescriptor& channel : gate.channels) {
      auto* c = g->add_channels();
      c->mutable_partition()->set_edge(channel.partition.edge);
      c->mutable_partition()->set_producer_subtask(channel.partition.producer_subtask);
      c->set_subpartition(channel.subpartition);
      c->set_producer_address(channel.producer_address);
    }
  }
  p.set_restore_directory(tdd.restore_directory);
  return p;
}

Result<TaskDeploymentDescriptor> FromProto(const pb::TaskDeploymentProto& p, const std::string& job_id) {
  auto bad = [](const std::string& what) { return Status::InvalidArgument("task deployment: " + what); };
  if (p.parallelism() < 1 || p.subtask() < 0 || p.subtask() >= p.parallelism()) {
    return bad(fmt::format("subtask {} of parallelism {}", p.subtask(), p.parallelism()));
  }
  if (p.max_parallelism() < p.parallelism() || p.max_parallelism() > 32768) {
    return bad(fmt::format("max parallelism {}", p.max_parallelism()));
  }
  if (p.key_group_start() < 0 || p.key_group_end() >= p.max_parallelism() ||
      p.key_group_start() > p.key_group_end() + 1) {
    return bad(fmt::format("key groups [{}, {}]", p.key_group_start(), p.key_group_end()));
  }
  if (p.attempt() < 0 || p.slot() < 0) return bad(fmt::format("attempt {} slot {}", p.attempt(), p.slot()));
  TaskDeploymentDescriptor tdd;
  tdd.job_id = job_id;
  tdd.vertex = p.vertex();
  tdd.subtask = p.subtask();
  tdd.parallelism = p.parallelism();
  tdd.max_parallelism = p.max_parallelism();
  tdd.attempt = p.attempt();
  tdd.slot = p.slot();
  tdd.key_groups = KeyGroupRange{p.key_group_start(), p.key_group_end()};
  for (const auto& produced : p.produced()) {
    if (produced.num_subpartitions() < 1 || produced.num_subpartitions() > 32768) {
      return bad(fmt::format("{} subpartitions", produced.num_subpartitions()));
    }
    tdd.produced.push_back({produced.edge(), PartitionId{job_id, produced.id().edge(), produced.id().producer_subtask()},
                            produced.num_subpartitions()});
  }
  for (const auto& g : p.inputs()) {
    InputGateDescriptor gate;
    gate.edge = g.edge();
    gate.input_index = g.input_index();
    if (gate.input_index < 1 || gate.input_index > 2) return bad(fmt::format("input index {}", gate.input_index));
    for (const auto& c : g.channels()) {
      InputChannelDescriptor channel;
      channel.partition = PartitionId{job_id, c.partition().edge(), c.partition().producer_subtask()};
      channel.subpartition = c.subpartition();
      channel.producer_address = c.producer_address();
      gate.channels.push_back(std::move(channel));
    }
    tdd.inputs.push_back(std::move(gate));
  }
  tdd.restore_directory = p.restore_directory();
  return tdd;
}

pb::TaskResultProto ToProto(const TaskResult& result) {
  pb::TaskResultProto p;
  p.set_records_in(result.records_in);
  p.set_records_out(result.records_out);
  for (const auto& [name, bytes] : result.accumulators) (*p.mutable_accumulators())[name] = bytes;
  for (const auto& [name, value] : result.counters) (*p.mutable_counters())[name] = value;
  return p;
}

TaskResult FromProto(const pb::TaskResultProto& p) {
  TaskResult result;
  result.records_in = p.records_in();
  result.records_out = p.records_out();
  for (const auto& [name, bytes] : p.accumulators()) result.accumulators[name] = bytes;
  for (const auto& [name, value] : p.counters()) result.counters[name] = value;
  return result;
}

pb::SubtaskCheckpointMetricsProto ToProto(const SubtaskCheckpointMetrics& m) {
  pb::SubtaskCheckpointMetricsProto p;
  p.set_start_delay_ms(m.start_delay_ms);
  p.set_alignment_ms(m.alignment_ms);
  p.set_processed_bytes(m.processed_bytes);
  p.set_sync_ms(m.sync_ms);
  p.set_async_ms(m.async_ms);
  p.set_unaligned(m.unaligned);
  return p;
}

SubtaskCheckpointMetrics FromProto(const pb::SubtaskCheckpointMetricsProto& p) {
  // Monitoring figures only: a negative one is shown as 0.
  auto at_least_0 = [](int64_t v) { return std::max<int64_t>(v, 0); };
  return {.start_delay_ms = at_least_0(p.start_delay_ms()),
          .alignment_ms = at_least_0(p.alignment_ms()),
          .processed_bytes = at_least_0(p.processed_bytes()),
          .sync_ms = at_least_0(p.sync_ms()),
          .async_ms = at_least_0(p.async_ms()),
          .unaligned = p.unaligned()};
}

std::string EncodeTaskState(const TaskStateSnapshot& state) {
  CheckpointMetadata md;
  for (size_t i = 0; i < state.operators.size(); ++i) {
    OperatorStateHandle op;
    op.operator_id = std::to_string(i);
    op.name = op.operator_id;
    op.subtasks.push_back(state.operators[i]);
    if (i < state.state_info.size()) op.state_info = state.state_info[i];
    md.operators.push_back(std::move(op));
  }
  md.files = state.files;
  return EncodeMetadata(md);
}

Result<TaskStateSnapshot> DecodeTaskState(const std::string& bytes) {
  FRESHET_ASSIGN_OR_RETURN(CheckpointMetadata md, DecodeMetadata(bytes, "a task's checkpoint acknowledgement"));
  TaskStateSnapshot state;
  for (OperatorStateHandle& op : md.operators) {
    if (op.subtasks.size() != 1) {
      return Status::Corruption("a task's checkpoint acknowledgement holds " + std::to_string(op.subtasks.size()) +
                                " subtasks for one operator");
    }
    state.operators.push_back(std::move(op.subtasks[0]));
    state.state_info.push_back(std::move(op.state_info));
  }
  state.files = std::move(md.files);
  return state;
}

}  // namespace freshet::internal::rpc
