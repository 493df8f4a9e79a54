#include "runtime/net/network_core.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <latch>

#include "runtime/net/client_connection.h"
#include "runtime/net/server_connection.h"

namespace freshet::internal::net {

namespace {
std::string JoinHostPort(const asio::ip::address& address, uint16_t port) {
  if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), port);
  return fmt::format("{}:{}", address.to_string(), port);
}
}  // namespace

Status ParseAddress(const std::string& address, std::string& host, uint16_t& port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::InvalidArgument("network address '" + address + "' is not of the form host:port");
  }
  host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string port_text = address.substr(colon + 1);
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::InvalidArgument("network address '" + address + "' has no valid port");
  }
  int value = std::stoi(port_text);
  if (value < 1 || value > 65535) {
    return Status::InvalidArgument("network address '" + address + "' has port " + port_text + " outside [1, 65535]");
  }
  port = static_cast<uint16_t>(value);
  return Status::Ok();
}

NetworkCore::NetworkCore(ShuffleEnvironment& shuffle, NetworkOptions options)
    : shuffle_(shuffle), options_(std::move(options)) {}

NetworkCore::~NetworkCore() {
  Stop();
  // Asio objects go before the io_contexts they belong to, and those while
  // the rest of the core (which their leftover handlers may reach) lives.
  accept_retry_.reset();
  acceptor_.reset();
  work_.clear();
  io_.clear();
}

Status NetworkCore::Start() {
  if (options_.io_threads < 1 || options_.io_threads > 256) {
    return Status::InvalidArgument(fmt::format("network io threads must be in [1, 256], not {}", options_.io_threads));
  }
  if (options_.partition_request_timeout_ms < 0 || options_.partition_request_timeout_ms > kMaxRequestWaitMs) {
    return Status::InvalidArgument(fmt::format("partition request timeout must be in [0, {}] ms, not {}",
                                               kMaxRequestWaitMs, options_.partition_request_timeout_ms));
  }
  if (options_.connect_timeout_ms <= 0) {
    return Status::InvalidArgument(fmt::format("connect timeout must be positive, not {} ms", options_.connect_timeout_ms));
  }
  boost::system::error_code ec;
  asio::ip::address bind_address = asio::ip::make_address(options_.bind_host, ec);
  if (ec) return Status::InvalidArgument("network bind host '" + options_.bind_host + "' is not an IP address");

  std::lock_guard lock(mu_);
  if (started_ || stopped_) return Status::FailedPrecondition("the network environment was already started");
  // Leaves nothing behind when binding fails, so that Start may be retried.
  auto fail = [this](Status status) {
    accept_retry_.reset();
    acceptor_.reset();
    work_.clear();
    io_.clear();
    return status;
  };
  for (int i = 0; i < options_.io_threads; ++i) {
    io_.push_back(std::make_unique<asio::io_context>(1));
    work_.push_back(asio::make_work_guard(*io_.back()));
  }
  acceptor_ = std::make_unique<tcp::acceptor>(*io_[0]);
  accept_retry_ = std::make_unique<asio::steady_timer>(*io_[0]);
  tcp::endpoint endpoint(bind_address, options_.port);
  std::string where = JoinHostPort(bind_address, options_.port);
  if (acceptor_->open(endpoint.protocol(), ec)) return fail(Status::IoError("cannot open a socket for " + where + ": " + ec.message()));
  if (acceptor_->set_option(tcp::acceptor::reuse_address(true), ec)) {
    return fail(Status::IoError("cannot set SO_REUSEADDR on " + where + ": " + ec.message()));
  }
  if (acceptor_->bind(endpoint, ec)) return fail(Status::IoError("cannot bind " + where + ": " + ec.message()));
  if (acceptor_->listen(asio::socket_base::max_listen_connections, ec)) {
    return fail(Status::IoError("cannot listen on " + where + ": " + ec.message()));
  }
  address_ = JoinHostPort(bind_address, acceptor_->local_endpoint().port());
  // The io threads log; create spdlog's registry before them, so that they
  // never race to initialize it.
  spdlog::default_logger_raw();
  for (auto& io : io_) {
    threads_.emplace_back([io = io.get(), this] {
      while (true) {
        try {
          io->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("network {}: io thread caught: {}", address_, e.what());
        }
      }
    });
  }
  asio::post(*io_[0], [this] { Accept(); });
  started_ = true;
  return Status::Ok();
}

std::string NetworkCore::Address() const {
  std::lock_guard lock(mu_);
  return address_;
}

