#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "freshet/connectors.h"

namespace freshet {

namespace {

class TextFileReader final : public SourceReader<std::string> {
 public:
  TextFileReader(std::string path, bool continuous, Duration scan_interval, std::shared_ptr<FileSystem> fs,
                 SourceReaderContext& ctx)
      : path_(std::move(path)), continuous_(continuous), scan_interval_(scan_interval), fs_(std::move(fs)), ctx_(ctx) {}

  Status Open() override {
    Result<FileInfo> info = fs_->Stat(path_);
    if (!info.IsOk()) return info.GetStatus().WithContext("text file source");
    is_directory_ = info->is_directory;
    if (!is_directory_ && continuous_) {
      return Status::InvalidArgument("text file source: continuous mode watches a directory; '" + path_ +
                                     "' is a file");
    }
    if (restored_) return Status::Ok();
    return Scan();
  }

  /// Splits: 'F' entries (path, byte offset of the next line) for the file
  /// being read and the pending ones; in continuous mode one 'D' entry per
  /// file already read, so a restored reader does not read it again.
  Result<std::vector<std::string>> SnapshotState(CheckpointId) override {
    std::vector<std::string> out;
    if (file_ != nullptr) {
      uint64_t offset = file_offset_ - (chunk_len_ - chunk_pos_) - carry_.size();
      out.push_back(Entry('F', current_path_, offset));
    }
    for (const std::string& p : pending_) out.push_back(Entry('F', p, 0));
    if (continuous_) {
      for (const std::string& p : seen_) {
        if ((file_ != nullptr && p == current_path_) || std::find(pending_.begin(), pending_.end(), p) != pending_.end()) {
          continue;
        }
        out.push_back(Entry('D', p, 0));
      }
    }
    return out;
  }
  Status RestoreState(std::vector<std::string> splits) override {
    restored_ = true;
    for (const std::string& e : splits) {
      uint64_t offset = 0;
      if (e.size() < 1 + sizeof(offset) || (e[0] != 'F' && e[0] != 'D')) {
        return Status::Corruption("text file source state does not decode");
      }
      std::memcpy(&offset, e.data() + 1, sizeof(offset));
      std::string path = e.substr(1 + sizeof(offset));
      seen_.insert(path);
      if (e[0] == 'F') {
        pending_.push_back(path);
        start_offsets_[path] = offset;
      }
    }
    return Status::Ok();
  }

  Result<InputStatus> PollNext(ReaderOutput<std::string>& out) override {
    int emitted = 0;
    while (emitted < kBatch) {
      if (file_ == nullptr) {
        if (pending_.empty()) break;
        current_path_ = pending_.front();
        pending_.erase(pending_.begin());
        Result<std::unique_ptr<ReadableFile>> f = fs_->OpenForRead(current_path_);
        if (!f.IsOk()) return f.GetStatus().WithContext("text file source");
        file_ = std::move(*f);
        eof_ = false;
        carry_.clear();
        chunk_pos_ = chunk_len_ = 0;
        file_offset_ = 0;
        if (auto it = start_offsets_.find(current_path_); it != start_offsets_.end()) {
          FRESHET_RETURN_IF_ERROR(Skip(it->second));
          start_offsets_.erase(it);
        }
      }
      // Split the buffered chunk into lines.
      while (emitted < kBatch) {
        const char* begin = chunk_.data() + chunk_pos_;
        const char* end = chunk_.data() + chunk_len_;
        const char* nl = std::find(begin, end, '\n');
        if (nl == end) break;
        line_.assign(carry_);
        line_.append(begin, nl);
        carry_.clear();
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        out.Collect(line_);
        ++emitted;
        chunk_pos_ = static_cast<size_t>(nl - chunk_.data()) + 1;
      }
      if (emitted >= kBatch) break;
      carry_.append(chunk_.data() + chunk_pos_, chunk_len_ - chunk_pos_);
      chunk_pos_ = chunk_len_ = 0;
      if (eof_) {
        if (!carry_.empty()) {
          if (carry_.back() == '\r') carry_.pop_back();
          out.Collect(carry_);
          ++emitted;
          carry_.clear();
        }
        file_.reset();
        continue;
      }
      chunk_.resize(kChunk);
      Result<size_t> n = file_->Read(chunk_.data(), kChunk);
      if (!n.IsOk()) return n.GetStatus().WithContext("text file source");
      chunk_len_ = *n;
      file_offset_ += *n;
      if (*n == 0) eof_ = true;
    }
    if (file_ != nullptr || !pending_.empty()) return InputStatus::kMoreAvailable;
    if (!continuous_) return InputStatus::kEndOfInput;
    int64_t now = ctx_.GetClock().MonotonicNanos();
    if (now - last_scan_ns_ >= std::chrono::duration_cast<std::chrono::nanoseconds>(scan_interval_).count()) {
      FRESHET_RETURN_IF_ERROR(Scan());
      if (!pending_.empty()) return InputStatus::kMoreAvailable;
    }
    return InputStatus::kNothingAvailable;
  }

