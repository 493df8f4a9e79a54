// End-to-end exactly-once through the two-phase-commit FileSink: the
// sequence oracle (per-key sequence numbers from a generator, failures
// injected in the source task and in the sink's own task, a keyed checker
// holding the last number per key) writes every record into part files,
// and after the job only the committed part files are read: every key's
// numbers 0..N-1 must be there exactly once. Variants: the sink chained to
// the checker; the sink in its own task after a rebalance (its last
// transaction committed by the final checkpoint before the task ends);
// failures between a checkpoint's pre-commit and its commit (the restored
// transaction is committed, once); a failure at the final commit;
// processing-time buckets; frequent concurrent checkpoints; a short write
// of a part file at a barrier. Jobs without checkpointing are covered by
// tests/api/file_sink_test.cc.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "freshet/file_sink.h"
#include "freshet/freshet.h"
#include "freshet/two_phase_commit.h"

#include "support/committed_files.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

namespace fs = std::filesystem;

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("freshet-e2e") {}
};

struct Seq {
  int64_t key;
  int64_t seq;
};

using FileTxn = internal::FileSinkTransaction;

/// Where a sink writer of the audited sink fails (subtask 0 only, on the
/// attempts the job names).
enum class SinkFault {
  /// The first Write after the writer's third pre-commit: the failure comes
  /// between a barrier's pre-commit and (usually) its checkpoint's completion.
  kWriteAfterPreCommit,
  /// The second commit of a transaction with files, before any file of it is
  /// published: its checkpoint completed, so recovery must commit it.
  kBeforeCommit,
  /// The first commit of a transaction with at least two files, after half
  /// of them were published: recovery commits it again, idempotently.
  kAfterPartialCommit,
  /// The commit of the transaction the end of input pre-committed, before
  /// any file of it is published.
  kBeforeFinalCommit,
};

/// What the jobs report, from every task thread.
struct Audit {
  std::mutex mu;
  /// How each writer ended (in Close).
  struct WriterEnd {
    int attempt = 0;
    int subtask = 0;
    bool input_ended = false;
    int64_t pre_committed = 0;  // successful PreCommit calls
    int64_t committed = 0;      // Commit calls for those transactions
  };
  std::vector<WriterEnd> ends;
  /// Gaps or duplicates the keyed checker saw in its state.
  std::atomic<int64_t> state_violations{0};
  std::atomic<int64_t> injected_failures{0};
  /// Restored pending transactions committed after a restore.
  std::atomic<int64_t> restored_commits{0};
  /// Files of those transactions found published already (a commit
  /// repeated) and found still pending (a commit done only by recovery).
  std::atomic<int64_t> restored_files_published_before{0};
  std::atomic<int64_t> restored_files_pending{0};
  /// Transactions that began with a part file kept open across the barrier.
  std::atomic<int64_t> files_open_across_checkpoints{0};
};

Audit* g_audit = nullptr;

/// Holds the last sequence number per key; a gap or a duplicate is a
/// violation of exactly-once state. Forwards every record.
class SequenceChecker : public KeyedProcessFunction<int64_t, Seq, Seq> {
 public:
  void Open() override { last_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("last", -1)); }
  void ProcessElement(const Seq& s, Context&, Collector<Seq>& out) override {
    if (s.seq != last_->Value() + 1) g_audit->state_violations.fetch_add(1);
    last_->Update(s.seq);
    out.Collect(s);
  }

 private:
  ValueState<int64_t>* last_ = nullptr;
};

/// Fails its subtask once on each listed attempt, at the first record after
/// it saw a number of records that differs per attempt and subtask and a
/// checkpoint of the attempt completed (so every recovery has a checkpoint
/// of the failed attempt to resume from, however slow the machine).
class FaultInjector : public RichMapFunction<Seq, Seq>, public CheckpointListener {
 public:
  explicit FaultInjector(std::set<int> attempts) : attempts_(std::move(attempts)) {}
  void Open() override {
    auto& rc = GetRuntimeContext();
    int attempt = rc.GetAttemptNumber();
    fail_after_ = attempts_.contains(attempt) ? 300 + 200 * attempt + 150 * rc.GetIndexOfThisSubtask() : -1;
  }
  Seq Map(const Seq& s) override {
    if (fail_after_ >= 0 && ++seen_ > fail_after_ && checkpoint_completed_) {
      fail_after_ = -1;
      g_audit->injected_failures.fetch_add(1);
      throw std::runtime_error("injected failure");
    }
    return s;
  }
  void NotifyCheckpointComplete(CheckpointId) override { checkpoint_completed_ = true; }

