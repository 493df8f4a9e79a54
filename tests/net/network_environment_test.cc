// The TCP data plane: two NetworkEnvironments (a "producer process" and a
// "consumer process", each with its own ShuffleEnvironment) in one test
// process, talking over 127.0.0.1.

#include "net/net_test_env.h"
#include "runtime/net/network_environment.h"

// As in src/runtime/net/network_core.h: Asio's fences cannot be instrumented.
#if defined(__SANITIZE_THREAD__) && !defined(BOOST_ASIO_DISABLE_FENCED_BLOCK)
#define BOOST_ASIO_DISABLE_FENCED_BLOCK
#endif

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/io/result_partition.h"
#include "runtime/task/stream_task.h"

namespace freshet::internal {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
using net_test::PollUntil;
using net_test::Process;

ExecutionOptions PoolOptions(int segment_size, int buffers_per_channel, int floating) {
  ExecutionOptions o;
  o.segment_size = segment_size;
  o.buffers_per_channel = buffers_per_channel;
  o.floating_buffers = floating;
  return o;
}

/// The bytes of data buffer `index` of subpartition `sub`: size and
/// contents differ per buffer, so loss, duplication or reordering shows.
std::vector<uint8_t> Payload(int sub, int index, size_t max_size) {
  size_t size = 1 + (static_cast<size_t>(index) * 977 + static_cast<size_t>(sub) * 131) % max_size;
  std::vector<uint8_t> bytes(size);
  for (size_t k = 0; k < size; ++k) bytes[k] = static_cast<uint8_t>(sub * 31 + index * 7 + k * 13);
  return bytes;
}

/// Producer: copies `bytes` into a pool segment (waiting for one) and
/// queues it. False when the pool was cancelled.
bool WriteData(ResultPartition& p, int sub, const std::vector<uint8_t>& bytes) {
  uint8_t* segment = p.Pool().RequestBlocking();
  if (segment == nullptr) return false;
  std::memcpy(segment, bytes.data(), bytes.size());
  p.Add(sub, Buffer(segment, bytes.size(), BufferKind::kData, &p.Pool()));
  return true;
}

Buffer HeapBuffer(const std::vector<uint8_t>& bytes, BufferKind kind) {
  auto* data = new uint8_t[bytes.size()];
  std::memcpy(data, bytes.data(), bytes.size());
  return Buffer(data, bytes.size(), kind, nullptr);
}

std::vector<uint8_t> EventBytes(EventKind kind, const std::string& extra = "") {
  std::vector<uint8_t> bytes(1 + extra.size());
  bytes[0] = static_cast<uint8_t>(kind);
  if (!extra.empty()) std::memcpy(bytes.data() + 1, extra.data(), extra.size());
  return bytes;
}

void AddEvent(ResultPartition& p, int sub, EventKind kind, const std::string& extra = "") {
  p.Add(sub, HeapBuffer(EventBytes(kind, extra), BufferKind::kEvent));
}

struct Received {
  BufferKind kind;
  std::vector<uint8_t> bytes;
};

/// Consumer of subpartition 0 of a mirror: waits for buffers through the
/// availability listener, as an InputGate does.
class MirrorReader final : public AvailabilityListener {
 public:
  explicit MirrorReader(std::shared_ptr<ResultPartition> mirror) : mirror_(std::move(mirror)) {
    mirror_->SetListener(0, this, 0);
  }
  ~MirrorReader() override { mirror_->SetListener(0, nullptr, 0); }

  void NotifyDataAvailable(int) override {
    {
      std::lock_guard lock(mu_);
      signalled_ = true;
    }
    cv_.notify_all();
  }

  /// The next buffer, copied out (its segment is recycled at once), or
  /// nullopt after `timeout`.
  std::optional<Received> Next(milliseconds timeout = milliseconds(20000)) {
    auto deadline = SteadyClock::now() + timeout;
    while (true) {
      {
        std::lock_guard lock(mu_);
        signalled_ = false;
      }
      Buffer b;
      bool more = false;
      if (mirror_->Poll(0, b, more)) {
        Received r{b.Kind(), std::vector<uint8_t>(b.Data(), b.Data() + b.Size())};
        return r;
      }
      std::unique_lock lock(mu_);
      if (!cv_.wait_until(lock, deadline, [this] { return signalled_; })) return std::nullopt;
    }
  }

