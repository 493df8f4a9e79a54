// Checkpoint storage on a local (or mounted) file system through POSIX calls.
//
// State file: the raw bytes of every block, back to back, then a footer of
// kStateFileFooterSize bytes: u32 CRC32C of the data, u64 length of the data,
// the magic "FRSHSTAT". All integers little endian.
//
// Metadata (`_metadata`):
//   header   8-byte magic "FRESHCKP", u32 version (2), u64 total file length
//   body     string job_id, i64 checkpoint_id, i64 timestamp, u8 savepoint,
//            u32 count + strings: the file names BlockRefs point into,
//            u32 count + operators:
//              string operator_id, string name, i32 parallelism,
//              i32 max_parallelism,
//              u32 count + state infos (string name, kind, type_name),
//              u32 count + subtasks:
//                u32 count + key groups (i32 key group, block),
//                u32 count + operator states (string name, u8 mode,
//                                             u32 count + blocks),
//                u8 1 + incremental keyed state, or u8 0 (version 2):
//                  string backend_id, i32 first and i32 last key group,
//                  u32 count + shared files (string local name, string
//                    shared name, u64 size, u32 crc32c),
//                  u32 count + private files (string local name, block),
//            u32 count + files (string file, u64 size, u32 crc32c,
//                               u8 shared (version 2))
//   trailer  u32 CRC32C of everything before it
// A block is u32 index into the file names, u64 offset, u64 length; a
// string is u32 length and bytes. Every later version keeps the header and
// the trailer, so the checksum is verified before the version is looked at.
#include "runtime/checkpoint/checkpoint_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "freshet/key_groups.h"
#include "freshet/serializer.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace freshet::internal {

static_assert(std::endian::native == std::endian::little, "checkpoint formats are written little endian");

namespace {

namespace fs = std::filesystem;

constexpr char kStateFileMagic[8] = {'F', 'R', 'S', 'H', 'S', 'T', 'A', 'T'};
constexpr char kMetadataMagic[8] = {'F', 'R', 'E', 'S', 'H', 'C', 'K', 'P'};
constexpr uint32_t kMetadataVersion = 2;
constexpr uint32_t kOldestMetadataVersion = 1;  // read too: no incremental state
constexpr size_t kMetadataHeaderSize = 8 + 4 + 8;
constexpr size_t kMetadataTrailerSize = 4;
constexpr size_t kWriteBufferSize = size_t{1} << 20;
constexpr size_t kReadChunkSize = size_t{1} << 20;
constexpr const char* kMetadataFile = "_metadata";
constexpr const char* kMetadataTempFile = "_metadata.inprogress";

// ---------------------------------------------------------------------------
// CRC32C

constexpr uint32_t kCrc32cPolynomial = 0x82F63B78;  // Castagnoli, reflected

struct Crc32cTables {
  uint32_t t[8][256];
};

constexpr Crc32cTables MakeCrc32cTables() {
  Crc32cTables tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kCrc32cPolynomial : 0);
    tables.t[0][i] = c;
  }
  // t[s][i]: the CRC of byte i followed by s zero bytes (slicing by 8).
  for (int s = 1; s < 8; ++s) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t prev = tables.t[s - 1][i];
      tables.t[s][i] = (prev >> 8) ^ tables.t[0][prev & 0xFF];
    }
  }
  return tables;
}

constexpr Crc32cTables kCrc32cTables = MakeCrc32cTables();

// Both implementations take and return the CRC register (pre-inverted).
uint32_t Crc32cTable(const uint8_t* p, size_t n, uint32_t c) {
  const auto& t = kCrc32cTables.t;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = t[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    --n;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= c;
    c = t[7][w & 0xFF] ^ t[6][(w >> 8) & 0xFF] ^ t[5][(w >> 16) & 0xFF] ^ t[4][(w >> 24) & 0xFF] ^
        t[3][(w >> 32) & 0xFF] ^ t[2][(w >> 40) & 0xFF] ^ t[1][(w >> 48) & 0xFF] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = t[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    --n;
  }
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(const uint8_t* p, size_t n, uint32_t c) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(c, *p++);
    --n;
  }
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (n > 0) {
    c = _mm_crc32_u8(c, *p++);
    --n;
  }
  return c;
}
#endif

using Crc32cFunction = uint32_t (*)(const uint8_t*, size_t, uint32_t);

Crc32cFunction ChooseCrc32c() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) return &Crc32cSse42;
#endif
  return &Crc32cTable;
}

// ---------------------------------------------------------------------------
// POSIX helpers

// GNU strerror_r returns the message, XSI strerror_r an error code.
[[maybe_unused]] const char* StrerrorResult(int rc, const char* buffer) { return rc == 0 ? buffer : "unknown error"; }
[[maybe_unused]] const char* StrerrorResult(const char* message, const char*) { return message; }

std::string ErrnoText(int err) {
  char buffer[256];
  buffer[0] = '\0';
  return StrerrorResult(strerror_r(err, buffer, sizeof(buffer)), buffer);
}

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  return Status::IoError("cannot " + what + " " + path + ": " + ErrnoText(err));
}

/// Owns a file descriptor; closes it (ignoring errors) unless Close() was called.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  /// Closes and reports the error (a failed close may mean lost data on NFS).
  Status Close(const std::string& path) {
    int fd = std::exchange(fd_, -1);
    if (fd >= 0 && ::close(fd) != 0) return ErrnoStatus("close", path, errno);
    return Status::Ok();
  }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string JoinPath(const std::string& directory, const std::string& file) {
  return (fs::path(directory) / file).string();
}

Status CreateDirectories(const std::string& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) return Status::IoError("cannot create directory " + directory + ": " + ec.message());
  return Status::Ok();
}

Result<ScopedFd> OpenForWrite(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("create", path, errno);
  return ScopedFd(fd);
}

/// Opens for reading; a missing file is NotFound with `missing_message`.
Result<ScopedFd> OpenForRead(const std::string& path, const std::string& missing_message) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(missing_message);
    return ErrnoStatus("open", path, errno);
  }
  return ScopedFd(fd);
}

