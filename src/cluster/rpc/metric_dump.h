#pragma once
// A TaskManager's metric groups on the wire (QueryMetrics of the
// TaskManagerService): what its registry holds, and back into the readings
// the JobManager's metric queries work on.

#include <vector>

#include "cluster/rpc/control.pb.h"
#include "metrics/metric_view.h"

namespace freshet::internal::rpc {

/// Task manager and task groups go over; any other scope is left out.
freshet::rpc::MetricDump ToProto(const std::vector<GroupReadings>& groups);
/// Groups with an unknown scope or unequal name and value lists are
/// dropped: a newer TaskManager may send what this JobManager cannot read.
std::vector<GroupReadings> FromProto(const freshet::rpc::MetricDump& dump);

}  // namespace freshet::internal::rpc