 private:
  std::set<int> attempts_;
  int64_t fail_after_ = -1;
  int64_t seen_ = 0;
  bool checkpoint_completed_ = false;
};

/// FileSink's writer with an audit of its transactions and optional faults.
class AuditedWriter final : public TwoPhaseCommitWriter<Seq, FileTxn> {
 public:
  AuditedWriter(std::unique_ptr<TwoPhaseCommitWriter<Seq, FileTxn>> inner, int attempt, int subtask,
                std::optional<SinkFault> fault)
      : inner_(std::move(inner)), fault_(subtask == 0 ? fault : std::nullopt) {
    end_.attempt = attempt;
    end_.subtask = subtask;
  }

  Status Open(RuntimeContext& runtime, SinkWriterContext& context) override { return inner_->Open(runtime, context); }
  Result<FileTxn> BeginTransaction() override {
    Result<FileTxn> txn = inner_->BeginTransaction();
    if (txn.IsOk() && !txn->open_at_begin.empty()) g_audit->files_open_across_checkpoints.fetch_add(1);
    return txn;
  }
  Status Write(FileTxn& txn, const Seq& value, Timestamp ts) override {
    if (fault_ == SinkFault::kWriteAfterPreCommit && end_.pre_committed == 3) return Inject();
    return inner_->Write(txn, value, ts);
  }
  Status OnProcessingTime(FileTxn& txn, Timestamp time) override { return inner_->OnProcessingTime(txn, time); }
  Status EndOfInput(FileTxn& txn) override {
    end_.input_ended = true;
    return inner_->EndOfInput(txn);
  }
  Status PreCommit(FileTxn& txn) override {
    Status s = inner_->PreCommit(txn);
    if (!s.IsOk()) return s;
    ++end_.pre_committed;
    if (end_.input_ended) final_files_ = PendingPaths(txn);
    return s;
  }
  Status Commit(const FileTxn& txn) override {
    if (!txn.pending.empty()) ++commits_with_files_;
    if (fault_ == SinkFault::kBeforeCommit && commits_with_files_ == 2) return Inject();
    if (fault_ == SinkFault::kAfterPartialCommit && txn.pending.size() >= 2) {
      FileTxn half;
      half.pending.assign(txn.pending.begin(), txn.pending.begin() + static_cast<ptrdiff_t>(txn.pending.size() / 2));
      FRESHET_RETURN_IF_ERROR(inner_->Commit(half));
      return Inject();
    }
    if (fault_ == SinkFault::kBeforeFinalCommit && final_files_ && PendingPaths(txn) == *final_files_) return Inject();
    Status s = inner_->Commit(txn);
    if (s.IsOk()) ++end_.committed;
    return s;
  }
  Status Abort(const FileTxn& txn) override { return inner_->Abort(txn); }
  Status RecoverAndCommit(const FileTxn& txn) override {
    g_audit->restored_commits.fetch_add(1);
    for (const internal::FileSinkPartFile& part : txn.pending) {
      (fs::exists(part.final_path) ? g_audit->restored_files_published_before : g_audit->restored_files_pending)
          .fetch_add(1);
    }
    return inner_->RecoverAndCommit(txn);
  }
  Status RecoverAndAbort(const FileTxn& txn) override { return inner_->RecoverAndAbort(txn); }
  std::string SnapshotSharedState() override { return inner_->SnapshotSharedState(); }
  Status RestoreSharedState(const std::vector<std::string>& entries) override {
    return inner_->RestoreSharedState(entries);
  }
  void Close() override {
    inner_->Close();
    std::lock_guard lock(g_audit->mu);
    g_audit->ends.push_back(end_);
  }