Status WriteAll(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status SyncFile(int fd, const std::string& path) {
  int rc;
  do {
    rc = ::fsync(fd);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoStatus("sync", path, errno);
  return Status::Ok();
}

/// Makes a rename or a file creation in `directory` durable.
Status SyncDirectory(const std::string& directory) {
  int fd;
  do {
    fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("open directory", directory, errno);
  ScopedFd dir(fd);
  int rc;
  do {
    rc = ::fsync(dir.Get());
  } while (rc != 0 && errno == EINTR);
  // Some file systems cannot sync a directory; they order metadata anyway.
  if (rc != 0 && errno != EINVAL && errno != ENOTSUP) return ErrnoStatus("sync directory", directory, errno);
  return dir.Close(directory);
}

Result<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

/// Reads up to `n` bytes at `offset`; `*got` is less than `n` only at end of file.
Status PreadAll(int fd, void* out, size_t n, uint64_t offset, const std::string& path, size_t* got) {
  char* p = static_cast<char*>(out);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", path, errno);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  *got = done;
  return Status::Ok();
}

/// Reads one block of an open state file of `file_size` bytes into `out`.
Status ReadRange(int fd, uint64_t file_size, const std::string& path, const BlockRef& block, std::string* out) {
  if (block.offset > file_size || block.length > file_size - block.offset) {
    return Status::Corruption(fmt::format("state file {} is shorter than expected: it has {} bytes, a block needs "
                                          "bytes [{}, {})",
                                          path, file_size, block.offset, block.offset + block.length));
  }
  out->resize(block.length);
  size_t got = 0;
  FRESHET_RETURN_IF_ERROR(PreadAll(fd, out->data(), out->size(), block.offset, path, &got));
  if (got != block.length) {
    return Status::Corruption(fmt::format("state file {} is shorter than expected: read {} of {} bytes at offset {}",
                                          path, got, block.length, block.offset));
  }
  return Status::Ok();
}

/// `chk-<n>` (no sign, no leading zeros) -> n.
std::optional<CheckpointId> ParseCheckpointDirectoryName(std::string_view name) {
  constexpr std::string_view kPrefix = "chk-";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  std::string_view digits = name.substr(kPrefix.size());
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  CheckpointId id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return id;
}

// ---------------------------------------------------------------------------
// Metadata encoding

template <class T>
void Put(ByteWriter& w, T value) {
  w.Write(&value, sizeof(value));
}

void PutString(ByteWriter& w, const std::string& s) { TypeSerializer<std::string>::Serialize(s, w); }

void PutCount(ByteWriter& w, size_t n) { Put<uint32_t>(w, static_cast<uint32_t>(n)); }

template <class T>
T Get(ByteReader& r) {
  T value{};
  r.Read(&value, sizeof(value));
  return value;
}

std::string GetString(ByteReader& r) {
  std::string s;
  TypeSerializer<std::string>::Deserialize(r, s);
  return s;
}

constexpr size_t kEncodedBlockSize = 4 + 8 + 8;

class MetadataEncoder {
 public:
  std::string Encode(const CheckpointMetadata& m) {
    for (const OperatorStateHandle& op : m.operators) {
      for (const OperatorSubtaskStateHandle& sub : op.subtasks) {
        for (const auto& [kg, block] : sub.key_groups) Intern(block.file);
        for (const auto& [name, list] : sub.operator_state) {
          for (const BlockRef& block : list.entries) Intern(block.file);
        }
        if (sub.incremental) {
          for (const auto& [local, block] : sub.incremental->private_files) Intern(block.file);
        }
      }
    }

    ByteWriter w;
    w.Write(kMetadataMagic, sizeof(kMetadataMagic));
    Put<uint32_t>(w, kMetadataVersion);
    Put<uint64_t>(w, 0);  // total length, patched below

    PutString(w, m.job_id);
    Put<int64_t>(w, m.checkpoint_id);
    Put<int64_t>(w, m.timestamp);
    Put<uint8_t>(w, m.savepoint ? 1 : 0);

    PutCount(w, names_.size());
    for (const std::string& name : names_) PutString(w, name);

    PutCount(w, m.operators.size());
    for (const OperatorStateHandle& op : m.operators) {
      PutString(w, op.operator_id);
      PutString(w, op.name);
      Put<int32_t>(w, op.parallelism);
      Put<int32_t>(w, op.max_parallelism);
      PutCount(w, op.state_info.size());
      for (const StateInfo& info : op.state_info) {
        PutString(w, info.name);
        PutString(w, info.kind);
        PutString(w, info.type_name);
      }
      PutCount(w, op.subtasks.size());
      for (const OperatorSubtaskStateHandle& sub : op.subtasks) {
        PutCount(w, sub.key_groups.size());
        for (const auto& [kg, block] : sub.key_groups) {
          Put<int32_t>(w, kg);
          PutBlock(w, block);
        }
        PutCount(w, sub.operator_state.size());
        for (const auto& [name, list] : sub.operator_state) {
          PutString(w, name);
          Put<uint8_t>(w, static_cast<uint8_t>(list.mode));
          PutCount(w, list.entries.size());
          for (const BlockRef& block : list.entries) PutBlock(w, block);
        }
        Put<uint8_t>(w, sub.incremental ? 1 : 0);
        if (sub.incremental) {
          const OperatorSubtaskStateHandle::Incremental& inc = *sub.incremental;
          PutString(w, inc.backend_id);
          Put<int32_t>(w, inc.key_group_start);
          Put<int32_t>(w, inc.key_group_end);
          PutCount(w, inc.shared_files.size());
          for (const auto& [local, file] : inc.shared_files) {
            PutString(w, local);
            PutString(w, file.name);
            Put<uint64_t>(w, file.size);
            Put<uint32_t>(w, file.crc32c);
          }
          PutCount(w, inc.private_files.size());
          for (const auto& [local, block] : inc.private_files) {
            PutString(w, local);
            PutBlock(w, block);
          }
        }
      }
    }

    PutCount(w, m.files.size());
    for (const StateFileInfo& f : m.files) {
      PutString(w, f.file);
      Put<uint64_t>(w, f.size);
      Put<uint32_t>(w, f.crc32c);
      Put<uint8_t>(w, f.shared ? 1 : 0);
    }

    std::string out(reinterpret_cast<const char*>(w.Data()), w.Size());
    uint64_t total = out.size() + kMetadataTrailerSize;
    std::memcpy(out.data() + 12, &total, sizeof(total));
    uint32_t crc = Crc32c(out.data(), out.size());
    out.append(reinterpret_cast<const char*>(&crc), sizeof(crc));
    return out;
  }

 private:
  void Intern(const std::string& file) {
    if (index_.emplace(file, static_cast<uint32_t>(names_.size())).second) names_.push_back(file);
  }
  void PutBlock(ByteWriter& w, const BlockRef& block) {
    Put<uint32_t>(w, index_.at(block.file));
    Put<uint64_t>(w, block.offset);
    Put<uint64_t>(w, block.length);
  }

  std::vector<std::string> names_;
  std::map<std::string, uint32_t> index_;
};

/// Decodes the body (between header and trailer); returns what is wrong.
class MetadataDecoder {
 public:
  MetadataDecoder(const uint8_t* data, size_t size, uint32_t version) : r_(data, size), version_(version) {}

  Result<CheckpointMetadata> Decode() {
    CheckpointMetadata m;
    m.job_id = GetString(r_);
    m.checkpoint_id = Get<int64_t>(r_);
    m.timestamp = Get<int64_t>(r_);
    uint8_t savepoint = Get<uint8_t>(r_);
    if (savepoint > 1) return Bad("bad savepoint flag");
    m.savepoint = savepoint == 1;

    uint32_t num_names = ReadLength(r_, 4);
    for (uint32_t i = 0; i < num_names && !r_.Failed(); ++i) names_.push_back(GetString(r_));

    uint32_t num_operators = ReadLength(r_, 4 + 4 + 4 + 4 + 4 + 4);
    for (uint32_t i = 0; i < num_operators && !r_.Failed(); ++i) {
      OperatorStateHandle& op = m.operators.emplace_back();
      op.operator_id = GetString(r_);
      op.name = GetString(r_);
      op.parallelism = Get<int32_t>(r_);
      op.max_parallelism = Get<int32_t>(r_);
      uint32_t num_infos = ReadLength(r_, 4 + 4 + 4);
      for (uint32_t j = 0; j < num_infos && !r_.Failed(); ++j) {
        StateInfo& info = op.state_info.emplace_back();
        info.name = GetString(r_);
        info.kind = GetString(r_);
        info.type_name = GetString(r_);
      }
      uint32_t num_subtasks = ReadLength(r_, 4 + 4);
      for (uint32_t j = 0; j < num_subtasks && !r_.Failed(); ++j) {
        OperatorSubtaskStateHandle& sub = op.subtasks.emplace_back();
        uint32_t num_key_groups = ReadLength(r_, 4 + kEncodedBlockSize);
        for (uint32_t k = 0; k < num_key_groups && !r_.Failed(); ++k) {
          int32_t kg = Get<int32_t>(r_);
          FRESHET_ASSIGN_OR_RETURN(BlockRef block, GetBlock());
          if (!sub.key_groups.emplace(kg, std::move(block)).second) {
            return Bad(fmt::format("key group {} listed twice for operator '{}'", kg, op.name));
          }
        }
        uint32_t num_states = ReadLength(r_, 4 + 1 + 4);
        for (uint32_t k = 0; k < num_states && !r_.Failed(); ++k) {
          std::string name = GetString(r_);
          uint8_t mode = Get<uint8_t>(r_);
          if (mode > static_cast<uint8_t>(OperatorStateMode::kChannel)) {
            return Bad(fmt::format("unknown operator state mode {}", mode));
          }
          OperatorSubtaskStateHandle::ListState list;
          list.mode = static_cast<OperatorStateMode>(mode);
          uint32_t num_entries = ReadLength(r_, kEncodedBlockSize);
          for (uint32_t e = 0; e < num_entries && !r_.Failed(); ++e) {
            FRESHET_ASSIGN_OR_RETURN(BlockRef block, GetBlock());
            list.entries.push_back(std::move(block));
          }
          if (!sub.operator_state.emplace(std::move(name), std::move(list)).second) {
            return Bad("operator state listed twice");
          }
        }
        if (version_ >= 2) FRESHET_RETURN_IF_ERROR(DecodeIncremental(sub));
      }
    }

    uint32_t num_files = ReadLength(r_, 4 + 8 + 4 + (version_ >= 2 ? 1 : 0));
    for (uint32_t i = 0; i < num_files && !r_.Failed(); ++i) {
      StateFileInfo& f = m.files.emplace_back();
      f.file = GetString(r_);
      f.size = Get<uint64_t>(r_);
      f.crc32c = Get<uint32_t>(r_);
      if (version_ >= 2) {
        uint8_t shared = Get<uint8_t>(r_);
        if (shared > 1) return Bad("bad shared-file flag");
        f.shared = shared == 1;
      }
    }
    if (r_.Failed()) return Bad("it ends early");
    if (r_.Remaining() != 0) return Bad(fmt::format("{} bytes are left over", r_.Remaining()));
    return m;
  }

 private:
  Result<BlockRef> GetBlock() {
    uint32_t index = Get<uint32_t>(r_);
    BlockRef block;
    block.offset = Get<uint64_t>(r_);
    block.length = Get<uint64_t>(r_);
    if (r_.Failed()) return Bad("it ends early");
    if (index >= names_.size()) return Bad(fmt::format("file index {} out of range", index));
    block.file = names_[index];
    return block;
  }
  Status DecodeIncremental(OperatorSubtaskStateHandle& sub) {
    uint8_t present = Get<uint8_t>(r_);
    if (present > 1) return Bad("bad incremental-state flag");
    if (present == 0) return Status::Ok();
    OperatorSubtaskStateHandle::Incremental& inc = sub.incremental.emplace();
    inc.backend_id = GetString(r_);
    inc.key_group_start = Get<int32_t>(r_);
    inc.key_group_end = Get<int32_t>(r_);
    uint32_t num_shared = ReadLength(r_, 4 + 4 + 8 + 4);
    for (uint32_t i = 0; i < num_shared && !r_.Failed(); ++i) {
      std::string local = GetString(r_);
      SharedFileRef file;
      file.name = GetString(r_);
      file.size = Get<uint64_t>(r_);
      file.crc32c = Get<uint32_t>(r_);
      if (!IsPlainFileName(local) || !IsPlainFileName(file.name)) return Bad("bad shared file name");
      inc.shared_files.emplace_back(std::move(local), std::move(file));
    }
    uint32_t num_private = ReadLength(r_, 4 + kEncodedBlockSize);
    for (uint32_t i = 0; i < num_private && !r_.Failed(); ++i) {
      std::string local = GetString(r_);
      FRESHET_ASSIGN_OR_RETURN(BlockRef block, GetBlock());
      if (!IsPlainFileName(local)) return Bad("bad private file name");
      inc.private_files.emplace_back(std::move(local), std::move(block));
    }
    if (r_.Failed()) return Bad("it ends early");
    return Status::Ok();
  }
  /// A file name without directories (the metadata must not point a restore
  /// outside the directories it names).
  static bool IsPlainFileName(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
  }
  static Status Bad(const std::string& what) { return Status::Corruption(what); }

  ByteReader r_;
  uint32_t version_;
  std::vector<std::string> names_;
};

/// Reads a whole (small) file.
Result<std::string> ReadWholeFile(const std::string& path, const std::string& missing_message) {
  FRESHET_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path, missing_message));
  FRESHET_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd.Get(), path));
  std::string bytes(size, '\0');
  size_t got = 0;
  FRESHET_RETURN_IF_ERROR(PreadAll(fd.Get(), bytes.data(), bytes.size(), 0, path, &got));
  bytes.resize(got);
  return bytes;
}

