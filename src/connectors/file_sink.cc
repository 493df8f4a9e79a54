// FileSink's untyped parts: the date-time bucket assigner and the writer
// core (part files, rolling, commit and recovery).
#include "freshet/file_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <iterator>
#include <stdexcept>

namespace freshet {

// ---- DateTimeBucketAssigner -------------------------------------------------

DateTimeBucketAssigner::DateTimeBucketAssigner(std::string format, BucketTimeZone zone) : zone_(zone) {
  std::string literal;
  auto end_literal = [&] {
    if (literal.empty()) return;
    pieces_.push_back(Piece{0, 0, literal});
    literal.clear();
  };
  const size_t n = format.size();
  for (size_t i = 0; i < n;) {
    char c = format[i];
    if (c == '\'') {
      if (i + 1 < n && format[i + 1] == '\'') {  // '' outside quotes: one quote
        literal += '\'';
        i += 2;
        continue;
      }
      // Quoted text up to the closing quote; '' inside is one quote.
      bool closed = false;
      for (++i; i < n; ++i) {
        if (format[i] != '\'') {
          literal += format[i];
        } else if (i + 1 < n && format[i + 1] == '\'') {
          literal += '\'';
          ++i;
        } else {
          closed = true;
          ++i;
          break;
        }
      }
      if (!closed) throw std::invalid_argument("date-time bucket format '" + format + "' has an unclosed quote");
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) != 0) {
      if (std::strchr("yMdHmsS", c) == nullptr) {
        throw std::invalid_argument("date-time bucket format '" + format + "' uses the unsupported letter '" +
                                    std::string(1, c) + "' (supported: y M d H m s S; quote text with ')");
      }
      size_t j = i;
      while (j < n && format[j] == c) ++j;
      end_literal();
      pieces_.push_back(Piece{c, static_cast<int>(j - i), std::string()});
      i = j;
      continue;
    }
    literal += c;
    ++i;
  }
  end_literal();
}

std::string DateTimeBucketAssigner::BucketIdFor(Timestamp time) const {
  // Floor division: times before the epoch belong to the earlier second.
  int64_t seconds = time / 1000;
  int64_t millis = time % 1000;
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (zone_ == BucketTimeZone::kUtc) {
    gmtime_r(&t, &tm);
  } else {
    localtime_r(&t, &tm);
  }
  std::string out;
  for (const Piece& p : pieces_) {
    int64_t value = 0;
    switch (p.field) {
      case 0:
        out += p.literal;
        continue;
      case 'y':
        value = tm.tm_year + 1900;
        if (p.width == 2) value %= 100;
        break;
      case 'M':
        value = tm.tm_mon + 1;
        break;
      case 'd':
        value = tm.tm_mday;
        break;
      case 'H':
        value = tm.tm_hour;
        break;
      case 'm':
        value = tm.tm_min;
        break;
      case 's':
        value = tm.tm_sec;
        break;
      case 'S': {
        // Fraction of the second with `width` digits.
        value = millis;
        for (int w = p.width; w < 3; ++w) value /= 10;
        for (int w = 3; w < p.width; ++w) value *= 10;
        break;
      }
      default:
        FRESHET_CHECK_MSG(false, "unknown date-time field");
    }
    fmt::format_to(std::back_inserter(out), "{:0{}}", value, p.width);
  }
  return out;
}

