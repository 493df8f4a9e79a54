#include "runtime/io/result_partition.h"

namespace freshet::internal {

ResultPartition::ResultPartition(PartitionId id, int num_subpartitions, size_t segment_size, int num_buffers)
    : id_(std::move(id)), pool_(segment_size, num_buffers) {
  for (int i = 0; i < num_subpartitions; ++i) subpartitions_.push_back(std::make_unique<Subpartition>());
}

void ResultPartition::Add(int subpartition, Buffer buffer) {
  Subpartition& s = *subpartitions_[static_cast<size_t>(subpartition)];
  std::lock_guard lock(s.mu);
  bool was_empty = s.queue.empty();
  s.queue.push_back(std::move(buffer));
  if (was_empty && s.listener != nullptr) s.listener->NotifyDataAvailable(s.token);
}

void ResultPartition::AddOvertaking(int subpartition, Buffer event, std::string* overtaken) {
  Subpartition& s = *subpartitions_[static_cast<size_t>(subpartition)];
  std::lock_guard lock(s.mu);
  for (const Buffer& b : s.queue) {
    if (b.Kind() == BufferKind::kData) overtaken->append(reinterpret_cast<const char*>(b.Data()), b.Size());
  }
  bool was_empty = s.queue.empty();
  s.queue.push_front(std::move(event));
  if (was_empty && s.listener != nullptr) s.listener->NotifyDataAvailable(s.token);
}

bool ResultPartition::Poll(int subpartition, Buffer& out, bool& more) {
  Subpartition& s = *subpartitions_[static_cast<size_t>(subpartition)];
  std::lock_guard lock(s.mu);
  if (s.queue.empty()) {
    more = false;
    return false;
  }
  out = std::move(s.queue.front());
  s.queue.pop_front();
  more = !s.queue.empty();
  return true;
}

void ResultPartition::SetListener(int subpartition, AvailabilityListener* listener, int token) {
  Subpartition& s = *subpartitions_[static_cast<size_t>(subpartition)];
  std::lock_guard lock(s.mu);
  s.listener = listener;
  s.token = token;
  if (listener != nullptr && !s.queue.empty()) listener->NotifyDataAvailable(token);
}

size_t ResultPartition::QueuedBuffers(int subpartition) const {
  const Subpartition& s = *subpartitions_[static_cast<size_t>(subpartition)];
  std::lock_guard lock(s.mu);
  return s.queue.size();
}

}  // namespace freshet::internal
