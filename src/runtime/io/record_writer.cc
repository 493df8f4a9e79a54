#include "freshet/internal/record_writer.h"

#include <cstring>

#include "freshet/internal/operator.h"
#include "runtime/io/result_partition.h"

namespace freshet::internal {

RecordWriter::RecordWriter(std::shared_ptr<ResultPartition> partition)
    : partition_(std::move(partition)), channels_(static_cast<size_t>(partition_->NumSubpartitions())) {}

RecordWriter::~RecordWriter() {
  // Unsent partial buffers go back to the pool.
  for (Channel& c : channels_) {
    if (c.start != nullptr) partition_->Pool().Recycle(c.start);
  }
}

void RecordWriter::AcquireBuffer(int channel) {
  uint8_t* segment = partition_->Pool().RequestBlocking();
  if (segment == nullptr) throw TaskCancelledException();
  Channel& c = channels_[static_cast<size_t>(channel)];
  c.start = segment;
  c.pos = segment;
  c.limit = segment + partition_->Pool().SegmentSize();
}

void RecordWriter::FinishBuffer(int channel) {
  Channel& c = channels_[static_cast<size_t>(channel)];
  if (c.start == nullptr) return;
  if (c.pos == c.start) return;  // nothing written: keep the segment
  partition_->Add(channel, Buffer(c.start, static_cast<size_t>(c.pos - c.start), BufferKind::kData,
                                  &partition_->Pool()));
  c.start = c.pos = c.limit = nullptr;
}

void RecordWriter::WriteBytes(int channel, const uint8_t* bytes, size_t n) {
  while (n > 0) {
    Channel& c = channels_[static_cast<size_t>(channel)];
    if (c.pos == c.limit) {
      FinishBuffer(channel);
      if (c.start == nullptr) AcquireBuffer(channel);
    }
    size_t room = static_cast<size_t>(c.limit - c.pos);
    size_t k = n < room ? n : room;
    std::memcpy(c.pos, bytes, k);
    c.pos += k;
    bytes += k;
    n -= k;
  }
}

void RecordWriter::WriteRecord(int channel, Timestamp ts, const uint8_t* value, size_t size) {
  if (size + sizeof(ts) > kMaxElementPayload) {
    throw OperatorException("network output", "record of " + std::to_string(size) + " bytes exceeds the 1 GiB limit");
  }
  uint8_t prefix[kRecordPrefixSize];
  uint32_t header = MakeElementHeader(ElementTag::kRecord, static_cast<uint32_t>(sizeof(ts) + size));
  std::memcpy(prefix, &header, sizeof(header));
  std::memcpy(prefix + kElementHeaderSize, &ts, sizeof(ts));
  size_t total = kRecordPrefixSize + size;
  if (uint8_t* p = TryReserve(channel, total)) {
    std::memcpy(p, prefix, kRecordPrefixSize);
    std::memcpy(p + kRecordPrefixSize, value, size);
    return;
  }
  WriteBytes(channel, prefix, kRecordPrefixSize);
  WriteBytes(channel, value, size);
}

void RecordWriter::BroadcastWatermark(Timestamp watermark) {
  uint8_t element[kElementHeaderSize + sizeof(Timestamp)];
  uint32_t header = MakeElementHeader(ElementTag::kWatermark, sizeof(Timestamp));
  std::memcpy(element, &header, sizeof(header));
  std::memcpy(element + kElementHeaderSize, &watermark, sizeof(watermark));
  for (int c = 0; c < NumChannels(); ++c) WriteBytes(c, element, sizeof(element));
}

void RecordWriter::BroadcastWatermarkStatus(bool idle) {
  uint8_t element[kElementHeaderSize + 1];
  uint32_t header = MakeElementHeader(ElementTag::kWatermarkStatus, 1);
  std::memcpy(element, &header, sizeof(header));
  element[kElementHeaderSize] = idle ? 1 : 0;
  for (int c = 0; c < NumChannels(); ++c) WriteBytes(c, element, sizeof(element));
}

void RecordWriter::FlushAll() {
  for (int c = 0; c < NumChannels(); ++c) FinishBuffer(c);
}

void RecordWriter::EmitEndOfPartition() { BroadcastEvent(std::string(1, static_cast<char>(EventKind::kEndOfPartition))); }

namespace {
Buffer EventBuffer(const std::string& bytes) {
  auto* data = new uint8_t[bytes.size()];
  std::memcpy(data, bytes.data(), bytes.size());
  return Buffer(data, bytes.size(), BufferKind::kEvent, nullptr);
}
}  // namespace

void RecordWriter::BroadcastOvertakingEvent(const std::string& bytes, std::vector<std::string>* overtaken) {
  FlushAll();
  overtaken->resize(static_cast<size_t>(NumChannels()));
  for (int c = 0; c < NumChannels(); ++c) {
    partition_->AddOvertaking(c, EventBuffer(bytes), &(*overtaken)[static_cast<size_t>(c)]);
  }
}

void RecordWriter::AddRestoredData(int channel, const std::string& bytes) {
  FinishBuffer(channel);
  if (bytes.empty()) return;
  auto* data = new uint8_t[bytes.size()];
  std::memcpy(data, bytes.data(), bytes.size());
  partition_->Add(channel, Buffer(data, bytes.size(), BufferKind::kData, nullptr));
}

void RecordWriter::BroadcastEvent(const std::string& bytes) {
  FlushAll();
  for (int c = 0; c < NumChannels(); ++c) partition_->Add(c, EventBuffer(bytes));
}

}  // namespace freshet::internal