namespace internal {

namespace {

// Bytes buffered per open part file before they are handed to the file.
constexpr size_t kWriteBufferSize = 64 * 1024;

std::string JoinPath(const std::string& directory, const std::string& name) {
  if (name.empty()) return directory;
  if (directory.empty()) return name;
  return directory.back() == '/' ? directory + name : directory + "/" + name;
}

Status CheckBucketId(const std::string& bucket_id) {
  if (!bucket_id.empty() && bucket_id.front() == '/') {
    return Status::InvalidArgument("file sink: bucket id '" + bucket_id + "' is an absolute path");
  }
  size_t begin = 0;
  while (begin <= bucket_id.size()) {
    size_t end = bucket_id.find('/', begin);
    if (end == std::string::npos) end = bucket_id.size();
    if (bucket_id.compare(begin, end - begin, "..") == 0) {
      return Status::InvalidArgument("file sink: bucket id '" + bucket_id + "' leaves the base path ('..')");
    }
    begin = end + 1;
  }
  return Status::Ok();
}

}  // namespace

FileSinkWriterCore::FileSinkWriterCore(FileSinkOptions options, int subtask)
    : options_(std::move(options)), subtask_(subtask) {
  if (options_.rolling_policy == nullptr) options_.rolling_policy = std::make_shared<OnCheckpointRollingPolicy>();
  if (options_.file_system == nullptr) options_.file_system = FileSystem::Local();
  std::random_device device;
  random_.seed((static_cast<uint64_t>(device()) << 32) ^ device() ^ static_cast<uint64_t>(subtask));
}

FileSinkWriterCore::~FileSinkWriterCore() { Close(); }

Status FileSinkWriterCore::Open() {
  if (options_.base_path.empty()) return Status::InvalidArgument("file sink: the base path is empty");
  if (options_.bucket_check_interval.count() <= 0) {
    return Status::InvalidArgument("file sink: the bucket check interval must be positive, got " +
                                   std::to_string(options_.bucket_check_interval.count()) + " ms");
  }
  FRESHET_RETURN_IF_ERROR(options_.file_system->CreateDirectories(options_.base_path).WithContext("file sink"));
  created_directories_.insert(options_.base_path);
  return Status::Ok();
}

FileSinkTransaction FileSinkWriterCore::BeginTransaction() const {
  FileSinkTransaction txn;
  for (const auto& [bucket, f] : open_) {
    FileSinkPartFile part = f.file;
    part.size = f.synced;
    txn.open_at_begin.push_back(std::move(part));
  }
  return txn;
}

PartFileInfo FileSinkWriterCore::Info(const std::string& bucket_id, const OpenFile& f) const {
  return PartFileInfo{bucket_id, f.written + f.buffer.size(), f.creation_time, f.last_update_time};
}

std::string FileSinkWriterCore::RandomId() {
  uint64_t a = random_(), b = random_();
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xffff, b >> 48,
                     b & 0xffffffffffffULL);
}

Status FileSinkWriterCore::OpenPartFile(const std::string& bucket_id, Timestamp now, OpenFile& out) {
  FRESHET_RETURN_IF_ERROR(CheckBucketId(bucket_id));
  std::string directory = JoinPath(options_.base_path, bucket_id);
  if (!created_directories_.contains(directory)) {
    FRESHET_RETURN_IF_ERROR(options_.file_system->CreateDirectories(directory).WithContext("file sink"));
    created_directories_.insert(directory);
  }
  const OutputFileConfig& names = options_.output_file_config;
  std::string name = fmt::format("{}-{}-{}{}", names.part_prefix, subtask_, next_counter_, names.part_suffix);
  ++next_counter_;
  out.file.final_path = JoinPath(directory, name);
  out.file.in_progress_path = JoinPath(directory, "." + name + ".inprogress." + RandomId());
  Result<std::unique_ptr<WritableFile>> handle = options_.file_system->OpenForWrite(out.file.in_progress_path);
  if (!handle.IsOk()) return handle.GetStatus().WithContext("file sink");
  out.handle = std::move(*handle);
  out.creation_time = now;
  out.last_update_time = now;
  return Status::Ok();
}

Status FileSinkWriterCore::Fail(const OpenFile& f, const Status& error) {
  failure_ = error.WithContext(fmt::format(
      "file sink: part file '{}' is in an unknown state; the writer stops until the job recovers from its last "
      "checkpoint",
      f.file.in_progress_path));
  return failure_;
}

