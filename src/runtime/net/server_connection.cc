#include "runtime/net/server_connection.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "runtime/task/stream_task.h"

namespace freshet::internal::net {

namespace {
std::string EndpointString(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint e = socket.remote_endpoint(ec);
  if (ec) return "(unknown peer)";
  return fmt::format("{}:{}", e.address().to_string(), e.port());
}
}  // namespace

ServerConnection::ServerConnection(NetworkCore& core, asio::io_context& io, tcp::socket socket)
    : core_(core),
      io_(io),
      socket_(std::move(socket)),
      peer_(EndpointString(socket_)),
      wakeup_(std::make_shared<Wakeup>(io)) {}

ServerConnection::~ServerConnection() {
  // Close() normally did this; a connection whose io_context was torn down
  // without running it still must not leave listeners behind.
  for (auto& [channel, reader] : readers_) {
    if (reader->listening) reader->partition->SetListener(reader->subpartition, nullptr, 0);
  }
}

void ServerConnection::Start() {
  Count(core_.Counters().open_server_connections, 1);
  wakeup_->Attach(weak_from_this());
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  ReadHeader();
}

std::string ServerConnection::Describe(const PartitionId& id, int subpartition) const {
  return fmt::format("result partition {} subpartition {} at {}", id.Key(), subpartition, core_.LocalAddress());
}

void ServerConnection::ReadHeader() {
  asio::async_read(socket_, asio::buffer(header_in_),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                     if (ec) {
                       self->Close(ec == asio::error::eof ? "the peer closed the connection" : ec.message(), false);
                       return;
                     }
                     self->OnHeader();
                   });
}

void ServerConnection::OnHeader() {
  if (closed_) return;
  frame_ = DecodeHeader(header_in_);
  switch (frame_.type) {
    case FrameType::kPartitionRequest:
    case FrameType::kAddCredit:
    case FrameType::kCloseChannel:
      break;
    default:
      Violation(fmt::format("unknown frame type {}", static_cast<int>(frame_.type)));
      return;
  }
  if (frame_.length > kMaxControlPayload) {
    Violation(fmt::format("frame of type {} announces {} bytes, more than the limit of {}",
                          static_cast<int>(frame_.type), frame_.length, kMaxControlPayload));
    return;
  }
  if (frame_.length == 0) {
    OnPayload();
    return;
  }
  payload_in_.resize(frame_.length);
  asio::async_read(socket_, asio::buffer(payload_in_),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                     if (ec) {
                       self->Close("connection lost inside a frame: " + ec.message(), false);
                       return;
                     }
                     self->OnPayload();
                   });
}

void ServerConnection::OnPayload() {
  if (closed_) return;
  const uint8_t* p = payload_in_.data();
  switch (frame_.type) {
    case FrameType::kPartitionRequest: {
      PartitionRequest request;
      if (!DecodePartitionRequest(p, frame_.length, request)) {
        Violation(fmt::format("malformed PARTITION_REQUEST of {} bytes on channel {}", frame_.length, frame_.channel));
        return;
      }
      HandleRequest(frame_.channel, std::move(request));
      break;
    }
    case FrameType::kAddCredit:
      if (frame_.length != 4) {
        Violation(fmt::format("ADD_CREDIT of {} bytes on channel {}", frame_.length, frame_.channel));
        return;
      }
      HandleAddCredit(frame_.channel, GetU32(p));
      break;
    case FrameType::kCloseChannel:
      if (frame_.length != 0) {
        Violation(fmt::format("CLOSE_CHANNEL of {} bytes on channel {}", frame_.length, frame_.channel));
        return;
      }
      HandleClose(frame_.channel);
      break;
    default:
      break;  // rejected in OnHeader
  }
  if (!closed_) ReadHeader();
}

void ServerConnection::Violation(const std::string& reason) { Close(reason, true); }

