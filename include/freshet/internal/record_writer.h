#pragma once
/// The producer side of one result partition, used by one task thread.
/// Serialized elements are appended to the current buffer of a channel
/// (one channel per consumer subtask); full buffers are handed to the
/// partition, which makes them visible to the consumer. When the buffer
/// pool is empty the writer waits: that wait is back-pressure.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "freshet/internal/buffer.h"
#include "freshet/types.h"

namespace freshet::internal {

class ResultPartition;

class RecordWriter {
 public:
  explicit RecordWriter(std::shared_ptr<ResultPartition> partition);
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;
  ~RecordWriter();

  int NumChannels() const { return static_cast<int>(channels_.size()); }
  ResultPartition& Partition() const { return *partition_; }

  /// Fast path: `n` contiguous bytes in the channel's current buffer, or
  /// nullptr when the caller must take the slow path.
  uint8_t* TryReserve(int channel, size_t n) {
    Channel& c = channels_[channel];
    if (static_cast<size_t>(c.limit - c.pos) >= n) {
      uint8_t* p = c.pos;
      c.pos += n;
      return p;
    }
    return nullptr;
  }

  /// Writes a record element (header, timestamp, value bytes), spanning
  /// buffers as needed. May wait for buffers (back-pressure).
  void WriteRecord(int channel, Timestamp ts, const uint8_t* value, size_t size);
  /// Writes a watermark element to every channel.
  void BroadcastWatermark(Timestamp watermark);
  /// Writes a watermark status element (idle or active) to every channel.
  void BroadcastWatermarkStatus(bool idle);
  /// Hands every partially filled buffer to the consumers.
  void FlushAll();
  /// Flushes, then appends an end-of-partition event to every channel.
  void EmitEndOfPartition();
  /// Flushes, then appends an event buffer holding `bytes` to every channel.
  void BroadcastEvent(const std::string& bytes);

  /// Flushes, then puts an event ahead of everything queued in every
  /// channel (an unaligned checkpoint barrier); appends, per channel, the
  /// bytes of the data it overtook to `overtaken` (resized to the channels).
  void BroadcastOvertakingEvent(const std::string& bytes, std::vector<std::string>* overtaken);
  /// Makes `bytes` (complete elements, or the rest of an element the
  /// consumer restored the start of) the next data of `channel`: output
  /// in flight restored from an unaligned checkpoint.
  void AddRestoredData(int channel, const std::string& bytes);

  /// Number of records written through this writer (all channels).
  int64_t& RecordsOut() { return records_out_; }

 private:
  struct Channel {
    uint8_t* start = nullptr;
    uint8_t* pos = nullptr;
    uint8_t* limit = nullptr;
  };
  void WriteBytes(int channel, const uint8_t* bytes, size_t n);
  void FinishBuffer(int channel);
  void AcquireBuffer(int channel);

  std::shared_ptr<ResultPartition> partition_;
  std::vector<Channel> channels_;
  int64_t records_out_ = 0;
};

}  // namespace freshet::internal
