#pragma once
// The data plane's frame layout and limits (the protocol itself is described
// at the top of network_environment.h). Encoding is explicit little-endian
// byte by byte, so the format does not depend on the host.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace freshet::internal::net {

inline constexpr uint16_t kProtocolVersion = 1;

/// u32 payload length, u8 type, u32 channel.
inline constexpr size_t kFrameHeaderSize = 9;

enum class FrameType : uint8_t {
  // Client (consumer) to server (producer).
  kPartitionRequest = 1,
  kAddCredit = 2,
  kCloseChannel = 3,
  // Server to client.
  kRequestOk = 16,
  kError = 17,
  kDataBuffer = 18,
  kEventBuffer = 19,
};

/// Largest payload of a control frame (request, credit, close, error).
inline constexpr uint32_t kMaxControlPayload = 64 * 1024;
/// Largest event buffer (checkpoint barriers and the like are tiny).
inline constexpr uint32_t kMaxEventSize = 16 * 1024 * 1024;
/// Receive segment sizes a request may announce.
inline constexpr uint32_t kMinSegmentSize = 64;
inline constexpr uint32_t kMaxSegmentSize = 64 * 1024 * 1024;
/// Credit a request may announce, and the most a sender may hold at once.
inline constexpr uint32_t kMaxInitialCredit = 1 << 16;
inline constexpr int64_t kMaxHeldCredit = int64_t{1} << 30;
/// Longest a server retries a request for a partition that is not there.
inline constexpr uint32_t kMaxRequestWaitMs = 3'600'000;
inline constexpr size_t kMaxJobIdLength = 1024;

inline void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t GetU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

struct FrameHeader {
  uint32_t length = 0;  // of the payload
  FrameType type = FrameType::kError;
  uint32_t channel = 0;
};

inline void EncodeHeader(uint8_t* out, uint32_t length, FrameType type, uint32_t channel) {
  PutU32(out, length);
  out[4] = static_cast<uint8_t>(type);
  PutU32(out + 5, channel);
}

inline FrameHeader DecodeHeader(const uint8_t* in) {
  return FrameHeader{GetU32(in), static_cast<FrameType>(in[4]), GetU32(in + 5)};
}

/// The fields of a partition request.
struct PartitionRequest {
  uint16_t version = kProtocolVersion;
  uint32_t wait_ms = 0;          // how long the server retries a partition that is not registered yet
  uint32_t initial_credit = 0;   // free receive segments
  uint32_t segment_size = 0;     // largest data buffer the receiver takes
  int32_t edge = -1;
  int32_t producer_subtask = -1;
  int32_t subpartition = 0;
  std::string job_id;
};

inline constexpr size_t kPartitionRequestFixedSize = 2 + 4 + 4 + 4 + 4 + 4 + 4 + 2;

/// Appends a whole PARTITION_REQUEST frame.
inline void AppendPartitionRequest(std::string& out, uint32_t channel, const PartitionRequest& r) {
  uint8_t fixed[kFrameHeaderSize + kPartitionRequestFixedSize];
  EncodeHeader(fixed, static_cast<uint32_t>(kPartitionRequestFixedSize + r.job_id.size()),
               FrameType::kPartitionRequest, channel);
  uint8_t* p = fixed + kFrameHeaderSize;
  PutU16(p, r.version);
  PutU32(p + 2, r.wait_ms);
  PutU32(p + 6, r.initial_credit);
  PutU32(p + 10, r.segment_size);
  PutU32(p + 14, static_cast<uint32_t>(r.edge));
  PutU32(p + 18, static_cast<uint32_t>(r.producer_subtask));
  PutU32(p + 22, static_cast<uint32_t>(r.subpartition));
  PutU16(p + 26, static_cast<uint16_t>(r.job_id.size()));
  out.append(reinterpret_cast<const char*>(fixed), sizeof(fixed));
  out.append(r.job_id);
}

/// Decodes a PARTITION_REQUEST payload; false when its layout is wrong
/// (the values are checked by the server).
inline bool DecodePartitionRequest(const uint8_t* p, size_t n, PartitionRequest& r) {
  if (n < kPartitionRequestFixedSize) return false;
  r.version = GetU16(p);
  r.wait_ms = GetU32(p + 2);
  r.initial_credit = GetU32(p + 6);
  r.segment_size = GetU32(p + 10);
  r.edge = static_cast<int32_t>(GetU32(p + 14));
  r.producer_subtask = static_cast<int32_t>(GetU32(p + 18));
  r.subpartition = static_cast<int32_t>(GetU32(p + 22));
  size_t job_length = GetU16(p + 26);
  if (n != kPartitionRequestFixedSize + job_length) return false;
  r.job_id.assign(reinterpret_cast<const char*>(p + kPartitionRequestFixedSize), job_length);
  return true;
}

/// Appends a frame whose payload is `payload` (control frames).
inline void AppendFrame(std::string& out, FrameType type, uint32_t channel, std::string_view payload) {
  uint8_t header[kFrameHeaderSize];
  EncodeHeader(header, static_cast<uint32_t>(payload.size()), type, channel);
  out.append(reinterpret_cast<const char*>(header), sizeof(header));
  out.append(payload);
}

inline void AppendAddCredit(std::string& out, uint32_t channel, uint32_t credit) {
  uint8_t frame[kFrameHeaderSize + 4];
  EncodeHeader(frame, 4, FrameType::kAddCredit, channel);
  PutU32(frame + kFrameHeaderSize, credit);
  out.append(reinterpret_cast<const char*>(frame), sizeof(frame));
}

}  // namespace freshet::internal::net
