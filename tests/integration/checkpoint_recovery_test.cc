// End-to-end checkpointing and recovery: the sequence oracle under injected
// failures, damaged checkpoints, savepoints with rescaling, stop with drain,
// resuming from retained checkpoints.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "freshet/freshet.h"
#include "runtime/checkpoint/checkpoint_storage.h"
#include "support/sequence_oracle.h"
#include "support/temp_dir.h"

namespace freshet {
namespace {

namespace fs = std::filesystem;

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("freshet-ckpt") {}
};

/// The keyed-state backends the tests of this file run on (a parameter):
/// heap, RocksDB with checkpoints in the backend-independent format,
/// RocksDB with incremental checkpoints of its files, and the latter with
/// the timers in RocksDB too.
enum class Backend { kHeap, kRocksDB, kRocksDBIncremental, kRocksDBTimers };
Backend g_backend = Backend::kHeap;

/// Where RocksDB instances live while a test runs (set by BackendTest).
std::string g_rocksdb_dir;

std::unique_ptr<StreamExecutionEnvironment> NewEnv() {
  auto env = StreamExecutionEnvironment::Create();
  StateBackendOptions backend;
  backend.type = g_backend == Backend::kHeap ? StateBackendOptions::Type::kHeap : StateBackendOptions::Type::kRocksDB;
  backend.incremental = g_backend == Backend::kRocksDBIncremental || g_backend == Backend::kRocksDBTimers;
  backend.rocksdb_timers = g_backend == Backend::kRocksDBTimers;
  backend.rocksdb_local_dir = g_rocksdb_dir;
  env->SetStateBackend(backend);
  return env;
}

/// RocksDB instances open in g_rocksdb_dir now.
int64_t OpenRocksDBInstances() {
  std::error_code ec;
  int64_t n = 0;
  for (auto it = fs::directory_iterator(g_rocksdb_dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

/// Runs every test on each backend.
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    g_backend = GetParam();
    g_rocksdb_dir = rocksdb_dir_.Path();
  }
  void TearDown() override {
    g_backend = Backend::kHeap;
    g_rocksdb_dir.clear();
  }

 private:
  test_support::TempDir rocksdb_dir_{"freshet-rocksdb"};
};
class CheckpointRecoveryTest : public BackendTest {};
class SavepointTest : public BackendTest {};

std::string NameOf(Backend backend) {
  switch (backend) {
    case Backend::kHeap:
      return "Heap";
    case Backend::kRocksDB:
      return "RocksDB";
    case Backend::kRocksDBIncremental:
      return "RocksDBIncremental";
    case Backend::kRocksDBTimers:
      return "RocksDBTimers";
  }
  return "?";
}
std::string BackendName(const ::testing::TestParamInfo<Backend>& info) { return NameOf(info.param); }
void PrintTo(Backend backend, std::ostream* os) { *os << NameOf(backend); }

using test_support::FaultInjector;
using test_support::FixedDelayRestarts;
using test_support::RecordFinal;
using test_support::Seq;
using Report = test_support::OracleReport;
test_support::OracleReport*& g_report = test_support::g_oracle;

/// Holds the last sequence number per key; any gap or duplicate is a
/// violation of exactly-once state. Emits (key, last) when event time ends.
class SequenceChecker : public KeyedProcessFunction<int64_t, Seq, Seq> {
 public:
  void Open() override {
    last_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("last", -1));
    g_report->rocksdb_instances.fetch_add(OpenRocksDBInstances());
  }
  void ProcessElement(const Seq& s, Context& ctx, Collector<Seq>&) override {
    int64_t last = last_->Value();
    if (s.seq != last + 1) g_report->violations.fetch_add(1);
    if (last < 0) ctx.GetTimerService().RegisterEventTimeTimer(kMaxWatermark);
    last_->Update(s.seq);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<Seq>& out) override {
    out.Collect(Seq{ctx.GetCurrentKey(), last_->Value()});
  }

 private:
  ValueState<int64_t>* last_ = nullptr;
};

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
// Checkpoints (RocksDB flushes and uploads) take many times longer: a
// slower source leaves every attempt time to complete one and fail.
constexpr double kOracleRate = 5000;
#else
constexpr double kOracleRate = 20000;
#endif

struct OracleJob {
  int64_t keys = 40;
  int64_t per_key = 600;
  int parallelism = 2;
  double rate = kOracleRate;  // records per second over all subtasks
  int fail_attempts = 0;
  int64_t interval_ms = 50;
};

/// The generator of `job` (see test_support::SequenceAt).
std::function<Seq(int64_t)> SequenceOf(const OracleJob& job) {
  return [job](int64_t i) { return test_support::SequenceAt(i, job.keys, job.per_key, job.parallelism); };
}

/// source -> fault injector -> keyBy -> checker -> sink
void BuildOracle(StreamExecutionEnvironment& env, const OracleJob& job) {
  env.FromGenerator(SequenceOf(job), job.keys * job.per_key, job.rate)
      .Uid("source")
      // Early enough that every attempt gets there, whatever checkpoint it
      // resumed from (a subtask has keys * per_key / parallelism records).
      .Map(FaultInjector(job.fail_attempts, 1000, 500, 300))
      .Uid("faults")
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(SequenceChecker())
      .Uid("checker")
      .SinkTo(RecordFinal)
      .Uid("sink");
}

void ConfigureCheckpoints(StreamExecutionEnvironment& env, const std::string& dir, int64_t interval_ms,
                          CheckpointingMode mode = CheckpointingMode::kExactlyOnce) {
  env.EnableCheckpointing(Duration(interval_ms), mode);
  env.GetCheckpointConfig().directory = dir;
  env.GetCheckpointConfig().num_retained = 3;
  env.SetRestartStrategy(FixedDelayRestarts());
}

void ExpectComplete(const Report& r, const OracleJob& job) {
  EXPECT_EQ(r.violations.load(), 0);
  ASSERT_EQ(static_cast<int64_t>(r.final_seq.size()), job.keys);
  for (const auto& [key, last] : r.final_seq) EXPECT_EQ(last, job.per_key - 1) << "key " << key;
}

TEST_P(CheckpointRecoveryTest, SequenceOracleSurvivesRepeatedFailures) {
  TempDir dir;
  Report report;
  g_report = &report;
  OracleJob job;
  job.fail_attempts = 3;
  auto env = NewEnv();
  env->SetParallelism(job.parallelism);
  ConfigureCheckpoints(*env, dir.Path(), job.interval_ms);
  BuildOracle(*env, job);
  Result<JobExecutionResult> r = env->Execute("sequence oracle");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->restarts, 3);
  EXPECT_GT(r->checkpoints_completed, 3);
  ExpectComplete(report, job);
  // Some restart resumed from a checkpoint rather than the beginning.
  bool from_checkpoint = false;
  for (const std::string& e : r->recovery_events) from_checkpoint |= e.find("from checkpoint") != std::string::npos;
  EXPECT_TRUE(from_checkpoint) << ::testing::PrintToString(r->recovery_events);
  // The state really was where the parameter says (every checker subtask
  // of every attempt saw the instances open at its Open).
  if (GetParam() != Backend::kHeap) {
    EXPECT_GT(report.rocksdb_instances.load(), 0);
  } else {
    EXPECT_EQ(report.rocksdb_instances.load(), 0);
  }
  // Instances are removed with their operators.
  EXPECT_EQ(OpenRocksDBInstances(), 0);
}