 private:
  static std::vector<std::string> PendingPaths(const FileTxn& txn) {
    std::vector<std::string> paths;
    for (const internal::FileSinkPartFile& part : txn.pending) paths.push_back(part.in_progress_path);
    return paths;
  }

  Status Inject() {
    fault_.reset();
    g_audit->injected_failures.fetch_add(1);
    return Status::Unavailable("injected sink failure");
  }

  std::unique_ptr<TwoPhaseCommitWriter<Seq, FileTxn>> inner_;
  std::optional<SinkFault> fault_;
  Audit::WriterEnd end_;
  int64_t commits_with_files_ = 0;
  // The pending files of the transaction the end of input pre-committed.
  std::optional<std::vector<std::string>> final_files_;
};

/// A FileSink whose writers are audited, failing as `faults` says (by attempt).
class AuditedFileSink final : public TwoPhaseCommitSink<Seq, FileTxn> {
 public:
  AuditedFileSink(FileSink<Seq> files, std::map<int, SinkFault> faults)
      : files_(std::move(files)), faults_(std::move(faults)) {}
  std::unique_ptr<TwoPhaseCommitWriter<Seq, FileTxn>> CreateTransactionalWriter(
      RuntimeContext& context) const override {
    int attempt = context.GetAttemptNumber();
    auto it = faults_.find(attempt);
    return std::make_unique<AuditedWriter>(files_.CreateTransactionalWriter(context), attempt,
                                           context.GetIndexOfThisSubtask(),
                                           it == faults_.end() ? std::nullopt : std::optional<SinkFault>(it->second));
  }

 private:
  FileSink<Seq> files_;
  std::map<int, SinkFault> faults_;
};

/// The local file system, except that one append (the `fail_at`-th over
/// all part files) writes half of its bytes and then reports an error, as a
/// full disk does.
class ShortWriteFileSystem final : public FileSystem {
 public:
  explicit ShortWriteFileSystem(int64_t fail_at) : fail_at_(fail_at) {}

  Result<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    return local_->OpenForRead(path);
  }
  Result<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path) override {
    Result<std::unique_ptr<WritableFile>> inner = local_->OpenForWrite(path);
    if (!inner.IsOk()) return inner.GetStatus();
    return std::unique_ptr<WritableFile>(new File(this, std::move(*inner)));
  }
  Result<FileInfo> Stat(const std::string& path) override { return local_->Stat(path); }
  Result<std::vector<FileInfo>> List(const std::string& directory) override { return local_->List(directory); }
  Status CreateDirectories(const std::string& path) override { return local_->CreateDirectories(path); }
  Status Rename(const std::string& from, const std::string& to) override { return local_->Rename(from, to); }
  Status Delete(const std::string& path) override { return local_->Delete(path); }
  Status Truncate(const std::string& path, uint64_t size) override { return local_->Truncate(path, size); }

  bool Injected() const { return appends_.load() >= fail_at_; }

 private:
  class File final : public WritableFile {
   public:
    File(ShortWriteFileSystem* fs, std::unique_ptr<WritableFile> inner) : fs_(fs), inner_(std::move(inner)) {}
    Status Append(const char* data, size_t n) override {
      if (fs_->appends_.fetch_add(1) + 1 != fs_->fail_at_) return inner_->Append(data, n);
      FRESHET_RETURN_IF_ERROR(inner_->Append(data, n / 2));
      return Status::IoError("injected short write: no space left on device");
    }
    Status Flush() override { return inner_->Flush(); }
    Status Sync() override { return inner_->Sync(); }
    Status Close() override { return inner_->Close(); }

   private:
    ShortWriteFileSystem* fs_;
    std::unique_ptr<WritableFile> inner_;
  };

  std::shared_ptr<FileSystem> local_ = FileSystem::Local();
  const int64_t fail_at_;
  std::atomic<int64_t> appends_{0};
};

