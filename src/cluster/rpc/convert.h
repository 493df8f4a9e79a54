#pragma once
// Between the runtime's structs and the control plane's messages.

#include <string>

#include "cluster/rpc/control.pb.h"
#include "freshet/status.h"
#include "runtime/checkpoint/checkpoint_storage.h"
#include "runtime/task/task_deployment.h"

namespace freshet::internal::rpc {

freshet::rpc::StatusProto ToProto(const Status& status);
Status FromProto(const freshet::rpc::StatusProto& proto);

/// The task's placement and channels; restore refs are not sent (the
/// TaskManager assigns them from the snapshot's metadata).
freshet::rpc::TaskDeploymentProto ToProto(const TaskDeploymentDescriptor& tdd);
/// Checks every number against the job graph's limits before use; errors
/// name the field.
Result<TaskDeploymentDescriptor> FromProto(const freshet::rpc::TaskDeploymentProto& proto, const std::string& job_id);

freshet::rpc::TaskResultProto ToProto(const TaskResult& result);
TaskResult FromProto(const freshet::rpc::TaskResultProto& proto);

freshet::rpc::SubtaskCheckpointMetricsProto ToProto(const SubtaskCheckpointMetrics& metrics);
SubtaskCheckpointMetrics FromProto(const freshet::rpc::SubtaskCheckpointMetricsProto& proto);

/// A task's snapshot in the `_metadata` encoding (checksummed); its
/// metrics travel beside it.
std::string EncodeTaskState(const TaskStateSnapshot& state);
Result<TaskStateSnapshot> DecodeTaskState(const std::string& bytes);

}  // namespace freshet::internal::rpc