  /// Reads until an end-of-partition or partition-error event (included).
  std::vector<Received> ReadToEnd() {
    std::vector<Received> out;
    while (true) {
      std::optional<Received> r = Next();
      if (!r.has_value()) {
        ADD_FAILURE() << "no end of partition within the timeout after " << out.size() << " buffers";
        return out;
      }
      out.push_back(std::move(*r));
      const Received& last = out.back();
      if (last.kind == BufferKind::kEvent &&
          (last.bytes[0] == static_cast<uint8_t>(EventKind::kEndOfPartition) ||
           last.bytes[0] == static_cast<uint8_t>(EventKind::kPartitionError))) {
        return out;
      }
    }
  }

  ResultPartition& Mirror() { return *mirror_; }

 private:
  std::shared_ptr<ResultPartition> mirror_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool signalled_ = false;
};

std::string EventMessage(const Received& r) { return std::string(r.bytes.begin() + 1, r.bytes.end()); }

std::shared_ptr<ResultPartition> RequestOk(Process& consumer, const Process& producer, const PartitionId& id,
                                           int sub, int credits, size_t segment_size) {
  auto r = consumer.network.RequestSubpartition(producer.network.Address(), id, sub, credits, segment_size);
  EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  return r.IsOk() ? std::move(r).Value() : nullptr;
}

// ---- data, events and order ---------------------------------------------------------------

class NetworkTransferTest : public ::testing::TestWithParam<int> {};

TEST_P(NetworkTransferTest, EveryByteAndEventArrivesInOrderOverOneSharedConnection) {
  NetworkOptions options;
  options.io_threads = GetParam();
  Process producer(options);
  Process consumer(options);
  constexpr int kSubpartitions = 4;
  constexpr int kBuffers = 300;
  constexpr size_t kSegment = 4096;
  PartitionId id{"job-transfer", 3, 1};
  auto partition = producer.shuffle.CreatePartition(id, kSubpartitions, PoolOptions(kSegment, 2, 4));

  std::vector<std::shared_ptr<ResultPartition>> mirrors;
  for (int s = 0; s < kSubpartitions; ++s) mirrors.push_back(RequestOk(consumer, producer, id, s, 3, kSegment));
  ASSERT_EQ(mirrors.size(), 4u);
  for (const auto& m : mirrors) ASSERT_NE(m, nullptr);

  std::thread writer([&] {
    for (int i = 0; i < kBuffers; ++i) {
      for (int s = 0; s < kSubpartitions; ++s) {
        ASSERT_TRUE(WriteData(*partition, s, Payload(s, i, kSegment)));
        if (i == kBuffers / 2) AddEvent(*partition, s, EventKind::kCheckpointBarrier, "barrier-" + std::to_string(s));
      }
    }
    for (int s = 0; s < kSubpartitions; ++s) AddEvent(*partition, s, EventKind::kEndOfData);
    for (int s = 0; s < kSubpartitions; ++s) AddEvent(*partition, s, EventKind::kEndOfPartition);
  });
  std::vector<std::vector<Received>> received(kSubpartitions);
  std::vector<std::thread> readers;
  for (int s = 0; s < kSubpartitions; ++s) {
    readers.emplace_back([&, s] { received[static_cast<size_t>(s)] = MirrorReader(mirrors[static_cast<size_t>(s)]).ReadToEnd(); });
  }
  writer.join();
  for (auto& t : readers) t.join();

  for (int s = 0; s < kSubpartitions; ++s) {
    const std::vector<Received>& got = received[static_cast<size_t>(s)];
    ASSERT_EQ(got.size(), static_cast<size_t>(kBuffers + 3)) << "subpartition " << s;
    size_t k = 0;
    for (int i = 0; i < kBuffers; ++i) {
      ASSERT_EQ(got[k].kind, BufferKind::kData) << "subpartition " << s << " buffer " << i;
      ASSERT_EQ(got[k].bytes, Payload(s, i, kSegment)) << "subpartition " << s << " buffer " << i;
      ++k;
      if (i == kBuffers / 2) {
        ASSERT_EQ(got[k].kind, BufferKind::kEvent);
        EXPECT_EQ(got[k].bytes, EventBytes(EventKind::kCheckpointBarrier, "barrier-" + std::to_string(s)));
        ++k;
      }
    }
    EXPECT_EQ(got[k++].bytes, EventBytes(EventKind::kEndOfData));
    EXPECT_EQ(got[k++].bytes, EventBytes(EventKind::kEndOfPartition));
  }

  NetworkStats c = consumer.network.Stats();
  NetworkStats p = producer.network.Stats();
  EXPECT_EQ(c.connections_opened, 1) << "all channels to one process share one connection";
  EXPECT_EQ(c.open_client_connections, 1);
  EXPECT_EQ(p.connections_accepted, 1);
  EXPECT_EQ(p.data_buffers_sent, kSubpartitions * kBuffers);
  EXPECT_EQ(p.event_buffers_sent, kSubpartitions * 3);
  EXPECT_EQ(c.data_buffers_received, kSubpartitions * kBuffers);
  EXPECT_EQ(c.event_buffers_received, kSubpartitions * 3);
  EXPECT_LE(p.data_buffers_sent, p.credit_granted);
  EXPECT_EQ(p.protocol_errors + c.protocol_errors, 0);
  // The server forgets a channel after its end of partition.
  EXPECT_TRUE(PollUntil([&] { return producer.network.Stats().active_readers == 0; }));
}

INSTANTIATE_TEST_SUITE_P(IoThreads, NetworkTransferTest, ::testing::Values(1, 2));

TEST(NetworkTransferTest, ChannelsToTwoProcessesUseTwoConnections) {
  Process producer_a;
  Process producer_b;
  Process consumer;
  PartitionId id_a{"job-two", 0, 0};
  PartitionId id_b{"job-two", 0, 1};
  auto pa = producer_a.shuffle.CreatePartition(id_a, 2, PoolOptions(1024, 2, 2));
  auto pb = producer_b.shuffle.CreatePartition(id_b, 2, PoolOptions(1024, 2, 2));
  std::vector<std::shared_ptr<ResultPartition>> mirrors = {
      RequestOk(consumer, producer_a, id_a, 0, 2, 1024), RequestOk(consumer, producer_a, id_a, 1, 2, 1024),
      RequestOk(consumer, producer_b, id_b, 0, 2, 1024), RequestOk(consumer, producer_b, id_b, 1, 2, 1024)};
  for (int s = 0; s < 2; ++s) {
    ASSERT_TRUE(WriteData(*pa, s, Payload(s, 1, 1024)));
    ASSERT_TRUE(WriteData(*pb, s, Payload(s, 2, 1024)));
  }
  for (int m = 0; m < 4; ++m) {
    MirrorReader reader(mirrors[static_cast<size_t>(m)]);
    std::optional<Received> r = reader.Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->bytes, Payload(m % 2, m < 2 ? 1 : 2, 1024));
  }
  EXPECT_EQ(consumer.network.Stats().connections_opened, 2);
  EXPECT_EQ(producer_a.network.Stats().connections_accepted, 1);
  EXPECT_EQ(producer_b.network.Stats().connections_accepted, 1);
}

