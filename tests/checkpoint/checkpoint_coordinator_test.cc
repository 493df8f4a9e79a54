// The checkpoint coordinator's checkpoints on request: regular checkpoints
// (counted, retained, listed) that start at once, wait their turn under
// max-concurrent-checkpoints, and are refused or failed with a reason.
// The tasks are played by the test through a recording gateway.
#include "runtime/checkpoint/checkpoint_coordinator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace freshet::internal {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class RecordingGateway final : public CheckpointGateway {
 public:
  void TriggerCheckpoint(const std::string& execution_id, const CheckpointBarrier& barrier) override {
    std::lock_guard lock(mu_);
    triggered_.emplace_back(execution_id, barrier);
  }
  void NotifyCheckpointComplete(const std::string& execution_id, CheckpointId id) override {
    std::lock_guard lock(mu_);
    completed_.emplace_back(execution_id, id);
  }
  void NotifyCheckpointAborted(const std::string&, CheckpointId) override {}
  void RequestDrain(const std::string&) override {}

  /// Ids of the barriers sent to `execution_id`, in order.
  std::vector<CheckpointId> BarriersTo(const std::string& execution_id) const {
    std::lock_guard lock(mu_);
    std::vector<CheckpointId> ids;
    for (const auto& [execution, barrier] : triggered_) {
      if (execution == execution_id) ids.push_back(barrier.id);
    }
    return ids;
  }
  CheckpointBarrier LastBarrier() const {
    std::lock_guard lock(mu_);
    return triggered_.empty() ? CheckpointBarrier{} : triggered_.back().second;
  }
  size_t NumCompleteNotifications() const {
    std::lock_guard lock(mu_);
    return completed_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, CheckpointBarrier>> triggered_;
  std::vector<std::pair<std::string, CheckpointId>> completed_;
};

bool Ready(const std::future<Result<CheckpointId>>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

class CheckpointCoordinatorTest : public ::testing::Test {
 protected:
  /// A job of one source vertex of parallelism 2 (executions "e0", "e1").
  std::unique_ptr<CheckpointCoordinator> Coordinator(CheckpointOptions options,
                                                     StateBackendOptions backend = StateBackendOptions{}) {
    auto stream = std::make_shared<StreamGraph>();
    stream->job_name = "job";
    stream->options.checkpoint = options;
    stream->options.state_backend = backend;
    StreamNode source;
    source.id = 0;
    source.name = "source";
    source.uid = "source-uid";
    source.parallelism = 2;
    stream->nodes.emplace(0, source);
    auto job = std::make_shared<JobGraph>();
    job->job_id = "0123456789abcdef0123456789abcdef";
    job->stream_graph = stream;
    JobVertex vertex;
    vertex.id = 0;
    vertex.name = "source";
    vertex.chain = {0};
    vertex.parallelism = 2;
    vertex.is_source = true;
    job->vertices.push_back(vertex);
    job->vertex_of_node[0] = 0;
    return std::make_unique<CheckpointCoordinator>(job, options, gateway_, Clock::System(), [this](Status s) {
      std::lock_guard lock(failures_mu_);
      failures_.push_back(std::move(s));
    });
  }

  CheckpointOptions Options(int64_t interval_ms = 0) const {
    CheckpointOptions options;
    options.interval_ms = interval_ms;
    options.directory = dir_.Sub("checkpoints");
    return options;
  }

  static void Start(CheckpointCoordinator& c) { c.StartAttempt({{{0, 0}, "e0"}, {{0, 1}, "e1"}}); }
  static void AcknowledgeAll(CheckpointCoordinator& c, CheckpointId id) {
    c.Acknowledge("e0", id, TaskStateSnapshot{});
    c.Acknowledge("e1", id, TaskStateSnapshot{});
  }

  test_support::TempDir dir_{"freshet-coordinator"};
  RecordingGateway gateway_;
  std::mutex failures_mu_;
  std::vector<Status> failures_;
};

TEST_F(CheckpointCoordinatorTest, RequestedCheckpointIsARegularCheckpointEvenWithPeriodicCheckpointsOff) {
  auto c = Coordinator(Options(/*interval_ms=*/0));
  Start(*c);
  c->Tick();
  EXPECT_TRUE(gateway_.BarriersTo("e0").empty()) << "periodic checkpointing is off";

  auto requested = c->RequestCheckpoint(CheckpointType::kConfigured);
  EXPECT_EQ(gateway_.BarriersTo("e0"), std::vector<CheckpointId>{1});
  EXPECT_EQ(gateway_.BarriersTo("e1"), std::vector<CheckpointId>{1});
  CheckpointBarrier barrier = gateway_.LastBarrier();
  EXPECT_FALSE(barrier.savepoint);
  EXPECT_FALSE(barrier.terminate);
  EXPECT_EQ(barrier.directory, CheckpointDirectory(dir_.Sub("checkpoints"), "0123456789abcdef0123456789abcdef", 1));

  c->Acknowledge("e0", 1, TaskStateSnapshot{});
  EXPECT_FALSE(Ready(requested)) << "one task has not acknowledged yet";
  c->Acknowledge("e1", 1, TaskStateSnapshot{});
  ASSERT_TRUE(Ready(requested));
  Result<CheckpointId> id = requested.get();
  ASSERT_TRUE(id.IsOk()) << id.GetStatus().ToString();
  EXPECT_EQ(*id, 1);

  // Counted, retained and listed like a periodic checkpoint.
  EXPECT_EQ(c->NumCompleted(), 1);
  std::vector<CompletedCheckpoint> completed = c->Completed();
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].id, 1);
  EXPECT_FALSE(completed[0].savepoint);
  EXPECT_TRUE(fs::exists(fs::path(completed[0].directory) / "_metadata"));
  std::vector<CheckpointRecord> records = c->Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].id, 1);
  EXPECT_EQ(records[0].state, CheckpointRecord::State::kCompleted);
  EXPECT_EQ(c->History().size(), 1u);
  EXPECT_EQ(gateway_.NumCompleteNotifications(), 2u);

  // The next one gets the next id; retention (1) removes the first.
  auto second = c->RequestCheckpoint(CheckpointType::kFull);
  AcknowledgeAll(*c, 2);
  ASSERT_TRUE(Ready(second));
  EXPECT_EQ(*second.get(), 2);
  completed = c->Completed();
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].id, 2);
}

