#pragma once
// The consumer's side of one TCP connection to another process: requests
// subpartitions, reads their buffers straight into mirror partitions, and
// returns credit as the consumers free mirror segments.
//
// Threading: a connection's state is touched on its io thread only.
// Requesting threads hand channels over by posting; consumer threads reach
// the connection only through Mirror::OnSegmentRecycled (its Wakeup).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/net/network_core.h"

namespace freshet::internal::net {

/// The local stand-in of a remote subpartition: a partition with one
/// subpartition whose pool holds the channel's receive segments. Every
/// segment a consumer recycles becomes credit for the remote sender.
class Mirror final : public RecycleListener {
 public:
  Mirror(PartitionId id, size_t segment_size, int credits, std::shared_ptr<Wakeup> wakeup)
      : wakeup_(std::move(wakeup)), partition_(std::move(id), 1, segment_size, credits) {
    partition_.Pool().SetRecycleListener(this);
  }
  ResultPartition& Partition() { return partition_; }
  /// Io thread, before the request is sent.
  void SetChannel(uint32_t channel) { channel_.store(channel, std::memory_order_relaxed); }
  /// Io thread: segments recycled since the last call.
  int TakeReturned() { return returned_.exchange(0, std::memory_order_acq_rel); }
  int PeekReturned() const { return returned_.load(std::memory_order_acquire); }
  /// Consumer thread: only the first return since the io thread last
  /// looked wakes it, so a busy consumer costs an atomic add per segment.
  void OnSegmentRecycled() override {
    if (returned_.fetch_add(1, std::memory_order_acq_rel) == 0) wakeup_->Notify(channel_.load(std::memory_order_relaxed));
  }

 private:
  std::shared_ptr<Wakeup> wakeup_;
  std::atomic<uint32_t> channel_{0};
  std::atomic<int> returned_{0};
  ResultPartition partition_;  // last: its buffers go back to the pool while the rest is alive
};

/// One requested subpartition.
struct ClientChannel {
  PartitionId partition;
  int subpartition = 0;
  int credits = 0;
  uint32_t segment_size = 0;
  std::string address;
  std::shared_ptr<Mirror> mirror;

  /// Any thread: the request's outcome, set once by the io thread.
  void SetOutcome(Status status);
  /// False when `deadline` passed first.
  bool WaitOutcome(std::chrono::steady_clock::time_point deadline, Status& out);
  std::string Describe() const;

  // Io thread only.
  uint32_t id = 0;
  bool active = false;  // REQUEST_OK received, end of partition not yet
  /// Credit announced minus data buffers received: what the sender may
  /// still send. The sender's real credit is lower by what is in flight.
  int64_t sender_credit = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Status> outcome_;
};

class ClientConnection final : public WakeupTarget, public std::enable_shared_from_this<ClientConnection> {
 public:
  ClientConnection(NetworkCore& core, asio::io_context& io, std::string address);

  const std::string& Address() const { return address_; }
  asio::io_context& Io() { return io_; }
  const std::shared_ptr<Wakeup>& GetWakeup() const { return wakeup_; }
  /// Any thread: the connection failed or was closed; a new one is needed.
  bool IsBroken() const { return broken_.load(std::memory_order_acquire); }

  /// Io thread: connects to the first reachable endpoint within `timeout`.
  void Connect(std::vector<tcp::endpoint> endpoints, std::chrono::milliseconds timeout);
  /// Any thread: waits for Connect's outcome (Unavailable on failure).
  Status WaitConnected(std::chrono::steady_clock::time_point deadline);

  /// Io thread: gives the channel an id and sends its request.
  void Open(std::shared_ptr<ClientChannel> channel);
  /// Io thread: stops reading a channel (its request timed out).
  void Abandon(const std::shared_ptr<ClientChannel>& channel);
  /// Io thread: closes the channels of a job.
  void ReleaseJob(const std::string& job_id);
  /// Io thread: closes the socket; pending requests fail and active
  /// channels get a kPartitionError event.
  void Close(const std::string& reason, bool violation);
  void OnWakeup() override;

 private:
  void FinishConnect(Status status);
  void ReadHeader();
  void OnHeader();
  /// Reads a payload of `length` bytes into `target` and, in the same
  /// reads, as much of the next frame's header as has arrived, so that a
  /// stream of buffers costs about one receive call per buffer.
  template <class Handler>
  void ReadPayload(uint8_t* target, uint32_t length, Handler handler);
  /// Sends the credit of recycled segments; while the sender still holds
  /// plenty, waits until a few segments are free to send them in one frame.
  void AnnounceCredit(ClientChannel& channel);
  void OnError(const std::shared_ptr<ClientChannel>& channel);
  void Discard();
  void Violation(const std::string& reason);
  /// A frame for a channel this side does not know: ignored when the
  /// channel once existed (it ended or was closed), else a violation.
  bool SkipUnknown(const char* what);
  std::shared_ptr<ClientChannel> FindChannel(uint32_t id);
  void CloseChannel(uint32_t id, bool notify_server);
  void DeliverError(ClientChannel& channel, const std::string& message);
  void Flush();

  NetworkCore& core_;
  asio::io_context& io_;
  const std::string address_;
  tcp::socket socket_;
  std::shared_ptr<Wakeup> wakeup_;
  std::unique_ptr<asio::steady_timer> connect_timer_;
  bool connected_ = false;
  bool connect_timed_out_ = false;
  bool closed_ = false;
  std::atomic<bool> broken_{false};

  std::mutex connect_mu_;
  std::condition_variable connect_cv_;
  std::optional<Status> connect_outcome_;

  uint32_t next_channel_ = 1;
  std::unordered_map<uint32_t, std::shared_ptr<ClientChannel>> channels_;
  std::vector<uint32_t> woken_;

  // Reading.
  uint8_t header_in_[kFrameHeaderSize];
  size_t header_have_ = 0;  // bytes of the next header read with the last payload
  FrameHeader frame_;
  std::vector<uint8_t> payload_in_;
  std::unique_ptr<uint8_t[]> event_in_;
  std::vector<uint8_t> discard_;
  size_t discard_left_ = 0;

  // Writing: only control frames; one batch in flight, the next collecting.
  std::string out_pending_;
  std::string out_writing_;
  bool writing_ = false;
};

}  // namespace freshet::internal::net