TEST(NetworkTransferTest, ProducerBuffersLargerThanTheConsumersSegmentsAreSplit) {
  Process producer;
  Process consumer;
  PartitionId id{"job-split", 1, 0};
  auto partition = producer.shuffle.CreatePartition(id, 1, PoolOptions(8192, 2, 2));
  auto mirror = RequestOk(consumer, producer, id, 0, 4, 1024);
  ASSERT_NE(mirror, nullptr);
  std::vector<uint8_t> expected;
  std::thread writer([&] {
    for (int i = 0; i < 6; ++i) {
      std::vector<uint8_t> bytes = Payload(0, i, 8192);
      bytes.resize(8192 - static_cast<size_t>(i) * 100, static_cast<uint8_t>(i));
      expected.insert(expected.end(), bytes.begin(), bytes.end());
      ASSERT_TRUE(WriteData(*partition, 0, bytes));
    }
    // Restored in-flight data travels as a heap data buffer of any size.
    std::vector<uint8_t> restored(5000, 0xab);
    expected.insert(expected.end(), restored.begin(), restored.end());
    partition->Add(0, HeapBuffer(restored, BufferKind::kData));
    AddEvent(*partition, 0, EventKind::kEndOfPartition);
  });
  std::vector<Received> got = MirrorReader(mirror).ReadToEnd();
  writer.join();
  std::vector<uint8_t> joined;
  size_t data_buffers = 0;
  for (const Received& r : got) {
    if (r.kind != BufferKind::kData) continue;
    ++data_buffers;
    EXPECT_LE(r.bytes.size(), 1024u);
    joined.insert(joined.end(), r.bytes.begin(), r.bytes.end());
  }
  EXPECT_EQ(joined, expected);
  // Each 8192 - 100 i byte buffer is ceil(size / 1024) frames; 5000 bytes are 5.
  size_t frames = 0;
  for (int i = 0; i < 6; ++i) frames += (8192 - static_cast<size_t>(i) * 100 + 1023) / 1024;
  EXPECT_EQ(data_buffers, frames + 5);
  EXPECT_EQ(producer.network.Stats().data_buffers_sent, static_cast<int64_t>(frames + 5));
}

