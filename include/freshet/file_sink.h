#pragma once
/// FileSink: records as rows in part files under bucket directories,
/// exactly once through two-phase commit (Flink's FileSink, row format).
///
///   stream.SinkTo(FileSink<Event>("/data/events")
///                     .WithBucketAssigner(BasePathBucketAssigner())
///                     .WithRollingPolicy(std::make_shared<DefaultRollingPolicy>()),
///                 "event files");
///
/// Layout: `<base>/<bucket>/<prefix>-<subtask>-<counter><suffix>`. The bucket
/// comes from the bucket assigner (by default the processing time formatted
/// `yyyy-MM-dd--HH`; "" is the base directory itself), `<subtask>` is the
/// writing subtask's index and `<counter>` numbers that subtask's part files
/// across all buckets (kept in checkpoints, so names never repeat in a job).
///
/// A part file is, in turn:
/// - in progress: `.<name>.inprogress.<uuid>`, hidden, being written;
/// - pending: the same file, closed and synced, recorded in a checkpoint as
///   part of the transaction its barrier pre-committed;
/// - finished: atomically renamed to `<name>` once that checkpoint completed.
/// Readers that skip hidden files (names starting with '.' or '_', as
/// FileSystem::List and the text file source do) see committed data only.
///
/// When a part file rolls (closes, and the next record of its bucket starts
/// a new one) is the rolling policy's decision: OnCheckpointRollingPolicy
/// (the default) at every checkpoint, so each completed checkpoint makes
/// everything written before its barrier visible; DefaultRollingPolicy by
/// size and time, keeping a file open across checkpoints, in which case the
/// checkpoint records the file's length at the barrier.
///
/// Recovery from checkpoint n: its pending files are committed (again: a
/// commit finding the finished file with the recorded size is done
/// already); files open at barrier n are truncated to
/// the length recorded then and published; in-progress files begun after
/// barrier n belong to no checkpoint and are never published (they stay as
/// hidden leftovers, as in Flink). Without checkpointing, every part file is
/// committed when the input ends, and a failure leaves only hidden files.
/// A failed write or sync of a part file is never retried (the file may end
/// in a partial row): the writer fails its task and the job recovers.
///
/// Start every job on a fresh directory or with its own part prefix: a
/// finished file of another run with the same name fails the commit when
/// its size differs, and is taken for this commit's result when it does not.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "freshet/file_system.h"
#include "freshet/format.h"
#include "freshet/two_phase_commit.h"

namespace freshet {

/// Names of part files: `<part_prefix>-<subtask>-<counter><part_suffix>`.
struct OutputFileConfig {
  /// Default "part".
  std::string part_prefix = "part";
  /// Default empty; e.g. ".txt".
  std::string part_suffix;
};

/// What a bucket assigner may use besides the record.
struct BucketContext {
  /// The task's processing time when the record is written (ms since epoch).
  Timestamp processing_time = 0;
  /// The record's timestamp; kNoTimestamp when it has none.
  Timestamp timestamp = kNoTimestamp;
  /// The sink's current watermark; kNoTimestamp before the first.
  Timestamp watermark = kNoTimestamp;
};

/// Picks the bucket of a record: a directory relative to the base path
/// ("a", "a/b"; "" is the base path itself; absolute paths and ".." are
/// refused). Called on the task thread for every record.
template <class T>
using BucketAssigner = std::function<std::string(const T& value, const BucketContext& context)>;

enum class BucketTimeZone { kLocal, kUtc };

/// Buckets by processing time: the bucket is the time written with a
/// pattern of Java DateTimeFormatter letters (Flink's DateTimeBucketAssigner):
/// `y` year (`yy` its last two digits), `M` month, `d` day, `H` hour, `m`
/// minute, `s` second, `S` millisecond, each zero-padded to the number of
/// letters; other characters are copied, text in single quotes literally
/// (`''` is a quote). Other letters are refused (std::invalid_argument).
/// Default "yyyy-MM-dd--HH" in the local time zone, like Flink's.
class DateTimeBucketAssigner {
 public:
  explicit DateTimeBucketAssigner(std::string format = "yyyy-MM-dd--HH",
                                  BucketTimeZone zone = BucketTimeZone::kLocal);
  /// The bucket of processing time `time` (ms since epoch).
  std::string BucketIdFor(Timestamp time) const;
  template <class T>
  std::string operator()(const T& /*value*/, const BucketContext& context) const {
    return BucketIdFor(context.processing_time);
  }