/// CRC32C of a whole file of `size` bytes.
Result<uint32_t> FileCrc32c(int fd, uint64_t size, const std::string& path) {
  std::string chunk;
  chunk.resize(static_cast<size_t>(std::min<uint64_t>(kReadChunkSize, std::max<uint64_t>(size, 1))));
  uint32_t crc = 0;
  for (uint64_t offset = 0; offset < size;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - offset));
    size_t got = 0;
    FRESHET_RETURN_IF_ERROR(PreadAll(fd, chunk.data(), want, offset, path, &got));
    if (got != want) return Status::Corruption("file " + path + " shrank while it was being read");
    crc = Crc32c(chunk.data(), got, crc);
    offset += got;
  }
  return crc;
}

/// Copies `size` bytes from `in` to `out`, returning their CRC32C in `crc`.
Status CopyFile(int in, uint64_t size, const std::string& in_path, int out, const std::string& out_path,
                uint32_t* crc) {
  std::string chunk;
  chunk.resize(static_cast<size_t>(std::min<uint64_t>(kReadChunkSize, std::max<uint64_t>(size, 1))));
  *crc = 0;
  for (uint64_t offset = 0; offset < size;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - offset));
    size_t got = 0;
    FRESHET_RETURN_IF_ERROR(PreadAll(in, chunk.data(), want, offset, in_path, &got));
    if (got != want) return Status::IoError("file " + in_path + " shrank while it was being copied");
    *crc = Crc32c(chunk.data(), got, *crc);
    FRESHET_RETURN_IF_ERROR(WriteAll(out, chunk.data(), got, out_path));
    offset += got;
  }
  return Status::Ok();
}