void ServerConnection::HandleRequest(uint32_t channel, PartitionRequest request) {
  if (channel == 0 || channel <= max_channel_) {
    Violation(fmt::format("PARTITION_REQUEST on channel {}: channel ids must increase (last {})", channel,
                          max_channel_));
    return;
  }
  max_channel_ = channel;
  PartitionId id{request.job_id, request.edge, request.producer_subtask};
  std::string problem;
  if (request.version != kProtocolVersion) {
    problem = fmt::format("protocol version {} is not supported (this side speaks {})", request.version,
                          kProtocolVersion);
  } else if (request.initial_credit < 1 || request.initial_credit > kMaxInitialCredit) {
    problem = fmt::format("initial credit {} is outside [1, {}]", request.initial_credit, kMaxInitialCredit);
  } else if (request.segment_size < kMinSegmentSize || request.segment_size > kMaxSegmentSize) {
    problem = fmt::format("segment size {} is outside [{}, {}]", request.segment_size, kMinSegmentSize,
                          kMaxSegmentSize);
  } else if (request.subpartition < 0 || request.edge < 0 || request.producer_subtask < 0 || request.job_id.empty()) {
    problem = fmt::format("partition id '{}' subpartition {} is not valid", id.Key(), request.subpartition);
  } else if (request.wait_ms > kMaxRequestWaitMs) {
    problem = fmt::format("request timeout {} ms exceeds {} ms", request.wait_ms, kMaxRequestWaitMs);
  }
  if (!problem.empty()) {
    SendError(channel, StatusCode::kInvalidArgument, "bad partition request: " + problem);
    Pump();
    return;
  }
  auto pending = std::make_unique<PendingRequest>();
  pending->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(request.wait_ms);
  pending->request = std::move(request);
  pending_.emplace(channel, std::move(pending));
  Count(core_.Counters().pending_requests, 1);
  TryServe(channel);
}

void ServerConnection::TryServe(uint32_t channel) {
  auto it = pending_.find(channel);
  if (it == pending_.end() || closed_) return;
  PendingRequest& p = *it->second;
  PartitionId id{p.request.job_id, p.request.edge, p.request.producer_subtask};
  std::shared_ptr<ResultPartition> partition = core_.Shuffle().Find(id);
  if (partition == nullptr) {
    auto now = std::chrono::steady_clock::now();
    if (now >= p.deadline) {
      std::string message = fmt::format("result partition {} is not registered at {} (waited {} ms)", id.Key(),
                                        core_.LocalAddress(), p.request.wait_ms);
      pending_.erase(it);
      Count(core_.Counters().pending_requests, -1);
      SendError(channel, StatusCode::kNotFound, message);
      Pump();
      return;
    }
    // Producers may deploy after their consumers: look again shortly.
    if (p.timer == nullptr) p.timer = std::make_unique<asio::steady_timer>(io_);
    auto delay = std::min<std::chrono::steady_clock::duration>(p.backoff, p.deadline - now);
    p.backoff = std::min(p.backoff * 2, std::chrono::milliseconds(100));
    p.timer->expires_after(delay);
    p.timer->async_wait([self = shared_from_this(), channel](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      self->TryServe(channel);
    });
    return;
  }
  PartitionRequest request = std::move(p.request);
  pending_.erase(it);
  Count(core_.Counters().pending_requests, -1);
  if (request.subpartition >= partition->NumSubpartitions()) {
    SendError(channel, StatusCode::kNotFound,
              fmt::format("result partition {} at {} has {} subpartitions; subpartition {} does not exist", id.Key(),
                          core_.LocalAddress(), partition->NumSubpartitions(), request.subpartition));
    Pump();
    return;
  }
  std::string claim = id.Key() + "#" + std::to_string(request.subpartition);
  if (!core_.ClaimSubpartition(claim)) {
    SendError(channel, StatusCode::kFailedPrecondition,
              Describe(id, request.subpartition) + " is already being read by another channel");
    Pump();
    return;
  }
  auto reader = std::make_unique<Reader>();
  reader->wakeup = wakeup_;
  reader->channel = channel;
  reader->id = id;
  reader->claim = std::move(claim);
  reader->subpartition = request.subpartition;
  reader->partition = std::move(partition);
  reader->credit = request.initial_credit;
  reader->segment_size = request.segment_size;
  Count(core_.Counters().credit_granted, request.initial_credit);
  Count(core_.Counters().active_readers, 1);
  AppendFrame(control_pending_, FrameType::kRequestOk, channel, {});
  Reader* r = reader.get();
  readers_.emplace(channel, std::move(reader));
  r->listening = true;
  r->partition->SetListener(r->subpartition, r, static_cast<int>(channel));
  MakeReady(r);
  Pump();
}

void ServerConnection::HandleAddCredit(uint32_t channel, uint32_t credit) {
  if (credit == 0) {
    Violation(fmt::format("ADD_CREDIT of 0 on channel {}", channel));
    return;
  }
  auto it = readers_.find(channel);
  if (it == readers_.end()) {
    // Credit may cross the end of its channel; credit for a channel never
    // requested is a broken peer.
    if (channel == 0 || channel > max_channel_) Violation(fmt::format("ADD_CREDIT for unknown channel {}", channel));
    return;
  }
  Reader& r = *it->second;
  r.credit += credit;
  if (r.credit > kMaxHeldCredit) {
    Violation(fmt::format("credit of channel {} grew to {}, beyond any receive pool", channel, r.credit));
    return;
  }
  Count(core_.Counters().credit_granted, credit);
  MakeReady(&r);
  Pump();
}

