#include "runtime/net/client_connection.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace freshet::internal::net {

void ClientChannel::SetOutcome(Status status) {
  {
    std::lock_guard lock(mu_);
    if (outcome_.has_value()) return;
    outcome_ = std::move(status);
  }
  cv_.notify_all();
}

bool ClientChannel::WaitOutcome(std::chrono::steady_clock::time_point deadline, Status& out) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_until(lock, deadline, [this] { return outcome_.has_value(); })) return false;
  out = *outcome_;
  return true;
}

std::string ClientChannel::Describe() const {
  return fmt::format("result partition {} subpartition {} at {}", partition.Key(), subpartition, address);
}

ClientConnection::ClientConnection(NetworkCore& core, asio::io_context& io, std::string address)
    : core_(core), io_(io), address_(std::move(address)), socket_(io), wakeup_(std::make_shared<Wakeup>(io)) {}

void ClientConnection::Connect(std::vector<tcp::endpoint> endpoints, std::chrono::milliseconds timeout) {
  wakeup_->Attach(weak_from_this());
  if (closed_) return;
  connect_timer_ = std::make_unique<asio::steady_timer>(io_);
  connect_timer_->expires_after(timeout);
  connect_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->connected_ || self->closed_) return;
    self->connect_timed_out_ = true;
    boost::system::error_code ignored;
    self->socket_.close(ignored);  // fails the connect in progress
  });
  asio::async_connect(socket_, endpoints,
                      [self = shared_from_this(), timeout](const boost::system::error_code& ec, const tcp::endpoint&) {
                        self->connect_timer_->cancel();
                        if (self->closed_) return;
                        if (ec) {
                          std::string reason = self->connect_timed_out_
                                                   ? fmt::format("timed out after {} ms", timeout.count())
                                                   : ec.message();
                          self->Close(reason, false);
                          return;
                        }
                        self->connected_ = true;
                        boost::system::error_code ignored;
                        self->socket_.set_option(tcp::no_delay(true), ignored);
                        Count(self->core_.Counters().connections_opened, 1);
                        Count(self->core_.Counters().open_client_connections, 1);
                        self->FinishConnect(Status::Ok());
                        self->ReadHeader();
                        self->Flush();
                      });
}

void ClientConnection::FinishConnect(Status status) {
  {
    std::lock_guard lock(connect_mu_);
    if (connect_outcome_.has_value()) return;
    connect_outcome_ = std::move(status);
  }
  connect_cv_.notify_all();
}

Status ClientConnection::WaitConnected(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(connect_mu_);
  if (!connect_cv_.wait_until(lock, deadline, [this] { return connect_outcome_.has_value(); })) {
    return Status::Unavailable(fmt::format("connecting to {}: no outcome in time", address_));
  }
  return *connect_outcome_;
}

void ClientConnection::Open(std::shared_ptr<ClientChannel> channel) {
  if (closed_) {
    channel->SetOutcome(Status::Unavailable(
        fmt::format("requesting {}: the connection to {} is closed", channel->Describe(), address_)));
    return;
  }
  uint32_t id = next_channel_++;
  channel->id = id;
  channel->mirror->SetChannel(id);
  PartitionRequest request;
  request.wait_ms = static_cast<uint32_t>(
      std::clamp<int64_t>(core_.Options().partition_request_timeout_ms, 0, kMaxRequestWaitMs));
  request.initial_credit = static_cast<uint32_t>(channel->credits);
  request.segment_size = channel->segment_size;
  request.edge = channel->partition.edge;
  request.producer_subtask = channel->partition.producer_subtask;
  request.subpartition = channel->subpartition;
  request.job_id = channel->partition.job_id;
  AppendPartitionRequest(out_pending_, id, request);
  Count(core_.Counters().credit_announced, channel->credits);
  channel->sender_credit = channel->credits;
  channels_.emplace(id, std::move(channel));
  Flush();
}