Status FileSinkWriterCore::FlushBuffer(OpenFile& f) {
  if (f.buffer.empty()) return Status::Ok();
  // A failed append may have written part of the buffer: appending it again
  // would repeat rows, so the failure is final (see the class comment).
  if (Status s = f.handle->Append(f.buffer.data(), f.buffer.size()); !s.IsOk()) return Fail(f, s);
  f.written += f.buffer.size();
  f.buffer.clear();
  return Status::Ok();
}

Status FileSinkWriterCore::Roll(FileSinkTransaction& txn, OpenFile& f) {
  FRESHET_RETURN_IF_ERROR(FlushBuffer(f));
  // After a failed fsync the kernel may have dropped the dirty pages, so a
  // retried fsync can succeed without the data: the failure is final too.
  if (Status s = f.handle->Sync(); !s.IsOk()) return Fail(f, s);
  if (Status s = f.handle->Close(); !s.IsOk()) return Fail(f, s);
  f.handle.reset();
  f.synced = f.written;
  FileSinkPartFile part = f.file;
  part.size = f.written;
  txn.pending.push_back(std::move(part));
  return Status::Ok();
}

Status FileSinkWriterCore::Write(FileSinkTransaction& txn, const std::string& bucket_id, std::string_view bytes,
                                 Timestamp now) {
  if (!failure_.IsOk()) return failure_;
  auto it = open_.find(bucket_id);
  if (it != open_.end() && options_.rolling_policy->ShouldRollOnEvent(Info(bucket_id, it->second))) {
    FRESHET_RETURN_IF_ERROR(Roll(txn, it->second));
    open_.erase(it);
    it = open_.end();
  }
  if (it == open_.end()) {
    OpenFile f;
    FRESHET_RETURN_IF_ERROR(OpenPartFile(bucket_id, now, f));
    it = open_.emplace(bucket_id, std::move(f)).first;
  }
  OpenFile& f = it->second;
  f.buffer.append(bytes);
  f.last_update_time = now;
  if (f.buffer.size() >= kWriteBufferSize) return FlushBuffer(f);
  return Status::Ok();
}

