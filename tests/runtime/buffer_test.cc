#include "freshet/internal/buffer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "freshet/internal/operator.h"
#include "freshet/internal/record_writer.h"
#include "freshet/serializer.h"
#include "runtime/io/buffer_pool.h"
#include "runtime/io/input_gate.h"
#include "runtime/io/result_partition.h"
#include "runtime/task/mailbox.h"

namespace freshet::internal {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// ---- element helpers --------------------------------------------------------------------------

struct Element {
  ElementTag tag;
  std::vector<uint8_t> payload;
  bool operator==(const Element&) const = default;
};

void AppendElement(std::vector<uint8_t>& out, const Element& e) {
  uint32_t header = MakeElementHeader(e.tag, static_cast<uint32_t>(e.payload.size()));
  const auto* h = reinterpret_cast<const uint8_t*>(&header);
  out.insert(out.end(), h, h + sizeof(header));
  out.insert(out.end(), e.payload.begin(), e.payload.end());
}

Element RecordElement(Timestamp ts, const std::string& value) {
  Element e{ElementTag::kRecord, std::vector<uint8_t>(sizeof(ts) + value.size())};
  std::memcpy(e.payload.data(), &ts, sizeof(ts));
  if (!value.empty()) std::memcpy(e.payload.data() + sizeof(ts), value.data(), value.size());
  return e;
}

Element WatermarkElement(Timestamp wm) {
  Element e{ElementTag::kWatermark, std::vector<uint8_t>(sizeof(wm))};
  std::memcpy(e.payload.data(), &wm, sizeof(wm));
  return e;
}

// Drains every complete element the deserializer yields from its current buffer.
void Drain(ChannelDeserializer& d, std::vector<Element>& out) {
  ElementView v;
  while (d.Next(v)) out.push_back(Element{v.tag, std::vector<uint8_t>(v.payload, v.payload + v.size)});
}

std::vector<Element> SampleElements() {
  return {RecordElement(1, "a"),
          WatermarkElement(100),
          Element{ElementTag::kWatermarkStatus, {1}},
          RecordElement(-5, ""),
          RecordElement(7, std::string(37, 'x')),
          Element{ElementTag::kRecord, {}},
          WatermarkElement(kMaxWatermark)};
}

// ---- ChannelDeserializer ----------------------------------------------------------------------

TEST(ChannelDeserializerTest, ReadsWholeElementsFromOneBuffer) {
  std::vector<Element> expected = SampleElements();
  std::vector<uint8_t> bytes;
  for (const Element& e : expected) AppendElement(bytes, e);
  ChannelDeserializer d;
  d.SetBuffer(bytes.data(), bytes.size());
  std::vector<Element> got;
  Drain(d, got);
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(d.IsClean());
}

TEST(ChannelDeserializerTest, ReassemblesElementsSplitAtEveryByteAcrossTwoBuffers) {
  std::vector<Element> expected = SampleElements();
  std::vector<uint8_t> bytes;
  for (const Element& e : expected) AppendElement(bytes, e);
  for (size_t split = 0; split <= bytes.size(); ++split) {
    // Separate allocations, so nothing can read across the split.
    std::vector<uint8_t> first(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(split));
    std::vector<uint8_t> second(bytes.begin() + static_cast<ptrdiff_t>(split), bytes.end());
    ChannelDeserializer d;
    std::vector<Element> got;
    d.SetBuffer(first.data(), first.size());
    Drain(d, got);
    d.SetBuffer(second.data(), second.size());
    Drain(d, got);
    ASSERT_EQ(got, expected) << "split at " << split;
    EXPECT_TRUE(d.IsClean()) << "split at " << split;
  }
}

TEST(ChannelDeserializerTest, ReassemblesElementsSplitAtEveryPairOfPointsAcrossThreeBuffers) {
  std::vector<Element> expected = {RecordElement(3, "hello"), WatermarkElement(9), RecordElement(4, "spanning!")};
  std::vector<uint8_t> bytes;
  for (const Element& e : expected) AppendElement(bytes, e);
  for (size_t i = 0; i <= bytes.size(); ++i) {
    for (size_t j = i; j <= bytes.size(); ++j) {
      std::vector<uint8_t> a(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(i));
      std::vector<uint8_t> b(bytes.begin() + static_cast<ptrdiff_t>(i), bytes.begin() + static_cast<ptrdiff_t>(j));
      std::vector<uint8_t> c(bytes.begin() + static_cast<ptrdiff_t>(j), bytes.end());
      ChannelDeserializer d;
      std::vector<Element> got;
      for (auto* part : {&a, &b, &c}) {
        d.SetBuffer(part->data(), part->size());
        Drain(d, got);
      }
      ASSERT_EQ(got, expected) << "splits at " << i << " and " << j;
      ASSERT_TRUE(d.IsClean());
    }
  }
}

TEST(ChannelDeserializerTest, ElementSpanningManySmallBuffers) {
  Element big = RecordElement(11, std::string(1000, 'q'));
  Element after = WatermarkElement(12);
  std::vector<uint8_t> bytes;
  AppendElement(bytes, big);
  AppendElement(bytes, after);
  for (size_t piece : {1u, 2u, 3u, 5u, 64u, 333u}) {
    ChannelDeserializer d;
    std::vector<Element> got;
    for (size_t pos = 0; pos < bytes.size(); pos += piece) {
      std::vector<uint8_t> part(bytes.begin() + static_cast<ptrdiff_t>(pos),
                                bytes.begin() + static_cast<ptrdiff_t>(std::min(bytes.size(), pos + piece)));
      d.SetBuffer(part.data(), part.size());
      Drain(d, got);
      if (got.empty()) {
        EXPECT_FALSE(d.IsClean());
      }
    }
    ASSERT_EQ(got.size(), 2u) << "pieces of " << piece;
    EXPECT_EQ(got[0], big);
    EXPECT_EQ(got[1], after);
    EXPECT_TRUE(d.IsClean());
  }
}

TEST(ChannelDeserializerTest, IsNotCleanWhileAPartialElementIsPending) {
  std::vector<uint8_t> bytes;
  AppendElement(bytes, RecordElement(1, "abcdef"));
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    ChannelDeserializer d;
    std::vector<Element> got;
    d.SetBuffer(bytes.data(), cut);
    Drain(d, got);
    EXPECT_TRUE(got.empty());
    EXPECT_FALSE(d.IsClean()) << "cut at " << cut;
  }
  ChannelDeserializer fresh;
  EXPECT_TRUE(fresh.IsClean());
}