struct SinkJob {
  int64_t keys = 40;
  int64_t per_key = 600;
  int parallelism = 2;
  double rate = 20000;  // records per second over all subtasks
  int64_t interval_ms = 40;
  /// Attempts on which the map after the source fails.
  std::set<int> source_task_failures;
  /// Attempts on which the map chained directly before the sink fails.
  std::set<int> sink_task_failures;
  /// Attempts on which the sink writer of subtask 0 fails, and where.
  std::map<int, SinkFault> sink_faults;
  /// The sink in its own task, after a rebalance.
  bool sink_own_task = false;
  /// Small part files rolled by size and inactivity, kept open across
  /// checkpoints; otherwise OnCheckpointRollingPolicy.
  bool small_files = true;
  /// Null: every part file in the base directory.
  BucketAssigner<Seq> buckets;
  /// Null: the local file system.
  std::shared_ptr<FileSystem> file_system;
  /// Declined checkpoints in a row that do not fail the job.
  int tolerable_failed_checkpoints = 0;
  /// Checkpoints in flight at once.
  int max_concurrent_checkpoints = 1;

  int64_t Records() const { return keys * per_key; }
  /// One restart per attempt with a fault (the attempts must differ): the
  /// first failing subtask of an attempt fails the job.
  int ExpectedRestarts() const {
    return static_cast<int>(source_task_failures.size() + sink_task_failures.size() + sink_faults.size());
  }
};

/// Record i of the generator. Each source subtask reads a contiguous range
/// of indexes and owns keys/parallelism keys, emitting their numbers in
/// order round-robin, so every key's sequence comes from one subtask.
std::function<Seq(int64_t)> SequenceOf(const SinkJob& job) {
  int64_t keys_per_subtask = job.keys / job.parallelism;
  int64_t range = keys_per_subtask * job.per_key;
  return [keys_per_subtask, range](int64_t i) {
    int64_t subtask = i / range, j = i % range;
    return Seq{subtask * keys_per_subtask + j % keys_per_subtask, j / keys_per_subtask};
  };
}

/// source -> fault injector -> keyBy -> checker -> [rebalance] -> fault injector -> audited FileSink
Result<JobExecutionResult> RunSinkJob(const SinkJob& job, const std::string& checkpoints, const std::string& out) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(job.parallelism);
  env->EnableCheckpointing(Duration(job.interval_ms), CheckpointingMode::kExactlyOnce);
  env->GetCheckpointConfig().directory = checkpoints;
  env->GetCheckpointConfig().num_retained = 3;
  env->GetCheckpointConfig().tolerable_failures = job.tolerable_failed_checkpoints;
  env->GetCheckpointConfig().max_concurrent = job.max_concurrent_checkpoints;
  RestartStrategyOptions restart;
  restart.kind = RestartStrategyOptions::Kind::kFixedDelay;
  restart.fixed_delay_attempts = 10;
  restart.fixed_delay_ms = 20;
  env->SetRestartStrategy(restart);

  FileSink<Seq> files(out);
  files.WithEncoder([](const Seq& s, std::string& row) {
    row += std::to_string(s.key);
    row += ' ';
    row += std::to_string(s.seq);
    row += '\n';
  });
  files.WithBucketAssigner(job.buckets ? job.buckets : BucketAssigner<Seq>(BasePathBucketAssigner()));
  if (job.file_system) files.WithFileSystem(job.file_system);
  if (job.small_files) {
    // About 200 rows per file: files roll on records every few checkpoint
    // intervals, so most checkpoints find files open.
    files.WithRollingPolicy(std::make_shared<DefaultRollingPolicy>(
        DefaultRollingPolicyOptions{uint64_t{2048}, Duration(300), Duration(100)}));
    files.WithBucketCheckInterval(Duration(25));
  }

  DataStream<Seq> checked = env->FromGenerator(SequenceOf(job), job.Records(), job.rate)
                                .Uid("source")
                                .Map(FaultInjector(job.source_task_failures))
                                .Uid("source-faults")
                                .KeyBy([](const Seq& s) { return s.key; })
                                .Process(SequenceChecker())
                                .Uid("checker");
  if (job.sink_own_task) checked = checked.Rebalance();
  checked.Map(FaultInjector(job.sink_task_failures))
      .Uid("sink-faults")
      .SinkTo(AuditedFileSink(std::move(files), job.sink_faults), "files")
      .Uid("files");
  return env->Execute("exactly-once file sink");
}