void ClientConnection::Abandon(const std::shared_ptr<ClientChannel>& channel) {
  auto it = channels_.find(channel->id);
  if (it == channels_.end() || it->second != channel) return;
  CloseChannel(channel->id, true);
}

void ClientConnection::ReleaseJob(const std::string& job_id) {
  std::vector<uint32_t> ids;
  for (auto& [id, channel] : channels_) {
    if (channel->partition.job_id == job_id) ids.push_back(id);
  }
  for (uint32_t id : ids) {
    channels_.at(id)->SetOutcome(Status::Cancelled("job " + job_id + " was released"));
    CloseChannel(id, true);
  }
}

void ClientConnection::CloseChannel(uint32_t id, bool notify_server) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  it->second->active = false;
  channels_.erase(it);
  if (notify_server && !closed_) {
    AppendFrame(out_pending_, FrameType::kCloseChannel, id, {});
    Flush();
  }
}

std::shared_ptr<ClientChannel> ClientConnection::FindChannel(uint32_t id) {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second;
}

void ClientConnection::DeliverError(ClientChannel& channel, const std::string& message) {
  std::string bytes(1, static_cast<char>(EventKind::kPartitionError));
  bytes += message;
  auto* data = new uint8_t[bytes.size()];
  std::memcpy(data, bytes.data(), bytes.size());
  channel.mirror->Partition().Add(0, Buffer(data, bytes.size(), BufferKind::kEvent, nullptr));
}

template <class Handler>
void ClientConnection::ReadPayload(uint8_t* target, uint32_t length, Handler handler) {
  std::array<asio::mutable_buffer, 2> buffers = {asio::buffer(target, length), asio::buffer(header_in_)};
  asio::async_read(
      socket_, buffers,
      [length](const boost::system::error_code& ec, size_t n) -> size_t {
        // Done once the payload is complete; until then each receive may
        // also take the next header.
        if (ec || n >= length) return 0;
        return length - n + kFrameHeaderSize;
      },
      [this, handler = std::move(handler), length](const boost::system::error_code& ec, size_t n) mutable {
        header_have_ = n > length ? n - length : 0;
        handler(n >= length ? boost::system::error_code() : ec);
      });
}

void ClientConnection::ReadHeader() {
  if (header_have_ == kFrameHeaderSize) {
    header_have_ = 0;
    OnHeader();
    return;
  }
  size_t have = header_have_;
  header_have_ = 0;
  asio::async_read(socket_, asio::buffer(header_in_ + have, kFrameHeaderSize - have),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                     if (ec) {
                       self->Close(ec == asio::error::eof ? "the producer's side closed the connection" : ec.message(),
                                   false);
                       return;
                     }
                     self->OnHeader();
                   });
}

bool ClientConnection::SkipUnknown(const char* what) {
  if (frame_.channel == 0 || frame_.channel >= next_channel_) {
    Violation(fmt::format("{} for unknown channel {}", what, frame_.channel));
    return false;
  }
  return true;
}