// ---- credit-based flow control --------------------------------------------------------------

TEST(NetworkFlowControlTest, SlowConsumerStopsTheSenderAndTheProducerWaitsForSegments) {
  Process producer;
  Process consumer;
  constexpr int kProducerPool = 4;  // 1 subpartition * 2 + 2 floating
  constexpr int kCredits = 3;
  constexpr int kBuffers = 60;
  PartitionId id{"job-bp", 0, 0};
  auto partition = producer.shuffle.CreatePartition(id, 1, PoolOptions(1024, 2, 2));
  ASSERT_EQ(partition->Pool().NumSegments(), kProducerPool);
  auto mirror = RequestOk(consumer, producer, id, 0, kCredits, 1024);
  ASSERT_NE(mirror, nullptr);

  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < kBuffers; ++i) {
      ASSERT_TRUE(WriteData(*partition, 0, Payload(0, i, 1024)));
      written.fetch_add(1);
    }
    AddEvent(*partition, 0, EventKind::kEndOfPartition);
  });

  // Nobody reads: the mirror fills to its credit, the sender stops, and the
  // producer can place its own pool's worth on top, then waits.
  ASSERT_TRUE(PollUntil([&] {
    return written.load() == kProducerPool + kCredits && mirror->QueuedBuffers(0) == kCredits &&
           partition->Pool().AvailableSegments() == 0;
  })) << "written " << written.load() << ", mirror holds " << mirror->QueuedBuffers(0);
  // Stays so: a bounded look that the producer really is blocked.
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(written.load(), kProducerPool + kCredits);
  EXPECT_EQ(mirror->QueuedBuffers(0), static_cast<size_t>(kCredits));
  NetworkStats blocked = producer.network.Stats();
  EXPECT_EQ(blocked.data_buffers_sent, kCredits);
  EXPECT_EQ(blocked.credit_granted, kCredits);
  EXPECT_EQ(consumer.network.Stats().data_buffers_received, kCredits);

  // The consumer drains: everything arrives, in order.
  std::vector<Received> got = MirrorReader(mirror).ReadToEnd();
  writer.join();
  ASSERT_EQ(got.size(), static_cast<size_t>(kBuffers + 1));
  for (int i = 0; i < kBuffers; ++i) ASSERT_EQ(got[static_cast<size_t>(i)].bytes, Payload(0, i, 1024)) << i;
  EXPECT_GT(partition->Pool().BackPressuredNanos(), 0);

  NetworkStats p = producer.network.Stats();
  NetworkStats c = consumer.network.Stats();
  EXPECT_EQ(p.data_buffers_sent, kBuffers);
  EXPECT_LE(p.data_buffers_sent, p.credit_granted) << "the sender never exceeds the credit it was given";
  EXPECT_LE(p.credit_granted, c.credit_announced) << "credit comes only from the receiver";
  EXPECT_EQ(p.protocol_errors + c.protocol_errors, 0);
}

// ---- partition requests ---------------------------------------------------------------------

TEST(NetworkRequestTest, PartitionThatNeverAppearsFailsAfterTheRequestTimeout) {
  NetworkOptions options;
  options.partition_request_timeout_ms = 300;
  Process producer;
  Process consumer(options);
  PartitionId id{"job-missing", 7, 2};
  auto start = SteadyClock::now();
  auto r = consumer.network.RequestSubpartition(producer.network.Address(), id, 0, 2, 1024);
  auto elapsed = SteadyClock::now() - start;
  ASSERT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kNotFound) << r.GetStatus().ToString();
  EXPECT_THAT(r.GetStatus().Message(), HasSubstr("job-missing/7/2"));
  EXPECT_THAT(r.GetStatus().Message(), HasSubstr("not registered at " + producer.network.Address()));
  EXPECT_GE(elapsed, milliseconds(280));
  EXPECT_LT(elapsed, milliseconds(10000));
  EXPECT_EQ(producer.network.Stats().pending_requests, 0);
}