 private:
  struct Piece {
    char field = 0;  // 0: literal text
    int width = 0;
    std::string literal;
  };
  std::vector<Piece> pieces_;
  BucketTimeZone zone_;
};

/// Writes every record into the base directory.
struct BasePathBucketAssigner {
  template <class T>
  std::string operator()(const T& /*value*/, const BucketContext& /*context*/) const {
    return std::string();
  }
};

/// The in-progress part file of a bucket, as rolling policies see it.
struct PartFileInfo {
  std::string bucket_id;
  /// Bytes written so far.
  uint64_t size = 0;
  /// Processing times (ms) of the file's creation and of its last write.
  Timestamp creation_time = 0;
  Timestamp last_update_time = 0;
};

/// Decides when the in-progress part file of a bucket rolls: it is closed,
/// becomes pending and is committed with the next completed checkpoint; the
/// bucket's next record starts a new file. Called on the task thread.
class RollingPolicy {
 public:
  virtual ~RollingPolicy() = default;
  /// At a checkpoint barrier. False keeps the file open across the
  /// checkpoint; the checkpoint then records its length at the barrier.
  virtual bool ShouldRollOnCheckpoint(const PartFileInfo& file) const = 0;
  /// Before a record is written into `file`.
  virtual bool ShouldRollOnEvent(const PartFileInfo& file) const = 0;
  /// Every bucket check interval (FileSinkOptions::bucket_check_interval).
  virtual bool ShouldRollOnProcessingTime(const PartFileInfo& file, Timestamp now) const = 0;
};

/// Settings of DefaultRollingPolicy.
struct DefaultRollingPolicyOptions {
  /// A file rolls before a record once it holds this many bytes (so it
  /// exceeds the limit by less than one record), and at a checkpoint when
  /// it holds more. Default 128 MiB.
  uint64_t max_part_size = uint64_t{128} << 20;
  /// A file rolls once it has been open this long. Default 60 s.
  Duration rollover_interval{60 * 1000};
  /// A file rolls once nothing was written to it for this long. Default 60 s.
  Duration inactivity_interval{60 * 1000};
};

/// Rolls by size, age and inactivity (Flink's DefaultRollingPolicy); keeps
/// files open across checkpoints. Time limits are checked every bucket
/// check interval.
class DefaultRollingPolicy final : public RollingPolicy {
 public:
  explicit DefaultRollingPolicy(DefaultRollingPolicyOptions options = DefaultRollingPolicyOptions())
      : options_(options) {}
  bool ShouldRollOnCheckpoint(const PartFileInfo& file) const override { return file.size > options_.max_part_size; }
  bool ShouldRollOnEvent(const PartFileInfo& file) const override { return file.size >= options_.max_part_size; }
  bool ShouldRollOnProcessingTime(const PartFileInfo& file, Timestamp now) const override {
    return now - file.creation_time >= options_.rollover_interval.count() ||
           now - file.last_update_time >= options_.inactivity_interval.count();
  }
  const DefaultRollingPolicyOptions& Options() const { return options_; }