TEST(ChannelDeserializerTest, EmptyBuffersChangeNothing) {
  std::vector<uint8_t> bytes;
  AppendElement(bytes, WatermarkElement(5));
  ChannelDeserializer d;
  std::vector<Element> got;
  std::vector<uint8_t> empty;
  d.SetBuffer(bytes.data(), 2);
  Drain(d, got);
  for (int i = 0; i < 3; ++i) {
    d.SetBuffer(empty.data(), 0);
    Drain(d, got);
    EXPECT_FALSE(d.IsClean());
  }
  d.SetBuffer(bytes.data() + 2, bytes.size() - 2);
  Drain(d, got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], WatermarkElement(5));
  EXPECT_TRUE(d.IsClean());
}

// ---- BufferPool and Buffer ----------------------------------------------------------------------

TEST(BufferPoolTest, HandsOutDistinctSegmentsUntilEmpty) {
  BufferPool pool(128, 4);
  EXPECT_EQ(pool.SegmentSize(), 128u);
  EXPECT_EQ(pool.NumSegments(), 4);
  EXPECT_EQ(pool.AvailableSegments(), 4);
  std::set<uint8_t*> taken;
  for (int i = 0; i < 4; ++i) {
    uint8_t* s = pool.TryRequest();
    ASSERT_NE(s, nullptr);
    std::memset(s, i, 128);  // the whole segment is usable
    taken.insert(s);
    EXPECT_EQ(pool.AvailableSegments(), 3 - i);
  }
  EXPECT_EQ(taken.size(), 4u);
  // Segments do not overlap.
  std::vector<uint8_t*> sorted(taken.begin(), taken.end());
  for (size_t i = 1; i < sorted.size(); ++i) EXPECT_GE(sorted[i] - sorted[i - 1], 128);
  EXPECT_EQ(pool.TryRequest(), nullptr);
  for (uint8_t* s : taken) pool.Recycle(s);
  EXPECT_EQ(pool.AvailableSegments(), 4);
}

TEST(BufferPoolTest, RequestBlockingWaitsForARecycleFromAnotherThread) {
  BufferPool pool(64, 1);
  uint8_t* held = pool.RequestBlocking();
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(pool.AvailableSegments(), 0);
  std::atomic<bool> returned{false};
  auto waiter = std::async(std::launch::async, [&] {
    uint8_t* s = pool.RequestBlocking();
    returned = true;
    return s;
  });
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_FALSE(returned.load()) << "RequestBlocking returned while the pool was empty";
  pool.Recycle(held);
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(waiter.get(), held);
  EXPECT_GT(pool.BackPressuredNanos(), 50'000'000) << "the wait was not counted as back-pressure";
}

TEST(BufferPoolTest, CancelWakesAWaiterWithNull) {
  BufferPool pool(64, 1);
  uint8_t* held = pool.TryRequest();
  ASSERT_NE(held, nullptr);
  auto waiter = std::async(std::launch::async, [&] { return pool.RequestBlocking(); });
  std::this_thread::sleep_for(milliseconds(50));
  pool.Cancel();
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(waiter.get(), nullptr);
  pool.Recycle(held);
  EXPECT_EQ(pool.TryRequest(), nullptr) << "a cancelled pool handed out a segment";
}