TEST(NetworkRequestTest, ProducerRegisteredAfterTheRequestIsFound) {
  Process producer;
  Process consumer;
  PartitionId id{"job-late", 0, 0};
  auto request = std::async(std::launch::async, [&] {
    return consumer.network.RequestSubpartition(producer.network.Address(), id, 1, 2, 1024);
  });
  ASSERT_TRUE(PollUntil([&] { return producer.network.Stats().pending_requests == 1; }));
  auto partition = producer.shuffle.CreatePartition(id, 2, PoolOptions(1024, 2, 2));
  auto r = request.get();
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ASSERT_TRUE(WriteData(*partition, 1, Payload(1, 0, 1024)));
  AddEvent(*partition, 1, EventKind::kEndOfPartition);
  std::vector<Received> got = MirrorReader(std::move(r).Value()).ReadToEnd();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].bytes, Payload(1, 0, 1024));
  EXPECT_EQ(producer.network.Stats().pending_requests, 0);
}

TEST(NetworkRequestTest, SubpartitionOutOfRangeIsNamed) {
  Process producer;
  Process consumer;
  PartitionId id{"job-range", 0, 0};
  producer.shuffle.CreatePartition(id, 2, PoolOptions(1024, 2, 2));
  auto r = consumer.network.RequestSubpartition(producer.network.Address(), id, 5, 2, 1024);
  ASSERT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_THAT(r.GetStatus().Message(), HasSubstr("has 2 subpartitions; subpartition 5 does not exist"));
}

TEST(NetworkRequestTest, ASubpartitionIsReadByOneChannelAtATime) {
  Process producer;
  Process consumer;
  PartitionId id{"job-twice", 0, 0};
  producer.shuffle.CreatePartition(id, 1, PoolOptions(1024, 2, 2));
  auto first = RequestOk(consumer, producer, id, 0, 2, 1024);
  auto second = consumer.network.RequestSubpartition(producer.network.Address(), id, 0, 2, 1024);
  ASSERT_FALSE(second.IsOk());
  EXPECT_EQ(second.GetStatus().Code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.GetStatus().Message(), HasSubstr("already being read"));
}

TEST(NetworkRequestTest, BadArgumentsAreRejectedNamingWhatIsWrong) {
  Process consumer;
  PartitionId id{"job-args", 0, 0};
  auto no_port = consumer.network.RequestSubpartition("localhost", id, 0, 2, 1024);
  EXPECT_EQ(no_port.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_port.GetStatus().Message(), HasSubstr("'localhost' is not of the form host:port"));
  auto bad_port = consumer.network.RequestSubpartition("127.0.0.1:99999", id, 0, 2, 1024);
  EXPECT_EQ(bad_port.GetStatus().Code(), StatusCode::kInvalidArgument);
  auto no_credit = consumer.network.RequestSubpartition("127.0.0.1:1", id, 0, 0, 1024);
  EXPECT_EQ(no_credit.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_credit.GetStatus().Message(), HasSubstr("credits must be in"));
  auto tiny = consumer.network.RequestSubpartition("127.0.0.1:1", id, 0, 2, 8);
  EXPECT_EQ(tiny.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(tiny.GetStatus().Message(), HasSubstr("segment size"));
  auto bad_sub = consumer.network.RequestSubpartition("127.0.0.1:1", id, -1, 2, 1024);
  EXPECT_EQ(bad_sub.GetStatus().Code(), StatusCode::kInvalidArgument);
}

TEST(NetworkRequestTest, ConnectionRefusedIsUnavailableNamingTheAddress) {
  std::string address;
  {
    Process gone;
    address = gone.network.Address();
  }
  Process consumer;
  auto r = consumer.network.RequestSubpartition(address, PartitionId{"job-refused", 0, 0}, 0, 2, 1024);
  ASSERT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kUnavailable) << r.GetStatus().ToString();
  EXPECT_THAT(r.GetStatus().Message(), HasSubstr(address));
  EXPECT_EQ(consumer.network.Stats().open_client_connections, 0);
}