  Duration PollDelay() const override { return std::min(scan_interval_, Duration(100)); }

 private:
  static constexpr int kBatch = 1024;

  static std::string Entry(char kind, const std::string& path, uint64_t offset) {
    std::string e(1, kind);
    e.append(reinterpret_cast<const char*>(&offset), sizeof(offset));
    e += path;
    return e;
  }
  // Skips the first `offset` bytes of the current file (a restored position).
  Status Skip(uint64_t offset) {
    std::vector<char> scratch(kChunk);
    while (file_offset_ < offset) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, offset - file_offset_));
      Result<size_t> n = file_->Read(scratch.data(), want);
      if (!n.IsOk()) return n.GetStatus().WithContext("text file source");
      if (*n == 0) {
        return Status::Corruption("text file source: '" + current_path_ + "' is shorter than the restored position " +
                                  std::to_string(offset));
      }
      file_offset_ += *n;
    }
    return Status::Ok();
  }
  static constexpr size_t kChunk = 64 * 1024;

  // Collects this subtask's share of files not seen before.
  Status Scan() {
    last_scan_ns_ = ctx_.GetClock().MonotonicNanos();
    std::vector<std::string> files;
    if (is_directory_) {
      Result<std::vector<FileInfo>> entries = fs_->List(path_);
      if (!entries.IsOk()) return entries.GetStatus().WithContext("text file source");
      for (const FileInfo& e : *entries) {
        if (!e.is_directory) files.push_back(e.path);
      }
    } else {
      files.push_back(path_);
    }
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string& f = files[i];
      if (seen_.count(f)) continue;
      // Bounded mode: round-robin by position; continuous mode: by name hash
      // (positions shift as files arrive).
      size_t owner = continuous_ ? std::hash<std::string>()(f) : i;
      if (static_cast<int>(owner % static_cast<size_t>(ctx_.Parallelism())) != ctx_.SubtaskIndex()) continue;
      seen_.insert(f);
      pending_.push_back(f);
    }
    return Status::Ok();
  }

  std::string path_;
  bool continuous_;
  Duration scan_interval_;
  std::shared_ptr<FileSystem> fs_;
  SourceReaderContext& ctx_;
  bool is_directory_ = false;
  std::set<std::string> seen_;
  std::vector<std::string> pending_;
  std::string current_path_;
  std::unique_ptr<ReadableFile> file_;
  bool eof_ = false;
  std::vector<char> chunk_;
  size_t chunk_pos_ = 0;
  size_t chunk_len_ = 0;
  std::string carry_;
  std::string line_;
  int64_t last_scan_ns_ = 0;
  uint64_t file_offset_ = 0;  // bytes read from the current file
  bool restored_ = false;
  std::map<std::string, uint64_t> start_offsets_;  // restored positions of pending files
};

}  // namespace

std::unique_ptr<SourceReader<std::string>> TextFileSource::CreateReader(SourceReaderContext& ctx) const {
  return std::make_unique<TextFileReader>(path_, continuous_, scan_interval_, fs_, ctx);
}

}  // namespace freshet