TEST(BufferPoolTest, CancelWakesEveryWaiter) {
  BufferPool pool(64, 0);
  std::vector<std::future<uint8_t*>> waiters;
  for (int i = 0; i < 3; ++i) waiters.push_back(std::async(std::launch::async, [&] { return pool.RequestBlocking(); }));
  std::this_thread::sleep_for(milliseconds(50));
  pool.Cancel();
  for (auto& w : waiters) {
    ASSERT_EQ(w.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(w.get(), nullptr);
  }
}

TEST(BufferTest, DestructionReturnsThePoolSegment) {
  BufferPool pool(64, 2);
  {
    Buffer b(pool.TryRequest(), 10, BufferKind::kData, &pool);
    EXPECT_TRUE(b.IsValid());
    EXPECT_EQ(b.Size(), 10u);
    EXPECT_EQ(pool.AvailableSegments(), 1);
    Buffer moved(std::move(b));
    EXPECT_FALSE(b.IsValid());  // NOLINT: checking the moved-from state
    EXPECT_EQ(b.Size(), 0u);    // NOLINT
    EXPECT_TRUE(moved.IsValid());
    EXPECT_EQ(moved.Size(), 10u);
    EXPECT_EQ(pool.AvailableSegments(), 1);
  }
  EXPECT_EQ(pool.AvailableSegments(), 2);
}

TEST(BufferTest, MoveAssignmentRecyclesTheOverwrittenSegment) {
  BufferPool pool(64, 2);
  Buffer a(pool.TryRequest(), 1, BufferKind::kData, &pool);
  Buffer b(pool.TryRequest(), 2, BufferKind::kData, &pool);
  EXPECT_EQ(pool.AvailableSegments(), 0);
  a = std::move(b);
  EXPECT_EQ(pool.AvailableSegments(), 1);
  EXPECT_EQ(a.Size(), 2u);
  a.Recycle();
  EXPECT_FALSE(a.IsValid());
  EXPECT_EQ(pool.AvailableSegments(), 2);
  a.Recycle();  // a second recycle is harmless
  EXPECT_EQ(pool.AvailableSegments(), 2);
}

TEST(BufferTest, EventBuffersOwnHeapMemory) {
  auto* data = new uint8_t[1];
  data[0] = static_cast<uint8_t>(EventKind::kEndOfPartition);
  Buffer event(data, 1, BufferKind::kEvent, nullptr);
  EXPECT_EQ(event.Kind(), BufferKind::kEvent);
  EXPECT_EQ(event.Data()[0], static_cast<uint8_t>(EventKind::kEndOfPartition));
  event.Recycle();
  EXPECT_FALSE(event.IsValid());
}

// ---- RecordWriter and ResultPartition ----------------------------------------------------------

std::shared_ptr<ResultPartition> MakePartition(int channels, size_t segment_size, int buffers) {
  return std::make_shared<ResultPartition>(PartitionId{"job", 0, 0}, channels, segment_size, buffers);
}

// Takes every queued buffer of a subpartition.
std::vector<Buffer> PollAll(ResultPartition& p, int subpartition) {
  std::vector<Buffer> out;
  Buffer b;
  bool more = true;
  while (p.Poll(subpartition, b, more)) out.push_back(std::move(b));
  EXPECT_FALSE(more);
  return out;
}

// Decodes the data buffers (in order) of one channel into elements.
std::vector<Element> DecodeData(const std::vector<Buffer>& buffers, bool* clean = nullptr) {
  ChannelDeserializer d;
  std::vector<Element> out;
  for (const Buffer& b : buffers) {
    if (b.Kind() != BufferKind::kData) continue;
    d.SetBuffer(b.Data(), b.Size());
    Drain(d, out);
  }
  if (clean != nullptr) *clean = d.IsClean();
  return out;
}

TEST(RecordWriterTest, SmallRecordsShareOneBufferUntilFlushed) {
  auto partition = MakePartition(2, 256, 8);
  RecordWriter writer(partition);
  EXPECT_EQ(writer.NumChannels(), 2);
  std::string v1 = "first", v2 = "second";
  writer.WriteRecord(0, 10, reinterpret_cast<const uint8_t*>(v1.data()), v1.size());
  writer.WriteRecord(0, 20, reinterpret_cast<const uint8_t*>(v2.data()), v2.size());
  EXPECT_EQ(partition->QueuedBuffers(0), 0u) << "a partial buffer was handed over before a flush";
  writer.FlushAll();
  ASSERT_EQ(partition->QueuedBuffers(0), 1u);
  EXPECT_EQ(partition->QueuedBuffers(1), 0u) << "an untouched channel got a buffer";
  std::vector<Buffer> buffers = PollAll(*partition, 0);
  ASSERT_EQ(buffers.size(), 1u);
  EXPECT_EQ(buffers[0].Size(), 2 * kRecordPrefixSize + v1.size() + v2.size());
  EXPECT_EQ(DecodeData(buffers), (std::vector<Element>{RecordElement(10, v1), RecordElement(20, v2)}));
  // Flushing again with nothing written hands over nothing.
  writer.FlushAll();
  EXPECT_EQ(partition->QueuedBuffers(0), 0u);
}

TEST(RecordWriterTest, RecordsLargerThanASegmentSpanBuffers) {
  auto partition = MakePartition(1, 256, 16);
  RecordWriter writer(partition);
  std::string big(1000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  std::string small = "tail";
  writer.WriteRecord(0, 77, reinterpret_cast<const uint8_t*>(big.data()), big.size());
  writer.WriteRecord(0, 78, reinterpret_cast<const uint8_t*>(small.data()), small.size());
  // (12 + 1000) + (12 + 4) = 1028 bytes: four full segments before the
  // flush, the second record spanning the fourth and fifth.
  EXPECT_EQ(partition->QueuedBuffers(0), 4u);
  writer.FlushAll();
  std::vector<Buffer> buffers = PollAll(*partition, 0);
  ASSERT_EQ(buffers.size(), 5u);
  size_t total = 0;
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (i + 1 < buffers.size()) {
      EXPECT_EQ(buffers[i].Size(), 256u);
    }
    total += buffers[i].Size();
  }
  EXPECT_EQ(total, 2 * kRecordPrefixSize + big.size() + small.size());
  bool clean = false;
  std::vector<Element> got = DecodeData(buffers, &clean);
  EXPECT_TRUE(clean);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], RecordElement(77, big));
  EXPECT_EQ(got[1], RecordElement(78, small));
}

