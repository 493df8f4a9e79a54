#pragma once
/// Built-in sources and sinks.

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "freshet/file_system.h"
#include "freshet/format.h"
#include "freshet/sink.h"
#include "freshet/source.h"

namespace freshet {

/// Part [begin, end) of `total` items owned by `subtask` of `parallelism`.
inline std::pair<int64_t, int64_t> SplitRange(int64_t total, int subtask, int parallelism) {
  // floor(total * i / p) as q * i + floor(r * i / p) (total = q * p + r): no overflow for large totals.
  auto bound = [total, parallelism](int64_t i) {
    return total / parallelism * i + total % parallelism * i / parallelism;
  };
  return {bound(subtask), bound(subtask + 1)};
}

/// Elements held in memory, emitted in order by one subtask.
template <class T>
class CollectionSource final : public Source<T> {
 public:
  explicit CollectionSource(std::vector<T> values) : values_(std::make_shared<const std::vector<T>>(std::move(values))) {}
  Boundedness GetBoundedness() const override { return Boundedness::kBounded; }
  int MaxParallelism() const override { return 1; }
  std::unique_ptr<SourceReader<T>> CreateReader(SourceReaderContext&) const override {
    return std::make_unique<Reader>(values_);
  }

 private:
  class Reader final : public SourceReader<T> {
   public:
    explicit Reader(std::shared_ptr<const std::vector<T>> v) : values_(std::move(v)) {}
    Result<InputStatus> PollNext(ReaderOutput<T>& out) override {
      size_t end = std::min(values_->size(), next_ + 1024);
      for (; next_ < end; ++next_) out.Collect((*values_)[next_]);
      return next_ < values_->size() ? InputStatus::kMoreAvailable : InputStatus::kEndOfInput;
    }
    /// One split: the index of the next element.
    Result<std::vector<std::string>> SnapshotState(CheckpointId) override {
      uint64_t next = next_;
      return std::vector<std::string>{std::string(reinterpret_cast<const char*>(&next), sizeof(next))};
    }
    Status RestoreState(std::vector<std::string> splits) override {
      next_ = values_->size();
      if (splits.empty()) return Status::Ok();
      uint64_t next = 0;
      if (splits.size() != 1 || splits[0].size() != sizeof(next)) {
        return Status::Corruption("collection source state does not decode");
      }
      std::memcpy(&next, splits[0].data(), sizeof(next));
      next_ = std::min<size_t>(next, values_->size());
      return Status::Ok();
    }

   private:
    std::shared_ptr<const std::vector<T>> values_;
    size_t next_ = 0;
  };
  std::shared_ptr<const std::vector<T>> values_;
};

/// `fn(index)` for indexes split into contiguous ranges per subtask,
/// optionally rate-limited. Unbounded when `count` < 0.
template <class T, class F>
class GeneratorSource final : public Source<T> {
 public:
  using OutputType = T;
  GeneratorSource(F fn, int64_t count, double records_per_second)
      : fn_(std::move(fn)), count_(count), rate_(records_per_second) {}
  Boundedness GetBoundedness() const override {
    return count_ < 0 ? Boundedness::kContinuousUnbounded : Boundedness::kBounded;
  }
  std::unique_ptr<SourceReader<T>> CreateReader(SourceReaderContext& ctx) const override {
    int64_t begin = 0, end = INT64_MAX;
    if (count_ >= 0) {
      std::tie(begin, end) = SplitRange(count_, ctx.SubtaskIndex(), ctx.Parallelism());
    } else {
      // Unbounded: subtask i generates i, i + p, i + 2p, ... through its own
      // counter; expressed as a stride.
      begin = ctx.SubtaskIndex();
    }
    return std::make_unique<Reader>(fn_, begin, end, count_ < 0 ? ctx.Parallelism() : 1,
                                    rate_ > 0 ? rate_ / ctx.Parallelism() : 0, ctx.GetClock());
  }