TEST_P(CheckpointRecoveryTest, AtLeastOnceLosesNothing) {
  TempDir dir;
  Report report;
  g_report = &report;
  OracleJob job;
  job.fail_attempts = 2;
  auto env = NewEnv();
  env->SetParallelism(job.parallelism);
  ConfigureCheckpoints(*env, dir.Path(), job.interval_ms, CheckpointingMode::kAtLeastOnce);
  BuildOracle(*env, job);
  Result<JobExecutionResult> r = env->Execute("at-least-once oracle");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->restarts, 2);
  // One input channel per checker subtask path here, so no duplicates
  // either; what at-least-once promises is that nothing is lost.
  ASSERT_EQ(static_cast<int64_t>(report.final_seq.size()), job.keys);
  for (const auto& [key, last] : report.final_seq) EXPECT_EQ(last, job.per_key - 1);
}

TEST_P(CheckpointRecoveryTest, WithoutRestartStrategyTheFailureEndsTheJob) {
  TempDir dir;
  Report report;
  g_report = &report;
  OracleJob job;
  job.fail_attempts = 1;
  auto env = NewEnv();
  env->SetParallelism(job.parallelism);
  ConfigureCheckpoints(*env, dir.Path(), job.interval_ms);
  RestartStrategyOptions none;
  none.kind = RestartStrategyOptions::Kind::kNone;
  env->SetRestartStrategy(none);
  BuildOracle(*env, job);
  Result<JobExecutionResult> r = env->Execute("no restarts");
  ASSERT_FALSE(r.IsOk());
  EXPECT_NE(r.GetStatus().Message().find("injected failure"), std::string::npos) << r.GetStatus().ToString();
}