TEST(RecordWriterTest, RecordsAreRoutedToTheirChannelOnly) {
  auto partition = MakePartition(3, 256, 16);
  RecordWriter writer(partition);
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i <= c; ++i) {
      std::string v = std::to_string(c) + ":" + std::to_string(i);
      writer.WriteRecord(c, i, reinterpret_cast<const uint8_t*>(v.data()), v.size());
    }
  }
  writer.FlushAll();
  for (int c = 0; c < 3; ++c) {
    std::vector<Element> got = DecodeData(PollAll(*partition, c));
    ASSERT_EQ(got.size(), static_cast<size_t>(c + 1));
    for (int i = 0; i <= c; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], RecordElement(i, std::to_string(c) + ":" + std::to_string(i)));
  }
}

TEST(RecordWriterTest, WatermarksAreBroadcastToEveryChannelInOrder) {
  auto partition = MakePartition(4, 256, 16);
  RecordWriter writer(partition);
  std::string v = "r";
  writer.WriteRecord(2, 5, reinterpret_cast<const uint8_t*>(v.data()), v.size());
  writer.BroadcastWatermark(1000);
  writer.FlushAll();
  for (int c = 0; c < 4; ++c) {
    std::vector<Element> got = DecodeData(PollAll(*partition, c));
    if (c == 2) {
      EXPECT_EQ(got, (std::vector<Element>{RecordElement(5, v), WatermarkElement(1000)}));
    } else {
      EXPECT_EQ(got, std::vector<Element>{WatermarkElement(1000)}) << "channel " << c;
    }
  }
}

TEST(RecordWriterTest, EndOfPartitionFlushesThenAppendsAnEventPerChannel) {
  auto partition = MakePartition(2, 256, 8);
  RecordWriter writer(partition);
  std::string v = "last";
  writer.WriteRecord(1, 1, reinterpret_cast<const uint8_t*>(v.data()), v.size());
  writer.EmitEndOfPartition();
  std::vector<Buffer> ch0 = PollAll(*partition, 0);
  ASSERT_EQ(ch0.size(), 1u);
  EXPECT_EQ(ch0[0].Kind(), BufferKind::kEvent);
  ASSERT_EQ(ch0[0].Size(), 1u);
  EXPECT_EQ(ch0[0].Data()[0], static_cast<uint8_t>(EventKind::kEndOfPartition));
  std::vector<Buffer> ch1 = PollAll(*partition, 1);
  ASSERT_EQ(ch1.size(), 2u);
  EXPECT_EQ(ch1[0].Kind(), BufferKind::kData);
  EXPECT_EQ(ch1[1].Kind(), BufferKind::kEvent);
  EXPECT_EQ(ch1[1].Data()[0], static_cast<uint8_t>(EventKind::kEndOfPartition));
  EXPECT_EQ(DecodeData(ch1), std::vector<Element>{RecordElement(1, v)});
}

TEST(RecordWriterTest, ConsumedBuffersReturnToThePool) {
  auto partition = MakePartition(1, 256, 4);
  {
    RecordWriter writer(partition);
    std::string v(600, 'z');
    writer.WriteRecord(0, 0, reinterpret_cast<const uint8_t*>(v.data()), v.size());
    writer.FlushAll();
    EXPECT_EQ(partition->Pool().AvailableSegments(), 1);
    { std::vector<Buffer> taken = PollAll(*partition, 0); }
    EXPECT_EQ(partition->Pool().AvailableSegments(), 4);
    // An unflushed partial buffer goes back when the writer is destroyed.
    writer.WriteRecord(0, 0, reinterpret_cast<const uint8_t*>(v.data()), 10);
    EXPECT_EQ(partition->Pool().AvailableSegments(), 3);
  }
  EXPECT_EQ(partition->Pool().AvailableSegments(), 4);
  EXPECT_EQ(partition->QueuedBuffers(0), 0u);
}