void ClientConnection::OnHeader() {
  if (closed_) return;
  frame_ = DecodeHeader(header_in_);
  const uint32_t length = frame_.length;
  switch (frame_.type) {
    case FrameType::kRequestOk: {
      if (length != 0) return Violation(fmt::format("REQUEST_OK of {} bytes", length));
      std::shared_ptr<ClientChannel> channel = FindChannel(frame_.channel);
      if (channel == nullptr) {
        if (SkipUnknown("REQUEST_OK")) ReadHeader();
        return;
      }
      if (channel->active) return Violation(fmt::format("second REQUEST_OK for channel {}", frame_.channel));
      channel->active = true;
      channel->SetOutcome(Status::Ok());
      ReadHeader();
      return;
    }
    case FrameType::kError: {
      if (length == 0 || length > kMaxControlPayload) return Violation(fmt::format("ERROR frame of {} bytes", length));
      payload_in_.resize(length);
      asio::async_read(socket_, asio::buffer(payload_in_),
                       [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                         if (ec) return self->Close("connection lost inside a frame: " + ec.message(), false);
                         self->OnError(self->FindChannel(self->frame_.channel));
                       });
      return;
    }
    case FrameType::kDataBuffer: {
      if (length == 0 || length > kMaxSegmentSize) return Violation(fmt::format("data buffer of {} bytes", length));
      std::shared_ptr<ClientChannel> channel = FindChannel(frame_.channel);
      if (channel == nullptr || !channel->active) {
        if (channel != nullptr) return Violation(fmt::format("data for channel {} before REQUEST_OK", frame_.channel));
        if (!SkipUnknown("data buffer")) return;
        discard_left_ = length;
        Discard();
        return;
      }
      if (length > channel->segment_size) {
        return Violation(fmt::format("data buffer of {} bytes on channel {} exceeds its segment size {}", length,
                                     frame_.channel, channel->segment_size));
      }
      BufferPool& pool = channel->mirror->Partition().Pool();
      uint8_t* segment = pool.TryRequest();
      if (segment == nullptr) {
        return Violation(fmt::format("data buffer on channel {} without credit (no free receive segment)",
                                     frame_.channel));
      }
      // Credit guarantees the segment: the bytes go straight into it.
      ReadPayload(segment, length,
                  [self = shared_from_this(), channel = std::move(channel), segment,
                   length](const boost::system::error_code& ec) {
                    Buffer buffer(segment, length, BufferKind::kData, &channel->mirror->Partition().Pool());
                    if (ec) return self->Close("connection lost inside a buffer: " + ec.message(), false);
                    Count(self->core_.Counters().data_buffers_received, 1);
                    if (channel->active) {
                      channel->mirror->Partition().Add(0, std::move(buffer));
                      --channel->sender_credit;
                      self->AnnounceCredit(*channel);
                    }
                    self->ReadHeader();
                  });
      return;
    }
    case FrameType::kEventBuffer: {
      if (length == 0 || length > kMaxEventSize) return Violation(fmt::format("event buffer of {} bytes", length));
      std::shared_ptr<ClientChannel> channel = FindChannel(frame_.channel);
      if (channel == nullptr || !channel->active) {
        if (channel != nullptr) return Violation(fmt::format("event for channel {} before REQUEST_OK", frame_.channel));
        if (!SkipUnknown("event buffer")) return;
        discard_left_ = length;
        Discard();
        return;
      }
      event_in_.reset(new uint8_t[length]);
      ReadPayload(event_in_.get(), length,
                  [self = shared_from_this(), channel = std::move(channel), length](const boost::system::error_code& ec) {
                    Buffer buffer(self->event_in_.release(), length, BufferKind::kEvent, nullptr);
                    if (ec) return self->Close("connection lost inside an event: " + ec.message(), false);
                    Count(self->core_.Counters().event_buffers_received, 1);
                    if (channel->active) {
                      bool end = buffer.Data()[0] == static_cast<uint8_t>(EventKind::kEndOfPartition);
                      channel->mirror->Partition().Add(0, std::move(buffer));
                      // The server forgot the channel after its last event.
                      if (end) self->CloseChannel(channel->id, false);
                    }
                    self->ReadHeader();
                  });
      return;
    }
    default:
      return Violation(fmt::format("unknown frame type {}", static_cast<int>(frame_.type)));
  }
}

void ClientConnection::OnError(const std::shared_ptr<ClientChannel>& channel) {
  if (closed_) return;
  auto code = static_cast<StatusCode>(payload_in_[0]);
  if (payload_in_[0] > static_cast<uint8_t>(StatusCode::kInternal) || code == StatusCode::kOk) {
    code = StatusCode::kUnavailable;
  }
  std::string message(reinterpret_cast<const char*>(payload_in_.data()) + 1, payload_in_.size() - 1);
  if (channel == nullptr) {
    if (SkipUnknown("ERROR")) ReadHeader();
    return;
  }
  if (channel->active) {
    DeliverError(*channel, fmt::format("reading {} failed: {}", channel->Describe(), message));
  } else {
    channel->SetOutcome(Status(code, fmt::format("requesting {} failed: {}", channel->Describe(), message)));
  }
  CloseChannel(channel->id, false);
  ReadHeader();
}