TEST(NetworkRequestTest, BadOptionsAndStoppedEnvironmentAreReported) {
  ShuffleEnvironment shuffle;
  NetworkOptions bad_host;
  bad_host.bind_host = "not-an-ip";
  NetworkEnvironment a(shuffle, bad_host);
  Status s = a.Start();
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.Message(), HasSubstr("not-an-ip"));

  NetworkOptions no_threads;
  no_threads.io_threads = 0;
  NetworkEnvironment b(shuffle, no_threads);
  EXPECT_EQ(b.Start().Code(), StatusCode::kInvalidArgument);

  Process taken;
  NetworkOptions same_port;
  same_port.port = static_cast<uint16_t>(std::stoi(taken.network.Address().substr(taken.network.Address().rfind(':') + 1)));
  NetworkEnvironment c(shuffle, same_port);
  Status busy = c.Start();
  EXPECT_EQ(busy.Code(), StatusCode::kIoError) << busy.ToString();

  Process stopped;
  stopped.network.Stop();
  stopped.network.Stop();  // idempotent
  auto r = stopped.network.RequestSubpartition(taken.network.Address(), PartitionId{"job-x", 0, 0}, 0, 2, 1024);
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kUnavailable);
}

// ---- failures -------------------------------------------------------------------------------

TEST(NetworkFailureTest, LosingTheProducerProcessEndsTheMirrorWithAnErrorNamingIt) {
  auto producer = std::make_unique<Process>();
  Process consumer;
  std::string address = producer->network.Address();
  PartitionId id{"job-loss", 2, 1};
  auto partition = producer->shuffle.CreatePartition(id, 1, PoolOptions(1024, 2, 2));
  auto mirror = RequestOk(consumer, *producer, id, 0, 2, 1024);
  ASSERT_NE(mirror, nullptr);
  MirrorReader reader(mirror);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(WriteData(*partition, 0, Payload(0, i, 1024)));
  for (int i = 0; i < 3; ++i) {
    std::optional<Received> r = reader.Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->bytes, Payload(0, i, 1024));
  }
  producer->network.Stop();  // the producer's process goes away mid-stream
  std::vector<Received> rest = reader.ReadToEnd();
  ASSERT_FALSE(rest.empty());
  const Received& last = rest.back();
  ASSERT_EQ(last.kind, BufferKind::kEvent);
  ASSERT_EQ(last.bytes[0], static_cast<uint8_t>(EventKind::kPartitionError));
  EXPECT_THAT(EventMessage(last), HasSubstr(address));
  EXPECT_THAT(EventMessage(last), HasSubstr("job-loss/2/1"));
  EXPECT_THAT(EventMessage(last), HasSubstr("lost"));
  // Nothing follows the error, and the partition's producer is not stuck
  // on a segment held by the dead connection.
  EXPECT_FALSE(reader.Next(milliseconds(100)).has_value());
  EXPECT_TRUE(PollUntil([&] { return partition->Pool().AvailableSegments() == partition->Pool().NumSegments(); }));
  EXPECT_TRUE(PollUntil([&] { return consumer.network.Stats().open_client_connections == 0; }));
  producer.reset();
}

TEST(NetworkFailureTest, LosingTheConsumerProcessReleasesTheServersReaderAndItsBuffer) {
  Process producer;
  auto consumer = std::make_unique<Process>();
  PartitionId id{"job-gone", 0, 0};
  auto partition = producer.shuffle.CreatePartition(id, 1, PoolOptions(1024, 2, 2));
  ASSERT_EQ(partition->Pool().NumSegments(), 4);
  auto mirror = RequestOk(*consumer, producer, id, 0, 2, 1024);
  ASSERT_NE(mirror, nullptr);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(WriteData(*partition, 0, Payload(0, i, 1024)));
  // Two sent on credit (their segments are back), the third held by the
  // server's reader waiting for credit, the fourth queued.
  ASSERT_TRUE(PollUntil([&] {
    return producer.network.Stats().data_buffers_sent == 2 && partition->Pool().AvailableSegments() == 2 &&
           partition->QueuedBuffers(0) == 1;
  }));
  consumer->network.Stop();
  ASSERT_TRUE(PollUntil([&] {
    NetworkStats s = producer.network.Stats();
    return s.active_readers == 0 && s.open_server_connections == 0;
  }));
  EXPECT_TRUE(PollUntil([&] { return partition->Pool().AvailableSegments() == 3; }))
      << "the reader's held buffer goes back to the producer's pool";
  EXPECT_EQ(partition->QueuedBuffers(0), 1u) << "what was never polled stays for the job's cancellation";
  // The subpartition is free for another consumer (a restarted attempt).
  Process again;
  auto mirror2 = RequestOk(again, producer, id, 0, 2, 1024);
  ASSERT_NE(mirror2, nullptr);
  std::optional<Received> r = MirrorReader(mirror2).Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->bytes, Payload(0, 3, 1024));
  mirror.reset();
  consumer.reset();
}