/// Flips one byte in the middle of a checkpoint's largest state file.
void CorruptCheckpoint(const std::string& checkpoint_dir) {
  fs::path victim;
  uintmax_t size = 0;
  for (const auto& e : fs::directory_iterator(checkpoint_dir)) {
    if (e.path().filename() == "_metadata" || !e.is_regular_file()) continue;
    if (e.file_size() > size) {
      size = e.file_size();
      victim = e.path();
    }
  }
  ASSERT_FALSE(victim.empty()) << "no state file in " << checkpoint_dir;
  std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(size / 2));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(size / 2));
  f.write(&c, 1);
}

std::atomic<bool> g_fail_now{false};

class FailOnSignal : public RichMapFunction<Seq, Seq> {
 public:
  Seq Map(const Seq& s) override {
    if (GetRuntimeContext().GetAttemptNumber() == 0 && g_fail_now.load()) throw std::runtime_error("signalled failure");
    return s;
  }
};

TEST_P(CheckpointRecoveryTest, DamagedCheckpointIsSkippedForTheOneBefore) {
  TempDir dir;
  Report report;
  g_report = &report;
  g_fail_now = false;
  OracleJob job;
  job.rate = 8000;
  auto env = NewEnv();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, dir.Path(), 40);
  env->SetRestartStrategy(FixedDelayRestarts(3, 400));  // time to damage the newest checkpoint
  env->FromGenerator(SequenceOf(job), job.keys * job.per_key, job.rate)
      .Map(FailOnSignal())
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(SequenceChecker())
      .SinkTo(RecordFinal);
  auto client = env->ExecuteAsync("damaged checkpoint");
  ASSERT_TRUE(client.IsOk()) << client.GetStatus().ToString();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((*client)->CompletedCheckpoints().size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE((*client)->CompletedCheckpoints().size(), 2u);
  g_fail_now = true;
  while ((*client)->GetJobStatus() != JobStatus::kRestarting && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ((*client)->GetJobStatus(), JobStatus::kRestarting);
  std::vector<std::string> retained = (*client)->CompletedCheckpoints();
  ASSERT_GE(retained.size(), 2u);
  CorruptCheckpoint(retained.front());
  Result<JobExecutionResult> r = (*client)->Wait();
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  std::string events = ::testing::PrintToString(r->recovery_events);
  EXPECT_NE(events.find("is damaged"), std::string::npos) << events;
  EXPECT_NE(events.find(fs::path(retained.front()).filename().string()), std::string::npos) << events;
  ExpectComplete(report, job);
}

/// Sums per key; emits (key, sum) at the end of event time.
class KeyedSum : public KeyedProcessFunction<int64_t, Seq, Seq> {
 public:
  void Open() override { sum_ = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("sum", 0)); }
  void ProcessElement(const Seq& s, Context& ctx, Collector<Seq>&) override {
    if (sum_->Get() == std::nullopt) ctx.GetTimerService().RegisterEventTimeTimer(kMaxWatermark);
    sum_->Update(sum_->Value() + s.seq);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<Seq>& out) override {
    out.Collect(Seq{ctx.GetCurrentKey(), sum_->Value()});
  }

 private:
  ValueState<int64_t>* sum_ = nullptr;
};