/// The committed output: rows of the visible part files (no path component
/// starting with '.' or '_'), by key.
struct CommittedOutput {
  std::map<int64_t, std::vector<int64_t>> seqs_by_key;
  std::vector<std::string> files;   // visible, relative to the base path
  std::vector<std::string> hidden;  // in-progress or pending leftovers
  std::vector<std::string> problems;
};

CommittedOutput ReadCommitted(const std::string& root) {
  CommittedOutput out;
  test_support::CommittedFiles committed = test_support::ReadCommittedFiles(root);
  out.hidden = std::move(committed.hidden);
  for (const test_support::CommittedFile& file : committed.visible) {
    out.files.push_back(file.path);
    const std::string& text = file.text;
    const std::string& rel = file.path;
    if (!text.empty() && text.back() != '\n') out.problems.push_back(rel + " ends inside a row");
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      size_t space = line.find(' ');
      int64_t key = -1, seq = -1;
      const char* end = line.data() + line.size();
      if (space == std::string::npos ||
          std::from_chars(line.data(), line.data() + space, key).ptr != line.data() + space ||
          std::from_chars(line.data() + space + 1, end, seq).ptr != end) {
        out.problems.push_back(rel + " has the malformed row '" + line + "'");
        continue;
      }
      out.seqs_by_key[key].push_back(seq);
    }
  }
  return out;
}

/// Every key's numbers 0..per_key-1 exactly once in the committed files.
void ExpectExactlyOnce(const CommittedOutput& c, const SinkJob& job) {
  EXPECT_TRUE(c.problems.empty()) << ::testing::PrintToString(c.problems);
  EXPECT_EQ(static_cast<int64_t>(c.seqs_by_key.size()), job.keys);
  int64_t reported = 0;
  for (int64_t key = 0; key < job.keys; ++key) {
    auto it = c.seqs_by_key.find(key);
    std::vector<int64_t> seqs = it == c.seqs_by_key.end() ? std::vector<int64_t>() : it->second;
    std::sort(seqs.begin(), seqs.end());
    std::vector<int64_t> duplicates, missing;
    size_t i = 0;
    for (int64_t expected = 0; expected < job.per_key; ++expected) {
      if (i == seqs.size() || seqs[i] > expected) {
        missing.push_back(expected);
        continue;
      }
      if (seqs[i] < expected) {  // below the range or repeated
        duplicates.push_back(seqs[i]);
        ++i;
        --expected;
        continue;
      }
      ++i;
      while (i < seqs.size() && seqs[i] == expected) duplicates.push_back(seqs[i++]);
    }
    for (; i < seqs.size(); ++i) duplicates.push_back(seqs[i]);
    if ((!missing.empty() || !duplicates.empty()) && reported++ < 5) {
      auto head = [](const std::vector<int64_t>& v) {
        return ::testing::PrintToString(std::vector<int64_t>(v.begin(), v.begin() + std::min<size_t>(v.size(), 10)));
      };
      ADD_FAILURE() << "key " << key << ": " << missing.size() << " missing " << head(missing) << ", "
                    << duplicates.size() << " duplicated " << head(duplicates);
    }
  }
  EXPECT_EQ(reported, 0) << "keys with missing or duplicated numbers";
  // Part names (<prefix>-<subtask>-<counter>) never repeat, in any bucket.
  std::map<std::string, std::string> by_name;
  for (const std::string& f : c.files) {
    std::string name = fs::path(f).filename().string();
    EXPECT_TRUE(name.starts_with("part-")) << f;
    auto [it, inserted] = by_name.emplace(name, f);
    EXPECT_TRUE(inserted) << "the part name of " << f << " is also used by " << it->second;
  }
  // Leftovers are only hidden in-progress files of failed attempts.
  for (const std::string& f : c.hidden) EXPECT_NE(f.find(".inprogress."), std::string::npos) << f;
}

/// The last attempt's writers all ended their input and committed every
/// transaction they pre-committed before their task ended.
void ExpectLastAttemptCommittedEverything(const Audit& audit, const SinkJob& job) {
  int last = -1;
  for (const Audit::WriterEnd& e : audit.ends) last = std::max(last, e.attempt);
  int writers = 0;
  for (const Audit::WriterEnd& e : audit.ends) {
    if (e.attempt != last) continue;
    ++writers;
    EXPECT_TRUE(e.input_ended) << "subtask " << e.subtask;
    EXPECT_EQ(e.committed, e.pre_committed) << "subtask " << e.subtask << " of attempt " << last
                                            << " ended with pre-committed transactions not committed";
  }
  EXPECT_EQ(writers, job.parallelism);
}

