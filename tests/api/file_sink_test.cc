// Two-phase-commit sinks and FileSink: the transaction life cycle on the
// operator harness (commit only after the checkpoint completes, pending
// transactions recommitted after a restore, the open one aborted or
// recovered, end of input), FileSink's part files (hidden until committed,
// idempotent commits, truncation of files open across a checkpoint,
// rolling by size and inactivity, bucket assigners, counters after
// redistribution), and whole jobs with checkpoints, with and without a
// failure, whose committed files must hold every number exactly once.
#include <freshet/file_sink.h>
#include <freshet/freshet.h>
#include <freshet/testing/operator_harness.h>
#include <freshet/two_phase_commit.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace freshet {
namespace {

namespace fs = std::filesystem;

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("freshet-file-sink") {}
};

/// Regular files under `root` by path relative to it: visible ones, and
/// hidden ones (a component starting with '.').
struct Listing {
  std::vector<std::string> visible;
  std::vector<std::string> hidden;
};

Listing ListFiles(const std::string& root) {
  Listing out;
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    fs::path rel = fs::relative(e.path(), root);
    bool hidden = false;
    for (const auto& part : rel) hidden |= part.string().starts_with(".");
    (hidden ? out.hidden : out.visible).push_back(rel.string());
  }
  std::sort(out.visible.begin(), out.visible.end());
  std::sort(out.hidden.begin(), out.hidden.end());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int64_t> NumbersIn(const std::string& path) {
  std::vector<int64_t> out;
  std::istringstream in(ReadFile(path));
  for (std::string line; std::getline(in, line);) out.push_back(std::stoll(line));
  return out;
}