constexpr int64_t kSumKeys = 64;
constexpr int64_t kSumRecords = 64 * 400;

void BuildSumJob(StreamExecutionEnvironment& env, double rate, bool with_sink_uid = true) {
  auto sink = env.FromGenerator([](int64_t i) { return Seq{(i * 7) % kSumKeys, i}; }, kSumRecords, rate)
                  .Uid("numbers")
                  .KeyBy([](const Seq& s) { return s.key; })
                  .Process(KeyedSum())
                  .Uid("sum")
                  .SinkTo(RecordFinal);
  if (with_sink_uid) sink.Uid("sink");
}

std::map<int64_t, int64_t> ReferenceSums() {
  std::map<int64_t, int64_t> sums;
  for (int64_t i = 0; i < kSumRecords; ++i) sums[(i * 7) % kSumKeys] += i;
  return sums;
}

/// Runs the sum job at parallelism 2, stops it with a savepoint midway and
/// returns the savepoint's path.
std::string SavepointMidway(const std::string& checkpoints, const std::string& savepoints) {
  Report report;
  g_report = &report;
  auto env = NewEnv();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, checkpoints, 100);
  BuildSumJob(*env, 10000);
  auto client = env->ExecuteAsync("sum, first half");
  EXPECT_TRUE(client.IsOk()) << client.GetStatus().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  Result<std::string> savepoint = (*client)->StopWithSavepoint(savepoints);
  EXPECT_TRUE(savepoint.IsOk()) << savepoint.GetStatus().ToString();
  Result<JobExecutionResult> r = (*client)->Wait();
  EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  // Stopped without draining: event time did not end, nothing was emitted.
  EXPECT_EQ(report.finals_written.load(), 0);
  return savepoint.IsOk() ? *savepoint : "";
}

TEST_P(SavepointTest, StopAndResumeAtParallelismOneTwoAndFour) {
  TempDir dir;
  std::string savepoint = SavepointMidway(dir.Path() + "/checkpoints", dir.Path() + "/savepoints");
  ASSERT_FALSE(savepoint.empty());
  EXPECT_TRUE(fs::exists(fs::path(savepoint) / "_metadata"));
  for (int parallelism : {1, 2, 4}) {
    Report report;
    g_report = &report;
    auto env = NewEnv();
    env->SetParallelism(parallelism);
    RestoreOptions restore;
    restore.path = savepoint;
    env->SetStateRestore(restore);
    BuildSumJob(*env, 0);
    Result<JobExecutionResult> r = env->Execute("sum, second half");
    ASSERT_TRUE(r.IsOk()) << "parallelism " << parallelism << ": " << r.GetStatus().ToString();
    EXPECT_EQ(report.final_seq, ReferenceSums()) << "parallelism " << parallelism;
    // The source resumed where it stopped: fewer records than a full run.
    EXPECT_LT(r->records_in, kSumRecords) << "parallelism " << parallelism;
  }
  EXPECT_TRUE(DisposeSavepoint(savepoint).IsOk());
  EXPECT_FALSE(fs::exists(savepoint));
}

