#pragma once
// The producer's side of one TCP connection: serves the subpartitions that
// a remote consumer process requested on it, sending buffers while the
// consumer's credit allows.
//
// Threading: everything runs on the connection's io thread, except
// Reader::NotifyDataAvailable (producer threads), which only notifies the
// connection's Wakeup.

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/net/network_core.h"

namespace freshet::internal::net {

class ServerConnection final : public WakeupTarget, public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(NetworkCore& core, asio::io_context& io, tcp::socket socket);
  ~ServerConnection() override;

  asio::io_context& Io() { return io_; }
  /// Io thread: starts reading requests.
  void Start();
  /// Io thread: closes the socket and drops every reader; `reason` is logged
  /// when `violation` (a malformed frame).
  void Close(const std::string& reason, bool violation);
  /// Io thread: ends the readers and pending requests of a job; their
  /// consumers get an ERROR frame.
  void ReleaseJob(const std::string& job_id);
  void OnWakeup() override;

 private:
  /// One requested subpartition being sent.
  class Reader final : public AvailabilityListener {
   public:
    void NotifyDataAvailable(int) override { wakeup->Notify(channel); }

    std::shared_ptr<Wakeup> wakeup;
    uint32_t channel = 0;
    PartitionId id;
    std::string claim;  // key held in NetworkCore::ClaimSubpartition
    int subpartition = 0;
    std::shared_ptr<ResultPartition> partition;  // declared before `pending`: outlives it
    Buffer pending;         // polled, not (completely) sent yet
    size_t pending_offset = 0;  // bytes of `pending` already sent (data split into segments)
    int64_t credit = 0;
    uint32_t segment_size = 0;
    bool listening = false;
    bool in_ready = false;
    Reader* next_ready = nullptr;
  };
  /// A request whose partition is not registered yet.
  struct PendingRequest {
    PartitionRequest request;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::milliseconds backoff{5};
    std::unique_ptr<asio::steady_timer> timer;
  };
  static constexpr int kMaxBatch = 31;  // 1 + 2 * 31 buffers fit one writev (64 at most)
  static constexpr size_t kMaxBatchBytes = 1 << 20;
  static constexpr int kFairShare = 8;  // buffers of one channel per batch before the next channel's turn
  struct Slot {
    uint8_t header[kFrameHeaderSize];
    Buffer buffer;  // the buffer the slot's bytes belong to (empty while a split buffer is not done)
  };

  void ReadHeader();
  void OnHeader();
  void OnPayload();
  void Violation(const std::string& reason);
  void HandleRequest(uint32_t channel, PartitionRequest request);
  void TryServe(uint32_t channel);
  void HandleAddCredit(uint32_t channel, uint32_t credit);
  void HandleClose(uint32_t channel);
  void SendError(uint32_t channel, StatusCode code, const std::string& message);
  /// Unregisters the reader's listener, releases its claim and keeps it
  /// until the write in flight (which may point into its buffer) is done.
  void RetireReader(uint32_t channel);
  void MakeReady(Reader* reader);
  Reader* PopReady();
  /// Starts a gathered write of queued control frames and buffers of ready
  /// channels, unless one is in flight.
  void Pump();
  void OnWritten(const boost::system::error_code& error);
  std::string Describe(const PartitionId& id, int subpartition) const;

  NetworkCore& core_;
  asio::io_context& io_;
  tcp::socket socket_;
  std::string peer_;
  std::shared_ptr<Wakeup> wakeup_;
  bool closed_ = false;

  // Channels: ids must grow, so that a late frame for a channel that ended
  // can be told from a bogus one.
  uint32_t max_channel_ = 0;
  std::unordered_map<uint32_t, std::unique_ptr<PendingRequest>> pending_;
  std::unordered_map<uint32_t, std::unique_ptr<Reader>> readers_;
  std::vector<std::unique_ptr<Reader>> retired_;
  Reader* ready_head_ = nullptr;
  Reader* ready_tail_ = nullptr;
  std::vector<uint32_t> woken_;

  // Reading.
  uint8_t header_in_[kFrameHeaderSize];
  FrameHeader frame_;
  std::vector<uint8_t> payload_in_;

  // Writing. Slots are declared after the readers: their buffers go back to
  // the readers' partitions before those are released.
  std::string control_pending_;
  std::string control_writing_;
  std::array<Slot, kMaxBatch> slots_;
  int slot_count_ = 0;
  std::array<asio::const_buffer, 1 + 2 * kMaxBatch> iov_;
  size_t iov_count_ = 0;
  bool writing_ = false;
};

}  // namespace freshet::internal::net