asio::io_context& NetworkCore::NextIoContext() {
  // Called with mu_ held.
  asio::io_context& io = *io_[next_io_ % io_.size()];
  ++next_io_;
  return io;
}

void NetworkCore::Accept() {
  asio::io_context* io;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    io = &NextIoContext();
  }
  acceptor_->async_accept(*io, [this, io](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
      // For example out of file descriptors: try again a little later
      // rather than spinning.
      spdlog::warn("network {}: accepting a connection failed: {}", address_, ec.message());
      accept_retry_->expires_after(std::chrono::milliseconds(50));
      accept_retry_->async_wait([this](const boost::system::error_code& e) {
        if (!e) Accept();
      });
      return;
    }
    auto connection = std::make_shared<ServerConnection>(*this, *io, std::move(socket));
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      servers_.emplace(connection.get(), connection);
      Count(counters_.connections_accepted, 1);
      asio::post(*io, [connection] { connection->Start(); });
    }
    Accept();
  });
}

void NetworkCore::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!started_) return;
    asio::post(*io_[0], [this] {
      boost::system::error_code ignored;
      acceptor_->close(ignored);
      accept_retry_->cancel();
    });
    for (auto& [raw, connection] : servers_) {
      asio::post(connection->Io(), [connection] { connection->Close("the network environment stopped", false); });
    }
    for (auto& [address, connection] : clients_) {
      asio::post(connection->Io(),
                 [connection] { connection->Close("the consumer's network environment stopped", false); });
    }
    threads.swap(threads_);
  }
  // Without work guards the io threads return once every closed socket's
  // handlers have run.
  work_.clear();
  for (std::thread& t : threads) t.join();
  std::lock_guard lock(mu_);
  servers_.clear();
  clients_.clear();
}

Result<std::shared_ptr<ClientConnection>> NetworkCore::Connect(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  FRESHET_RETURN_IF_ERROR(ParseAddress(address, host, port));
  std::shared_ptr<ClientConnection> connection;
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopped_) return Status::Unavailable("the network environment is not running");
    auto it = clients_.find(address);
    if (it != clients_.end() && !it->second->IsBroken()) connection = it->second;
  }
  if (connection == nullptr) {
    // Resolve outside the lock: a name lookup may take a while.
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code ec;
    asio::ip::address ip = asio::ip::make_address(host, ec);
    if (!ec) {
      endpoints.emplace_back(ip, port);
    } else {
      asio::io_context resolver_io;
      tcp::resolver resolver(resolver_io);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec) return Status::Unavailable("cannot resolve '" + host + "' of network address " + address + ": " + ec.message());
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    std::lock_guard lock(mu_);
    if (stopped_) return Status::Unavailable("the network environment is not running");
    auto it = clients_.find(address);
    if (it != clients_.end() && !it->second->IsBroken()) {
      connection = it->second;  // another thread connected meanwhile
    } else {
      connection = std::make_shared<ClientConnection>(*this, NextIoContext(), address);
      clients_[address] = connection;
      asio::post(connection->Io(), [connection, endpoints = std::move(endpoints),
                                    timeout = std::chrono::milliseconds(options_.connect_timeout_ms)]() mutable {
        connection->Connect(std::move(endpoints), timeout);
      });
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms) +
                  std::chrono::seconds(5);
  Status status = connection->WaitConnected(deadline);
  if (!status.IsOk()) {
    ForgetClientConnection(connection.get());
    std::lock_guard lock(mu_);
    if (!stopped_) asio::post(connection->Io(), [connection, status] { connection->Close(status.Message(), false); });
    return status;
  }
  return connection;
}