Status VerifyStateFile(const std::string& directory, const StateFileInfo& info) {
  std::string path = JoinPath(directory, info.file);
  const char* kind = info.shared ? "shared state file" : "state file";
  FRESHET_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path, fmt::format("{} {} is missing", kind, path)));
  FRESHET_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd.Get(), path));
  if (size != info.size) {
    return Status::Corruption(fmt::format("{} {} has {} bytes, the checkpoint recorded {} ({})", kind, path, size,
                                          info.size, size < info.size ? "truncated" : "overwritten or appended to"));
  }
  if (info.shared) {
    FRESHET_ASSIGN_OR_RETURN(uint32_t crc, FileCrc32c(fd.Get(), size, path));
    if (crc != info.crc32c) {
      return Status::Corruption(fmt::format("checksum mismatch in shared state file {}: crc32c {:#010x}, the "
                                            "checkpoint recorded {:#010x}",
                                            path, crc, info.crc32c));
    }
    return Status::Ok();
  }
  uint64_t data_length = size >= kStateFileFooterSize ? size - kStateFileFooterSize : size;
  std::string chunk;
  chunk.resize(static_cast<size_t>(std::min<uint64_t>(kReadChunkSize, std::max<uint64_t>(data_length, 1))));
  uint32_t data_crc = 0;
  for (uint64_t offset = 0; offset < data_length;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), data_length - offset));
    size_t got = 0;
    FRESHET_RETURN_IF_ERROR(PreadAll(fd.Get(), chunk.data(), want, offset, path, &got));
    if (got != want) return Status::Corruption("state file " + path + " shrank while it was being verified");
    data_crc = Crc32c(chunk.data(), got, data_crc);
    offset += got;
  }
  char footer[kStateFileFooterSize];
  size_t footer_length = static_cast<size_t>(size - data_length);
  size_t got = 0;
  FRESHET_RETURN_IF_ERROR(PreadAll(fd.Get(), footer, footer_length, data_length, path, &got));
  if (got != footer_length) return Status::Corruption("state file " + path + " shrank while it was being verified");
  uint32_t file_crc = Crc32c(footer, footer_length, data_crc);
  if (file_crc != info.crc32c) {
    return Status::Corruption(fmt::format("checksum mismatch in state file {}: crc32c {:#010x}, the checkpoint "
                                          "recorded {:#010x}",
                                          path, file_crc, info.crc32c));
  }
  // The whole file is what was written; check its own footer too, so a
  // metadata that lists a wrong file is caught.
  if (footer_length != kStateFileFooterSize) {
    return Status::Corruption("state file " + path + " is too short to hold its footer");
  }
  uint32_t footer_crc;
  uint64_t footer_data_length;
  std::memcpy(&footer_crc, footer, 4);
  std::memcpy(&footer_data_length, footer + 4, 8);
  if (std::memcmp(footer + 12, kStateFileMagic, sizeof(kStateFileMagic)) != 0) {
    return Status::Corruption("state file " + path + " has no state file footer (bad magic)");
  }
  if (footer_data_length != data_length || footer_crc != data_crc) {
    return Status::Corruption("state file " + path + ": footer does not match the data");
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------
// CRC32C

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
  static const Crc32cFunction function = ChooseCrc32c();
  return ~function(static_cast<const uint8_t*>(data), n, ~crc);
}

uint32_t Crc32cSoftware(const void* data, size_t n, uint32_t crc) {
  return ~Crc32cTable(static_cast<const uint8_t*>(data), n, ~crc);
}

// ---------------------------------------------------------------------------
// TaskStateWriter

class TaskStateWriter::Impl {
 public:
  Impl(std::string directory, std::string file, int num_operators, std::string shared_directory)
      : directory_(std::move(directory)),
        file_(std::move(file)),
        path_(JoinPath(directory_, file_)),
        shared_directory_(std::move(shared_directory)),
        handles_(static_cast<size_t>(num_operators)),
        state_info_(static_cast<size_t>(num_operators)) {}

  const std::string& SharedDirectory() const { return shared_directory_; }