 private:
  DefaultRollingPolicyOptions options_;
};

/// Rolls at every checkpoint and only then: a completed checkpoint makes
/// everything written before its barrier visible. FileSink's default.
class OnCheckpointRollingPolicy final : public RollingPolicy {
 public:
  bool ShouldRollOnCheckpoint(const PartFileInfo& /*file*/) const override { return true; }
  bool ShouldRollOnEvent(const PartFileInfo& /*file*/) const override { return false; }
  bool ShouldRollOnProcessingTime(const PartFileInfo& /*file*/, Timestamp /*now*/) const override { return false; }
};

/// The untyped settings of a FileSink.
struct FileSinkOptions {
  /// Directory holding the buckets; created when missing. Required.
  std::string base_path;
  /// Part file names.
  OutputFileConfig output_file_config;
  /// When part files roll. Null (the default): OnCheckpointRollingPolicy.
  std::shared_ptr<const RollingPolicy> rolling_policy;
  /// How often ShouldRollOnProcessingTime is asked (> 0). Default 60 s.
  Duration bucket_check_interval{60 * 1000};
  /// Where the files go. Null (the default): FileSystem::Local(). It must
  /// support Sync, Rename, Delete and Truncate.
  std::shared_ptr<FileSystem> file_system;
};

namespace internal {

/// A part file as transactions and checkpoints record it.
struct FileSinkPartFile {
  std::string in_progress_path;
  std::string final_path;
  /// Pending files: the whole file. Open files: the length when recorded.
  uint64_t size = 0;
};

/// FileSink's transaction: what one checkpoint interval of a subtask wrote.
struct FileSinkTransaction {
  /// Part files rolled in the interval: closed and synced; Commit renames
  /// them to their final names.
  std::vector<FileSinkPartFile> pending;
  /// Part files open when the transaction began (at the previous barrier),
  /// with their length then: that prefix was written before the barrier.
  /// Used only when the transaction is restored as the current one.
  std::vector<FileSinkPartFile> open_at_begin;
};

/// The untyped part of FileSink's writer: buckets, part files, rolling,
/// commit and recovery. One per subtask, task thread only.
///
/// A failed append, sync or close of a part file leaves it in an unknown
/// state (a partial row at its end, or pages lost by the failed fsync), so
/// it is never retried: from then on Write, RollDue, RollAll and PreCommit
/// return that first error, which fails the task (or, at a barrier,
/// declines the checkpoint, and the next record or bucket check fails the
/// task), and the job recovers from its last completed checkpoint, whose
/// recorded lengths were synced before the failure. Commit, Abort and
/// Recover work on recorded files only and are not affected.
class FileSinkWriterCore {
 public:
  FileSinkWriterCore(FileSinkOptions options, int subtask);
  ~FileSinkWriterCore();
  FileSinkWriterCore(const FileSinkWriterCore&) = delete;
  FileSinkWriterCore& operator=(const FileSinkWriterCore&) = delete;

  /// Checks the options and creates the base directory.
  Status Open();
  FileSinkTransaction BeginTransaction() const;
  /// Appends `bytes` (one encoded record) to the bucket's in-progress file,
  /// first rolling it into `txn` when the policy says so.
  Status Write(FileSinkTransaction& txn, const std::string& bucket_id, std::string_view bytes, Timestamp now);
  /// Rolls the files the policy wants rolled at processing time `now`.
  Status RollDue(FileSinkTransaction& txn, Timestamp now);
  /// Rolls every open file (end of input).
  Status RollAll(FileSinkTransaction& txn);
  /// Rolls the files the policy rolls on checkpoints; syncs the others.
  Status PreCommit(FileSinkTransaction& txn);
  /// Renames the pending files to their final names; idempotent.
  Status Commit(const FileSinkTransaction& txn) const;
  /// Deletes the pending files.
  Status Abort(const FileSinkTransaction& txn) const;
  /// For the restored current transaction: publishes the recorded prefix of
  /// the files open at its beginning and deletes its pending files.
  Status Recover(const FileSinkTransaction& txn) const;
  /// This subtask's part counter.
  std::string SharedState() const;
  Status RestoreSharedState(const std::vector<std::string>& entries);
  /// Closes open files without committing or deleting them.
  void Close();

  Duration BucketCheckInterval() const { return options_.bucket_check_interval; }

 private:
  struct OpenFile {
    FileSinkPartFile file;
    std::unique_ptr<WritableFile> handle;
    std::string buffer;     // appended, not yet written to the file
    uint64_t written = 0;   // bytes handed to the file
    uint64_t synced = 0;    // bytes known durable
    Timestamp creation_time = 0;
    Timestamp last_update_time = 0;
  };
  PartFileInfo Info(const std::string& bucket_id, const OpenFile& f) const;
  Status OpenPartFile(const std::string& bucket_id, Timestamp now, OpenFile& out);
  Status FlushBuffer(OpenFile& f);
  /// Closes and syncs the file and adds it to `txn.pending`.
  Status Roll(FileSinkTransaction& txn, OpenFile& f);
  /// Records `error`, an append, sync or close of `f` that failed, as the
  /// writer's failure and returns it.
  Status Fail(const OpenFile& f, const Status& error);
  std::string RandomId();

  FileSinkOptions options_;
  int subtask_;
  std::map<std::string, OpenFile> open_;  // by bucket id
  std::set<std::string> created_directories_;
  uint64_t next_counter_ = 0;
  std::mt19937_64 random_;
  // The first failed append, sync or close (see the class comment); OK
  // while every part file is sound.
  Status failure_;
};

}  // namespace internal

/// Writes records as rows into part files, exactly once with checkpointing.
/// Rows are the records' text form (AppendText, as Print writes them) and a
/// newline, or what the encoder appends.
template <class T>
class FileSink final : public TwoPhaseCommitSink<T, internal::FileSinkTransaction> {
 public:
  using Txn = internal::FileSinkTransaction;
  /// Appends the bytes of one record (with its delimiter) to `out`.
  using Encoder = std::function<void(const T& value, std::string& out)>;