void ExpectRecovered(const JobExecutionResult& r, const SinkJob& job, const Audit& audit) {
  EXPECT_GE(audit.injected_failures.load(), job.ExpectedRestarts());
  EXPECT_EQ(r.restarts, job.ExpectedRestarts());
  EXPECT_GT(r.checkpoints_completed, 3);
  bool from_checkpoint = false;
  for (const std::string& e : r.recovery_events) from_checkpoint |= e.find("from checkpoint") != std::string::npos;
  EXPECT_TRUE(from_checkpoint) << ::testing::PrintToString(r.recovery_events);
  EXPECT_EQ(audit.state_violations.load(), 0);
}

TEST(ExactlyOnceSinkTest, ChainedSinkUnderFailuresInSourceAndSinkTasks) {
  TempDir dir;
  Audit audit;
  g_audit = &audit;
  SinkJob job;
  job.source_task_failures = {0, 2};
  job.sink_task_failures = {1, 3};
  Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ExpectRecovered(*r, job, audit);
  CommittedOutput committed = ReadCommitted(dir.Sub("out"));
  ExpectExactlyOnce(committed, job);
  ExpectLastAttemptCommittedEverything(audit, job);
  // Many small part files, some of them open across checkpoints.
  EXPECT_GT(committed.files.size(), 20u);
  EXPECT_GT(audit.files_open_across_checkpoints.load(), 0);
  EXPECT_GT(audit.restored_commits.load(), 0);
}

TEST(ExactlyOnceSinkTest, SinkInItsOwnTaskCommitsItsLastTransactionBeforeEnding) {
  TempDir dir;
  Audit audit;
  g_audit = &audit;
  SinkJob job;
  job.sink_own_task = true;
  job.small_files = false;  // a part file per checkpoint interval and subtask
  job.source_task_failures = {0};
  job.sink_task_failures = {1};
  Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ExpectRecovered(*r, job, audit);
  CommittedOutput committed = ReadCommitted(dir.Sub("out"));
  ExpectExactlyOnce(committed, job);
  ExpectLastAttemptCommittedEverything(audit, job);
  EXPECT_GT(committed.files.size(), 10u);
}

TEST(ExactlyOnceSinkTest, SinkInItsOwnTaskWithoutFailures) {
  TempDir dir;
  Audit audit;
  g_audit = &audit;
  SinkJob job;
  job.sink_own_task = true;
  job.keys = 20;
  job.per_key = 400;
  Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->restarts, 0);
  EXPECT_GT(r->checkpoints_completed, 3);
  CommittedOutput committed = ReadCommitted(dir.Sub("out"));
  ExpectExactlyOnce(committed, job);
  EXPECT_TRUE(committed.hidden.empty()) << ::testing::PrintToString(committed.hidden);
  ExpectLastAttemptCommittedEverything(audit, job);
}

TEST(ExactlyOnceSinkTest, FailureBetweenPreCommitAndCommitIsSettledByRecovery) {
  TempDir dir;
  Audit audit;
  g_audit = &audit;
  SinkJob job;
  job.sink_faults = {{0, SinkFault::kBeforeCommit},
                     {1, SinkFault::kAfterPartialCommit},
                     {2, SinkFault::kWriteAfterPreCommit}};
  Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ExpectRecovered(*r, job, audit);
  ExpectExactlyOnce(ReadCommitted(dir.Sub("out")), job);
  ExpectLastAttemptCommittedEverything(audit, job);
  // Recovery published files whose commit never ran, and met files a
  // commit interrupted halfway had published already.
  EXPECT_GT(audit.restored_files_pending.load(), 0);
  EXPECT_GT(audit.restored_files_published_before.load(), 0);
}

