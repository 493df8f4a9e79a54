#include "runtime/checkpoint/checkpoint_barrier.h"

#include <cstring>

#include "freshet/internal/buffer.h"
#include "freshet/serializer.h"

namespace freshet::internal {

std::string CheckpointBarrier::Encode() const {
  ByteWriter w;
  auto kind = static_cast<uint8_t>(EventKind::kCheckpointBarrier);
  w.Write(&kind, 1);
  w.Write(&id, sizeof(id));
  w.Write(&timestamp, sizeof(timestamp));
  uint8_t flags = (savepoint ? 1 : 0) | (terminate ? 2 : 0) | (unaligned ? 4 : 0);
  w.Write(&flags, 1);
  TypeSerializer<std::string>::Serialize(directory, w);
  return std::string(reinterpret_cast<const char*>(w.Data()), w.Size());
}

Result<CheckpointBarrier> CheckpointBarrier::Decode(const uint8_t* data, size_t size) {
  ByteReader r(data, size);
  uint8_t kind = 0;
  r.Read(&kind, 1);
  CheckpointBarrier b;
  r.Read(&b.id, sizeof(b.id));
  r.Read(&b.timestamp, sizeof(b.timestamp));
  uint8_t flags = 0;
  r.Read(&flags, 1);
  TypeSerializer<std::string>::Deserialize(r, b.directory);
  if (r.Failed() || r.Remaining() != 0 || kind != static_cast<uint8_t>(EventKind::kCheckpointBarrier) || flags > 7) {
    return Status::Corruption("malformed checkpoint barrier event (" + std::to_string(size) + " bytes)");
  }
  b.savepoint = (flags & 1) != 0;
  b.terminate = (flags & 2) != 0;
  b.unaligned = (flags & 4) != 0;
  return b;
}

}  // namespace freshet::internal