TEST(RecordWriterTest, WriterWaitsForBuffersUntilTheConsumerFreesOne) {
  auto partition = MakePartition(1, 256, 2);
  RecordWriter writer(partition);
  std::string big(700, 'b');  // 712 bytes: needs three segments
  std::atomic<bool> done{false};
  auto producer = std::async(std::launch::async, [&] {
    writer.WriteRecord(0, 1, reinterpret_cast<const uint8_t*>(big.data()), big.size());
    writer.FlushAll();
    done = true;
  });
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (partition->QueuedBuffers(0) < 2 && SteadyClock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_EQ(partition->QueuedBuffers(0), 2u);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(done.load()) << "the writer went on without a free buffer";
  std::vector<Buffer> received;
  ChannelDeserializer d;
  std::vector<Element> got;
  while (got.empty() && SteadyClock::now() < deadline) {
    Buffer b;
    bool more = false;
    if (partition->Poll(0, b, more)) {
      d.SetBuffer(b.Data(), b.Size());
      Drain(d, got);
      // b is recycled here, which unblocks the writer.
    } else {
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  ASSERT_EQ(producer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  producer.get();
  EXPECT_TRUE(done.load());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], RecordElement(1, big));
  EXPECT_GT(partition->Pool().BackPressuredNanos(), 0);
}

TEST(RecordWriterTest, CancellingThePartitionFailsABlockedWriter) {
  auto partition = MakePartition(1, 256, 1);
  RecordWriter writer(partition);
  std::string big(600, 'c');
  auto producer = std::async(std::launch::async, [&] {
    writer.WriteRecord(0, 1, reinterpret_cast<const uint8_t*>(big.data()), big.size());
  });
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (partition->QueuedBuffers(0) < 1 && SteadyClock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  std::this_thread::sleep_for(milliseconds(20));
  partition->Cancel();
  ASSERT_EQ(producer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THROW(producer.get(), TaskCancelledException);
}

TEST(RecordWriterTest, OversizedRecordIsRejectedBeforeAnyWrite) {
  auto partition = MakePartition(1, 256, 2);
  RecordWriter writer(partition);
  // The size check comes first: the value pointer is never read.
  EXPECT_THROW(writer.WriteRecord(0, 0, nullptr, kMaxElementPayload), OperatorException);
  writer.FlushAll();
  EXPECT_EQ(partition->QueuedBuffers(0), 0u);
}

TEST(RecordWriterTest, TryReserveUsesTheCurrentBufferOnly) {
  auto partition = MakePartition(1, 256, 2);
  RecordWriter writer(partition);
  EXPECT_EQ(writer.TryReserve(0, 1), nullptr) << "no buffer is held before the first write";
  std::string v = "x";
  writer.WriteRecord(0, 0, reinterpret_cast<const uint8_t*>(v.data()), v.size());
  uint8_t* p = writer.TryReserve(0, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(writer.TryReserve(0, 256), nullptr);
}

// ---- ResultPartition listeners, InputGate and Mailbox ----------------------------------------------------

// Whether the mailbox wakes within `limit` (an input signal, mail or cancel).
bool WakesWithin(Mailbox& mailbox, milliseconds limit) {
  auto start = SteadyClock::now();
  mailbox.Wait(std::chrono::duration_cast<std::chrono::nanoseconds>(limit).count());
  return SteadyClock::now() - start < limit;
}

Buffer DataBuffer(ResultPartition& p, uint8_t marker) {
  uint8_t* s = p.Pool().TryRequest();
  EXPECT_NE(s, nullptr);
  s[0] = marker;
  return Buffer(s, 1, BufferKind::kData, &p.Pool());
}

TEST(MailboxTest, WaitTimesOutWithoutSignals) {
  Mailbox mailbox;
  auto start = SteadyClock::now();
  mailbox.Wait(std::chrono::duration_cast<std::chrono::nanoseconds>(milliseconds(30)).count());
  EXPECT_GE(SteadyClock::now() - start, milliseconds(25));
  EXPECT_FALSE(mailbox.HasMail());
  EXPECT_FALSE(mailbox.IsCancelled());
}

TEST(MailboxTest, InputSignalWakesAndIsConsumedByWait) {
  Mailbox mailbox;
  mailbox.SignalInput();
  EXPECT_TRUE(WakesWithin(mailbox, milliseconds(5000)));
  EXPECT_FALSE(WakesWithin(mailbox, milliseconds(30))) << "the signal was not consumed";
  mailbox.SignalInput();
  mailbox.ResetInputSignal();
  EXPECT_FALSE(WakesWithin(mailbox, milliseconds(30))) << "ResetInputSignal kept the signal";
}

TEST(MailboxTest, MailsFromAnotherThreadRunInOrderOnRunMails) {
  Mailbox mailbox;
  std::vector<int> ran;
  std::thread poster([&] {
    std::this_thread::sleep_for(milliseconds(20));
    for (int i = 0; i < 3; ++i) mailbox.Put([&ran, i] { ran.push_back(i); });
  });
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (!mailbox.HasMail() && SteadyClock::now() < deadline) mailbox.Wait(-1);
  poster.join();
  EXPECT_TRUE(mailbox.HasMail());
  EXPECT_TRUE(ran.empty()) << "mails ran before RunMails";
  mailbox.RunMails();
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(mailbox.HasMail());
}

TEST(MailboxTest, CancelWakesAWaitingThread) {
  Mailbox mailbox;
  auto waiter = std::async(std::launch::async, [&] { mailbox.Wait(-1); });
  std::this_thread::sleep_for(milliseconds(30));
  mailbox.Cancel();
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(mailbox.IsCancelled());
  EXPECT_TRUE(WakesWithin(mailbox, milliseconds(5000))) << "a cancelled mailbox still waits";
}

class RecordingListener final : public AvailabilityListener {
 public:
  void NotifyDataAvailable(int token) override { tokens.push_back(token); }
  std::vector<int> tokens;
};

TEST(ResultPartitionTest, ListenerIsToldOnlyWhenASubpartitionBecomesNonEmpty) {
  auto partition = MakePartition(2, 64, 8);
  RecordingListener listener;
  partition->Add(1, DataBuffer(*partition, 1));
  partition->SetListener(1, &listener, 41);
  EXPECT_EQ(listener.tokens, std::vector<int>{41}) << "registering on a non-empty subpartition must notify";
  partition->Add(1, DataBuffer(*partition, 2));
  EXPECT_EQ(listener.tokens.size(), 1u) << "a non-empty subpartition notified again";
  partition->SetListener(0, &listener, 40);
  EXPECT_EQ(listener.tokens.size(), 1u);
  partition->Add(0, DataBuffer(*partition, 3));
  EXPECT_EQ(listener.tokens, (std::vector<int>{41, 40}));
  PollAll(*partition, 1);
  partition->Add(1, DataBuffer(*partition, 4));
  EXPECT_EQ(listener.tokens, (std::vector<int>{41, 40, 41}));
  partition->SetListener(1, nullptr, 0);
  PollAll(*partition, 1);
  partition->Add(1, DataBuffer(*partition, 5));
  EXPECT_EQ(listener.tokens.size(), 3u) << "an unregistered listener was called";
}

TEST(ResultPartitionTest, PollReturnsBuffersInOrderAndReportsMore) {
  auto partition = MakePartition(1, 64, 4);
  EXPECT_EQ(partition->NumSubpartitions(), 1);
  EXPECT_EQ(partition->Id().Key(), "job/0/0");
  Buffer b;
  bool more = true;
  EXPECT_FALSE(partition->Poll(0, b, more));
  EXPECT_FALSE(more);
  for (uint8_t i = 0; i < 3; ++i) partition->Add(0, DataBuffer(*partition, i));
  EXPECT_EQ(partition->QueuedBuffers(0), 3u);
  for (uint8_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(partition->Poll(0, b, more));
    EXPECT_EQ(b.Data()[0], i);
    EXPECT_EQ(more, i < 2);
  }
}

TEST(InputGateTest, NoNotificationsBeforeStart) {
  Mailbox mailbox;
  auto partition = MakePartition(1, 64, 4);
  InputGate gate(&mailbox);
  EXPECT_EQ(gate.AddChannel(partition, 0, 1), 0);
  EXPECT_EQ(gate.NumChannels(), 1);
  partition->Add(0, DataBuffer(*partition, 9));
  EXPECT_FALSE(WakesWithin(mailbox, milliseconds(30)));
  int channel = -1;
  Buffer b;
  EXPECT_FALSE(gate.PollNext(channel, b)) << "a gate that is not started returned data";
  gate.Start();
  EXPECT_TRUE(WakesWithin(mailbox, milliseconds(5000))) << "Start did not report queued data";
  ASSERT_TRUE(gate.PollNext(channel, b));
  EXPECT_EQ(channel, 0);
  EXPECT_EQ(b.Data()[0], 9);
}

TEST(InputGateTest, DataFromAProducerThreadWakesTheMailbox) {
  Mailbox mailbox;
  auto partition = MakePartition(1, 64, 4);
  InputGate gate(&mailbox);
  gate.AddChannel(partition, 0, 1);
  gate.Start();
  std::thread producer([&] {
    std::this_thread::sleep_for(milliseconds(30));
    partition->Add(0, DataBuffer(*partition, 5));
  });
  int channel = -1;
  Buffer b;
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  bool got = false;
  while (!got && SteadyClock::now() < deadline) {
    mailbox.Wait(-1);
    got = gate.PollNext(channel, b);
  }
  producer.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(b.Data()[0], 5);
}

TEST(InputGateTest, PollNextServesChannelsRoundRobinInArrivalOrder) {
  Mailbox mailbox;
  auto p0 = MakePartition(1, 64, 8);
  auto p1 = MakePartition(2, 64, 8);
  InputGate gate(&mailbox);
  gate.AddChannel(p0, 0, 1);
  gate.AddChannel(p1, 1, 1);
  gate.Start();
  p0->Add(0, DataBuffer(*p0, 10));
  p0->Add(0, DataBuffer(*p0, 11));
  p0->Add(0, DataBuffer(*p0, 12));
  p1->Add(1, DataBuffer(*p1, 20));
  p1->Add(0, DataBuffer(*p1, 99));  // a subpartition this gate does not read
  std::vector<std::pair<int, int>> order;
  int channel = -1;
  Buffer b;
  while (gate.PollNext(channel, b)) order.emplace_back(channel, b.Data()[0]);
  EXPECT_EQ(order, (std::vector<std::pair<int, int>>{{0, 10}, {1, 20}, {0, 11}, {0, 12}}));
  EXPECT_EQ(p1->QueuedBuffers(0), 1u);
  // Later data is picked up again.
  p1->Add(1, DataBuffer(*p1, 21));
  ASSERT_TRUE(gate.PollNext(channel, b));
  EXPECT_EQ(channel, 1);
  EXPECT_EQ(b.Data()[0], 21);
  EXPECT_FALSE(gate.PollNext(channel, b));
}

TEST(InputGateTest, FinishedChannelsPerInput) {
  Mailbox mailbox;
  auto p = MakePartition(3, 64, 4);
  InputGate gate(&mailbox);
  int a = gate.AddChannel(p, 0, 1);
  int b = gate.AddChannel(p, 1, 1);
  int c = gate.AddChannel(p, 2, 2);
  gate.Start();
  EXPECT_FALSE(gate.AllFinished());
  EXPECT_FALSE(gate.InputFinished(1));
  EXPECT_FALSE(gate.InputFinished(2));
  gate.MarkFinished(a);
  gate.MarkFinished(a);  // repeated: counted once
  EXPECT_FALSE(gate.InputFinished(1));
  EXPECT_FALSE(gate.AllFinished());
  gate.MarkFinished(c);
  EXPECT_TRUE(gate.InputFinished(2));
  EXPECT_FALSE(gate.AllFinished());
  gate.MarkFinished(b);
  EXPECT_TRUE(gate.InputFinished(1));
  EXPECT_TRUE(gate.AllFinished());
  EXPECT_TRUE(gate.Channel(a).finished);
  EXPECT_EQ(gate.Channel(c).input_index, 2);
}

TEST(InputGateTest, DestroyedGateIsUnregistered) {
  Mailbox mailbox;
  auto p = MakePartition(1, 64, 4);
  {
    InputGate gate(&mailbox);
    gate.AddChannel(p, 0, 1);
    gate.Start();
  }
  mailbox.ResetInputSignal();
  p->Add(0, DataBuffer(*p, 1));
  EXPECT_FALSE(WakesWithin(mailbox, milliseconds(30))) << "a destroyed gate still received notifications";
  EXPECT_EQ(p->QueuedBuffers(0), 1u);
}

TEST(InputGateTest, EndToEndFromRecordWriterThroughTheGate) {
  Mailbox mailbox;
  auto partition = MakePartition(2, 256, 8);
  InputGate gate(&mailbox);
  gate.AddChannel(partition, 0, 1);
  gate.AddChannel(partition, 1, 1);
  gate.Start();
  std::thread producer([&] {
    RecordWriter writer(partition);
    for (int i = 0; i < 200; ++i) {
      std::string v = "value-" + std::to_string(i);
      writer.WriteRecord(i % 2, i, reinterpret_cast<const uint8_t*>(v.data()), v.size());
    }
    writer.BroadcastWatermark(500);
    writer.EmitEndOfPartition();
  });
  std::vector<std::vector<Element>> per_channel(2);
  auto deadline = SteadyClock::now() + std::chrono::seconds(20);
  while (!gate.AllFinished() && SteadyClock::now() < deadline) {
    int channel = -1;
    Buffer b;
    if (!gate.PollNext(channel, b)) {
      mailbox.Wait(10'000'000);
      continue;
    }
    InputChannel& ch = gate.Channel(channel);
    if (b.Kind() == BufferKind::kEvent) {
      ASSERT_EQ(b.Data()[0], static_cast<uint8_t>(EventKind::kEndOfPartition));
      EXPECT_TRUE(ch.deserializer.IsClean());
      gate.MarkFinished(channel);
      continue;
    }
    ch.deserializer.SetBuffer(b.Data(), b.Size());
    Drain(ch.deserializer, per_channel[static_cast<size_t>(channel)]);
  }
  producer.join();
  ASSERT_TRUE(gate.AllFinished());
  for (int c = 0; c < 2; ++c) {
    const auto& got = per_channel[static_cast<size_t>(c)];
    ASSERT_EQ(got.size(), 101u) << "channel " << c;
    for (int i = 0; i < 100; ++i) {
      int n = 2 * i + c;
      EXPECT_EQ(got[static_cast<size_t>(i)], RecordElement(n, "value-" + std::to_string(n)));
    }
    EXPECT_EQ(got.back(), WatermarkElement(500));
  }
}

// ---- NetworkInputProcessor ------------------------------------------------------------------------

template <class T>
class CollectingInput final : public Input<T> {
 public:
  void ProcessElement(const T& value, Timestamp ts) override {
    values.push_back(value);
    timestamps.push_back(ts);
  }
  std::vector<T> values;
  std::vector<Timestamp> timestamps;
};

class RecordingHandler final : public ElementHandler {
 public:
  void OnWatermark(int channel, Timestamp watermark) override { watermarks.emplace_back(channel, watermark); }
  void OnWatermarkStatus(int channel, bool idle) { statuses.emplace_back(channel, idle); }
  std::vector<std::pair<int, Timestamp>> watermarks;
  std::vector<std::pair<int, bool>> statuses;
};

template <class T>
std::vector<uint8_t> EncodedRecord(const T& value, Timestamp ts) {
  ByteWriter w;
  SerializeToBytes(value, w);
  std::vector<uint8_t> bytes;
  AppendElement(bytes, RecordElement(ts, std::string(reinterpret_cast<const char*>(w.Data()), w.Size())));
  return bytes;
}

template <class T>
Status Process(const std::vector<uint8_t>& bytes, CollectingInput<T>& input, RecordingHandler& handler) {
  NetworkInputProcessor<T> processor(&input);
  ChannelDeserializer d;
  d.SetBuffer(bytes.data(), bytes.size());
  return processor.ProcessBuffer(d, 3, handler);
}

TEST(NetworkInputProcessorTest, DecodesRecordsAndWatermarks) {
  std::vector<uint8_t> bytes = EncodedRecord(std::string("alpha"), 5);
  AppendElement(bytes, WatermarkElement(6));
  std::vector<uint8_t> second = EncodedRecord(std::string(""), 7);
  bytes.insert(bytes.end(), second.begin(), second.end());
  CollectingInput<std::string> input;
  RecordingHandler handler;
  NetworkInputProcessor<std::string> processor(&input);
  ChannelDeserializer d;
  d.SetBuffer(bytes.data(), bytes.size());
  Status s = processor.ProcessBuffer(d, 3, handler);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(input.values, (std::vector<std::string>{"alpha", ""}));
  EXPECT_EQ(input.timestamps, (std::vector<Timestamp>{5, 7}));
  EXPECT_EQ(handler.watermarks, (std::vector<std::pair<int, Timestamp>>{{3, 6}}));
  EXPECT_EQ(processor.RecordsIn(), 2);
}

TEST(NetworkInputProcessorTest, DecodesRecordsSpanningBuffers) {
  std::vector<uint8_t> bytes = EncodedRecord(std::vector<int64_t>{1, 2, 3, 4, 5}, 9);
  size_t split = bytes.size() / 2;
  std::vector<uint8_t> a(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(split));
  std::vector<uint8_t> b(bytes.begin() + static_cast<ptrdiff_t>(split), bytes.end());
  CollectingInput<std::vector<int64_t>> input;
  RecordingHandler handler;
  NetworkInputProcessor<std::vector<int64_t>> processor(&input);
  ChannelDeserializer d;
  d.SetBuffer(a.data(), a.size());
  ASSERT_TRUE(processor.ProcessBuffer(d, 0, handler).IsOk());
  EXPECT_TRUE(input.values.empty());
  d.SetBuffer(b.data(), b.size());
  ASSERT_TRUE(processor.ProcessBuffer(d, 0, handler).IsOk());
  ASSERT_EQ(input.values.size(), 1u);
  EXPECT_EQ(input.values[0], (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

TEST(NetworkInputProcessorTest, RecordShorterThanItsTimestampIsCorruption) {
  std::vector<uint8_t> bytes;
  AppendElement(bytes, Element{ElementTag::kRecord, {1, 2, 3}});
  CollectingInput<int32_t> input;
  RecordingHandler handler;
  Status s = Process(bytes, input, handler);
  EXPECT_EQ(s.Code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_TRUE(input.values.empty());
}

TEST(NetworkInputProcessorTest, UndecodableValueIsCorruption) {
  // A string whose length prefix claims 4e9 bytes.
  std::string value(4, '\0');
  uint32_t huge = 4000000000u;
  std::memcpy(value.data(), &huge, 4);
  value += "abc";
  std::vector<uint8_t> bytes;
  AppendElement(bytes, RecordElement(1, value));
  CollectingInput<std::string> input;
  RecordingHandler handler;
  Status s = Process(bytes, input, handler);
  EXPECT_EQ(s.Code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_TRUE(input.values.empty());
}

TEST(NetworkInputProcessorTest, LeftoverValueBytesAreCorruption) {
  std::vector<uint8_t> bytes;
  AppendElement(bytes, RecordElement(1, std::string(9, 'x')));  // int64 takes 8
  CollectingInput<int64_t> input;
  RecordingHandler handler;
  Status s = Process(bytes, input, handler);
  EXPECT_EQ(s.Code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_TRUE(input.values.empty());
}

TEST(NetworkInputProcessorTest, MalformedWatermarkAndUnknownTagAreCorruption) {
  CollectingInput<int64_t> input;
  RecordingHandler handler;
  std::vector<uint8_t> short_watermark;
  AppendElement(short_watermark, Element{ElementTag::kWatermark, {1, 2, 3, 4}});
  EXPECT_EQ(Process(short_watermark, input, handler).Code(), StatusCode::kCorruption);
  std::vector<uint8_t> unknown;
  AppendElement(unknown, Element{static_cast<ElementTag>(3), {0, 0, 0, 0, 0, 0, 0, 0}});
  EXPECT_EQ(Process(unknown, input, handler).Code(), StatusCode::kCorruption);
  EXPECT_TRUE(handler.watermarks.empty());
  EXPECT_TRUE(input.values.empty());
}

TEST(NetworkInputProcessorTest, ValidWatermarkStatusIsAccepted) {
  CollectingInput<int64_t> input;
  RecordingHandler handler;
  std::vector<uint8_t> bytes;
  AppendElement(bytes, Element{ElementTag::kWatermarkStatus, {1}});
  AppendElement(bytes, Element{ElementTag::kWatermarkStatus, {0}});
  std::vector<uint8_t> record = EncodedRecord(int64_t{42}, 1);
  bytes.insert(bytes.end(), record.begin(), record.end());
  Status s = Process(bytes, input, handler);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(input.values, std::vector<int64_t>{42});
  EXPECT_EQ(handler.statuses, (std::vector<std::pair<int, bool>>{{3, true}, {3, false}}));
}

TEST(NetworkInputProcessorTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(99);
  int corrupt = 0;
  for (int round = 0; round < 5000; ++round) {
    std::vector<uint8_t> bytes(rng() % 64);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    // Small lengths in headers make complete (and wrong) elements likely.
    if (bytes.size() >= 4 && round % 2 == 0) {
      uint32_t header = ((static_cast<uint32_t>(rng()) % 40) << 2) | (static_cast<uint32_t>(rng()) & 3u);
      std::memcpy(bytes.data(), &header, 4);
    }
    CollectingInput<std::map<std::string, std::vector<int32_t>>> input;
    RecordingHandler handler;
    Status s = Process(bytes, input, handler);
    EXPECT_TRUE(s.IsOk() || s.Code() == StatusCode::kCorruption) << s.ToString();
    if (!s.IsOk()) ++corrupt;
  }
  EXPECT_GT(corrupt, 100) << "garbage was hardly ever detected";
}

}  // namespace
}  // namespace freshet::internal