// Savepoints are backend-independent: one taken on this test's backend
// at parallelism 2 resumes on the other backend at 1 and at 4 with the
// sums a sequential run computes.
TEST_P(SavepointTest, ResumesOnTheOtherBackend) {
  TempDir dir;
  std::string savepoint = SavepointMidway(dir.Path() + "/checkpoints", dir.Path() + "/savepoints");
  ASSERT_FALSE(savepoint.empty());
  const Backend other = GetParam() == Backend::kHeap ? Backend::kRocksDBIncremental : Backend::kHeap;
  g_backend = other;
  for (int parallelism : {1, 4}) {
    Report report;
    g_report = &report;
    auto env = NewEnv();
    env->SetParallelism(parallelism);
    RestoreOptions restore;
    restore.path = savepoint;
    env->SetStateRestore(restore);
    BuildSumJob(*env, 0);
    Result<JobExecutionResult> r = env->Execute("sum, second half on the other backend");
    ASSERT_TRUE(r.IsOk()) << "parallelism " << parallelism << ": " << r.GetStatus().ToString();
    EXPECT_EQ(report.final_seq, ReferenceSums()) << "parallelism " << parallelism;
    EXPECT_LT(r->records_in, kSumRecords) << "parallelism " << parallelism;
  }
}

TEST_P(SavepointTest, MissingOperatorIsReportedUnlessAllowed) {
  TempDir dir;
  std::string savepoint = SavepointMidway(dir.Path() + "/checkpoints", dir.Path() + "/savepoints");
  ASSERT_FALSE(savepoint.empty());
  {
    // The job no longer has the operator "sum".
    auto env = NewEnv();
    RestoreOptions restore;
    restore.path = savepoint;
    env->SetStateRestore(restore);
    env->FromGenerator([](int64_t i) { return Seq{i, i}; }, 10).Uid("numbers").SinkTo(RecordFinal).Uid("sink");
    Result<JobExecutionResult> r = env->Execute("incompatible");
    ASSERT_FALSE(r.IsOk());
    EXPECT_EQ(r.GetStatus().Code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.GetStatus().Message().find("uid sum"), std::string::npos) << r.GetStatus().Message();
    EXPECT_NE(r.GetStatus().Message().find("allowNonRestoredState"), std::string::npos) << r.GetStatus().Message();
  }
  {
    Report report;
    g_report = &report;
    auto env = NewEnv();
    RestoreOptions restore;
    restore.path = savepoint;
    restore.allow_non_restored_state = true;
    env->SetStateRestore(restore);
    env->FromGenerator([](int64_t i) { return Seq{i, i}; }, 10).Uid("numbers").SinkTo(RecordFinal).Uid("sink");
    Result<JobExecutionResult> r = env->Execute("allowed");
    ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  }
}

TEST_P(SavepointTest, ChangedStateTypeIsRefused) {
  TempDir dir;
  std::string savepoint = SavepointMidway(dir.Path() + "/checkpoints", dir.Path() + "/savepoints");
  ASSERT_FALSE(savepoint.empty());
  class StringSum : public KeyedProcessFunction<int64_t, Seq, Seq> {
   public:
    void Open() override { GetRuntimeContext().GetState(ValueStateDescriptor<std::string>("sum")); }
    void ProcessElement(const Seq&, Context&, Collector<Seq>&) override {}
  };
  auto env = NewEnv();
  RestoreOptions restore;
  restore.path = savepoint;
  env->SetStateRestore(restore);
  env->FromGenerator([](int64_t i) { return Seq{i % 3, i}; }, 100)
      .Uid("numbers")
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(StringSum())
      .Uid("sum")
      .SinkTo(RecordFinal)
      .Uid("sink");
  Result<JobExecutionResult> r = env->Execute("changed type");
  ASSERT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kFailedPrecondition) << r.GetStatus().ToString();
  EXPECT_NE(r.GetStatus().Message().find("'sum'"), std::string::npos) << r.GetStatus().Message();
}