TEST(ExactlyOnceSinkTest, FailureAtTheFinalCommitIsSettledByRecovery) {
  for (bool own_task : {false, true}) {
    SCOPED_TRACE(own_task ? "sink in its own task" : "sink chained");
    TempDir dir;
    Audit audit;
    g_audit = &audit;
    SinkJob job;
    job.keys = 20;
    job.per_key = 300;
    job.sink_own_task = own_task;
    job.sink_faults = {{0, SinkFault::kBeforeFinalCommit}};
    Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
    ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    ExpectRecovered(*r, job, audit);
    ExpectExactlyOnce(ReadCommitted(dir.Sub("out")), job);
    ExpectLastAttemptCommittedEverything(audit, job);
    EXPECT_GT(audit.restored_files_pending.load(), 0);
  }
}

TEST(ExactlyOnceSinkTest, ProcessingTimeBucketsUnderFailures) {
  TempDir dir;
  Audit audit;
  g_audit = &audit;
  SinkJob job;
  job.rate = 12000;  // about two seconds: a bucket per tenth of a second
  const DateTimeBucketAssigner tenths("yyyy-MM-dd--HH-mm-ss-S", BucketTimeZone::kUtc);
  job.buckets = tenths;
  job.source_task_failures = {0};
  job.sink_task_failures = {1};
  job.sink_faults = {{2, SinkFault::kBeforeCommit}};
  Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ExpectRecovered(*r, job, audit);
  CommittedOutput committed = ReadCommitted(dir.Sub("out"));
  ExpectExactlyOnce(committed, job);
  ExpectLastAttemptCommittedEverything(audit, job);
  std::set<std::string> buckets;
  for (const std::string& f : committed.files) {
    fs::path p(f);
    ASSERT_EQ(std::distance(p.begin(), p.end()), 2) << f;
    const std::string bucket = p.begin()->string();
    // yyyy-MM-dd--HH-mm-ss-S
    EXPECT_EQ(bucket.size(), 22u) << bucket;
    EXPECT_EQ(bucket.substr(10, 2), "--") << bucket;
    buckets.insert(bucket);
  }
  EXPECT_GE(buckets.size(), 5u) << ::testing::PrintToString(buckets);
  EXPECT_GT(audit.files_open_across_checkpoints.load(), 0);
}

TEST(ExactlyOnceSinkTest, FrequentConcurrentCheckpointsUnderFailures) {
  // A checkpoint every 10 ms, up to three in flight: completion
  // notifications may arrive after later barriers pre-committed newer
  // transactions, and a declined checkpoint's transactions commit with the
  // next completed one.
  TempDir dir;
  Audit audit;
  g_audit = &audit;
  SinkJob job;
  job.interval_ms = 10;
  job.max_concurrent_checkpoints = 3;
  job.tolerable_failed_checkpoints = 1000;
  job.sink_own_task = true;
  job.source_task_failures = {0};
  job.sink_task_failures = {1};
  job.sink_faults = {{2, SinkFault::kBeforeCommit}};
  Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ExpectRecovered(*r, job, audit);
  EXPECT_GT(r->checkpoints_completed, 20);
  ExpectExactlyOnce(ReadCommitted(dir.Sub("out")), job);
  ExpectLastAttemptCommittedEverything(audit, job);
}

TEST(ExactlyOnceSinkTest, ShortWriteAtABarrierIsNeverCommitted) {
  // Part files roll at checkpoints only, so appends happen at barriers: the
  // short write declines a checkpoint, which the job tolerates, and the
  // part file it damaged must not be committed by a later barrier.
  TempDir dir;
  Audit audit;
  g_audit = &audit;
  SinkJob job;
  job.small_files = false;
  job.tolerable_failed_checkpoints = 5;
  auto file_system = std::make_shared<ShortWriteFileSystem>(30);
  job.file_system = file_system;
  Result<JobExecutionResult> r = RunSinkJob(job, dir.Sub("checkpoints"), dir.Sub("out"));
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_TRUE(file_system->Injected());
  // The damaged file makes the writer fail its task; the job recovers.
  EXPECT_GE(r->restarts, 1);
  EXPECT_EQ(audit.state_violations.load(), 0);
  ExpectExactlyOnce(ReadCommitted(dir.Sub("out")), job);
  ExpectLastAttemptCommittedEverything(audit, job);
}

}  // namespace
}  // namespace freshet
