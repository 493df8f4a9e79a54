#include "runtime/net/network_environment.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/net/network_core.h"
#include "runtime/task/stream_task.h"

namespace freshet::internal {

NetworkEnvironment::NetworkEnvironment(ShuffleEnvironment& shuffle, NetworkOptions options)
    : core_(std::make_unique<net::NetworkCore>(shuffle, std::move(options))) {}

NetworkEnvironment::~NetworkEnvironment() = default;

Status NetworkEnvironment::Start() { return core_->Start(); }

std::string NetworkEnvironment::Address() const { return core_->Address(); }

void NetworkEnvironment::Stop() { core_->Stop(); }

Result<std::shared_ptr<ResultPartition>> NetworkEnvironment::RequestSubpartition(const std::string& address,
                                                                                 const PartitionId& id,
                                                                                 int subpartition, int credits,
                                                                                 size_t segment_size) {
  return core_->RequestSubpartition(address, id, subpartition, credits, segment_size);
}

void NetworkEnvironment::ReleaseJob(const std::string& job_id) { core_->ReleaseJob(job_id); }

NetworkStats NetworkEnvironment::Stats() const { return core_->Stats(); }

int RemoteChannelCredits(const ExecutionOptions& options, int remote_channels) {
  int credits = std::max(1, options.buffers_per_channel);
  if (remote_channels > 0) credits += std::max(1, options.floating_buffers / remote_channels);
  return std::min<int>(credits, static_cast<int>(net::kMaxInitialCredit));
}

Result<std::shared_ptr<ResultPartition>> RequestRemoteChannel(ShuffleEnvironment& shuffle,
                                                              const TaskDeploymentDescriptor& tdd,
                                                              const InputChannelDescriptor& channel,
                                                              const ExecutionOptions& options) {
  NetworkEnvironment* network = shuffle.Network();
  if (network == nullptr) {
    return Status::FailedPrecondition(fmt::format(
        "result partition {} subpartition {} is produced in another process ({}), but this process has no network "
        "environment",
        channel.partition.Key(), channel.subpartition, channel.producer_address));
  }
  int remote_channels = 0;
  for (const InputGateDescriptor& gate : tdd.inputs) {
    for (const InputChannelDescriptor& c : gate.channels) remote_channels += c.producer_address.empty() ? 0 : 1;
  }
  return network->RequestSubpartition(channel.producer_address, channel.partition, channel.subpartition,
                                      RemoteChannelCredits(options, remote_channels),
                                      static_cast<size_t>(options.segment_size));
}

}  // namespace freshet::internal
