#pragma once
// The consumer side of a task: all input channels of all its inputs, and a
// queue of channels that have data. The task thread polls it; producers
// (or the network stack) mark channels available and wake the task.

#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "freshet/internal/buffer.h"
#include "freshet/types.h"
#include "runtime/io/result_partition.h"
#include "runtime/task/mailbox.h"

namespace freshet::internal {

/// One channel: reads one subpartition of one producer. This is the local
/// (same process) channel; a remote channel fills the same role from TCP.
struct InputChannel {
  std::shared_ptr<ResultPartition> partition;
  int subpartition = 0;
  /// The producer's subpartition this channel reads: `subpartition` for a
  /// local channel; a remote channel reads subpartition 0 of its mirror.
  /// In-flight data of unaligned checkpoints is keyed by it, so that it
  /// restores whether the channel is local or remote next time.
  int logical_subpartition = 0;
  int input_index = 1;  // operator input (1-based) this channel feeds
  ChannelDeserializer deserializer;
  Timestamp watermark = kNoTimestamp;
  bool idle = false;
  bool aligned = true;  // contributes to the input's watermark
  bool finished = false;
  bool data_finished = false;  // delivered its end-of-data event
  bool blocked = false;        // held back during barrier alignment
  bool parked = false;         // became available while blocked
};

class InputGate final : public AvailabilityListener {
 public:
  explicit InputGate(Mailbox* mailbox) : mailbox_(mailbox) {}
  ~InputGate() override;
  InputGate(const InputGate&) = delete;
  InputGate& operator=(const InputGate&) = delete;

  /// Adds a channel before Start(); returns its index.
  int AddChannel(std::shared_ptr<ResultPartition> partition, int subpartition, int input_index);
  /// Registers for availability notifications.
  void Start();

  /// Task thread: the next buffer of some available channel, or false.
  bool PollNext(int& channel, Buffer& buffer);

  InputChannel& Channel(int index) { return *channels_[static_cast<size_t>(index)]; }
  int NumChannels() const { return static_cast<int>(channels_.size()); }
  /// Task thread: record that a channel delivered its end of partition.
  void MarkFinished(int channel);
  bool AllFinished() const { return finished_channels_ == NumChannels(); }
  /// True when every channel of operator input `input_index` has finished.
  bool InputFinished(int input_index) const;

  /// Task thread: hold back / release a channel (barrier alignment). A
  /// blocked channel delivers nothing until unblocked.
  void Block(int channel);
  void UnblockAll();

  void NotifyDataAvailable(int channel) override;

 private:
  Mailbox* mailbox_;
  std::vector<std::unique_ptr<InputChannel>> channels_;
  std::mutex mu_;
  std::deque<int> available_;
  int finished_channels_ = 0;
  bool started_ = false;
};

}  // namespace freshet::internal
