#pragma once
/// Network buffers: fixed-size memory segments from bounded pools, and the
/// element framing inside data buffers.
///
/// A data buffer holds a sequence of elements. Each element starts with a
/// 32-bit little-endian header `(payload_length << 2) | tag`; elements may
/// span buffers of the same channel. Tags:
///   kRecord          payload: int64 timestamp, then the serialized value
///   kWatermark       payload: int64 watermark
///   kWatermarkStatus payload: uint8 (1 = idle, 0 = active)
/// Events that must be seen per channel (end of partition, checkpoint
/// barriers) travel as separate event buffers, never inside data buffers.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace freshet::internal {

inline constexpr size_t kDefaultSegmentSize = 32 * 1024;

enum class ElementTag : uint32_t { kRecord = 0, kWatermark = 1, kWatermarkStatus = 2 };
inline constexpr size_t kElementHeaderSize = 4;
inline constexpr size_t kRecordPrefixSize = kElementHeaderSize + sizeof(int64_t);
inline constexpr uint32_t kMaxElementPayload = (1u << 30) - 1;

inline uint32_t MakeElementHeader(ElementTag tag, uint32_t payload_size) {
  return (payload_size << 2) | static_cast<uint32_t>(tag);
}

enum class BufferKind : uint8_t { kData, kEvent };
enum class EventKind : uint8_t {
  kEndOfPartition = 1,     // the producer ended; nothing follows
  kCheckpointBarrier = 2,  // see CheckpointBarrier
  kEndOfData = 3,          // the producer emitted all its records; barriers may follow
  kPartitionError = 4,     // a remote channel broke; payload: the message. Nothing follows
};

class BufferPool;

/// A move-only handle on one memory segment holding `size` valid bytes.
/// Returning it to its pool happens on destruction (or Recycle()).
class Buffer {
 public:
  Buffer() = default;
  Buffer(uint8_t* data, size_t size, BufferKind kind, BufferPool* pool)
      : data_(data), size_(size), kind_(kind), pool_(pool) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { MoveFrom(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      Recycle();
      MoveFrom(o);
    }
    return *this;
  }
  ~Buffer() { Recycle(); }

  uint8_t* Data() const { return data_; }
  size_t Size() const { return size_; }
  BufferKind Kind() const { return kind_; }
  bool IsValid() const { return data_ != nullptr; }
  void Recycle();

 private:
  void MoveFrom(Buffer& o) {
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    kind_ = o.kind_;
    pool_ = std::exchange(o.pool_, nullptr);
  }
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  BufferKind kind_ = BufferKind::kData;
  BufferPool* pool_ = nullptr;  // nullptr: data_ is heap memory owned by this buffer (events)
};

/// A view of one complete element, valid until the next call on its reader.
struct ElementView {
  ElementTag tag;
  const uint8_t* payload;
  uint32_t size;
};

/// Reassembles elements from the data buffers of one input channel,
/// including elements that span buffers. Owned by the channel's consumer.
class ChannelDeserializer {
 public:
  void SetBuffer(const uint8_t* data, size_t size) {
    pos_ = data;
    end_ = data + size;
  }

  /// Returns the next complete element, or false when the current buffer is
  /// used up (a trailing partial element is kept for the next buffer).
  bool Next(ElementView& out) {
    if (spill_consumed_) {
      spill_.clear();
      spill_consumed_ = false;
    }
    if (!spill_.empty()) return NextFromSpill(out);
    size_t avail = static_cast<size_t>(end_ - pos_);
    if (avail >= kElementHeaderSize) {
      uint32_t header;
      std::memcpy(&header, pos_, sizeof(header));
      size_t len = header >> 2;
      if (avail >= kElementHeaderSize + len) {
        out.tag = static_cast<ElementTag>(header & 3u);
        out.payload = pos_ + kElementHeaderSize;
        out.size = static_cast<uint32_t>(len);
        pos_ += kElementHeaderSize + len;
        return true;
      }
    }
    if (avail > 0) {
      spill_.insert(spill_.end(), pos_, end_);
      pos_ = end_;
    }
    return false;
  }

  /// True when no partial element is pending (a channel must end clean).
  bool IsClean() const { return spill_.empty() || spill_consumed_; }
  /// The bytes of the partial element kept for the next buffer (empty when
  /// clean): in-flight data of an unaligned checkpoint.
  std::string_view PendingBytes() const {
    if (IsClean()) return {};
    return {reinterpret_cast<const char*>(spill_.data()), spill_.size()};
  }

 private:
  bool NextFromSpill(ElementView& out);

  const uint8_t* pos_ = nullptr;
  const uint8_t* end_ = nullptr;
  std::vector<uint8_t> spill_;
  bool spill_consumed_ = false;
};

}  // namespace freshet::internal