 private:
  class Reader final : public SourceReader<T> {
   public:
    Reader(F fn, int64_t begin, int64_t end, int64_t stride, double rate, Clock& clock)
        : fn_(std::move(fn)), rate_(rate), clock_(clock) {
      if (begin < end) ranges_.push_back({begin, end, stride});
    }
    Result<InputStatus> PollNext(ReaderOutput<T>& out) override {
      if (ranges_.empty()) return InputStatus::kEndOfInput;
      int64_t budget = kBatch;
      if (rate_ > 0) {
        int64_t now = clock_.MonotonicNanos();
        if (start_ns_ < 0) start_ns_ = now;
        auto allowed = static_cast<int64_t>(static_cast<double>(now - start_ns_) * rate_ / 1e9) + 1 - emitted_;
        if (allowed <= 0) {
          delay_ = Duration(std::max<int64_t>(1, static_cast<int64_t>(1000.0 / rate_)));
          return InputStatus::kNothingAvailable;
        }
        budget = std::min(budget, allowed);
      }
      Range& r = ranges_.front();
      int64_t i = 0;
      for (; i < budget && r.next < r.end; ++i) {
        out.Collect(fn_(r.next));
        r.next += r.stride;
      }
      emitted_ += i;
      if (r.next >= r.end) ranges_.erase(ranges_.begin());
      return ranges_.empty() ? InputStatus::kEndOfInput : InputStatus::kMoreAvailable;
    }
    Duration PollDelay() const override { return delay_; }
    /// One split per unfinished range: (next, end, stride).
    Result<std::vector<std::string>> SnapshotState(CheckpointId) override {
      std::vector<std::string> out;
      for (const Range& r : ranges_) out.emplace_back(reinterpret_cast<const char*>(&r), sizeof(Range));
      return out;
    }
    Status RestoreState(std::vector<std::string> splits) override {
      ranges_.clear();
      for (const std::string& s : splits) {
        Range r;
        if (s.size() != sizeof(Range)) return Status::Corruption("generator source state does not decode");
        std::memcpy(&r, s.data(), sizeof(r));
        if (r.stride <= 0) return Status::Corruption("generator source state has a bad stride");
        if (r.next < r.end) ranges_.push_back(r);
      }
      return Status::Ok();
    }

   private:
    struct Range {
      int64_t next;
      int64_t end;
      int64_t stride;
    };
    static constexpr int64_t kBatch = 4096;
    F fn_;
    std::vector<Range> ranges_;
    double rate_;
    Clock& clock_;
    int64_t start_ns_ = -1;
    int64_t emitted_ = 0;
    Duration delay_{1};
  };
  F fn_;
  int64_t count_;
  double rate_;
};

/// Lines of a file or of the files of a directory. Files are spread over
/// the parallel subtasks (a single file is read by one subtask). In
/// continuous mode the directory is scanned every `scan_interval` and new
/// files are read once.
class TextFileSource final : public Source<std::string> {
 public:
  TextFileSource(std::string path, bool continuous, Duration scan_interval,
                 std::shared_ptr<FileSystem> fs = FileSystem::Local())
      : path_(std::move(path)), continuous_(continuous), scan_interval_(scan_interval), fs_(std::move(fs)) {}
  Boundedness GetBoundedness() const override {
    return continuous_ ? Boundedness::kContinuousUnbounded : Boundedness::kBounded;
  }
  std::unique_ptr<SourceReader<std::string>> CreateReader(SourceReaderContext& ctx) const override;

 private:
  std::string path_;
  bool continuous_;
  Duration scan_interval_;
  std::shared_ptr<FileSystem> fs_;
};

/// Lines from a TCP server at host:port. Non-parallel. Ends when the server
/// closes the connection. Cannot replay what it has read.
class SocketTextSource final : public Source<std::string> {
 public:
  SocketTextSource(std::string host, int port, char delimiter)
      : host_(std::move(host)), port_(port), delimiter_(delimiter) {}
  Boundedness GetBoundedness() const override { return Boundedness::kContinuousUnbounded; }
  int MaxParallelism() const override { return 1; }
  std::unique_ptr<SourceReader<std::string>> CreateReader(SourceReaderContext& ctx) const override;