Result<std::shared_ptr<ResultPartition>> NetworkCore::RequestSubpartition(const std::string& address,
                                                                          const PartitionId& id, int subpartition,
                                                                          int credits, size_t segment_size) {
  std::string what = fmt::format("result partition {} subpartition {} at {}", id.Key(), subpartition, address);
  if (credits < 1 || static_cast<uint32_t>(credits) > kMaxInitialCredit) {
    return Status::InvalidArgument(
        fmt::format("requesting {}: credits must be in [1, {}], not {}", what, kMaxInitialCredit, credits));
  }
  if (segment_size < kMinSegmentSize || segment_size > kMaxSegmentSize) {
    return Status::InvalidArgument(fmt::format("requesting {}: segment size must be in [{}, {}], not {}", what,
                                               kMinSegmentSize, kMaxSegmentSize, segment_size));
  }
  if (subpartition < 0 || id.edge < 0 || id.producer_subtask < 0 || id.job_id.empty() ||
      id.job_id.size() > kMaxJobIdLength) {
    return Status::InvalidArgument(fmt::format("requesting {}: not a valid partition id and subpartition", what));
  }
  Result<std::shared_ptr<ClientConnection>> connected = Connect(address);
  if (!connected.IsOk()) return connected.GetStatus().WithContext("requesting " + what);
  std::shared_ptr<ClientConnection> connection = std::move(connected).Value();

  auto channel = std::make_shared<ClientChannel>();
  channel->partition = id;
  channel->subpartition = subpartition;
  channel->credits = credits;
  channel->segment_size = static_cast<uint32_t>(segment_size);
  channel->address = address;
  channel->mirror = std::make_shared<Mirror>(id, segment_size, credits, connection->GetWakeup());
  {
    // Posted under the lock: Stop() posts its close after this, never
    // leaving the request unanswered.
    std::lock_guard lock(mu_);
    if (stopped_) return Status::Unavailable("requesting " + what + ": the network environment is not running");
    asio::post(connection->Io(), [connection, channel] { connection->Open(channel); });
  }
  // The producer's side answers within the request timeout; the margin
  // covers a slow peer.
  auto wait = std::chrono::milliseconds(options_.partition_request_timeout_ms) +
              std::chrono::milliseconds(std::max<int64_t>(options_.connect_timeout_ms, 2'000));
  Status outcome;
  if (!channel->WaitOutcome(std::chrono::steady_clock::now() + wait, outcome)) {
    asio::post(connection->Io(), [connection, channel] { connection->Abandon(channel); });
    return Status::Unavailable(fmt::format("requesting {}: no answer within {} ms", what, wait.count()));
  }
  if (!outcome.IsOk()) return outcome;
  std::shared_ptr<Mirror> mirror = channel->mirror;
  ResultPartition* partition = &mirror->Partition();
  return std::shared_ptr<ResultPartition>(std::move(mirror), partition);
}

void NetworkCore::ReleaseJob(const std::string& job_id) {
  std::shared_ptr<std::latch> done;
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopped_) return;
    done = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(servers_.size() + clients_.size()));
    for (auto& [raw, connection] : servers_) {
      asio::post(connection->Io(), [connection, job_id, done] {
        connection->ReleaseJob(job_id);
        done->count_down();
      });
    }
    for (auto& [address, connection] : clients_) {
      asio::post(connection->Io(), [connection, job_id, done] {
        connection->ReleaseJob(job_id);
        done->count_down();
      });
    }
  }
  done->wait();
}

bool NetworkCore::ClaimSubpartition(const std::string& key) {
  std::lock_guard lock(mu_);
  return claimed_.insert(key).second;
}

void NetworkCore::ReleaseSubpartition(const std::string& key) {
  std::lock_guard lock(mu_);
  claimed_.erase(key);
}

void NetworkCore::ForgetServerConnection(ServerConnection* connection) {
  std::lock_guard lock(mu_);
  servers_.erase(connection);
}

void NetworkCore::ForgetClientConnection(ClientConnection* connection) {
  std::lock_guard lock(mu_);
  auto it = clients_.find(connection->Address());
  if (it != clients_.end() && it->second.get() == connection) clients_.erase(it);
}

NetworkStats NetworkCore::Stats() const {
  auto get = [](const std::atomic<int64_t>& c) { return c.load(std::memory_order_relaxed); };
  const NetworkCounters& c = counters_;
  NetworkStats s;
  s.connections_opened = get(c.connections_opened);
  s.connections_accepted = get(c.connections_accepted);
  s.open_client_connections = get(c.open_client_connections);
  s.open_server_connections = get(c.open_server_connections);
  s.data_buffers_sent = get(c.data_buffers_sent);
  s.event_buffers_sent = get(c.event_buffers_sent);
  s.bytes_sent = get(c.bytes_sent);
  s.credit_granted = get(c.credit_granted);
  s.data_buffers_received = get(c.data_buffers_received);
  s.event_buffers_received = get(c.event_buffers_received);
  s.credit_announced = get(c.credit_announced);
  s.protocol_errors = get(c.protocol_errors);
  s.pending_requests = get(c.pending_requests);
  s.active_readers = get(c.active_readers);
  return s;
}

}  // namespace freshet::internal::net