TEST_F(CheckpointCoordinatorTest, RequestsBeyondMaxConcurrentWaitTheirTurnAheadOfPeriodicCheckpoints) {
  // Periodic checkpoints every millisecond compete for the one slot.
  auto c = Coordinator(Options(/*interval_ms=*/1));
  Start(*c);
  auto first = c->RequestCheckpoint(CheckpointType::kConfigured);
  auto second = c->RequestCheckpoint(CheckpointType::kConfigured);
  EXPECT_EQ(gateway_.BarriersTo("e0"), std::vector<CheckpointId>{1}) << "max-concurrent-checkpoints is 1";
  c->Tick();
  EXPECT_EQ(gateway_.BarriersTo("e0"), std::vector<CheckpointId>{1}) << "neither the request nor a periodic one";
  EXPECT_FALSE(Ready(second));

  AcknowledgeAll(*c, 1);
  ASSERT_TRUE(Ready(first));
  EXPECT_EQ(*first.get(), 1);
  EXPECT_FALSE(Ready(second));
  c->Tick();  // the queued request goes before the periodic trigger that is due
  EXPECT_EQ(gateway_.BarriersTo("e0"), (std::vector<CheckpointId>{1, 2}));
  AcknowledgeAll(*c, 2);
  ASSERT_TRUE(Ready(second));
  Result<CheckpointId> id = second.get();
  ASSERT_TRUE(id.IsOk()) << id.GetStatus().ToString();
  EXPECT_EQ(*id, 2);
  EXPECT_EQ(c->NumCompleted(), 2);
}

TEST_F(CheckpointCoordinatorTest, RefusesRequestsItCannotServeAndSaysWhy) {
  auto expect_refused = [](CheckpointCoordinator& c, CheckpointType type, const std::string& part) {
    Status checked = c.CheckCheckpointRequest(type);
    EXPECT_EQ(checked.Code(), StatusCode::kFailedPrecondition) << checked.ToString();
    EXPECT_THAT(checked.Message(), HasSubstr(part));
    auto f = c.RequestCheckpoint(type);
    ASSERT_TRUE(Ready(f)) << "a refusal is immediate";
    Result<CheckpointId> r = f.get();
    ASSERT_FALSE(r.IsOk());
    EXPECT_THAT(r.GetStatus().Message(), HasSubstr(part));
  };
  auto not_started = Coordinator(Options());
  expect_refused(*not_started, CheckpointType::kConfigured, "is not running");

  CheckpointOptions no_directory = Options(1000);
  no_directory.directory.clear();
  auto without = Coordinator(no_directory);
  Start(*without);
  expect_refused(*without, CheckpointType::kConfigured, "state.checkpoints.dir");

  auto heap = Coordinator(Options());
  Start(*heap);
  expect_refused(*heap, CheckpointType::kIncremental, "state.backend.incremental");
  EXPECT_TRUE(heap->CheckCheckpointRequest(CheckpointType::kFull).IsOk());
  EXPECT_TRUE(heap->CheckCheckpointRequest(CheckpointType::kConfigured).IsOk());

  StateBackendOptions rocksdb;
  rocksdb.type = StateBackendOptions::Type::kRocksDB;
  rocksdb.incremental = true;
  auto incremental = Coordinator(Options(), rocksdb);
  Start(*incremental);
  expect_refused(*incremental, CheckpointType::kFull, "incremental checkpoints");
  EXPECT_TRUE(incremental->CheckCheckpointRequest(CheckpointType::kIncremental).IsOk());

  // A finished task cannot snapshot.
  auto ended = Coordinator(Options());
  Start(*ended);
  ended->TaskEnded("e1");
  expect_refused(*ended, CheckpointType::kConfigured, "task e1 of job");
  EXPECT_TRUE(gateway_.BarriersTo("e0").empty());
}