void ServerConnection::HandleClose(uint32_t channel) {
  auto p = pending_.find(channel);
  if (p != pending_.end()) {
    pending_.erase(p);
    Count(core_.Counters().pending_requests, -1);
    return;
  }
  if (readers_.count(channel) != 0) {
    RetireReader(channel);
    return;
  }
  if (channel == 0 || channel > max_channel_) Violation(fmt::format("CLOSE_CHANNEL for unknown channel {}", channel));
}

void ServerConnection::SendError(uint32_t channel, StatusCode code, const std::string& message) {
  std::string payload(1, static_cast<char>(code));
  payload.append(message, 0, std::min<size_t>(message.size(), kMaxControlPayload - 1));
  AppendFrame(control_pending_, FrameType::kError, channel, payload);
}

void ServerConnection::RetireReader(uint32_t channel) {
  auto it = readers_.find(channel);
  if (it == readers_.end()) return;
  std::unique_ptr<Reader> r = std::move(it->second);
  readers_.erase(it);
  if (r->listening) {
    r->partition->SetListener(r->subpartition, nullptr, 0);
    r->listening = false;
  }
  core_.ReleaseSubpartition(r->claim);
  Count(core_.Counters().active_readers, -1);
  if (r->in_ready) {
    Reader* prev = nullptr;
    for (Reader* q = ready_head_; q != nullptr; prev = q, q = q->next_ready) {
      if (q != r.get()) continue;
      (prev == nullptr ? ready_head_ : prev->next_ready) = q->next_ready;
      if (ready_tail_ == q) ready_tail_ = prev;
      break;
    }
    r->in_ready = false;
  }
  // A write in flight (or being assembled) may point into the reader's
  // buffer, and its buffers go back to the reader's partition.
  if (writing_) retired_.push_back(std::move(r));
}

void ServerConnection::MakeReady(Reader* reader) {
  if (reader->in_ready) return;
  reader->in_ready = true;
  reader->next_ready = nullptr;
  if (ready_tail_ == nullptr) {
    ready_head_ = reader;
  } else {
    ready_tail_->next_ready = reader;
  }
  ready_tail_ = reader;
}

ServerConnection::Reader* ServerConnection::PopReady() {
  Reader* r = ready_head_;
  if (r == nullptr) return nullptr;
  ready_head_ = r->next_ready;
  if (ready_head_ == nullptr) ready_tail_ = nullptr;
  r->in_ready = false;
  r->next_ready = nullptr;
  return r;
}

void ServerConnection::OnWakeup() {
  wakeup_->Take(woken_);
  if (closed_) return;
  for (uint32_t channel : woken_) {
    auto it = readers_.find(channel);
    if (it != readers_.end()) MakeReady(it->second.get());
  }
  Pump();
}