Status FileSinkWriterCore::RollDue(FileSinkTransaction& txn, Timestamp now) {
  if (!failure_.IsOk()) return failure_;
  for (auto it = open_.begin(); it != open_.end();) {
    if (options_.rolling_policy->ShouldRollOnProcessingTime(Info(it->first, it->second), now)) {
      FRESHET_RETURN_IF_ERROR(Roll(txn, it->second));
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  return Status::Ok();
}

Status FileSinkWriterCore::RollAll(FileSinkTransaction& txn) {
  if (!failure_.IsOk()) return failure_;
  for (auto it = open_.begin(); it != open_.end();) {
    FRESHET_RETURN_IF_ERROR(Roll(txn, it->second));
    it = open_.erase(it);
  }
  return Status::Ok();
}

Status FileSinkWriterCore::PreCommit(FileSinkTransaction& txn) {
  if (!failure_.IsOk()) return failure_;
  for (auto it = open_.begin(); it != open_.end();) {
    OpenFile& f = it->second;
    if (options_.rolling_policy->ShouldRollOnCheckpoint(Info(it->first, f))) {
      FRESHET_RETURN_IF_ERROR(Roll(txn, f));
      it = open_.erase(it);
      continue;
    }
    // Kept open: what it holds now must survive a failure, since the
    // checkpoint records its length.
    FRESHET_RETURN_IF_ERROR(FlushBuffer(f));
    if (Status s = f.handle->Sync(); !s.IsOk()) return Fail(f, s);
    f.synced = f.written;
    ++it;
  }
  return Status::Ok();
}

namespace {

// Publishes the first `part.size` bytes of the in-progress file under its
// final name. Idempotent: a final file with the recorded size means an
// earlier attempt committed it (a leftover in-progress file, which a file
// system whose rename copies could leave, is removed).
Status Publish(FileSystem& fs, const FileSinkPartFile& part) {
  Result<FileInfo> source = fs.Stat(part.in_progress_path);
  if (!source.IsOk() && source.GetStatus().Code() != StatusCode::kNotFound) return source.GetStatus();
  Result<FileInfo> target = fs.Stat(part.final_path);
  if (!target.IsOk() && target.GetStatus().Code() != StatusCode::kNotFound) return target.GetStatus();
  if (target.IsOk()) {
    if (target->size != part.size) {
      return Status::FailedPrecondition(
          fmt::format("cannot commit part file '{}': it exists with {} bytes, not the {} recorded (written by "
                      "another run?)",
                      part.final_path, target->size, part.size));
    }
    if (!source.IsOk()) return Status::Ok();
    Status removed = fs.Delete(part.in_progress_path);
    return removed.Code() == StatusCode::kNotFound ? Status::Ok() : removed;
  }
  if (!source.IsOk()) {
    return Status::NotFound(fmt::format("cannot commit part file '{}': neither it nor its in-progress file '{}' exists",
                                        part.final_path, part.in_progress_path));
  }
  if (source->size < part.size) {
    return Status::Corruption(fmt::format("in-progress part file '{}' has {} bytes, fewer than the {} recorded",
                                          part.in_progress_path, source->size, part.size));
  }
  if (source->size > part.size) FRESHET_RETURN_IF_ERROR(fs.Truncate(part.in_progress_path, part.size));
  return fs.Rename(part.in_progress_path, part.final_path);
}

Status Discard(FileSystem& fs, const FileSinkPartFile& part) {
  Status s = fs.Delete(part.in_progress_path);
  if (s.Code() == StatusCode::kNotFound) return Status::Ok();
  return s;
}

}  // namespace

Status FileSinkWriterCore::Commit(const FileSinkTransaction& txn) const {
  for (const FileSinkPartFile& part : txn.pending) {
    FRESHET_RETURN_IF_ERROR(Publish(*options_.file_system, part).WithContext("file sink"));
  }
  return Status::Ok();
}

Status FileSinkWriterCore::Abort(const FileSinkTransaction& txn) const {
  for (const FileSinkPartFile& part : txn.pending) {
    FRESHET_RETURN_IF_ERROR(Discard(*options_.file_system, part).WithContext("file sink"));
  }
  return Status::Ok();
}

Status FileSinkWriterCore::Recover(const FileSinkTransaction& txn) const {
  // Files rolled after the barrier hold data the sources replay.
  FRESHET_RETURN_IF_ERROR(Abort(txn));
  for (const FileSinkPartFile& part : txn.open_at_begin) {
    if (part.size == 0) {
      FRESHET_RETURN_IF_ERROR(Discard(*options_.file_system, part).WithContext("file sink"));
      continue;
    }
    FRESHET_RETURN_IF_ERROR(Publish(*options_.file_system, part).WithContext("file sink"));
  }
  return Status::Ok();
}

std::string FileSinkWriterCore::SharedState() const {
  std::string out(sizeof(int32_t) + sizeof(uint64_t), '\0');
  auto subtask = static_cast<int32_t>(subtask_);
  std::memcpy(out.data(), &subtask, sizeof(subtask));
  std::memcpy(out.data() + sizeof(subtask), &next_counter_, sizeof(next_counter_));
  return out;
}

Status FileSinkWriterCore::RestoreSharedState(const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) {
    int32_t subtask = 0;
    uint64_t counter = 0;
    if (entry.size() != sizeof(subtask) + sizeof(counter)) {
      return Status::Corruption("file sink: a restored part counter does not decode (" + std::to_string(entry.size()) +
                                " bytes)");
    }
    std::memcpy(&subtask, entry.data(), sizeof(subtask));
    std::memcpy(&counter, entry.data() + sizeof(subtask), sizeof(counter));
    // Names carry the subtask index: only this index's old counter matters.
    if (subtask == subtask_) next_counter_ = std::max(next_counter_, counter);
  }
  return Status::Ok();
}

void FileSinkWriterCore::Close() {
  for (auto& [bucket, f] : open_) {
    if (f.handle != nullptr) f.handle->Close().IgnoreError();  // left in progress: a restore settles it
  }
  open_.clear();
}

}  // namespace internal
}  // namespace freshet