TEST_F(CheckpointCoordinatorTest, RequestsFailWhenTheCheckpointFailsOrTheAttemptEnds) {
  auto c = Coordinator(Options());
  Start(*c);
  // Declined: fails the request and counts as a failed checkpoint (none
  // tolerated by default: the job is told).
  auto declined = c->RequestCheckpoint(CheckpointType::kConfigured);
  c->Decline("e1", 1, Status::IoError("disk full"));
  ASSERT_TRUE(Ready(declined));
  Result<CheckpointId> r = declined.get();
  ASSERT_FALSE(r.IsOk());
  EXPECT_THAT(r.GetStatus().Message(), HasSubstr("checkpoint 1 was declined by task e1: disk full"));
  EXPECT_EQ(c->NumFailed(), 1);
  {
    std::lock_guard lock(failures_mu_);
    ASSERT_EQ(failures_.size(), 1u);
    EXPECT_THAT(failures_[0].Message(), HasSubstr("tolerable failed checkpoints"));
  }

  // One in flight, one queued: both fail when the attempt stops.
  auto pending = c->RequestCheckpoint(CheckpointType::kConfigured);
  auto queued = c->RequestCheckpoint(CheckpointType::kConfigured);
  EXPECT_EQ(gateway_.BarriersTo("e0"), (std::vector<CheckpointId>{1, 2}));
  c->StopAttempt(Status::Cancelled("the job is restarting"));
  for (auto* f : {&pending, &queued}) {
    ASSERT_TRUE(Ready(*f));
    Result<CheckpointId> failed = f->get();
    ASSERT_FALSE(failed.IsOk());
    EXPECT_EQ(failed.GetStatus().Code(), StatusCode::kCancelled);
    EXPECT_THAT(failed.GetStatus().Message(), HasSubstr("the job is restarting"));
  }

  // A queued request when a task ends, and one left when the job ends.
  Start(*c);
  auto started = c->RequestCheckpoint(CheckpointType::kConfigured);
  auto waiting = c->RequestCheckpoint(CheckpointType::kConfigured);
  c->TaskEnded("e0");
  ASSERT_TRUE(Ready(waiting));
  EXPECT_THAT(waiting.get().GetStatus().Message(), HasSubstr("task e0 has finished"));
  ASSERT_TRUE(Ready(started)) << "the checkpoint in flight waited for the ended task";
  EXPECT_FALSE(started.get().IsOk());
  auto last = c->RequestCheckpoint(CheckpointType::kConfigured);
  ASSERT_TRUE(Ready(last));
  EXPECT_FALSE(last.get().IsOk());
  c->Shutdown(true);
  EXPECT_EQ(c->NumCompleted(), 0);
}

}  // namespace
}  // namespace freshet::internal

