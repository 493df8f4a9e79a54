#pragma once
// What a TaskExecutor needs to run one subtask: which vertex, which
// partitions it produces and which it consumes. Plain data, so it can be
// sent to another process.

#include <map>
#include <string>
#include <vector>

#include "freshet/key_groups.h"
#include "runtime/checkpoint/checkpoint_storage.h"
#include "runtime/io/result_partition.h"

namespace freshet::internal {

struct ProducedPartitionDescriptor {
  int edge = -1;
  PartitionId id;
  int num_subpartitions = 0;
};

struct InputChannelDescriptor {
  PartitionId partition;
  int subpartition = 0;
  /// "host:port" of the producer's NetworkEnvironment; empty: the partition
  /// is in this process.
  std::string producer_address;
};

struct InputGateDescriptor {
  int edge = -1;
  int input_index = 1;
  std::vector<InputChannelDescriptor> channels;
};

struct TaskDeploymentDescriptor {
  std::string job_id;
  int vertex = -1;
  int subtask = 0;
  int parallelism = 1;
  int max_parallelism = 128;
  int attempt = 0;
  int slot = -1;
  KeyGroupRange key_groups;
  std::vector<ProducedPartitionDescriptor> produced;
  std::vector<InputGateDescriptor> inputs;
  /// The snapshot to restore from (empty: fresh start) and, per operator of
  /// the chain (head first), the blocks of its state.
  std::string restore_directory;
  std::vector<OperatorRestoreRefs> restore;

  std::string ExecutionId() const {
    return job_id + "/" + std::to_string(vertex) + "/" + std::to_string(subtask) + "#" + std::to_string(attempt);
  }
};

/// What a finished subtask hands back.
struct TaskResult {
  int64_t records_in = 0;   // records taken by sinks of this task
  int64_t records_out = 0;  // records emitted by sources of this task
  std::map<std::string, std::string> accumulators;
  std::map<std::string, int64_t> counters;  // operator counters, e.g. numLateRecordsDropped
};

enum class ExecutionState { kCreated, kRunning, kFinished, kCanceled, kFailed };

}  // namespace freshet::internal