// Two keyed operators in two tasks, three changed states (a type, a kind,
// a map's value type): the job fails before processing with all three
// problems in one error, each once although two subtasks of each operator
// hit it, and without restarting.
TEST_P(SavepointTest, EveryStateProblemIsReportedAtOnce) {
  TempDir dir;
  struct First : public KeyedProcessFunction<int64_t, Seq, Seq> {
    void Open() override {
      sum = &GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("sum", 0));
      seen = &GetRuntimeContext().GetListState(ListStateDescriptor<int64_t>("seen"));
    }
    void ProcessElement(const Seq& s, Context&, Collector<Seq>& out) override {
      sum->Update(sum->Value() + s.seq);
      seen->Add(s.seq);
      out.Collect(s);
    }
    ValueState<int64_t>* sum = nullptr;
    ListState<int64_t>* seen = nullptr;
  };
  struct Second : public KeyedProcessFunction<int64_t, Seq, Seq> {
    void Open() override { m = &GetRuntimeContext().GetMapState(MapStateDescriptor<int64_t, int64_t>("m")); }
    void ProcessElement(const Seq& s, Context&, Collector<Seq>&) override { m->Put(s.seq, s.key); }
    MapState<int64_t, int64_t>* m = nullptr;
  };
  struct FirstChanged : public KeyedProcessFunction<int64_t, Seq, Seq> {
    void Open() override {
      GetRuntimeContext().GetState(ValueStateDescriptor<std::string>("sum"));
      GetRuntimeContext().GetState(ValueStateDescriptor<int64_t>("seen"));
    }
    void ProcessElement(const Seq& s, Context&, Collector<Seq>& out) override { out.Collect(s); }
  };
  struct SecondChanged : public KeyedProcessFunction<int64_t, Seq, Seq> {
    void Open() override { GetRuntimeContext().GetMapState(MapStateDescriptor<int64_t, std::string>("m")); }
    void ProcessElement(const Seq&, Context&, Collector<Seq>&) override {}
  };
  auto build = [](StreamExecutionEnvironment& env, auto first, auto second, double rate) {
    env.FromGenerator([](int64_t i) { return Seq{i % 16, i}; }, 1'000'000, rate)
        .Uid("numbers")
        .KeyBy([](const Seq& s) { return s.key; })
        .Process(std::move(first))
        .Uid("first")
        .KeyBy([](const Seq& s) { return s.key % 5; })
        .Process(std::move(second))
        .Uid("second")
        .SinkTo([](const Seq&) {})
        .Uid("sink");
  };
  std::string savepoint;
  {
    auto env = NewEnv();
    env->SetParallelism(2);
    ConfigureCheckpoints(*env, dir.Path() + "/checkpoints", 100);
    build(*env, First(), Second(), 5000);
    auto client = env->ExecuteAsync("three states");
    ASSERT_TRUE(client.IsOk()) << client.GetStatus().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    Result<std::string> taken = (*client)->StopWithSavepoint(dir.Path() + "/savepoints");
    ASSERT_TRUE(taken.IsOk()) << taken.GetStatus().ToString();
    ASSERT_TRUE((*client)->Wait().IsOk());
    savepoint = *taken;
  }
  auto env = NewEnv();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, dir.Path() + "/checkpoints2", 100);
  RestoreOptions restore;
  restore.path = savepoint;
  env->SetStateRestore(restore);
  build(*env, FirstChanged(), SecondChanged(), 0);
  Result<JobExecutionResult> r = env->Execute("three changed states");
  ASSERT_FALSE(r.IsOk());
  const std::string& message = r.GetStatus().Message();
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kFailedPrecondition) << message;
  EXPECT_NE(message.find("3 problems in 4 of"), std::string::npos) << message;
  for (const std::string& expected :
       {std::string("keyed state 'sum' was saved as value state"),
        std::string("keyed state 'seen' was saved as list state"),
        std::string("keyed state 'm' was saved as map state")}) {
    size_t at = message.find(expected);
    EXPECT_NE(at, std::string::npos) << expected << "\n" << message;
    if (at != std::string::npos) {
      EXPECT_EQ(message.find(expected, at + 1), std::string::npos) << "listed twice: " << message;
    }
  }
}

