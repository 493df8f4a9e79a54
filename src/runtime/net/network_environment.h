#pragma once
// The TCP data plane: one NetworkEnvironment per TaskManager process serves
// the subpartitions produced here to consumers in other processes, and
// fetches remote subpartitions for consumers here.
//
// Wire protocol (all integers little-endian). Every frame is
//
//   u32 payload_length | u8 type | u32 channel | payload
//
// The client (consumer side) picks the channel id when it requests a
// subpartition; all channels to one remote process share one TCP
// connection. Frame types and payloads:
//
//   client -> server
//     1  PARTITION_REQUEST  u16 version (1) | u32 wait_ms | u32 initial_credit |
//                           u32 segment_size | i32 edge | i32 producer_subtask |
//                           i32 subpartition | u16 job_id_length | job_id bytes
//                           The server retries a partition that is not
//                           registered yet for wait_ms, then answers ERROR.
//     2  ADD_CREDIT         u32 n > 0: n more receive segments are free.
//     3  CLOSE_CHANNEL      empty: the consumer no longer reads the channel.
//   server -> client
//     16 REQUEST_OK         empty: the partition exists, buffers follow.
//     17 ERROR              message: the request failed, or the channel broke
//                           (partition released). Ends the channel.
//     18 DATA_BUFFER        the bytes of one data buffer, at most the
//                           request's segment_size (a larger producer buffer
//                           is split; elements may span buffers anyway).
//                           Costs one credit.
//     19 EVENT_BUFFER       the bytes of one event buffer (first byte:
//                           EventKind), at most 16 MiB. Costs no credit and
//                           keeps its place among the data buffers.
//
// Credit-based flow control: a channel's credit is the number of free
// segments in the receiver's mirror pool. The sender sends a DATA_BUFFER
// only while it holds credit, so the receiver always has a segment to read
// it into, and a consumer that stops reading stops its sender: the
// producer's own pool then runs dry and its task waits for a segment.
//
// A frame with an unknown type, a length over its limit, a duplicate or
// unknown channel where one is required, or data without credit is a
// protocol violation: that connection is closed (its channels fail) and
// the environment goes on serving the others.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "freshet/configuration.h"
#include "freshet/status.h"
#include "runtime/io/result_partition.h"
#include "runtime/task/task_deployment.h"

namespace freshet::internal {

class ShuffleEnvironment;
namespace net {
class NetworkCore;
}

/// Settings of one NetworkEnvironment; fixed once it is constructed.
struct NetworkOptions {
  /// Address the server binds and announces. Default loopback.
  std::string bind_host = "127.0.0.1";
  /// TCP port; 0 picks a free one (see NetworkEnvironment::Address()).
  uint16_t port = 0;
  /// Threads running the sockets; each connection stays on one. >= 1.
  int io_threads = 1;
  /// How long a request for a partition that is not registered yet is
  /// retried by the producer's side before it fails (producers may deploy
  /// after their consumers). Sent with each request of this environment.
  int64_t partition_request_timeout_ms = 10'000;
  /// How long connecting to another process may take.
  int64_t connect_timeout_ms = 5'000;
};

/// Counters, for tests and metrics. Sent and received are counted on
/// either side of this environment's connections.
struct NetworkStats {
  int64_t connections_opened = 0;    // client connections established
  int64_t connections_accepted = 0;  // server connections accepted
  int64_t open_client_connections = 0;
  int64_t open_server_connections = 0;
  int64_t data_buffers_sent = 0;
  int64_t event_buffers_sent = 0;
  int64_t bytes_sent = 0;            // payload bytes of buffer frames
  int64_t credit_granted = 0;        // credit received by this side's senders (initial + added)
  int64_t data_buffers_received = 0;
  int64_t event_buffers_received = 0;
  int64_t credit_announced = 0;      // credit sent by this side's receivers (initial + added)
  int64_t protocol_errors = 0;       // connections closed for a malformed frame
  int64_t pending_requests = 0;      // server: requests waiting for their partition to be registered
  int64_t active_readers = 0;        // server: subpartitions being sent
};

/// One per TaskManager process. Thread-safe: every method may be called
/// from any thread except the environment's own io threads.
class NetworkEnvironment {
 public:
  /// `shuffle` is where this process's producers register their
  /// partitions; it must outlive the environment.
  NetworkEnvironment(ShuffleEnvironment& shuffle, NetworkOptions options = {});
  ~NetworkEnvironment();
  NetworkEnvironment(const NetworkEnvironment&) = delete;
  NetworkEnvironment& operator=(const NetworkEnvironment&) = delete;

  /// Binds the server socket and starts the io threads. Fails (IoError)
  /// when the address cannot be bound, InvalidArgument on bad options.
  Status Start();
  /// "host:port" actually bound. REQUIRES: Start() succeeded.
  std::string Address() const;
  /// Closes every connection and joins the io threads. Remote consumers of
  /// this process's partitions see their channels fail; mirrors handed out
  /// here get a kPartitionError event unless they already ended.
  /// Idempotent; the destructor calls it.
  void Stop();

  /// Consumer side: opens a channel to subpartition `subpartition` of
  /// partition `id` served by the environment at `address` ("host:port")
  /// and returns a local mirror partition (one subpartition, a pool of
  /// `credits` segments of `segment_size` bytes) that the network fills
  /// with the remote buffers in order. Consume subpartition 0 of the
  /// mirror like a local partition. If the channel breaks, the mirror's
  /// last buffer is a kPartitionError event naming the address, the
  /// partition and the reason.
  /// Blocks until the producer's side confirmed that the partition exists.
  /// Errors: InvalidArgument (bad address or numbers), Unavailable
  /// (connection refused, timed out or lost; environment stopped), NotFound
  /// (the partition was not registered within the request timeout, or has
  /// no such subpartition).
  Result<std::shared_ptr<ResultPartition>> RequestSubpartition(const std::string& address, const PartitionId& id,
                                                               int subpartition, int credits, size_t segment_size);

  /// Drops this environment's mirrors of a job (their channels are closed)
  /// and the server's readers of the job's partitions (their consumers get
  /// an error). Waits until the io threads have done it.
  void ReleaseJob(const std::string& job_id);

  NetworkStats Stats() const;

 private:
  std::unique_ptr<net::NetworkCore> core_;
};

/// The credit (mirror pool size) of each remote channel of a task: the
/// channel's exclusive buffers plus an equal share of the gate's floating
/// buffers. A mirror cannot borrow from a shared pool the way a local
/// producer's channels do, and more credit than two buffers covers the
/// round trip of a credit over TCP. At least 1.
int RemoteChannelCredits(const ExecutionOptions& options, int remote_channels);

/// Opens the mirror of a remote input channel of task `tdd` through the
/// shuffle environment's network (FailedPrecondition when it has none).
Result<std::shared_ptr<ResultPartition>> RequestRemoteChannel(ShuffleEnvironment& shuffle,
                                                              const TaskDeploymentDescriptor& tdd,
                                                              const InputChannelDescriptor& channel,
                                                              const ExecutionOptions& options);

}  // namespace freshet::internal