/// Every number in the visible files under `root`, sorted.
std::vector<int64_t> CommittedNumbers(const std::string& root) {
  std::vector<int64_t> all;
  for (const std::string& f : ListFiles(root).visible) {
    std::vector<int64_t> n = NumbersIn((fs::path(root) / f).string());
    all.insert(all.end(), n.begin(), n.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

/// The operator harness around the sink operator of `sink` (a Sink<int64_t>).
template <class S>
class SinkHarness {
 public:
  explicit SinkHarness(S sink, int subtask = 0, int parallelism = 1)
      : env_(StreamExecutionEnvironment::Create()),
        harness_(DataStream<int64_t>(env_.get(), env_->FromElements<int64_t>({}).SinkTo(std::move(sink), "files").Id()),
                 subtask, parallelism) {}
  testing::OneInputOperatorHarness<int64_t, int64_t>* operator->() { return &harness_; }
  testing::OneInputOperatorHarness<int64_t, int64_t>& operator*() { return harness_; }

 private:
  std::unique_ptr<StreamExecutionEnvironment> env_;
  testing::OneInputOperatorHarness<int64_t, int64_t> harness_;
};

// ---- the two-phase-commit framework with an in-memory writer ----------------------

struct MemoryTxn {
  int64_t id = 0;
  std::vector<int64_t> values;
};

/// What the in-memory writers did, shared by every writer of a test.
struct Ledger {
  std::vector<std::string> calls;
  std::map<int64_t, std::vector<int64_t>> committed;  // by transaction id
  std::map<int64_t, int> commit_calls;
  int64_t next_id = 1;
  bool fail_pre_commit = false;
};

class MemoryWriter final : public TwoPhaseCommitWriter<int64_t, MemoryTxn> {
 public:
  explicit MemoryWriter(Ledger* ledger) : ledger_(ledger) {}
  Result<MemoryTxn> BeginTransaction() override {
    MemoryTxn t;
    t.id = ledger_->next_id++;
    Log("begin", t.id);
    return t;
  }
  Status Write(MemoryTxn& t, const int64_t& v, Timestamp) override {
    t.values.push_back(v);
    return Status::Ok();
  }
  Status PreCommit(MemoryTxn& t) override {
    if (ledger_->fail_pre_commit) return Status::Unavailable("pre-commit failed");
    Log("precommit", t.id);
    return Status::Ok();
  }
  Status Commit(const MemoryTxn& t) override {
    Log("commit", t.id);
    ledger_->committed[t.id] = t.values;  // idempotent
    ++ledger_->commit_calls[t.id];
    return Status::Ok();
  }
  Status Abort(const MemoryTxn& t) override {
    Log("abort", t.id);
    return Status::Ok();
  }

 private:
  void Log(const std::string& what, int64_t id) { ledger_->calls.push_back(what + " " + std::to_string(id)); }
  Ledger* ledger_;
};

class MemorySink final : public TwoPhaseCommitSink<int64_t, MemoryTxn> {
 public:
  explicit MemorySink(Ledger* ledger) : ledger_(ledger) {}
  std::unique_ptr<TwoPhaseCommitWriter<int64_t, MemoryTxn>> CreateTransactionalWriter(RuntimeContext&) const override {
    return std::make_unique<MemoryWriter>(ledger_);
  }

 private:
  Ledger* ledger_;
};

using Calls = std::vector<std::string>;

TEST(TwoPhaseCommitTest, CommitsOnlyWhenTheCheckpointCompletes) {
  Ledger ledger;
  SinkHarness h{MemorySink(&ledger)};
  h->Open();
  h->ProcessElement(1);
  h->ProcessElement(2);
  h->Snapshot(1);
  EXPECT_EQ(ledger.calls, (Calls{"begin 1", "precommit 1", "begin 2"}));
  EXPECT_TRUE(ledger.committed.empty());
  h->ProcessElement(3);
  h->NotifyCheckpointComplete(1);
  EXPECT_EQ(ledger.committed, (std::map<int64_t, std::vector<int64_t>>{{1, {1, 2}}}));
  // Transaction 2 (record 3) waits for its own checkpoint.
  h->Snapshot(2);
  h->NotifyCheckpointComplete(2);
  EXPECT_EQ(ledger.committed[2], (std::vector<int64_t>{3}));
  EXPECT_EQ(ledger.commit_calls[1], 1);
}

TEST(TwoPhaseCommitTest, AbortedCheckpointCommitsWithTheNextOne) {
  Ledger ledger;
  SinkHarness h{MemorySink(&ledger)};
  h->Open();
  h->ProcessElement(1);
  h->Snapshot(1);
  h->Operator().NotifyCheckpointAborted(1);
  EXPECT_TRUE(ledger.committed.empty());
  h->ProcessElement(2);
  h->Snapshot(2);
  h->NotifyCheckpointComplete(2);
  EXPECT_EQ(ledger.calls,
            (Calls{"begin 1", "precommit 1", "begin 2", "precommit 2", "begin 3", "commit 1", "commit 2"}));
}

TEST(TwoPhaseCommitTest, RestoreRecommitsPendingAndAbortsTheOpenTransaction) {
  Ledger ledger;
  internal::MemorySnapshotOutput snapshot;
  {
    SinkHarness h{MemorySink(&ledger)};
    h->Open();
    h->ProcessElement(1);
    snapshot = h->Snapshot(1);  // pending: txn 1 of checkpoint 1; open: txn 2
    h->ProcessElement(2);       // after the barrier: replayed after a failure
  }                             // the task fails before the notification
  EXPECT_TRUE(ledger.committed.empty());
  for (int attempt = 0; attempt < 2; ++attempt) {
    ledger.calls.clear();
    SinkHarness h{MemorySink(&ledger)};
    h->InitializeState(snapshot.AsRestore());
    h->Open();
    EXPECT_EQ(ledger.calls[0], "commit 1");
    EXPECT_EQ(ledger.calls[1], "abort 2");
    EXPECT_EQ(ledger.calls.size(), 3u);  // and a new transaction begins
  }
  // The second restore committed transaction 1 again: same outcome.
  EXPECT_EQ(ledger.committed, (std::map<int64_t, std::vector<int64_t>>{{1, {1}}}));
  EXPECT_EQ(ledger.commit_calls[1], 2);
}

TEST(TwoPhaseCommitTest, CommittedTransactionIsCommittedAgainAfterRestore) {
  Ledger ledger;
  internal::MemorySnapshotOutput snapshot;
  {
    SinkHarness h{MemorySink(&ledger)};
    h->Open();
    h->ProcessElement(7);
    snapshot = h->Snapshot(1);
    h->NotifyCheckpointComplete(1);
  }
  ASSERT_EQ(ledger.commit_calls[1], 1);
  SinkHarness h{MemorySink(&ledger)};
  h->InitializeState(snapshot.AsRestore());
  h->Open();
  EXPECT_EQ(ledger.commit_calls[1], 2);
  EXPECT_EQ(ledger.committed, (std::map<int64_t, std::vector<int64_t>>{{1, {7}}}));
}

TEST(TwoPhaseCommitTest, EndOfInputWithoutCheckpointingCommitsAtOnce) {
  Ledger ledger;
  SinkHarness h{MemorySink(&ledger)};
  h->Open();
  h->ProcessElement(1);
  h->EndInput();
  EXPECT_EQ(ledger.calls, (Calls{"begin 1", "precommit 1", "commit 1"}));
  EXPECT_EQ(ledger.committed[1], (std::vector<int64_t>{1}));
}

TEST(TwoPhaseCommitTest, FailedPreCommitDeclinesTheCheckpointAndIsRetried) {
  Ledger ledger;
  SinkHarness h{MemorySink(&ledger)};
  h->Open();
  h->ProcessElement(1);
  ledger.fail_pre_commit = true;
  EXPECT_THROW(h->Snapshot(1), internal::OperatorException);
  ledger.fail_pre_commit = false;
  h->ProcessElement(2);
  h->Snapshot(2);
  h->NotifyCheckpointComplete(2);
  EXPECT_EQ(ledger.committed, (std::map<int64_t, std::vector<int64_t>>{{1, {1, 2}}}));
}

// ---- FileSink on the harness ------------------------------------------------------

FileSink<int64_t> BaseDirSink(const std::string& dir) {
  return FileSink<int64_t>(dir).WithBucketAssigner(BasePathBucketAssigner());
}

TEST(FileSinkTest, PartFileIsHiddenUntilTheCheckpointCompletes) {
  TempDir dir;
  SinkHarness h(BaseDirSink(dir.Path()));
  h->Open();
  for (int64_t v : {1, 2, 3}) h->ProcessElement(v);
  h->Snapshot(1);
  Listing before = ListFiles(dir.Path());
  EXPECT_TRUE(before.visible.empty());
  ASSERT_EQ(before.hidden.size(), 1u);
  EXPECT_TRUE(before.hidden[0].starts_with(".part-0-0.inprogress.")) << before.hidden[0];
  // Pending: closed and complete before the checkpoint is acknowledged.
  EXPECT_EQ(ReadFile(dir.Sub(before.hidden[0])), "1\n2\n3\n");

  h->NotifyCheckpointComplete(1);
  Listing after = ListFiles(dir.Path());
  EXPECT_EQ(after.visible, (std::vector<std::string>{"part-0-0"}));
  EXPECT_TRUE(after.hidden.empty());
  EXPECT_EQ(ReadFile(dir.Sub("part-0-0")), "1\n2\n3\n");
}

TEST(FileSinkTest, PendingFileSurvivesARestoreAndIsCommittedOnce) {
  TempDir dir;
  internal::MemorySnapshotOutput snapshot;
  {
    SinkHarness h(BaseDirSink(dir.Path()));
    h->Open();
    for (int64_t v : {1, 2, 3}) h->ProcessElement(v);
    snapshot = h->Snapshot(1);
  }  // fails before the notification
  EXPECT_TRUE(ListFiles(dir.Path()).visible.empty());
  // Two restores from the same checkpoint (the first attempt fails again
  // right after recovering): the second commit finds the work done.
  for (int attempt = 0; attempt < 2; ++attempt) {
    SinkHarness h(BaseDirSink(dir.Path()));
    h->InitializeState(snapshot.AsRestore());
    h->Open();
    Listing l = ListFiles(dir.Path());
    EXPECT_EQ(l.visible, (std::vector<std::string>{"part-0-0"}));
    EXPECT_TRUE(l.hidden.empty());
    EXPECT_EQ(ReadFile(dir.Sub("part-0-0")), "1\n2\n3\n");
  }
}

TEST(FileSinkTest, CommitIsIdempotent) {
  TempDir dir;
  internal::MemorySnapshotOutput snapshot;
  {
    SinkHarness h(BaseDirSink(dir.Path()));
    h->Open();
    h->ProcessElement(5);
    snapshot = h->Snapshot(1);
    h->NotifyCheckpointComplete(1);
    h->NotifyCheckpointComplete(1);  // a repeated notification changes nothing
  }
  // The checkpoint still lists the (committed) transaction: committed again.
  SinkHarness h(BaseDirSink(dir.Path()));
  h->InitializeState(snapshot.AsRestore());
  h->Open();
  EXPECT_EQ(ListFiles(dir.Path()).visible, (std::vector<std::string>{"part-0-0"}));
  EXPECT_EQ(ReadFile(dir.Sub("part-0-0")), "5\n");
}

TEST(FileSinkTest, CommitFindingTheFinishedFileIsDone) {
  // As a file system whose rename copies and then deletes could leave it:
  // the finished file is complete, the in-progress file still there.
  TempDir dir;
  SinkHarness h(BaseDirSink(dir.Path()));
  h->Open();
  h->ProcessElement(5);
  h->Snapshot(1);
  ASSERT_EQ(ListFiles(dir.Path()).hidden.size(), 1u);
  fs::copy_file(dir.Sub(ListFiles(dir.Path()).hidden[0]), dir.Sub("part-0-0"));
  h->NotifyCheckpointComplete(1);
  Listing l = ListFiles(dir.Path());
  EXPECT_EQ(l.visible, (std::vector<std::string>{"part-0-0"}));
  EXPECT_TRUE(l.hidden.empty());
}

TEST(FileSinkTest, CommitFailsOnAFinishedFileOfAnotherSize) {
  TempDir dir;
  std::ofstream(dir.Sub("part-0-0")) << "from another run\n";
  SinkHarness h(BaseDirSink(dir.Path()));
  h->Open();
  h->ProcessElement(5);
  h->Snapshot(1);
  EXPECT_THROW(h->NotifyCheckpointComplete(1), internal::OperatorException);
  EXPECT_EQ(ReadFile(dir.Sub("part-0-0")), "from another run\n");
}

TEST(FileSinkTest, CommitFailsWhenThePendingFileIsLost) {
  TempDir dir;
  SinkHarness h(BaseDirSink(dir.Path()));
  h->Open();
  h->ProcessElement(5);
  h->Snapshot(1);
  for (const std::string& f : ListFiles(dir.Path()).hidden) fs::remove(dir.Sub(f));
  try {
    h->NotifyCheckpointComplete(1);
    FAIL() << "the commit of a lost file succeeded";
  } catch (const internal::OperatorException& e) {
    EXPECT_EQ(e.OperatorName(), "files");
    EXPECT_NE(std::string(e.what()).find("neither it nor its in-progress file"), std::string::npos) << e.what();
  }
}

TEST(FileSinkTest, RecordsAfterTheCheckpointNeverBecomeVisibleAfterARestore) {
  TempDir dir;
  internal::MemorySnapshotOutput snapshot;
  {
    SinkHarness h(BaseDirSink(dir.Path()));
    h->Open();
    for (int64_t v : {1, 2, 3}) h->ProcessElement(v);
    snapshot = h->Snapshot(1);
    for (int64_t v : {4, 5, 6}) h->ProcessElement(v);  // part-0-1, in progress
  }
  SinkHarness h(BaseDirSink(dir.Path()));
  h->InitializeState(snapshot.AsRestore());
  h->Open();
  EXPECT_EQ(ListFiles(dir.Path()).visible, (std::vector<std::string>{"part-0-0"}));
  // The sources replay 4..6; the new part file gets the next free counter.
  for (int64_t v : {4, 5, 6}) h->ProcessElement(v);
  h->Snapshot(2);
  h->NotifyCheckpointComplete(2);
  EXPECT_EQ(ListFiles(dir.Path()).visible, (std::vector<std::string>{"part-0-0", "part-0-1"}));
  EXPECT_EQ(ReadFile(dir.Sub("part-0-1")), "4\n5\n6\n");
  // The failed attempt's part-0-1 stays a hidden leftover.
  EXPECT_EQ(ListFiles(dir.Path()).hidden.size(), 1u);
  EXPECT_EQ(CommittedNumbers(dir.Path()), Range(1, 6));
}

TEST(FileSinkTest, FileOpenAcrossACheckpointIsTruncatedToItsRecordedLengthOnRestore) {
  TempDir dir;
  auto policy = std::make_shared<DefaultRollingPolicy>();
  internal::MemorySnapshotOutput snapshot;
  {
    SinkHarness h(BaseDirSink(dir.Path()).WithRollingPolicy(policy));
    h->Open();
    for (int64_t v : {1, 2, 3}) h->ProcessElement(v);
    snapshot = h->Snapshot(1);  // the file stays open: its length (6) is recorded
    h->NotifyCheckpointComplete(1);
    EXPECT_TRUE(ListFiles(dir.Path()).visible.empty());
    for (int64_t v : {4, 5}) h->ProcessElement(v);
    h->Snapshot(2);  // flushes 4 and 5 into the file; checkpoint 2 never completes
  }
  SinkHarness h(BaseDirSink(dir.Path()).WithRollingPolicy(policy));
  h->InitializeState(snapshot.AsRestore());
  h->Open();
  Listing l = ListFiles(dir.Path());
  EXPECT_EQ(l.visible, (std::vector<std::string>{"part-0-0"}));
  EXPECT_TRUE(l.hidden.empty());
  EXPECT_EQ(ReadFile(dir.Sub("part-0-0")), "1\n2\n3\n");
}

TEST(FileSinkTest, RollsBySize) {
  TempDir dir;
  DefaultRollingPolicyOptions options;
  options.max_part_size = 10;  // "100\n" is 4 bytes: three records per file
  SinkHarness h(BaseDirSink(dir.Path()).WithRollingPolicy(std::make_shared<DefaultRollingPolicy>(options)));
  h->Open();
  for (int64_t v = 100; v < 120; ++v) h->ProcessElement(v);
  h->Snapshot(1);
  h->NotifyCheckpointComplete(1);
  // Six files rolled by size; the seventh (118, 119) is still open.
  Listing l = ListFiles(dir.Path());
  ASSERT_EQ(l.visible.size(), 6u);
  for (size_t i = 0; i < l.visible.size(); ++i) {
    EXPECT_EQ(l.visible[i], "part-0-" + std::to_string(i));
    EXPECT_EQ(fs::file_size(dir.Sub(l.visible[i])), 12u);
  }
  EXPECT_EQ(l.hidden.size(), 1u);
  h->EndInput();  // no checkpointing in the harness: commits at once
  l = ListFiles(dir.Path());
  EXPECT_EQ(l.visible.size(), 7u);
  EXPECT_TRUE(l.hidden.empty());
  EXPECT_EQ(CommittedNumbers(dir.Path()), Range(100, 119));
}

TEST(FileSinkTest, RollsOnInactivity) {
  TempDir dir;
  DefaultRollingPolicyOptions options;
  options.inactivity_interval = Duration(1000);
  SinkHarness h(BaseDirSink(dir.Path())
                    .WithRollingPolicy(std::make_shared<DefaultRollingPolicy>(options))
                    .WithBucketCheckInterval(Duration(100)));
  h->Open();
  h->ProcessElement(1);
  h->SetProcessingTime(500);
  h->ProcessElement(2);
  h->SetProcessingTime(1400);  // 900 ms idle: still open
  h->Snapshot(1);
  h->NotifyCheckpointComplete(1);
  EXPECT_TRUE(ListFiles(dir.Path()).visible.empty());
  h->SetProcessingTime(1600);  // 1100 ms idle: rolled into the current transaction
  h->ProcessElement(3);        // starts part-0-1
  h->Snapshot(2);
  h->NotifyCheckpointComplete(2);
  EXPECT_EQ(ListFiles(dir.Path()).visible, (std::vector<std::string>{"part-0-0"}));
  EXPECT_EQ(ReadFile(dir.Sub("part-0-0")), "1\n2\n");
}

TEST(FileSinkTest, EndOfInputWithoutCheckpointingCommitsEverything) {
  TempDir dir;
  SinkHarness h(BaseDirSink(dir.Path()).WithOutputFileConfig(OutputFileConfig{"data", ".txt"}));
  h->Open();
  for (int64_t v : {1, 2}) h->ProcessElement(v);
  h->EndInput();
  Listing l = ListFiles(dir.Path());
  EXPECT_EQ(l.visible, (std::vector<std::string>{"data-0-0.txt"}));
  EXPECT_TRUE(l.hidden.empty());
}

TEST(FileSinkTest, CustomBucketAssignerAndEncoder) {
  TempDir dir;
  auto sink = FileSink<int64_t>(dir.Path())
                  .WithBucketAssigner([](const int64_t& v, const BucketContext& c) {
                    return std::string(v % 2 == 0 ? "even" : "odd") + "/t" + std::to_string(c.timestamp);
                  })
                  .WithEncoder([](const int64_t& v, std::string& out) { out += "v=" + std::to_string(v) + ";"; });
  SinkHarness h(std::move(sink), 1, 2);
  h->Open();
  for (int64_t v : {1, 2, 3, 4}) h->ProcessElement(v, 7);
  h->EndInput();
  // Subtask 1's counter runs over both buckets.
  EXPECT_EQ(ListFiles(dir.Path()).visible, (std::vector<std::string>{"even/t7/part-1-1", "odd/t7/part-1-0"}));
  EXPECT_EQ(ReadFile(dir.Sub("even/t7/part-1-1")), "v=2;v=4;");
  EXPECT_EQ(ReadFile(dir.Sub("odd/t7/part-1-0")), "v=1;v=3;");
}

TEST(FileSinkTest, BucketOutsideTheBasePathFailsTheSink) {
  TempDir dir;
  SinkHarness h(FileSink<int64_t>(dir.Sub("out")).WithBucketAssigner([](const int64_t&, const BucketContext&) {
    return std::string("../escape");
  }));
  h->Open();
  EXPECT_THROW(h->ProcessElement(1), internal::OperatorException);
  EXPECT_FALSE(fs::exists(dir.Sub("escape")));
}

TEST(FileSinkTest, DateTimeBucketAssignerFormatsProcessingTime) {
  // 2021-03-04 05:06:07.089 UTC
  const Timestamp t = 1614834367089;
  EXPECT_EQ(DateTimeBucketAssigner("yyyy-MM-dd--HH", BucketTimeZone::kUtc).BucketIdFor(t), "2021-03-04--05");
  EXPECT_EQ(DateTimeBucketAssigner("yy/M/d'T'H:mm:ss.SSS 'o''clock'", BucketTimeZone::kUtc).BucketIdFor(t),
            "21/3/4T5:06:07.089 o'clock");
  EXPECT_EQ(DateTimeBucketAssigner("yyyy-MM-dd--HH", BucketTimeZone::kUtc).BucketIdFor(0), "1970-01-01--00");
  EXPECT_EQ(DateTimeBucketAssigner("yyyy-MM-dd--HH", BucketTimeZone::kUtc).BucketIdFor(-1), "1969-12-31--23");
  EXPECT_THROW(DateTimeBucketAssigner("yyyy-ww"), std::invalid_argument);
  EXPECT_THROW(DateTimeBucketAssigner("yyyy-'MM"), std::invalid_argument);
  // The default assigner buckets by processing time, not the record's timestamp.
  TempDir dir;
  SinkHarness h(FileSink<int64_t>(dir.Path()).WithBucketAssigner(DateTimeBucketAssigner("yyyy", BucketTimeZone::kUtc)));
  h->SetProcessingTime(t);
  h->Open();
  h->ProcessElement(1, 0);
  h->EndInput();
  EXPECT_EQ(ListFiles(dir.Path()).visible, (std::vector<std::string>{"2021/part-0-0"}));
}

TEST(FileSinkTest, RestoreAtAnotherParallelismCommitsEverythingOnceWithFreshNames) {
  TempDir dir;
  auto policy = std::make_shared<DefaultRollingPolicy>();
  std::vector<internal::MemorySnapshotOutput> snapshots;
  for (int subtask = 0; subtask < 2; ++subtask) {
    SinkHarness h(BaseDirSink(dir.Path()).WithRollingPolicy(policy), subtask, 2);
    h->Open();
    // A pending file (rolled at the end of the first interval's inactivity)...
    h->ProcessElement(10 * subtask + 1);
    h->SetProcessingTime(120 * 1000);
    // ... and a file open across the checkpoint.
    h->ProcessElement(10 * subtask + 2);
    snapshots.push_back(h->Snapshot(1));
    h->ProcessElement(10 * subtask + 3);  // after the barrier
  }
  EXPECT_TRUE(ListFiles(dir.Path()).visible.empty());
  // Split redistribution at parallelism 1 and 3; every transaction is
  // settled by exactly one subtask.
  for (int parallelism : {3, 1}) {
    for (int subtask = 0; subtask < parallelism; ++subtask) {
      SinkHarness h(BaseDirSink(dir.Path()).WithRollingPolicy(policy), subtask, parallelism);
      h->InitializeState(testing::RestoreFromSnapshots(snapshots, subtask, parallelism));
      h->Open();
      h->ProcessElement(100 + subtask);
      h->EndInput();
    }
    std::vector<int64_t> expected{1, 2, 11, 12};
    for (int s = 0; s < parallelism; ++s) expected.push_back(100 + s);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(CommittedNumbers(dir.Path()), expected) << "parallelism " << parallelism;
    std::map<int64_t, std::string> file_of;
    for (const std::string& f : ListFiles(dir.Path()).visible) {
      for (int64_t v : NumbersIn(dir.Sub(f))) file_of[v] = f;
    }
    EXPECT_EQ(file_of[1], "part-0-0");
    EXPECT_EQ(file_of[2], "part-0-1");
    EXPECT_EQ(file_of[11], "part-1-0");
    EXPECT_EQ(file_of[12], "part-1-1");
    // New part files continue the counter of their subtask index.
    EXPECT_EQ(file_of[100], "part-0-2");
    if (parallelism == 3) {
      EXPECT_EQ(file_of[101], "part-1-2");
      EXPECT_EQ(file_of[102], "part-2-0");
    }
    for (const auto& [v, f] : file_of) {
      if (v >= 100) fs::remove(dir.Sub(f));  // for the next round
    }
  }
}

// ---- whole jobs ---------------------------------------------------------------------

void ConfigureCheckpoints(StreamExecutionEnvironment& env, const std::string& dir) {
  env.EnableCheckpointing(Duration(40));
  env.GetCheckpointConfig().directory = dir;
  RestartStrategyOptions restart;
  restart.kind = RestartStrategyOptions::Kind::kFixedDelay;
  restart.fixed_delay_attempts = 3;
  restart.fixed_delay_ms = 20;
  env.SetRestartStrategy(restart);
}

constexpr int64_t kJobRecords = 4000;
constexpr double kJobRate = 8000;  // about half a second: a dozen checkpoints

/// Every number of the job once, nothing in progress or pending left.
void ExpectExactlyOnce(const std::string& out, int64_t count) {
  Listing l = ListFiles(out);
  EXPECT_TRUE(l.hidden.empty()) << ::testing::PrintToString(l.hidden);
  EXPECT_EQ(CommittedNumbers(out), Range(0, count - 1));
}

/// What the writers of a job did, per subtask (writers run on task threads).
struct JobLedger {
  std::mutex mu;
  std::map<int, std::vector<std::string>> calls;
  std::map<std::pair<int, int64_t>, std::vector<int64_t>> committed;  // by (subtask, transaction)
};

JobLedger* g_job_ledger = nullptr;

class JobMemoryWriter final : public TwoPhaseCommitWriter<int64_t, MemoryTxn> {
 public:
  explicit JobMemoryWriter(int subtask) : subtask_(subtask) {}
  Result<MemoryTxn> BeginTransaction() override {
    MemoryTxn t;
    t.id = next_id_++;
    return t;
  }
  Status Write(MemoryTxn& t, const int64_t& v, Timestamp) override {
    t.values.push_back(v);
    return Status::Ok();
  }
  Status EndOfInput(MemoryTxn& t) override { return Log("end of input", t.id); }
  Status PreCommit(MemoryTxn& t) override { return Log("precommit", t.id); }
  Status Commit(const MemoryTxn& t) override {
    std::lock_guard lock(g_job_ledger->mu);
    g_job_ledger->calls[subtask_].push_back("commit " + std::to_string(t.id));
    g_job_ledger->committed[{subtask_, t.id}] = t.values;
    return Status::Ok();
  }
  Status Abort(const MemoryTxn& t) override { return Log("abort", t.id); }
  std::string SnapshotSharedState() override {
    Log("snapshot", 0).IgnoreError();
    return std::string();
  }

 private:
  Status Log(const std::string& what, int64_t id) {
    std::lock_guard lock(g_job_ledger->mu);
    g_job_ledger->calls[subtask_].push_back(what + " " + std::to_string(id));
    return Status::Ok();
  }
  int subtask_;
  int64_t next_id_ = 1;
};

class JobMemorySink final : public TwoPhaseCommitSink<int64_t, MemoryTxn> {
 public:
  std::unique_ptr<TwoPhaseCommitWriter<int64_t, MemoryTxn>> CreateTransactionalWriter(
      RuntimeContext& context) const override {
    return std::make_unique<JobMemoryWriter>(context.GetIndexOfThisSubtask());
  }
};

/// Runs generator -> [rebalance] -> JobMemorySink and checks that every
/// record was committed once and how each subtask's last transaction ended.
void RunMemorySinkJob(bool checkpointing, bool rebalance) {
  TempDir dir;
  JobLedger ledger;
  g_job_ledger = &ledger;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  if (checkpointing) ConfigureCheckpoints(*env, dir.Sub("checkpoints"));
  DataStream<int64_t> numbers = env->FromGenerator([](int64_t i) { return i; }, 2000, 8000);
  if (rebalance) numbers = numbers.Rebalance();
  numbers.SinkTo(JobMemorySink(), "memory");
  Result<JobExecutionResult> r = env->Execute("two-phase commit job");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  std::vector<int64_t> all;
  for (const auto& [key, values] : ledger.committed) all.insert(all.end(), values.begin(), values.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, Range(0, 1999));
  ASSERT_EQ(ledger.calls.size(), 2u);
  for (const auto& [subtask, calls] : ledger.calls) {
    ASSERT_GE(calls.size(), 3u);
    auto end_of_input = std::find_if(calls.begin(), calls.end(),
                                     [](const std::string& c) { return c.starts_with("end of input "); });
    ASSERT_NE(end_of_input, calls.end()) << ::testing::PrintToString(calls);
    const std::string txn = end_of_input->substr(std::strlen("end of input "));
    // The end of input pre-commits the last transaction. With checkpointing
    // it is committed after a snapshot that took it (the final checkpoint's,
    // or a periodic one triggered just before), when that checkpoint
    // completes; commits of earlier checkpoints may come in between.
    // Without checkpointing it is committed at once.
    Calls after(end_of_input + 1, calls.end());
    ASSERT_FALSE(after.empty());
    EXPECT_EQ(after.front(), "precommit " + txn);
    auto snapshot = std::find(after.begin(), after.end(), "snapshot 0");
    auto commit = std::find(after.begin(), after.end(), "commit " + txn);
    ASSERT_NE(commit, after.end()) << ::testing::PrintToString(calls);
    if (checkpointing) {
      EXPECT_LT(snapshot, commit) << ::testing::PrintToString(calls);
    } else {
      EXPECT_EQ(snapshot, after.end()) << ::testing::PrintToString(calls);
      EXPECT_EQ(commit, after.begin() + 1) << ::testing::PrintToString(calls);
    }
    for (auto it = after.begin() + 1; it != after.end(); ++it) {
      EXPECT_TRUE(*it == "snapshot 0" || it->starts_with("commit ")) << "subtask " << subtask << ": " << *it;
    }
  }
}

TEST(TwoPhaseCommitJobTest, FinalCheckpointCommitsTheLastTransaction) { RunMemorySinkJob(true, false); }
TEST(TwoPhaseCommitJobTest, FinalCheckpointCommitsTheLastTransactionOfASinkTask) { RunMemorySinkJob(true, true); }
TEST(TwoPhaseCommitJobTest, WithoutCheckpointingTheEndOfInputCommits) { RunMemorySinkJob(false, true); }

TEST(FileSinkJobTest, CheckpointedJobCommitsEveryRecordExactlyOnce) {
  TempDir dir;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, dir.Sub("checkpoints"));
  env->FromGenerator([](int64_t i) { return i; }, kJobRecords, kJobRate)
      .SinkTo(BaseDirSink(dir.Sub("out")), "files");
  Result<JobExecutionResult> r = env->Execute("file sink");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_GT(r->checkpoints_completed, 3);
  ExpectExactlyOnce(dir.Sub("out"), kJobRecords);
  // One part file per subtask and checkpoint interval that saw records.
  int per_subtask[2] = {0, 0};
  for (const std::string& f : ListFiles(dir.Sub("out")).visible) {
    ASSERT_TRUE(f.starts_with("part-0-") || f.starts_with("part-1-")) << f;
    ++per_subtask[f[5] - '0'];
  }
  EXPECT_GT(per_subtask[0], 2);
  EXPECT_GT(per_subtask[1], 2);
}

TEST(FileSinkJobTest, SinkInItsOwnTaskCommitsAtTheFinalCheckpoint) {
  TempDir dir;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, dir.Sub("checkpoints"));
  env->FromGenerator([](int64_t i) { return i; }, kJobRecords, kJobRate)
      .Rebalance()
      .SinkTo(BaseDirSink(dir.Sub("out")), "files");
  Result<JobExecutionResult> r = env->Execute("file sink after rebalance");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ExpectExactlyOnce(dir.Sub("out"), kJobRecords);
}

std::atomic<bool> g_failed_once{false};

TEST(FileSinkJobTest, FailureAndRestoreKeepExactlyOnce) {
  TempDir dir;
  g_failed_once = false;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, dir.Sub("checkpoints"));
  env->FromGenerator([](int64_t i) { return i; }, kJobRecords, kJobRate)
      .Map([](int64_t v) {
        // Subtask 0 reads 0..1999: a few checkpoints complete before 1500.
        if (v == 1500 && !g_failed_once.exchange(true)) throw std::runtime_error("injected failure");
        return v;
      })
      .SinkTo(BaseDirSink(dir.Sub("out")).WithRollingPolicy(std::make_shared<DefaultRollingPolicy>(
                  DefaultRollingPolicyOptions{uint64_t{2000}, Duration(60000), Duration(60000)})),
              "files");
  Result<JobExecutionResult> r = env->Execute("file sink with a failure");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->restarts, 1);
  bool from_checkpoint = false;
  for (const std::string& e : r->recovery_events) from_checkpoint |= e.find("from checkpoint") != std::string::npos;
  EXPECT_TRUE(from_checkpoint) << ::testing::PrintToString(r->recovery_events);
  // Committed data: every number once. Hidden leftovers: only in-progress
  // files the failed attempt began after its last checkpoint.
  EXPECT_EQ(CommittedNumbers(dir.Sub("out")), Range(0, kJobRecords - 1));
  for (const std::string& f : ListFiles(dir.Sub("out")).hidden) {
    EXPECT_NE(f.find(".inprogress."), std::string::npos) << f;
  }
}