TEST_P(SavepointTest, RefusedOnceATaskHasFinished) {
  TempDir dir;
  Report report;
  g_report = &report;
  auto env = NewEnv();
  // No checkpointing: the bounded source's task ends as soon as it is done.
  env->FromElements<Seq>({Seq{1, 1}}).SinkTo(RecordFinal);
  env->FromGenerator([](int64_t i) { return Seq{i, i}; }, -1, 1000).SinkTo(RecordFinal);
  auto client = env->ExecuteAsync("partly finished");
  ASSERT_TRUE(client.IsOk());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (report.finals_written.load() < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Result<std::string> savepoint = (*client)->TriggerSavepoint(dir.Path());
  ASSERT_FALSE(savepoint.IsOk());
  EXPECT_EQ(savepoint.GetStatus().Code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(savepoint.GetStatus().Message().find("has finished"), std::string::npos) << savepoint.GetStatus().ToString();
  (*client)->Cancel();
  (void)(*client)->Wait();
}

TEST_P(SavepointTest, StopWithDrainEndsEventTimeFirst) {
  TempDir dir;
  Report report;
  g_report = &report;
  auto env = NewEnv();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, dir.Path() + "/checkpoints", 100);
  // An endless source: only the drain ends it.
  env->FromGenerator([](int64_t i) { return Seq{i % 8, i}; }, -1, 5000)
      .Uid("numbers")
      .KeyBy([](const Seq& s) { return s.key; })
      .Process(KeyedSum())
      .Uid("sum")
      .SinkTo(RecordFinal)
      .Uid("sink");
  auto client = env->ExecuteAsync("drain");
  ASSERT_TRUE(client.IsOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Result<std::string> savepoint = (*client)->StopWithSavepoint(dir.Path() + "/savepoints", /*drain=*/true);
  ASSERT_TRUE(savepoint.IsOk()) << savepoint.GetStatus().ToString();
  Result<JobExecutionResult> r = (*client)->Wait();
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  // The maximum watermark fired every key's timer before the savepoint.
  EXPECT_EQ(static_cast<int64_t>(report.final_seq.size()), 8);
  EXPECT_TRUE(fs::exists(fs::path(*savepoint) / "_metadata"));
}

TEST_P(SavepointTest, SavepointWhileRunningAndResumeFromRetainedCheckpointAfterCancel) {
  TempDir dir;
  std::string checkpoints = dir.Path() + "/checkpoints";
  std::string retained;
  {
    Report report;
    g_report = &report;
    auto env = NewEnv();
    env->SetParallelism(2);
    ConfigureCheckpoints(*env, checkpoints, 50);
    BuildSumJob(*env, 10000);
    auto client = env->ExecuteAsync("sum, cancelled");
    ASSERT_TRUE(client.IsOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    Result<std::string> savepoint = (*client)->TriggerSavepoint(dir.Path() + "/savepoints");
    ASSERT_TRUE(savepoint.IsOk()) << savepoint.GetStatus().ToString();
    EXPECT_EQ((*client)->GetJobStatus(), JobStatus::kRunning);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*client)->Cancel();
    Result<JobExecutionResult> r = (*client)->Wait();
    EXPECT_EQ(r.GetStatus().Code(), StatusCode::kCancelled);
    std::vector<std::string> completed = (*client)->CompletedCheckpoints();
    for (const std::string& c : completed) {
      if (c.find("/chk-") != std::string::npos) {
        retained = c;
        break;
      }
    }
  }
  ASSERT_FALSE(retained.empty());
  ASSERT_TRUE(fs::exists(fs::path(retained) / "_metadata")) << retained;
  Report report;
  g_report = &report;
  auto env = NewEnv();
  env->SetParallelism(3);
  RestoreOptions restore;
  restore.path = retained + "/_metadata";
  env->SetStateRestore(restore);
  BuildSumJob(*env, 0);
  Result<JobExecutionResult> r = env->Execute("sum, resumed");
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(report.final_seq, ReferenceSums());
}

class IncrementalCheckpointTest : public BackendTest {};

// A running job's incremental checkpoints hold the RocksDB instances' files;
// as checkpoints are subsumed, the shared directory keeps exactly the files
// the retained checkpoints reference: the others are deleted, the shared
// ones stay.
TEST_P(IncrementalCheckpointTest, SharedDirectoryHoldsExactlyTheFilesOfRetainedCheckpoints) {
  TempDir dir;
  std::string checkpoints = dir.Path() + "/checkpoints";
  Report report;
  g_report = &report;
  auto env = NewEnv();
  env->SetParallelism(2);
  ConfigureCheckpoints(*env, checkpoints, 40);
  env->GetCheckpointConfig().num_retained = 2;
  BuildSumJob(*env, 20000);
  auto client = env->ExecuteAsync("sum, incremental");
  ASSERT_TRUE(client.IsOk()) << client.GetStatus().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  (*client)->Cancel();
  EXPECT_EQ((*client)->Wait().GetStatus().Code(), StatusCode::kCancelled);
  std::vector<std::string> retained;
  for (const std::string& c : (*client)->CompletedCheckpoints()) {
    if (c.find("/chk-") != std::string::npos && fs::exists(fs::path(c) / "_metadata")) retained.push_back(c);
  }
  ASSERT_EQ(retained.size(), 2u) << ::testing::PrintToString((*client)->CompletedCheckpoints());
  std::set<std::string> referenced;
  CheckpointId newest = 0;
  for (const std::string& c : retained) {
    Result<internal::CheckpointMetadata> md = internal::ReadMetadata(c);
    ASSERT_TRUE(md.IsOk()) << md.GetStatus().ToString();
    newest = std::max(newest, md->checkpoint_id);
    const internal::OperatorStateHandle* sum = md->FindOperator("sum");
    ASSERT_NE(sum, nullptr);
    for (const internal::OperatorSubtaskStateHandle& subtask : sum->subtasks) {
      ASSERT_TRUE(subtask.incremental.has_value()) << c;
      // The key groups hold only the timers: the keyed state is in the files.
      for (const auto& [kg, block] : subtask.key_groups) {
        Result<std::string> bytes = internal::ReadBlock(c, block);
        ASSERT_TRUE(bytes.IsOk()) << bytes.GetStatus().ToString();
        auto parts = internal::KeyGroupParts::Decode(*bytes);
        ASSERT_TRUE(parts.IsOk());
        for (const auto& [name, part] : *parts) EXPECT_EQ(name, "timers") << "key group " << kg;
      }
      for (const auto& [local, ref] : subtask.incremental->shared_files) referenced.insert(ref.name);
    }
  }
  EXPECT_GT(newest, 4) << "checkpoints were subsumed";
  EXPECT_FALSE(referenced.empty());
  std::set<std::string> present;
  for (const auto& entry : fs::directory_iterator(internal::SharedDirectoryOf(retained[0]))) {
    present.insert(entry.path().filename().string());
  }
  EXPECT_EQ(present, referenced);
}

INSTANTIATE_TEST_SUITE_P(Backends, CheckpointRecoveryTest,
                         ::testing::Values(Backend::kHeap, Backend::kRocksDB, Backend::kRocksDBIncremental,
                                           Backend::kRocksDBTimers),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, SavepointTest,
                         ::testing::Values(Backend::kHeap, Backend::kRocksDB, Backend::kRocksDBIncremental,
                                           Backend::kRocksDBTimers),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(RocksDB, IncrementalCheckpointTest, ::testing::Values(Backend::kRocksDBIncremental),
                         BackendName);

}  // namespace
}  // namespace freshet
