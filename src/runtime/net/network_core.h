#pragma once
// Internals of the TCP data plane shared by the environment and its
// connections. Threading: each connection lives on one io thread (one
// io_context per thread), so a connection's state needs no lock; other
// threads reach a connection only by posting to its io_context or through
// its Wakeup.

// GCC cannot instrument the memory fences around Asio's completion handlers
// for ThreadSanitizer (-Wtsan). The scheduler's locks already order every
// handler after its initiation, so a TSan build leaves the fences out; other
// builds keep them. Every file of this folder includes Asio through here.
#if defined(__SANITIZE_THREAD__) && !defined(BOOST_ASIO_DISABLE_FENCED_BLOCK)
#define BOOST_ASIO_DISABLE_FENCED_BLOCK
#endif

#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/net/network_environment.h"
#include "runtime/net/wire_protocol.h"

namespace freshet::internal::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// Memory for the single outstanding wake-up handler of a connection, so
/// that a producer or consumer thread waking the connection allocates
/// nothing (posting from a thread outside the io_context otherwise
/// allocates the handler every time).
class HandlerSlot {
 public:
  void* Allocate(size_t n) {
    if (n <= sizeof(storage_) && !in_use_.exchange(true, std::memory_order_acquire)) return storage_;
    return ::operator new(n);
  }
  void Deallocate(void* p) {
    if (p == storage_) {
      in_use_.store(false, std::memory_order_release);
    } else {
      ::operator delete(p);
    }
  }

 private:
  alignas(std::max_align_t) unsigned char storage_[256];
  std::atomic<bool> in_use_{false};
};

template <class T>
class SlotAllocator {
 public:
  using value_type = T;
  explicit SlotAllocator(HandlerSlot* slot) : slot_(slot) {}
  template <class U>
  SlotAllocator(const SlotAllocator<U>& other) : slot_(other.slot_) {}  // NOLINT: rebinding
  T* allocate(size_t n) { return static_cast<T*>(slot_->Allocate(sizeof(T) * n)); }
  void deallocate(T* p, size_t) { slot_->Deallocate(p); }
  bool operator==(const SlotAllocator& other) const { return slot_ == other.slot_; }
  bool operator!=(const SlotAllocator& other) const { return slot_ != other.slot_; }

 private:
  template <class U>
  friend class SlotAllocator;
  HandlerSlot* slot_;
};

/// What a Wakeup wakes: a connection, on its io thread.
class WakeupTarget {
 public:
  virtual ~WakeupTarget() = default;
  virtual void OnWakeup() = 0;
};

/// Collects channel ids that need the io thread's attention (data became
/// available, receive segments were freed) from any thread and posts one
/// handler to the connection's io_context while none is pending. Outlives
/// its connection when mirrors still hold it; after Close() it does nothing.
class Wakeup {
 public:
  explicit Wakeup(asio::io_context& io) : io_(io) {}
  /// Io thread, once, before any Notify can reach the target.
  void Attach(std::weak_ptr<WakeupTarget> target) {
    std::lock_guard lock(mu_);
    target_ = std::move(target);
  }
  /// Any thread (possibly holding a subpartition's lock).
  void Notify(uint32_t channel) {
    std::lock_guard lock(mu_);
    if (closed_) return;
    ready_.push_back(channel);
    if (scheduled_) return;
    std::shared_ptr<WakeupTarget> target = target_.lock();
    if (target == nullptr) return;
    scheduled_ = true;
    asio::post(io_, asio::bind_allocator(SlotAllocator<int>(&slot_), [target = std::move(target)] { target->OnWakeup(); }));
  }
  /// Io thread: takes the collected ids (swapped into `out`, whose storage
  /// is reused) and re-arms the wake-up.
  void Take(std::vector<uint32_t>& out) {
    out.clear();
    std::lock_guard lock(mu_);
    out.swap(ready_);
    scheduled_ = false;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    ready_.clear();
  }

 private:
  asio::io_context& io_;
  std::mutex mu_;
  std::weak_ptr<WakeupTarget> target_;
  std::vector<uint32_t> ready_;
  bool scheduled_ = false;
  bool closed_ = false;
  HandlerSlot slot_;
};

/// Counters behind NetworkStats.
struct NetworkCounters {
  std::atomic<int64_t> connections_opened{0};
  std::atomic<int64_t> connections_accepted{0};
  std::atomic<int64_t> open_client_connections{0};
  std::atomic<int64_t> open_server_connections{0};
  std::atomic<int64_t> data_buffers_sent{0};
  std::atomic<int64_t> event_buffers_sent{0};
  std::atomic<int64_t> bytes_sent{0};
  std::atomic<int64_t> credit_granted{0};
  std::atomic<int64_t> data_buffers_received{0};
  std::atomic<int64_t> event_buffers_received{0};
  std::atomic<int64_t> credit_announced{0};
  std::atomic<int64_t> protocol_errors{0};
  std::atomic<int64_t> pending_requests{0};
  std::atomic<int64_t> active_readers{0};
};

inline void Count(std::atomic<int64_t>& counter, int64_t n) { counter.fetch_add(n, std::memory_order_relaxed); }

/// A view over a run of asio buffers, for gathered writes without copying
/// the buffer list.
struct ConstBufferRange {
  const asio::const_buffer* first;
  const asio::const_buffer* last;
  const asio::const_buffer* begin() const { return first; }
  const asio::const_buffer* end() const { return last; }
};

class ServerConnection;
class ClientConnection;
struct ClientChannel;

/// "host:port" split; the host may be a bracketed IPv6 address.
Status ParseAddress(const std::string& address, std::string& host, uint16_t& port);

/// The environment's state: io threads, acceptor, connections.
class NetworkCore {
 public:
  NetworkCore(ShuffleEnvironment& shuffle, NetworkOptions options);
  ~NetworkCore();
  NetworkCore(const NetworkCore&) = delete;
  NetworkCore& operator=(const NetworkCore&) = delete;

  Status Start();
  std::string Address() const;
  void Stop();
  Result<std::shared_ptr<ResultPartition>> RequestSubpartition(const std::string& address, const PartitionId& id,
                                                               int subpartition, int credits, size_t segment_size);
  void ReleaseJob(const std::string& job_id);
  NetworkStats Stats() const;

  // For connections (any thread).
  ShuffleEnvironment& Shuffle() { return shuffle_; }
  const NetworkOptions& Options() const { return options_; }
  NetworkCounters& Counters() { return counters_; }
  /// The bound address, fixed after Start().
  const std::string& LocalAddress() const { return address_; }
  /// Reserves a subpartition for one server-side reader; false when another
  /// reader of this process already sends it.
  bool ClaimSubpartition(const std::string& key);
  void ReleaseSubpartition(const std::string& key);
  void ForgetServerConnection(ServerConnection* connection);
  void ForgetClientConnection(ClientConnection* connection);

 private:
  void Accept();
  asio::io_context& NextIoContext();
  Result<std::shared_ptr<ClientConnection>> Connect(const std::string& address);

  ShuffleEnvironment& shuffle_;
  const NetworkOptions options_;
  NetworkCounters counters_;
  std::string address_;

  std::vector<std::unique_ptr<asio::io_context>> io_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> accept_retry_;

  mutable std::mutex mu_;
  bool started_ = false;
  bool stopped_ = false;
  size_t next_io_ = 0;
  std::map<std::string, std::shared_ptr<ClientConnection>> clients_;
  std::map<ServerConnection*, std::shared_ptr<ServerConnection>> servers_;
  std::set<std::string> claimed_;
};

}  // namespace freshet::internal::net