namespace freshet::internal {
namespace {

// A job cancelled while a stop-with-savepoint waits (for its sources to
// drain, or for the savepoint's acknowledgements): the caller learns that
// the job ended instead of waiting for ever.
TEST_F(CheckpointCoordinatorTest, SavepointsWaitingWhenTheJobEndsAreAnswered) {
  for (SavepointMode mode : {SavepointMode::kStopDrain, SavepointMode::kSavepoint}) {
    auto c = Coordinator(Options(/*interval_ms=*/0));
    Start(*c);
    std::future<Result<std::string>> savepoint = c->TriggerSavepoint(dir_.Sub("savepoints"), mode);
    ASSERT_NE(savepoint.wait_for(std::chrono::milliseconds(50)), std::future_status::ready)
        << "the savepoint cannot complete before the tasks answer";
    c->Shutdown(/*delete_checkpoints=*/false);
    ASSERT_EQ(savepoint.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    Result<std::string> r = savepoint.get();
    ASSERT_FALSE(r.IsOk());
    EXPECT_EQ(r.GetStatus().Code(), StatusCode::kCancelled);
    EXPECT_THAT(r.GetStatus().Message(), HasSubstr("the job ended before"));
  }
}

}  // namespace
}  // namespace freshet::internal

namespace freshet::internal {
namespace {

TaskStateSnapshot WithSharedFile(const std::string& name) {
  TaskStateSnapshot s;
  StateFileInfo f;
  f.file = "../shared/" + name;
  f.shared = true;
  s.files.push_back(f);
  return s;
}

// When the job ends, files its tasks uploaded into the job's shared
// directory for a checkpoint that will never complete go, and so do files
// no checkpoint references (uploads cancelled before their task
// acknowledged); the files of retained checkpoints stay.
TEST_F(CheckpointCoordinatorTest, JobEndRemovesSharedFilesOfUnfinishedCheckpointsAndKeepsRetainedOnes) {
  auto c = Coordinator(Options(/*interval_ms=*/0));
  Start(*c);
  const fs::path shared = SharedDirectoryOf(CheckpointDirectory(dir_.Sub("checkpoints"),
                                                                "0123456789abcdef0123456789abcdef", 0));
  fs::create_directories(shared);
  auto touch = [&](const std::string& name) { std::ofstream(shared / name) << name; };

  std::future<Result<CheckpointId>> first = c->RequestCheckpoint(CheckpointType::kConfigured);
  CheckpointId id1 = gateway_.LastBarrier().id;
  touch("retained-0.sst");
  touch("retained-1.sst");
  c->Acknowledge("e0", id1, WithSharedFile("retained-0.sst"));
  c->Acknowledge("e1", id1, WithSharedFile("retained-1.sst"));
  ASSERT_EQ(first.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_TRUE(first.get().IsOk());

  std::future<Result<CheckpointId>> second = c->RequestCheckpoint(CheckpointType::kConfigured);
  CheckpointId id2 = gateway_.LastBarrier().id;
  ASSERT_NE(id1, id2);
  touch("pending.sst");
  c->Acknowledge("e0", id2, WithSharedFile("pending.sst"));  // e1 never answers
  touch("orphan.sst");                                        // uploaded, never acknowledged

  c->Shutdown(/*delete_checkpoints=*/false);
  ASSERT_EQ(second.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  Result<CheckpointId> r = second.get();
  ASSERT_FALSE(r.IsOk());
  EXPECT_THAT(r.GetStatus().Message(), HasSubstr("the job ended before checkpoint"));
  EXPECT_TRUE(fs::exists(shared / "retained-0.sst"));
  EXPECT_TRUE(fs::exists(shared / "retained-1.sst"));
  EXPECT_FALSE(fs::exists(shared / "pending.sst"));
  EXPECT_FALSE(fs::exists(shared / "orphan.sst"));
}

TEST_F(CheckpointCoordinatorTest, KeepsWhatEachSubtaskMeasuredAndTheLargestPerCheckpoint) {
  auto c = Coordinator(Options(/*interval_ms=*/0));
  Start(*c);
  auto requested = c->RequestCheckpoint(CheckpointType::kConfigured);
  TaskStateSnapshot first;
  first.metrics = {.start_delay_ms = 3, .alignment_ms = 40, .processed_bytes = 1000, .sync_ms = 2, .async_ms = 9};
  TaskStateSnapshot second;
  second.metrics = {.start_delay_ms = 7, .alignment_ms = 5, .processed_bytes = 24, .sync_ms = 11, .async_ms = 4,
                    .unaligned = true};
  c->Acknowledge("e1", 1, second);
  c->Acknowledge("e0", 1, first);
  ASSERT_TRUE(Ready(requested));

  std::vector<CheckpointRecord> records = c->Records();
  ASSERT_EQ(records.size(), 1u);
  ASSERT_EQ(records[0].acks.size(), 2u);
  // In arrival order, each with its subtask and its figures.
  EXPECT_EQ(records[0].acks[0].subtask, 1);
  EXPECT_EQ(records[0].acks[0].metrics.sync_ms, 11);
  EXPECT_TRUE(records[0].acks[0].metrics.unaligned);
  EXPECT_EQ(records[0].acks[1].subtask, 0);
  EXPECT_EQ(records[0].acks[1].metrics.alignment_ms, 40);
  EXPECT_EQ(records[0].acks[1].metrics.processed_bytes, 1000);
  EXPECT_FALSE(records[0].acks[1].metrics.unaligned);

  std::vector<CheckpointStats> history = c->History();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].max_start_delay, Duration(7));
  EXPECT_EQ(history[0].max_alignment, Duration(40));
  EXPECT_EQ(history[0].max_sync, Duration(11));
  EXPECT_EQ(history[0].max_async, Duration(9));
  EXPECT_EQ(history[0].processed_bytes, 1024);
}

}  // namespace
}  // namespace freshet::internal