 private:
  std::string host_;
  int port_;
  char delimiter_;
};

namespace internal {
/// Writes whole lines to stdout (or stderr) atomically with respect to other
/// print sinks of the process.
void WriteConsoleLine(const std::string& line, bool to_stderr);
}  // namespace internal

/// Prints records as text; with parallelism > 1 each line starts with the
/// subtask number: "3> record".
template <class T>
class PrintSink final : public Sink<T> {
 public:
  explicit PrintSink(bool to_stderr = false, std::string prefix = "") : to_stderr_(to_stderr), prefix_(std::move(prefix)) {}
  std::unique_ptr<SinkWriter<T>> CreateWriter(RuntimeContext& ctx) const override {
    std::string prefix = prefix_;
    if (ctx.GetNumberOfParallelSubtasks() > 1) {
      if (!prefix.empty()) prefix += ':';
      prefix += std::to_string(ctx.GetIndexOfThisSubtask() + 1);
      prefix += "> ";
    } else if (!prefix.empty()) {
      prefix += "> ";
    }
    return std::make_unique<Writer>(std::move(prefix), to_stderr_);
  }

 private:
  class Writer final : public SinkWriter<T> {
   public:
    Writer(std::string prefix, bool to_stderr) : prefix_(std::move(prefix)), to_stderr_(to_stderr) {}
    Status Write(const T& v, Timestamp) override {
      line_ = prefix_;
      AppendText(line_, v);
      internal::WriteConsoleLine(line_, to_stderr_);
      return Status::Ok();
    }

   private:
    std::string prefix_;
    bool to_stderr_;
    std::string line_;
  };
  bool to_stderr_;
  std::string prefix_;
};

namespace internal {
/// Appends lines to one file; shared by the typed text sinks.
class TextFileWriterCore {
 public:
  TextFileWriterCore(std::shared_ptr<FileSystem> fs, std::string path) : fs_(std::move(fs)), path_(std::move(path)) {}
  Status Open();
  Status AppendLine(const std::string& text);
  Status Flush();
  void Close();

 private:
  std::shared_ptr<FileSystem> fs_;
  std::string path_;
  std::unique_ptr<WritableFile> file_;
  std::string pending_;
};
/// The file a subtask of a text sink writes: `path` at parallelism 1, else
/// `path/<subtask + 1>` (the directory is created).
Result<std::string> TextSinkFilePath(FileSystem& fs, const std::string& path, int subtask, int parallelism);
}  // namespace internal

/// Writes records as lines of text.
template <class T>
class TextFileSink final : public Sink<T> {
 public:
  explicit TextFileSink(std::string path, std::shared_ptr<FileSystem> fs = FileSystem::Local())
      : path_(std::move(path)), fs_(std::move(fs)) {}
  std::unique_ptr<SinkWriter<T>> CreateWriter(RuntimeContext&) const override {
    return std::make_unique<Writer>(fs_, path_);
  }

 private:
  class Writer final : public SinkWriter<T> {
   public:
    Writer(std::shared_ptr<FileSystem> fs, std::string path) : fs_(std::move(fs)), path_(std::move(path)) {}
    Status Open(RuntimeContext& ctx) override {
      FRESHET_ASSIGN_OR_RETURN(std::string file, internal::TextSinkFilePath(*fs_, path_, ctx.GetIndexOfThisSubtask(),
                                                                            ctx.GetNumberOfParallelSubtasks()));
      core_ = std::make_unique<internal::TextFileWriterCore>(fs_, file);
      return core_->Open();
    }
    Status Write(const T& v, Timestamp) override {
      line_.clear();
      AppendText(line_, v);
      return core_->AppendLine(line_);
    }
    Status Flush(bool) override { return core_->Flush(); }
    void Close() override {
      if (core_) core_->Close();
    }

   private:
    std::shared_ptr<FileSystem> fs_;
    std::string path_;
    std::unique_ptr<internal::TextFileWriterCore> core_;
    std::string line_;
  };
  std::string path_;
  std::shared_ptr<FileSystem> fs_;
};

}  // namespace freshet