  Result<SharedFileRef> UploadSharedFile(const std::string& local_path, const std::string& name) {
    if (shared_directory_.empty()) {
      return Status::FailedPrecondition("this snapshot takes no shared files (uploading '" + name + "')");
    }
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return Status::InvalidArgument("bad shared file name '" + name + "'");
    }
    FRESHET_RETURN_IF_ERROR(CreateDirectories(shared_directory_));
    const std::string target = JoinPath(shared_directory_, name);
    FRESHET_ASSIGN_OR_RETURN(ScopedFd in, OpenForRead(local_path, "file to upload " + local_path + " is missing"));
    FRESHET_ASSIGN_OR_RETURN(uint64_t size, FileSize(in.Get(), local_path));
    SharedFileRef ref;
    ref.name = name;
    ref.size = size;
    // Uploaded before (an earlier attempt of this checkpoint, or the file
    // name reused by the same backend): keep it if it has the same bytes.
    if (int existing = ::open(target.c_str(), O_RDONLY | O_CLOEXEC); existing >= 0) {
      ScopedFd old(existing);
      Result<uint64_t> old_size = FileSize(old.Get(), target);
      if (old_size.IsOk() && *old_size == size) {
        FRESHET_ASSIGN_OR_RETURN(uint32_t old_crc, FileCrc32c(old.Get(), size, target));
        FRESHET_ASSIGN_OR_RETURN(ref.crc32c, FileCrc32c(in.Get(), size, local_path));
        if (old_crc == ref.crc32c) return ref;
      }
      return Status::FailedPrecondition("shared state file " + target + " exists with other contents");
    }
    const std::string temporary = target + ".upload-" + std::to_string(std::random_device()());
    FRESHET_ASSIGN_OR_RETURN(ScopedFd out, OpenForWrite(temporary));
    Status st = CopyFile(in.Get(), size, local_path, out.Get(), temporary, &ref.crc32c);
    if (st.IsOk()) st = SyncFile(out.Get(), temporary);
    if (st.IsOk()) st = out.Close(temporary);
    if (st.IsOk() && ::rename(temporary.c_str(), target.c_str()) != 0) {
      st = ErrnoStatus("cannot rename", temporary, errno);
    }
    if (!st.IsOk()) {
      ::unlink(temporary.c_str());
      return st;
    }
    FRESHET_RETURN_IF_ERROR(SyncDirectory(shared_directory_));
    return ref;
  }

  Status AddIncrementalKeyedState(const IncrementalKeyedState& state) {
    OperatorSubtaskStateHandle& handle = Current();
    if (shared_directory_.empty()) {
      return Status::FailedPrecondition("this snapshot takes no incremental keyed state (backend " +
                                        state.backend_id + ")");
    }
    if (handle.incremental) return Status::Internal("incremental keyed state written twice");
    OperatorSubtaskStateHandle::Incremental inc;
    inc.backend_id = state.backend_id;
    inc.key_group_start = state.key_group_start;
    inc.key_group_end = state.key_group_end;
    inc.shared_files = state.shared_files;
    for (const auto& [local, bytes] : state.private_files) {
      FRESHET_ASSIGN_OR_RETURN(BlockRef block, Append(bytes));
      inc.private_files.emplace_back(local, std::move(block));
    }
    for (const auto& [local, file] : state.shared_files) shared_.emplace(file.name, file);
    handle.incremental = std::move(inc);
    return Status::Ok();
  }

  ~Impl() {
    // Not finished: the snapshot was abandoned; do not leave half a file.
    if (fd_.Valid()) Abandon();
  }

  void BeginOperator(int index) {
    FRESHET_CHECK_MSG(!finished_, "TaskStateWriter used after Finish");
    FRESHET_CHECK_MSG(index >= 0 && static_cast<size_t>(index) < handles_.size(), "operator index out of range");
    current_ = index;
  }

  Status AddKeyGroup(int key_group, std::string_view bytes) {
    OperatorSubtaskStateHandle& handle = Current();
    if (key_group < 0) return Status::Internal(fmt::format("negative key group {} in {}", key_group, path_));
    if (handle.key_groups.count(key_group) != 0) {
      return Status::Internal(fmt::format("key group {} written twice", key_group));
    }
    FRESHET_ASSIGN_OR_RETURN(BlockRef block, Append(bytes));
    handle.key_groups.emplace(key_group, std::move(block));
    return Status::Ok();
  }

  Status AddOperatorState(const std::string& name, OperatorStateMode mode, const std::vector<std::string>& entries) {
    OperatorSubtaskStateHandle& handle = Current();
    if (handle.operator_state.count(name) != 0) {
      return Status::Internal("operator state '" + name + "' written twice");
    }
    OperatorSubtaskStateHandle::ListState list;
    list.mode = mode;
    list.entries.reserve(entries.size());
    for (const std::string& entry : entries) {
      FRESHET_ASSIGN_OR_RETURN(BlockRef block, Append(entry));
      list.entries.push_back(std::move(block));
    }
    handle.operator_state.emplace(name, std::move(list));
    return Status::Ok();
  }

  void AddStateInfo(StateInfo info) {
    Current();
    state_info_[static_cast<size_t>(current_)].push_back(std::move(info));
  }

  Result<TaskStateSnapshot> Finish() {
    FRESHET_CHECK_MSG(!finished_, "TaskStateWriter::Finish called twice");
    finished_ = true;
    if (!status_.IsOk()) return status_;
    TaskStateSnapshot snapshot;
    snapshot.operators = std::move(handles_);
    snapshot.state_info = std::move(state_info_);
    for (const auto& [name, file] : shared_) {
      StateFileInfo info;
      info.file = SharedFilePath(name);
      info.size = file.size;
      info.crc32c = file.crc32c;
      info.shared = true;
      snapshot.files.push_back(std::move(info));
    }
    if (!fd_.Valid()) return snapshot;  // no block was added: no state file

    char footer[kStateFileFooterSize];
    std::memcpy(footer, &data_crc_, 4);
    std::memcpy(footer + 4, &data_length_, 8);
    std::memcpy(footer + 12, kStateFileMagic, sizeof(kStateFileMagic));
    Status st = Buffer(footer, sizeof(footer));
    if (st.IsOk()) st = Flush();
    if (st.IsOk()) st = SyncFile(fd_.Get(), path_);
    if (st.IsOk()) st = fd_.Close(path_);
    if (!st.IsOk()) {
      Abandon();
      return st;
    }
    StateFileInfo info;
    info.file = file_;
    info.size = data_length_ + kStateFileFooterSize;
    info.crc32c = Crc32c(footer, sizeof(footer), data_crc_);
    snapshot.files.push_back(std::move(info));
    return snapshot;
  }

 private:
  OperatorSubtaskStateHandle& Current() {
    FRESHET_CHECK_MSG(!finished_, "TaskStateWriter used after Finish");
    FRESHET_CHECK_MSG(current_ >= 0, "TaskStateWriter: BeginOperator was not called");
    return handles_[static_cast<size_t>(current_)];
  }

  Result<BlockRef> Append(std::string_view bytes) {
    if (!status_.IsOk()) return status_;
    if (!fd_.Valid()) {
      Status st = Open();
      if (!st.IsOk()) return Fail(std::move(st));
    }
    Status st = Buffer(bytes.data(), bytes.size());
    if (!st.IsOk()) return Fail(std::move(st));
    data_crc_ = Crc32c(bytes.data(), bytes.size(), data_crc_);
    BlockRef block{file_, data_length_, bytes.size()};
    data_length_ += bytes.size();
    return block;
  }

  Status Open() {
    FRESHET_RETURN_IF_ERROR(CreateDirectories(directory_));
    FRESHET_ASSIGN_OR_RETURN(fd_, OpenForWrite(path_));
    struct stat st;
    // Remove the file on failure only if it is a regular file we created
    // (never a device or whatever else the path may name).
    remove_on_failure_ = ::fstat(fd_.Get(), &st) == 0 && S_ISREG(st.st_mode);
    return Status::Ok();
  }

  Status Buffer(const void* data, size_t n) {
    if (buffer_.size() + n > kWriteBufferSize) FRESHET_RETURN_IF_ERROR(Flush());
    if (n >= kWriteBufferSize) return WriteAll(fd_.Get(), data, n, path_);
    const char* p = static_cast<const char*>(data);
    buffer_.insert(buffer_.end(), p, p + n);
    return Status::Ok();
  }

  Status Flush() {
    if (buffer_.empty()) return Status::Ok();
    Status st = WriteAll(fd_.Get(), buffer_.data(), buffer_.size(), path_);
    buffer_.clear();
    return st;
  }

  Status Fail(Status st) {
    status_ = st;
    Abandon();
    return st;
  }

  void Abandon() {
    fd_.Reset();
    buffer_.clear();
    if (remove_on_failure_) ::unlink(path_.c_str());
    remove_on_failure_ = false;
  }

  const std::string directory_;
  const std::string file_;
  const std::string path_;
  const std::string shared_directory_;  // empty: no incremental state
  std::map<std::string, SharedFileRef> shared_;  // shared files referenced, by name
  std::vector<OperatorSubtaskStateHandle> handles_;
  std::vector<std::vector<StateInfo>> state_info_;
  int current_ = -1;
  bool finished_ = false;
  Status status_;  // first write error; later calls return it

  ScopedFd fd_;  // open from the first block until Finish
  bool remove_on_failure_ = false;
  std::vector<char> buffer_;
  uint64_t data_length_ = 0;  // bytes of blocks appended so far
  uint32_t data_crc_ = 0;     // CRC32C of those bytes
};