TEST(FileSinkJobTest, DefaultBucketsByProcessingTimeHour) {
  TempDir dir;
  DateTimeBucketAssigner buckets;
  auto now = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  std::set<std::string> expected{buckets.BucketIdFor(now())};
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, dir.Sub("checkpoints"));
  env->FromSequence(0, 999).SinkTo(FileSink<int64_t>(dir.Sub("out")), "files");
  Result<JobExecutionResult> r = env->Execute("file sink by hour");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  expected.insert(buckets.BucketIdFor(now()));  // the job may cross an hour
  ExpectExactlyOnce(dir.Sub("out"), 1000);
  for (const std::string& f : ListFiles(dir.Sub("out")).visible) {
    fs::path p(f);
    ASSERT_EQ(std::distance(p.begin(), p.end()), 2) << f;
    EXPECT_TRUE(expected.contains(p.begin()->string())) << f;
  }
}

TEST(FileSinkJobTest, WithoutCheckpointingTheEndOfInputCommits) {
  TempDir dir;
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(0, 999)
      .SinkTo(FileSink<int64_t>(dir.Sub("out")).WithBucketAssigner([](const int64_t& v, const BucketContext&) {
        return std::string(v % 2 == 0 ? "even" : "odd");
      }),
              "files");
  Result<JobExecutionResult> r = env->Execute("file sink without checkpoints");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  ExpectExactlyOnce(dir.Sub("out"), 1000);
  for (const std::string& f : ListFiles(dir.Sub("out")).visible) {
    bool even = f.starts_with("even/");
    for (int64_t v : NumbersIn(dir.Sub("out/" + f))) EXPECT_EQ(v % 2 == 0, even) << f;
  }
}

}  // namespace
}  // namespace freshet
