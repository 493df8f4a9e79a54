#pragma once
// Flink's job metrics (numRestarts, uptime, checkpoint figures...) for a
// job run by a JobMaster, registered as the job's group (scope
// jobmanager.job) by whoever runs jobs: the MiniCluster and the
// Dispatcher. The figures are read from the JobMaster's monitoring view
// and its checkpoint coordinator's statistics when the group is read, so
// the job's own threads do no metric work.

#include <memory>

#include "cluster/job_master.h"
#include "metrics/metric_registry.h"

namespace freshet::internal {

/// The job metrics of `master` now. Takes the master's and its
/// coordinator's locks briefly; `clock` gives the wall-clock time of the
/// last restore.
JobMetricsSample SampleJobMetrics(const JobMaster& master, const Clock& clock);

/// Registers the group of `job`, run by `master`, in `registry`. The group
/// holds the master weakly: once it is gone the gauges keep their last
/// figures. Destroying the group unregisters it (Flink drops a job's
/// metrics when the job ends).
/// REQUIRES: `clock` outlives the group.
std::unique_ptr<JobMetricGroup> RegisterJobMetrics(MetricRegistry& registry, const JobGraph& job,
                                                   std::weak_ptr<const JobMaster> master, const Clock& clock);

}  // namespace freshet::internal