TaskStateWriter::TaskStateWriter(std::string directory, std::string file, int num_operators,
                                 std::string shared_directory)
    : impl_(std::make_unique<Impl>(std::move(directory), std::move(file), num_operators,
                                   std::move(shared_directory))) {}

TaskStateWriter::~TaskStateWriter() = default;

void TaskStateWriter::BeginOperator(int index) { impl_->BeginOperator(index); }

Status TaskStateWriter::AddKeyGroup(int key_group, std::string_view bytes) {
  return impl_->AddKeyGroup(key_group, bytes);
}

Status TaskStateWriter::AddOperatorState(const std::string& name, OperatorStateMode mode,
                                         const std::vector<std::string>& entries) {
  return impl_->AddOperatorState(name, mode, entries);
}

void TaskStateWriter::AddStateInfo(StateInfo info) { impl_->AddStateInfo(std::move(info)); }

std::string TaskStateWriter::SharedDirectory() const { return impl_->SharedDirectory(); }

Result<SharedFileRef> TaskStateWriter::UploadSharedFile(const std::string& local_path, const std::string& name) {
  return impl_->UploadSharedFile(local_path, name);
}

Status TaskStateWriter::AddIncrementalKeyedState(const IncrementalKeyedState& state) {
  return impl_->AddIncrementalKeyedState(state);
}

Result<TaskStateSnapshot> TaskStateWriter::Finish() { return impl_->Finish(); }

// ---------------------------------------------------------------------------
// Directories and metadata

const OperatorStateHandle* CheckpointMetadata::FindOperator(const std::string& operator_id) const {
  for (const OperatorStateHandle& op : operators) {
    if (op.operator_id == operator_id) return &op;
  }
  return nullptr;
}

std::string SharedFilePath(const std::string& name) { return "../shared/" + name; }

std::string SharedDirectoryOf(const std::string& checkpoint_directory) {
  fs::path path = fs::path(checkpoint_directory).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  return (path.parent_path() / "shared").string();
}

std::string CheckpointDirectory(const std::string& base, const std::string& job_id, CheckpointId id) {
  return (fs::path(base) / job_id / ("chk-" + std::to_string(id))).string();
}

Result<std::string> CreateSavepointDirectory(const std::string& target, const std::string& job_id, CheckpointId id) {
  FRESHET_RETURN_IF_ERROR(CreateDirectories(target));
  std::random_device random;
  std::string prefix = job_id.substr(0, 6);
  for (int attempt = 0; attempt < 16; ++attempt) {
    uint32_t suffix = static_cast<uint32_t>(random());
    fs::path path = fs::path(target) / fmt::format("savepoint-{}-{}-{:08x}", prefix, id, suffix);
    std::error_code ec;
    if (fs::create_directory(path, ec)) return path.string();
    if (ec) return Status::IoError("cannot create directory " + path.string() + ": " + ec.message());
    // Exists already: draw another suffix.
  }
  return Status::IoError("cannot create a fresh savepoint directory under " + target);
}

Status WriteMetadata(const std::string& directory, const CheckpointMetadata& metadata) {
  FRESHET_RETURN_IF_ERROR(CreateDirectories(directory));
  std::string bytes = MetadataEncoder().Encode(metadata);
  std::string temp = JoinPath(directory, kMetadataTempFile);
  std::string final_path = JoinPath(directory, kMetadataFile);
  FRESHET_ASSIGN_OR_RETURN(ScopedFd fd, OpenForWrite(temp));
  Status st = WriteAll(fd.Get(), bytes.data(), bytes.size(), temp);
  if (st.IsOk()) st = SyncFile(fd.Get(), temp);
  if (st.IsOk()) st = fd.Close(temp);
  if (st.IsOk() && ::rename(temp.c_str(), final_path.c_str()) != 0) {
    st = Status::IoError("cannot rename " + temp + " to " + final_path + ": " + ErrnoText(errno));
  }
  if (!st.IsOk()) {
    fd.Reset();
    ::unlink(temp.c_str());
    return st;
  }
  FRESHET_RETURN_IF_ERROR(SyncDirectory(directory));
  // The checkpoint directory may be new: make its own entry durable too.
  fs::path parent = fs::path(directory).lexically_normal().parent_path();
  if (!fs::path(directory).lexically_normal().has_filename()) parent = parent.parent_path();
  return SyncDirectory(parent.empty() ? std::string(".") : parent.string());
}

std::string EncodeMetadata(const CheckpointMetadata& metadata) { return MetadataEncoder().Encode(metadata); }