TEST(NetworkFailureTest, ReleasingTheJobOnTheProducerSideFailsItsRemoteReaders) {
  Process producer;
  Process consumer;
  PartitionId id{"job-release", 0, 0};
  producer.shuffle.CreatePartition(id, 1, PoolOptions(1024, 2, 2));
  auto mirror = RequestOk(consumer, producer, id, 0, 2, 1024);
  ASSERT_NE(mirror, nullptr);
  producer.network.ReleaseJob("job-release");
  EXPECT_EQ(producer.network.Stats().active_readers, 0);
  std::vector<Received> got = MirrorReader(mirror).ReadToEnd();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].bytes[0], static_cast<uint8_t>(EventKind::kPartitionError));
  EXPECT_THAT(EventMessage(got[0]), HasSubstr("job-release/0/0 subpartition 0"));
  EXPECT_THAT(EventMessage(got[0]), HasSubstr("was released"));
}

TEST(NetworkFailureTest, ReleasingTheJobOnTheConsumerSideClosesItsChannels) {
  Process producer;
  Process consumer;
  PartitionId id{"job-drop", 0, 0};
  auto partition = producer.shuffle.CreatePartition(id, 1, PoolOptions(1024, 2, 2));
  auto mirror = RequestOk(consumer, producer, id, 0, 2, 1024);
  ASSERT_NE(mirror, nullptr);
  ASSERT_EQ(producer.network.Stats().active_readers, 1);
  consumer.network.ReleaseJob("job-drop");
  ASSERT_TRUE(PollUntil([&] { return producer.network.Stats().active_readers == 0; }));
  // The subpartition is free again: a new attempt may read it.
  auto again = RequestOk(consumer, producer, id, 0, 2, 1024);
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(WriteData(*partition, 0, Payload(0, 9, 1024)));
  std::optional<Received> r = MirrorReader(again).Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->bytes, Payload(0, 9, 1024));
  EXPECT_EQ(mirror->QueuedBuffers(0), 0u) << "the released mirror gets nothing more";
}

// ---- malformed input ------------------------------------------------------------------------

std::string Frame(uint32_t length, uint8_t type, uint32_t channel, const std::string& payload = "") {
  std::string f(9, '\0');
  for (int i = 0; i < 4; ++i) f[static_cast<size_t>(i)] = static_cast<char>(length >> (8 * i));
  f[4] = static_cast<char>(type);
  for (int i = 0; i < 4; ++i) f[static_cast<size_t>(5 + i)] = static_cast<char>(channel >> (8 * i));
  return f + payload;
}

std::string RequestFrame(uint32_t channel, const std::string& job, uint32_t credit) {
  std::string p;
  auto u16 = [&](uint16_t v) { p += static_cast<char>(v & 0xff), p += static_cast<char>(v >> 8); };
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) p += static_cast<char>(v >> (8 * i));
  };
  u16(1);
  u32(1000);
  u32(credit);
  u32(1024);
  u32(0);
  u32(0);
  u32(0);
  u16(static_cast<uint16_t>(job.size()));
  p += job;
  return Frame(static_cast<uint32_t>(p.size()), 1, channel, p);
}

/// A raw TCP client speaking bytes to a server, every wait bounded.
class RawConnection {
 public:
  explicit RawConnection(const std::string& address) : socket_(io_) {
    size_t colon = address.rfind(':');
    socket_.connect({boost::asio::ip::make_address(address.substr(0, colon)),
                     static_cast<uint16_t>(std::stoi(address.substr(colon + 1)))});
  }
  void Send(const std::string& bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }
  /// Exactly `n` bytes, or nullopt if they did not come within 20 s or the
  /// server closed the connection first.
  std::optional<std::string> Read(size_t n) {
    std::string out(n, '\0');
    bool done = false;
    boost::system::error_code error;
    boost::asio::async_read(socket_, boost::asio::buffer(out), [&](const boost::system::error_code& ec, size_t) {
      error = ec;
      done = true;
    });
    Run(done);
    if (!done || error) return std::nullopt;
    return out;
  }
  /// True when the server closed the connection within 20 s (whatever it
  /// sent before is dropped).
  bool WaitClosed() {
    bool closed = false;
    std::array<char, 4096> chunk;
    std::function<void()> read = [&] {
      socket_.async_read_some(boost::asio::buffer(chunk), [&](const boost::system::error_code& ec, size_t) {
        if (ec) {
          closed = true;
          return;
        }
        read();
      });
    };
    read();
    Run(closed);
    return closed;
  }