void ServerConnection::Pump() {
  if (writing_ || closed_) return;
  writing_ = true;  // from here on, retired readers are kept until the write is done
  iov_count_ = 0;
  slot_count_ = 0;
  size_t bytes = 0;
  int64_t data_sent = 0;
  int64_t events_sent = 0;
  int64_t payload_bytes = 0;
  if (!control_pending_.empty()) {
    control_writing_.swap(control_pending_);
    iov_[iov_count_++] = asio::buffer(control_writing_);
    bytes += control_writing_.size();
  }
  // Round robin over ready channels, a few buffers each. A channel that
  // stays ready has filled its share or the batch, so this ends.
  while (slot_count_ < kMaxBatch && bytes < kMaxBatchBytes) {
    Reader* r = PopReady();
    if (r == nullptr) break;
    bool keep = true;
    for (int share = 0; share < kFairShare && slot_count_ < kMaxBatch && bytes < kMaxBatchBytes; ++share) {
      if (!r->pending.IsValid()) {
        bool more = false;
        if (!r->partition->Poll(r->subpartition, r->pending, more)) {
          keep = false;  // empty: the producer's next Add notifies us
          break;
        }
        r->pending_offset = 0;
      }
      Buffer& b = r->pending;
      if (b.Kind() == BufferKind::kData) {
        if (b.Size() == 0) {
          b.Recycle();
          continue;
        }
        if (r->credit == 0) {
          keep = false;  // ADD_CREDIT makes it ready again
          break;
        }
        size_t n = std::min<size_t>(b.Size() - r->pending_offset, r->segment_size);
        Slot& s = slots_[static_cast<size_t>(slot_count_++)];
        EncodeHeader(s.header, static_cast<uint32_t>(n), FrameType::kDataBuffer, r->channel);
        iov_[iov_count_++] = asio::buffer(s.header);
        iov_[iov_count_++] = asio::buffer(b.Data() + r->pending_offset, n);
        r->pending_offset += n;
        --r->credit;
        bytes += kFrameHeaderSize + n;
        payload_bytes += static_cast<int64_t>(n);
        ++data_sent;
        if (r->pending_offset == b.Size()) {
          s.buffer = std::move(b);
          r->pending_offset = 0;
        }
        continue;
      }
      if (b.Size() == 0 || b.Size() > kMaxEventSize) {
        std::string message = fmt::format("{}: the producer emitted an event of {} bytes, which cannot be sent",
                                          Describe(r->id, r->subpartition), b.Size());
        spdlog::error("network {}: {}", core_.LocalAddress(), message);
        SendError(r->channel, StatusCode::kInternal, message);
        RetireReader(r->channel);
        keep = false;
        r = nullptr;
        break;
      }
      bool end = b.Data()[0] == static_cast<uint8_t>(EventKind::kEndOfPartition);
      Slot& s = slots_[static_cast<size_t>(slot_count_++)];
      EncodeHeader(s.header, static_cast<uint32_t>(b.Size()), FrameType::kEventBuffer, r->channel);
      iov_[iov_count_++] = asio::buffer(s.header);
      iov_[iov_count_++] = asio::buffer(b.Data(), b.Size());
      bytes += kFrameHeaderSize + b.Size();
      payload_bytes += static_cast<int64_t>(b.Size());
      ++events_sent;
      s.buffer = std::move(b);
      if (end) {
        // Nothing follows the end of a partition: the channel is done.
        RetireReader(r->channel);
        keep = false;
        r = nullptr;
        break;
      }
    }
    if (keep && r != nullptr) MakeReady(r);
  }
  if (iov_count_ == 0) {
    writing_ = false;
    retired_.clear();
    return;
  }
  NetworkCounters& c = core_.Counters();
  Count(c.data_buffers_sent, data_sent);
  Count(c.event_buffers_sent, events_sent);
  Count(c.bytes_sent, payload_bytes);
  asio::async_write(socket_, ConstBufferRange{iov_.data(), iov_.data() + iov_count_},
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) { self->OnWritten(ec); });
}

void ServerConnection::OnWritten(const boost::system::error_code& error) {
  // The segments go back to the producers' pools: a producer waiting for
  // one continues.
  for (int i = 0; i < slot_count_; ++i) slots_[static_cast<size_t>(i)].buffer.Recycle();
  slot_count_ = 0;
  iov_count_ = 0;
  control_writing_.clear();
  writing_ = false;
  retired_.clear();
  if (error) {
    Close("sending failed: " + error.message(), false);
    return;
  }
  Pump();
}

void ServerConnection::ReleaseJob(const std::string& job_id) {
  if (closed_) return;
  std::vector<uint32_t> channels;
  for (auto& [channel, reader] : readers_) {
    if (reader->id.job_id == job_id) channels.push_back(channel);
  }
  for (uint32_t channel : channels) {
    Reader& r = *readers_.at(channel);
    SendError(channel, StatusCode::kCancelled, Describe(r.id, r.subpartition) + " was released");
    RetireReader(channel);
  }
  channels.clear();
  for (auto& [channel, pending] : pending_) {
    if (pending->request.job_id == job_id) channels.push_back(channel);
  }
  for (uint32_t channel : channels) {
    const PartitionRequest& r = pending_.at(channel)->request;
    SendError(channel, StatusCode::kNotFound,
              fmt::format("result partition {} at {} was released before it was registered",
                          PartitionId{r.job_id, r.edge, r.producer_subtask}.Key(), core_.LocalAddress()));
    pending_.erase(channel);
    Count(core_.Counters().pending_requests, -1);
  }
  Pump();
}

void ServerConnection::Close(const std::string& reason, bool violation) {
  if (closed_) return;
  closed_ = true;
  if (violation) {
    Count(core_.Counters().protocol_errors, 1);
    spdlog::error("network {}: closing the connection from {}: {}", core_.LocalAddress(), peer_, reason);
  } else {
    spdlog::debug("network {}: connection from {} closed: {}", core_.LocalAddress(), peer_, reason);
  }
  wakeup_->Close();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  Count(core_.Counters().pending_requests, -static_cast<int64_t>(pending_.size()));
  pending_.clear();  // destroying a timer cancels its wait
  std::vector<uint32_t> channels;
  for (auto& [channel, reader] : readers_) channels.push_back(channel);
  for (uint32_t channel : channels) RetireReader(channel);
  ready_head_ = ready_tail_ = nullptr;
  Count(core_.Counters().open_server_connections, -1);
  core_.ForgetServerConnection(this);
}

}  // namespace freshet::internal::net