Result<CheckpointMetadata> ReadMetadata(const std::string& path) {
  std::error_code ec;
  std::string file = fs::is_directory(path, ec) ? JoinPath(path, kMetadataFile) : path;
  FRESHET_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(file, "no checkpoint metadata at " + file));
  return DecodeMetadata(bytes, file);
}

Result<CheckpointMetadata> DecodeMetadata(std::string_view bytes, const std::string& file) {
  auto truncated = [&file]() { return Status::Corruption("checkpoint metadata " + file + " is truncated"); };
  size_t magic_checked = std::min(bytes.size(), sizeof(kMetadataMagic));
  if (std::memcmp(bytes.data(), kMetadataMagic, magic_checked) != 0) {
    return Status::Corruption(file + " is not checkpoint metadata (bad magic)");
  }
  if (bytes.size() < kMetadataHeaderSize + kMetadataTrailerSize) return truncated();
  uint32_t version;
  uint64_t total;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&total, bytes.data() + 12, 8);
  if (total < kMetadataHeaderSize + kMetadataTrailerSize) {
    return Status::Corruption("checksum mismatch in " + file + " (bad length field)");
  }
  if (bytes.size() < total) {
    return Status::Corruption(
        fmt::format("checkpoint metadata {} is truncated ({} of {} bytes)", file, bytes.size(), total));
  }
  if (bytes.size() > total) {
    return Status::Corruption(
        fmt::format("checksum mismatch in {} ({} bytes, the header says {})", file, bytes.size(), total));
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - kMetadataTrailerSize, 4);
  if (Crc32c(bytes.data(), bytes.size() - kMetadataTrailerSize) != stored_crc) {
    return Status::Corruption("checksum mismatch in " + file);
  }
  if (version < kOldestMetadataVersion || version > kMetadataVersion) {
    return Status::FailedPrecondition(fmt::format("unsupported checkpoint metadata version {} in {} (this build "
                                                  "reads versions {} to {})",
                                                  version, file, kOldestMetadataVersion, kMetadataVersion));
  }
  MetadataDecoder decoder(reinterpret_cast<const uint8_t*>(bytes.data()) + kMetadataHeaderSize,
                          bytes.size() - kMetadataHeaderSize - kMetadataTrailerSize, version);
  Result<CheckpointMetadata> decoded = decoder.Decode();
  if (!decoded.IsOk()) {
    return Status::Corruption("checkpoint metadata " + file + " does not decode: " + decoded.GetStatus().Message());
  }
  return decoded;
}

Status VerifyCheckpoint(const std::string& directory, const CheckpointMetadata& metadata) {
  for (const StateFileInfo& info : metadata.files) FRESHET_RETURN_IF_ERROR(VerifyStateFile(directory, info));
  return Status::Ok();
}

std::vector<std::pair<CheckpointId, std::string>> ListCheckpoints(const std::string& base, const std::string& job_id) {
  std::vector<std::pair<CheckpointId, std::string>> out;
  fs::path job_directory = fs::path(base) / job_id;
  std::error_code ec;
  fs::directory_iterator it(job_directory, ec);
  if (ec) return out;  // no checkpoints yet
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::optional<CheckpointId> id = ParseCheckpointDirectoryName(it->path().filename().string());
    if (!id) continue;
    std::error_code entry_ec;
    if (!it->is_directory(entry_ec)) continue;
    if (!fs::is_regular_file(it->path() / kMetadataFile, entry_ec)) continue;
    out.emplace_back(*id, it->path().string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

Status DisposeCheckpoint(const std::string& directory) {
  fs::path path = fs::path(directory).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();  // a trailing separator
  std::error_code ec;
  fs::file_status status = fs::symlink_status(path, ec);
  if (status.type() == fs::file_type::not_found) return Status::Ok();
  if (ec) return Status::IoError("cannot inspect " + directory + ": " + ec.message());
  if (status.type() != fs::file_type::directory) {
    return Status::InvalidArgument("refusing to dispose " + directory + ": not a directory");
  }
  std::string name = path.filename().string();
  bool has_metadata = fs::is_regular_file(path / kMetadataFile, ec);
  if (!has_metadata && !ParseCheckpointDirectoryName(name) && !name.starts_with("savepoint-")) {
    return Status::InvalidArgument("refusing to dispose " + directory +
                                   ": it holds no _metadata and is not a chk-<n> or savepoint-... directory");
  }
  fs::remove_all(path, ec);
  if (ec) return Status::IoError("cannot remove " + directory + ": " + ec.message());
  return Status::Ok();
}

Result<std::string> ReadBlock(const std::string& directory, const BlockRef& block) {
  std::string path = JoinPath(directory, block.file);
  FRESHET_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path, "state file " + path + " is missing"));
  FRESHET_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd.Get(), path));
  std::string out;
  FRESHET_RETURN_IF_ERROR(ReadRange(fd.Get(), size, path, block, &out));
  return out;
}

// ---------------------------------------------------------------------------
// Restore

OperatorRestoreRefs AssignRestore(const OperatorStateHandle& handle, int subtask, int parallelism) {
  FRESHET_CHECK_MSG(parallelism > 0 && subtask >= 0 && subtask < parallelism, "subtask out of range");
  OperatorRestoreRefs refs;
  refs.restored = true;
  refs.state_info = handle.state_info;

  KeyGroupRange range = KeyGroupRangeForSubtask(subtask, parallelism, handle.max_parallelism);
  for (const OperatorSubtaskStateHandle& old : handle.subtasks) {
    for (auto it = old.key_groups.lower_bound(range.start); it != old.key_groups.end() && it->first <= range.end;
         ++it) {
      refs.key_groups.emplace_back(it->first, it->second);
    }
  }
  std::sort(refs.key_groups.begin(), refs.key_groups.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const OperatorSubtaskStateHandle& old : handle.subtasks) {
    if (old.incremental && old.incremental->key_group_start <= range.end &&
        old.incremental->key_group_end >= range.start) {
      refs.incremental.push_back(*old.incremental);
    }
  }

  // Every name any old subtask wrote, with the mode of the first that did.
  std::map<std::string, OperatorStateMode> modes;
  for (const OperatorSubtaskStateHandle& old : handle.subtasks) {
    for (const auto& [name, list] : old.operator_state) modes.emplace(name, list.mode);
  }
  const size_t old_parallelism = handle.subtasks.size();
  for (const auto& [name, mode] : modes) {
    OperatorRestoreRefs::ListState& out = refs.operator_state[name];
    out.mode = mode;
    if (mode == OperatorStateMode::kChannel) {
      // Channels are identified by producer and consumer subtask: only a
      // restore at the same parallelism can replay them (checked by
      // CheckRestoreCompatibility).
      if (static_cast<size_t>(parallelism) == old_parallelism) {
        auto it = handle.subtasks[static_cast<size_t>(subtask)].operator_state.find(name);
        if (it != handle.subtasks[static_cast<size_t>(subtask)].operator_state.end()) out.entries = it->second.entries;
      }
      continue;
    }
    if (mode == OperatorStateMode::kBroadcast) {
      const OperatorSubtaskStateHandle& old = handle.subtasks[static_cast<size_t>(subtask) % old_parallelism];
      auto it = old.operator_state.find(name);
      if (it != old.operator_state.end()) out.entries = it->second.entries;
      continue;
    }
    std::vector<BlockRef> all;
    for (const OperatorSubtaskStateHandle& old : handle.subtasks) {
      auto it = old.operator_state.find(name);
      if (it != old.operator_state.end()) all.insert(all.end(), it->second.entries.begin(), it->second.entries.end());
    }
    if (mode == OperatorStateMode::kUnion) {
      out.entries = std::move(all);
      continue;
    }
    // Split: contiguous parts, the first `extra` parts one entry larger.
    const size_t parts = static_cast<size_t>(parallelism);
    const size_t index = static_cast<size_t>(subtask);
    const size_t base = all.size() / parts;
    const size_t extra = all.size() % parts;
    const size_t begin = index * base + std::min(index, extra);
    const size_t size = base + (index < extra ? 1 : 0);
    out.entries.assign(all.begin() + static_cast<std::ptrdiff_t>(begin),
                       all.begin() + static_cast<std::ptrdiff_t>(begin + size));
  }
  return refs;
}