 private:
  void Run(const bool& done) {
    io_.restart();
    auto deadline = SteadyClock::now() + std::chrono::seconds(20);
    while (!done && SteadyClock::now() < deadline) io_.run_one_for(milliseconds(100));
    if (!done) {
      socket_.cancel();
      io_.restart();
      io_.run_for(milliseconds(100));  // let the cancelled operation finish
    }
  }
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
};

struct MalformedCase {
  std::string name;
  std::string bytes;
};

class NetworkMalformedInputTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(NetworkMalformedInputTest, ClosesOnlyThatConnectionAndKeepsServing) {
  Process producer;
  Process consumer;
  PartitionId id{"job-garbage", 0, 0};
  auto partition = producer.shuffle.CreatePartition(id, 1, PoolOptions(1024, 2, 2));
  auto mirror = RequestOk(consumer, producer, id, 0, 2, 1024);
  ASSERT_NE(mirror, nullptr);

  RawConnection raw(producer.network.Address());
  raw.Send(GetParam().bytes);
  ASSERT_TRUE(raw.WaitClosed()) << "the server kept a connection that sent " << GetParam().name;
  EXPECT_TRUE(PollUntil([&] { return producer.network.Stats().protocol_errors == 1; }));

  // The well-behaved consumer's connection still works.
  ASSERT_TRUE(WriteData(*partition, 0, Payload(0, 4, 1024)));
  AddEvent(*partition, 0, EventKind::kEndOfPartition);
  std::vector<Received> got = MirrorReader(mirror).ReadToEnd();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].bytes, Payload(0, 4, 1024));
  EXPECT_EQ(got[1].bytes, EventBytes(EventKind::kEndOfPartition));
  EXPECT_EQ(consumer.network.Stats().protocol_errors, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Frames, NetworkMalformedInputTest,
    ::testing::Values(
        MalformedCase{"HttpRequest", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
        MalformedCase{"AbsurdLength", Frame(0x7fffffff, 1, 1)},
        MalformedCase{"UnknownType", Frame(0, 99, 1)},
        MalformedCase{"ServerOnlyType", Frame(4, 18, 1, "abcd")},
        MalformedCase{"CreditForUnknownChannel", Frame(4, 2, 77, std::string("\x01\x00\x00\x00", 4))},
        MalformedCase{"CloseOfUnknownChannel", Frame(0, 3, 5)},
        MalformedCase{"CreditOfZero", RequestFrame(1, "job-none", 2) + Frame(4, 2, 1, std::string(4, '\0'))},
        MalformedCase{"TruncatedRequest", Frame(6, 1, 1, "abcdef")},
        MalformedCase{"ChannelIdReused", RequestFrame(3, "job-none", 2) + RequestFrame(3, "job-none", 2)},
        MalformedCase{"ChannelZero", RequestFrame(0, "job-none", 2)}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

TEST(NetworkMalformedInputTest, BadRequestValuesGetAnErrorFrameNotAClosedConnection) {
  Process producer;
  // Credit 0 is a bad value in a well-formed request: the server answers
  // with ERROR for that channel and keeps the connection.
  RawConnection raw(producer.network.Address());
  raw.Send(RequestFrame(1, "job-bad", 0));
  std::optional<std::string> header = raw.Read(9);
  ASSERT_TRUE(header.has_value());
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>((*header)[i])); };
  uint32_t length = byte(0) | (byte(1) << 8) | (byte(2) << 16) | (byte(3) << 24);
  EXPECT_EQ(byte(4), 17u) << "an ERROR frame";
  EXPECT_EQ(byte(5), 1u) << "for channel 1";
  ASSERT_LT(length, 4096u);
  std::optional<std::string> payload_read = raw.Read(length);
  ASSERT_TRUE(payload_read.has_value());
  const std::string& payload = *payload_read;
  EXPECT_EQ(static_cast<StatusCode>(payload[0]), StatusCode::kInvalidArgument);
  EXPECT_THAT(payload.substr(1), HasSubstr("initial credit 0"));
  EXPECT_EQ(producer.network.Stats().protocol_errors, 0);
  EXPECT_EQ(producer.network.Stats().open_server_connections, 1);
}

}  // namespace
}  // namespace freshet::internal