  explicit FileSink(std::string base_path) : FileSink(OptionsFor(std::move(base_path))) {}
  explicit FileSink(FileSinkOptions options) : options_(std::move(options)) {}

  /// Default: DateTimeBucketAssigner().
  FileSink& WithBucketAssigner(BucketAssigner<T> assigner) {
    assigner_ = std::move(assigner);
    return *this;
  }
  FileSink& WithEncoder(Encoder encoder) {
    encoder_ = std::move(encoder);
    return *this;
  }
  FileSink& WithRollingPolicy(std::shared_ptr<const RollingPolicy> policy) {
    options_.rolling_policy = std::move(policy);
    return *this;
  }
  FileSink& WithOutputFileConfig(OutputFileConfig config) {
    options_.output_file_config = std::move(config);
    return *this;
  }
  FileSink& WithBucketCheckInterval(Duration interval) {
    options_.bucket_check_interval = interval;
    return *this;
  }
  FileSink& WithFileSystem(std::shared_ptr<FileSystem> fs) {
    options_.file_system = std::move(fs);
    return *this;
  }

  std::unique_ptr<TwoPhaseCommitWriter<T, Txn>> CreateTransactionalWriter(RuntimeContext& context) const override {
    return std::make_unique<Writer>(options_, context.GetIndexOfThisSubtask(), assigner_, encoder_);
  }

 private:
  static FileSinkOptions OptionsFor(std::string base_path) {
    FileSinkOptions options;
    options.base_path = std::move(base_path);
    return options;
  }

  class Writer final : public TwoPhaseCommitWriter<T, Txn> {
   public:
    Writer(FileSinkOptions options, int subtask, BucketAssigner<T> assigner, Encoder encoder)
        : core_(std::move(options), subtask), assigner_(std::move(assigner)), encoder_(std::move(encoder)) {}

    Status Open(RuntimeContext& /*runtime*/, SinkWriterContext& context) override {
      context_ = &context;
      FRESHET_RETURN_IF_ERROR(core_.Open());
      context.RegisterProcessingTimer(context.CurrentProcessingTime() + core_.BucketCheckInterval().count());
      return Status::Ok();
    }
    Result<Txn> BeginTransaction() override { return core_.BeginTransaction(); }
    Status Write(Txn& txn, const T& value, Timestamp ts) override {
      Timestamp now = context_->CurrentProcessingTime();
      std::string bucket = assigner_(value, BucketContext{now, ts, context_->CurrentWatermark()});
      row_.clear();
      if (encoder_) {
        encoder_(value, row_);
      } else {
        AppendText(row_, value);
        row_ += '\n';
      }
      return core_.Write(txn, bucket, row_, now);
    }
    Status OnProcessingTime(Txn& txn, Timestamp time) override {
      FRESHET_RETURN_IF_ERROR(core_.RollDue(txn, time));
      context_->RegisterProcessingTimer(time + core_.BucketCheckInterval().count());
      return Status::Ok();
    }
    Status EndOfInput(Txn& txn) override { return core_.RollAll(txn); }
    Status PreCommit(Txn& txn) override { return core_.PreCommit(txn); }
    Status Commit(const Txn& txn) override { return core_.Commit(txn); }
    Status Abort(const Txn& txn) override { return core_.Abort(txn); }
    Status RecoverAndAbort(const Txn& txn) override { return core_.Recover(txn); }
    std::string SnapshotSharedState() override { return core_.SharedState(); }
    Status RestoreSharedState(const std::vector<std::string>& entries) override {
      return core_.RestoreSharedState(entries);
    }
    void Close() override { core_.Close(); }

   private:
    internal::FileSinkWriterCore core_;
    BucketAssigner<T> assigner_;
    Encoder encoder_;
    SinkWriterContext* context_ = nullptr;
    std::string row_;
  };

  FileSinkOptions options_;
  BucketAssigner<T> assigner_ = DateTimeBucketAssigner();
  Encoder encoder_;
};

}  // namespace freshet