Result<OperatorRestore> LoadRestore(const std::string& directory, const OperatorRestoreRefs& refs) {
  OperatorRestore out;
  out.restored = refs.restored;
  out.state_info = refs.state_info;

  struct Pending {
    const BlockRef* block;
    std::string* destination;
  };
  std::map<std::string, std::vector<Pending>> by_file;
  out.key_groups.reserve(refs.key_groups.size());
  for (const auto& [kg, block] : refs.key_groups) out.key_groups.emplace_back(kg, std::string());
  for (size_t i = 0; i < refs.key_groups.size(); ++i) {
    const BlockRef& block = refs.key_groups[i].second;
    by_file[block.file].push_back(Pending{&block, &out.key_groups[i].second});
  }
  for (const auto& [name, list] : refs.operator_state) {
    RestoredOperatorState& state = out.operator_state[name];
    state.mode = list.mode;
    state.entries.resize(list.entries.size());
    for (size_t i = 0; i < list.entries.size(); ++i) {
      by_file[list.entries[i].file].push_back(Pending{&list.entries[i], &state.entries[i]});
    }
  }

  const std::string shared_directory = SharedDirectoryOf(directory);
  for (const OperatorSubtaskStateHandle::Incremental& inc : refs.incremental) {
    RestoredIncrementalState& restored = out.incremental.emplace_back();
    restored.backend_id = inc.backend_id;
    restored.key_group_start = inc.key_group_start;
    restored.key_group_end = inc.key_group_end;
    restored.shared_directory = shared_directory;
    restored.shared_files = inc.shared_files;
    restored.private_files.reserve(inc.private_files.size());
    for (const auto& [local, block] : inc.private_files) restored.private_files.emplace_back(local, std::string());
  }
  for (size_t i = 0; i < refs.incremental.size(); ++i) {
    const auto& privates = refs.incremental[i].private_files;
    for (size_t j = 0; j < privates.size(); ++j) {
      by_file[privates[j].second.file].push_back(Pending{&privates[j].second, &out.incremental[i].private_files[j].second});
    }
  }

  for (auto& [file, pending] : by_file) {
    std::string path = JoinPath(directory, file);
    FRESHET_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path, "state file " + path + " is missing"));
    FRESHET_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd.Get(), path));
    // In file order, so the reads are sequential.
    std::sort(pending.begin(), pending.end(),
              [](const Pending& a, const Pending& b) { return a.block->offset < b.block->offset; });
    for (const Pending& p : pending) FRESHET_RETURN_IF_ERROR(ReadRange(fd.Get(), size, path, *p.block, p.destination));
  }
  return out;
}

Status CheckRestoreCompatibility(const CheckpointMetadata& metadata, const std::vector<RestoreTarget>& job,
                                 bool allow_non_restored) {
  std::vector<std::string> problems;
  for (const OperatorStateHandle& op : metadata.operators) {
    bool has_state = std::any_of(op.subtasks.begin(), op.subtasks.end(),
                                 [](const OperatorSubtaskStateHandle& s) { return !s.Empty(); });
    if (!has_state) continue;
    auto target = std::find_if(job.begin(), job.end(),
                               [&op](const RestoreTarget& t) { return t.operator_id == op.operator_id; });
    if (target == job.end()) {
      if (!allow_non_restored) {
        problems.push_back(fmt::format(
            "operator '{}' (uid {}) has state in the snapshot but is not part of this job (set "
            "allowNonRestoredState / execution.savepoint.ignore-unclaimed-state to skip it)",
            op.name, op.operator_id));
      }
      continue;
    }
    bool has_channel_state = std::any_of(op.subtasks.begin(), op.subtasks.end(), [](const OperatorSubtaskStateHandle& s) {
      return std::any_of(s.operator_state.begin(), s.operator_state.end(), [](const auto& entry) {
        return entry.second.mode == OperatorStateMode::kChannel && !entry.second.entries.empty();
      });
    });
    if (has_channel_state && target->parallelism != static_cast<int>(op.subtasks.size())) {
      problems.push_back(fmt::format(
          "operator '{}' (uid {}): the checkpoint holds in-flight data of an unaligned checkpoint, which can only be "
          "restored at the parallelism it was taken with ({}, not {}); rescale from a savepoint or an aligned "
          "checkpoint",
          op.name, op.operator_id, op.subtasks.size(), target->parallelism));
    }
    bool has_keyed_state =
        std::any_of(op.subtasks.begin(), op.subtasks.end(),
                    [](const OperatorSubtaskStateHandle& s) { return !s.key_groups.empty() || s.incremental; });
    if (has_keyed_state && target->max_parallelism != op.max_parallelism) {
      problems.push_back(fmt::format(
          "operator '{}' (uid {}): max parallelism changed from {} to {}; keyed state cannot be redistributed",
          op.name, op.operator_id, op.max_parallelism, target->max_parallelism));
    }
  }
  if (problems.empty()) return Status::Ok();
  std::string message =
      fmt::format("snapshot of checkpoint {} cannot be restored into this job:", metadata.checkpoint_id);
  for (const std::string& p : problems) message += "\n  - " + p;
  return Status::FailedPrecondition(std::move(message));
}

}  // namespace freshet::internal