void ClientConnection::Discard() {
  if (discard_left_ == 0) {
    ReadHeader();
    return;
  }
  if (discard_.empty()) discard_.resize(64 * 1024);
  size_t n = std::min(discard_left_, discard_.size());
  asio::async_read(socket_, asio::buffer(discard_.data(), n),
                   [self = shared_from_this(), n](const boost::system::error_code& ec, size_t) {
                     if (ec) return self->Close("connection lost inside a frame: " + ec.message(), false);
                     self->discard_left_ -= n;
                     self->Discard();
                   });
}

void ClientConnection::Violation(const std::string& reason) { Close(reason, true); }

void ClientConnection::OnWakeup() {
  wakeup_->Take(woken_);
  if (closed_) return;
  for (uint32_t id : woken_) {
    auto it = channels_.find(id);
    if (it != channels_.end() && it->second->active) AnnounceCredit(*it->second);
  }
  Flush();
}

void ClientConnection::AnnounceCredit(ClientChannel& channel) {
  int returned = channel.mirror->PeekReturned();
  if (returned <= 0) return;
  // While the sender holds more than half its window, collect a quarter of
  // the window before announcing. This cannot stall it: every buffer that
  // arrives comes back here, and by the time the sender's credit runs low
  // the returns are announced whatever their number. A recycle that finds
  // returns pending does not wake this thread again, so only arriving
  // buffers bring it back.
  int64_t window = channel.credits;
  if (channel.sender_credit > window / 2 && returned < std::max<int64_t>(1, window / 4)) return;
  returned = channel.mirror->TakeReturned();
  if (returned <= 0) return;
  AppendAddCredit(out_pending_, channel.id, static_cast<uint32_t>(returned));
  channel.sender_credit += returned;
  Count(core_.Counters().credit_announced, returned);
  Flush();
}

void ClientConnection::Flush() {
  if (writing_ || closed_ || !connected_ || out_pending_.empty()) return;
  writing_ = true;
  out_writing_.swap(out_pending_);
  asio::async_write(socket_, asio::buffer(out_writing_),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      self->out_writing_.clear();
                      self->writing_ = false;
                      if (ec) return self->Close("sending failed: " + ec.message(), false);
                      self->Flush();
                    });
}

void ClientConnection::Close(const std::string& reason, bool violation) {
  if (closed_) return;
  closed_ = true;
  broken_.store(true, std::memory_order_release);
  if (violation) {
    Count(core_.Counters().protocol_errors, 1);
    spdlog::error("network {}: closing the connection to {}: {}", core_.LocalAddress(), address_, reason);
  } else {
    spdlog::debug("network {}: connection to {} closed: {}", core_.LocalAddress(), address_, reason);
  }
  wakeup_->Close();
  if (connect_timer_ != nullptr) connect_timer_->cancel();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  FinishConnect(Status::Unavailable(fmt::format("cannot connect to {}: {}", address_, reason)));
  for (auto& [id, channel] : channels_) {
    if (channel->active) {
      channel->active = false;
      DeliverError(*channel, fmt::format("connection to the producer at {} lost while reading result partition {} "
                                         "subpartition {}: {}",
                                         address_, channel->partition.Key(), channel->subpartition, reason));
    } else {
      channel->SetOutcome(Status::Unavailable(
          fmt::format("requesting {} failed: connection lost: {}", channel->Describe(), reason)));
    }
  }
  channels_.clear();
  if (connected_) Count(core_.Counters().open_client_connections, -1);
  core_.ForgetClientConnection(this);
}

}  // namespace freshet::internal::net
