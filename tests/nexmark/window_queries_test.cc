// The Nexmark window queries (q5, q7, q11, q12) and the partitioned file
// sink (q10) against PostgreSQL. The events are generated at 100 events per
// second of event time (200,000 events: 2,000 s, from 2015-07-15 23:45 to
// 2015-07-16 00:18 UTC), so the queries see many windows: about 1,000
// hopping windows (q5), 200 tumbling ones (q7), tens of thousands of
// sessions (q11), and q10's partitions cross midnight.
//   q5, q7, q11: a bounded run at parallelism 1 and 2 must give exactly the
//   rows of the SQL, which spells each window out (hopping windows by
//   expanding every bid into its five windows, sessions as gaps and
//   islands with LAG).
//   q12 depends on wall-clock time: the test runs it over about 20 s of
//   real time and checks that per bidder the window counts add up to the
//   bidder's bids; a second test shows that windows still open when a
//   bounded input ends are not fired.
//   q10: a run with checkpointing must commit files holding exactly the bid
//   rows, each in the partition of its event time; so must a run whose
//   task fails once after a checkpoint (no duplicate, no loss).
#include <freshet/nexmark_windows.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/committed_files.h"
#include "support/nexmark_oracle.h"
#include "support/temp_dir.h"

namespace freshet::nexmark {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kEvents = 200000;

/// 100 events per second of event time, starting 15 minutes before
/// midnight (UTC).
GeneratorConfig WindowConfig() {
  GeneratorConfig config;
  config.first_event_rate = 100;
  config.base_time = 1'437'003'900'000;  // 2015-07-15 23:45:00 UTC
  return config;
}

class NexmarkWindowQueriesTest : public test_support::NexmarkOracleTest {
 protected:
  static void SetUpTestSuite() {
    NexmarkOracleTest::SetUpTestSuite();
    LoadEvents("", WindowConfig(), kEvents);
  }

  template <class Query, class ToRow>
  static void ExpectQueryRows(Query query, ToRow to_row, const Rows& expected,
                              const GeneratorConfig& config = WindowConfig(), int64_t events = kEvents) {
    NexmarkOracleTest::ExpectQueryRows(query, to_row, expected, config, events);
  }

  /// A single number of a query's result.
  static int64_t SqlNumber(const std::string& query) { return std::stoll(Sql(query).at(0).at(0)); }
};

std::string Text(int64_t v) { return std::to_string(v); }

// ---- q5 -----------------------------------------------------------------------

TEST_F(NexmarkWindowQueriesTest, Q5FindsTheHotItemsOfEveryHoppingWindow) {
  // Every bid lies in the five windows starting at floor(t / 2 s) * 2 s -
  // k * 2 s, k = 0..4; the counts per auction and window, then per window
  // the counts equal to its maximum.
  Rows expected = Sql(
      "WITH w AS (SELECT b.auction, s.start FROM bid b, "
      "  LATERAL (SELECT (b.date_time / 2000) * 2000 - k * 2000 AS start FROM generate_series(0, 4) AS k) s "
      "  WHERE s.start <= b.date_time AND b.date_time < s.start + 10000), "
      "c AS (SELECT auction, start, count(*) AS num FROM w GROUP BY auction, start) "
      "SELECT auction, num, start FROM (SELECT *, max(num) OVER (PARTITION BY start) AS maxn FROM c) m "
      "WHERE num = maxn");
  std::map<std::string, int> rows_per_window;
  for (const Row& row : expected) ++rows_per_window[row[2]];
  ASSERT_GT(rows_per_window.size(), 990u);
  // Some windows have several hottest auctions: ties are all kept.
  int64_t tied = std::count_if(rows_per_window.begin(), rows_per_window.end(), [](const auto& w) {
    return w.second > 1;
  });
  EXPECT_GT(tied, 0);
  ExpectQueryRows(Query5, [](const HotItem& r) -> Row {
    return {Text(r.auction), Text(r.count), Text(r.window_start)};
  }, expected);
}

// ---- q7 -----------------------------------------------------------------------

TEST_F(NexmarkWindowQueriesTest, Q7FindsTheHighestBidsOfEveryTumblingWindow) {
  // The bids of each window [start, start + 10 s) with its highest price
  // (the window's own bids; the reference's BETWEEN end - 10 s AND end
  // would also admit a bid at the previous window's last millisecond).
  Rows expected = Sql(
      "SELECT auction, price, bidder, date_time, extra, window_end FROM ("
      "  SELECT *, (date_time / 10000) * 10000 + 10000 AS window_end, "
      "         max(price) OVER (PARTITION BY date_time / 10000) AS maxprice FROM bid) b "
      "WHERE price = maxprice");
  std::set<std::string> windows;
  for (const Row& row : expected) windows.insert(row[5]);
  ASSERT_GT(windows.size(), 195u);
  ExpectQueryRows(Query7, [](const HighestBid& r) -> Row {
    return {Text(r.auction), Text(r.price), Text(r.bidder), Text(r.date_time), r.extra, Text(r.window_end)};
  }, expected);
}

// ---- q11 ----------------------------------------------------------------------

/// q11's rows by gaps and islands: a bid starts a new session of its
/// bidder unless it comes at most 10 s after the bidder's previous bid
/// (Freshet's session windows [t, t + 10 s) merge when they overlap or
/// touch: TimeWindow::Intersects counts the shared end point). Bids at the
/// same time are peers of the running sum's default RANGE frame, so they
/// fall into the same session whatever order LAG saw them in.
std::string SessionsSql(const std::string& prefix) {
  return "SELECT bidder, count(*), min(date_time), max(date_time) + 10000 FROM ("
         "  SELECT bidder, date_time, sum(new_session) OVER (PARTITION BY bidder ORDER BY date_time) AS session "
         "  FROM (SELECT bidder, date_time, CASE WHEN date_time - LAG(date_time) OVER "
         "        (PARTITION BY bidder ORDER BY date_time) <= 10000 THEN 0 ELSE 1 END AS new_session FROM " +
         prefix + "bid) g) s GROUP BY bidder, session";
}

/// How many bids come exactly `gap` ms after their bidder's previous bid.
std::string GapsSql(const std::string& prefix, int64_t gap) {
  return "SELECT count(*) FROM (SELECT date_time - LAG(date_time) OVER (PARTITION BY bidder ORDER BY date_time) "
         "AS gap FROM " + prefix + "bid) g WHERE gap = " + std::to_string(gap);
}

test_support::NexmarkOracleTest::Row SessionRow(const UserSession& r) {
  return {Text(r.bidder), Text(r.count), Text(r.session_start), Text(r.session_end)};
}

TEST_F(NexmarkWindowQueriesTest, Q11CountsTheBidsOfEveryUserSession) {
  Rows expected = Sql(SessionsSql(""));
  ASSERT_GT(expected.size(), 10000u);
  // The data holds gaps of exactly 10 s (same session) and a bidder's
  // session would split there with a ">= 10 s" rule: the boundary counts.
  EXPECT_GT(SqlNumber(GapsSql("", 10000)), 0);
  ExpectQueryRows(Query11, SessionRow, expected);
}

TEST_F(NexmarkWindowQueriesTest, Q11MergesBidsAtEqualTimes) {
  // 2,000 events per second: events share milliseconds, and bidders bid
  // several times in the same millisecond.
  GeneratorConfig dense = WindowConfig();
  dense.first_event_rate = 2000;
  constexpr int64_t kDenseEvents = 100000;
  LoadEvents("dense_", dense, kDenseEvents);
  EXPECT_GT(SqlNumber(GapsSql("dense_", 0)), 100);
  Rows expected = Sql(SessionsSql("dense_"));
  ASSERT_GT(expected.size(), 1000u);
  ExpectQueryRows(Query11, SessionRow, expected, dense, kDenseEvents);
}

// ---- q12 ----------------------------------------------------------------------

/// What a q12 job's sink received, with the wall-clock time of each row.
struct Q12Output {
  std::mutex mu;
  std::vector<ProcessingTimeBidCount> rows;
  std::vector<Timestamp> arrivals;
  std::atomic<int64_t> counted{0};
};

Timestamp WallClockMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(NexmarkWindowQueriesTest, Q12CountsAddUpToEachBiddersBidsOverProcessingTimeWindows) {
  // 22,000 events at 2,000 per second of wall-clock time: the bids reach
  // the windows over 11 s, so at least two 10 s windows of processing
  // time hold bids. The source is unbounded (after the last event it
  // emits people, which q12 ignores) so that the last window fires when
  // the clock passes its end; the job is cancelled once every bid was
  // counted. Parallelism 1 and 2 run side by side.
  constexpr int64_t kQ12Events = 22000;
  constexpr double kRate = 2000;
  const GeneratorConfig config = WindowConfig();
  LoadEvents("q12_", config, kQ12Events);
  std::map<int64_t, int64_t> expected;
  int64_t total = 0;
  for (const Row& row : Sql("SELECT bidder, count(*) FROM q12_bid GROUP BY bidder")) {
    expected[std::stoll(row[0])] = std::stoll(row[1]);
    total += std::stoll(row[1]);
  }
  ASSERT_GT(total, 20000);

  struct Run {
    int parallelism = 0;
    std::unique_ptr<StreamExecutionEnvironment> env;
    std::shared_ptr<Q12Output> output = std::make_shared<Q12Output>();
    std::unique_ptr<JobClient> client;
  };
  std::vector<Run> runs;
  for (int parallelism : {1, 2}) {
    Run& run = runs.emplace_back();
    run.parallelism = parallelism;
    run.env = StreamExecutionEnvironment::Create();
    run.env->SetParallelism(parallelism);
    Generator gen(config);
    DataStream<Event> events =
        run.env->FromGenerator([gen](int64_t n) {
                   if (n < kQ12Events) return gen.At(n);
                   Event filler;
                   filler.type = Event::kPerson;
                   filler.person.date_time = gen.TimestampOf(n);
                   return filler;
                 }, -1, kRate)
            .Name("nexmark")
            .AssignTimestampsAndWatermarks(
                WatermarkStrategy<Event>::ForBoundedOutOfOrderness(Duration(4000))
                    .WithTimestampAssigner([](const Event& e) { return e.EventTime(); }));
    std::shared_ptr<Q12Output> output = run.output;
    Query12(events).SinkTo([output](const ProcessingTimeBidCount& r) {
      std::lock_guard lock(output->mu);
      output->rows.push_back(r);
      output->arrivals.push_back(WallClockMillis());
      output->counted.fetch_add(r.count);
    });
    Result<std::unique_ptr<JobClient>> client = run.env->ExecuteAsync("q12 p" + std::to_string(parallelism));
    ASSERT_TRUE(client.IsOk()) << client.GetStatus().ToString();
    run.client = std::move(*client);
  }

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  auto all_counted = [&] {
    for (const Run& run : runs) {
      if (run.output->counted.load() < total) return false;
    }
    return true;
  };
  while (!all_counted() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A little longer, for rows that should not come.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (Run& run : runs) run.client->Cancel();
  for (Run& run : runs) {
    Result<JobExecutionResult> ended = run.client->Wait();
    EXPECT_FALSE(ended.IsOk());
    EXPECT_EQ(run.client->GetJobStatus(), JobStatus::kCanceled);
  }

  for (Run& run : runs) {
    SCOPED_TRACE("parallelism " + std::to_string(run.parallelism));
    std::lock_guard lock(run.output->mu);
    EXPECT_EQ(run.output->counted.load(), total);
    std::map<int64_t, int64_t> counted;
    std::set<Timestamp> windows;
    std::set<std::pair<int64_t, Timestamp>> bidder_windows;
    for (size_t i = 0; i < run.output->rows.size(); ++i) {
      const ProcessingTimeBidCount& r = run.output->rows[i];
      counted[r.bidder] += r.count;
      windows.insert(r.window_start);
      // One row per bidder and window: the window fires once processing
      // time has passed its last millisecond, so no bid can reopen it.
      EXPECT_TRUE(bidder_windows.emplace(r.bidder, r.window_start).second)
          << "bidder " << r.bidder << ", window " << r.window_start << " fired twice";
      EXPECT_EQ(r.window_end - r.window_start, 10000);
      EXPECT_EQ(r.window_start % 10000, 0);
      EXPECT_GT(r.count, 0);
      // Fired by processing time passing the window's last millisecond.
      EXPECT_GE(run.output->arrivals[i], r.window_end);
    }
    EXPECT_GE(windows.size(), 2u);
    EXPECT_EQ(counted, expected);
  }
}

/// Processing time stands still at `now`; intervals are measured as usual.
class FrozenClock final : public Clock {
 public:
  explicit FrozenClock(Timestamp now) : now_(now) {}
  Timestamp NowMillis() const override { return now_; }
  int64_t MonotonicNanos() const override { return Clock::System().MonotonicNanos(); }

 private:
  Timestamp now_;
};

TEST_F(NexmarkWindowQueriesTest, Q12DoesNotFireWindowsStillOpenWhenTheInputEnds) {
  // Processing time is 5 s into a window for the whole bounded run: every
  // bid falls into that window, and it is still open when the input ends.
  // Freshet finishes the operators at the end of input without running
  // pending processing-time timers, so the window never fires.
  FrozenClock clock(1'700'000'005'000);
  for (int parallelism : {1, 2}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(parallelism);
    env->SetClock(&clock);
    JobExecutionResult result;
    std::vector<ProcessingTimeBidCount> rows =
        Query12(Events(*env, WindowConfig(), 20000)).ExecuteAndCollect("q12 at the end of input", &result);
    EXPECT_EQ(result.records_in, 20000);
    EXPECT_TRUE(rows.empty()) << rows.size() << " rows";
  }
}

// ---- q10 ----------------------------------------------------------------------

/// The first `events` events of `config` from a source emitting at most
/// `rate` events per second of wall-clock time, with the watermarks of
/// NexmarkOracleTest::Events.
DataStream<Event> RateLimitedEvents(StreamExecutionEnvironment& env, const GeneratorConfig& config, int64_t events,
                                    double rate) {
  Generator gen(config);
  return env.FromGenerator([gen](int64_t n) { return gen.At(n); }, events, rate)
      .Name("nexmark")
      .Uid("nexmark")
      .AssignTimestampsAndWatermarks(
          WatermarkStrategy<Event>::ForBoundedOutOfOrderness(Duration(4000))
              .WithTimestampAssigner([](const Event& e) { return e.EventTime(); }));
}

/// Fails subtask 0 of the first attempt once, at a row after the `after`-th
/// it saw, once a checkpoint of the attempt completed (so the restart
/// resumes from it and the files it committed stay).
class FailOnceAfterCheckpoint final : public RichMapFunction<PartitionedBid, PartitionedBid>,
                                      public CheckpointListener {
 public:
  FailOnceAfterCheckpoint(int64_t after, std::shared_ptr<std::atomic<int>> failures)
      : after_(after), failures_(std::move(failures)) {}
  void Open() override {
    RuntimeContext& rc = GetRuntimeContext();
    armed_ = rc.GetAttemptNumber() == 0 && rc.GetIndexOfThisSubtask() == 0;
  }
  void NotifyCheckpointComplete(CheckpointId) override { checkpointed_ = true; }
  PartitionedBid Map(const PartitionedBid& row) override {
    if (armed_ && ++seen_ > after_ && checkpointed_) {
      armed_ = false;
      failures_->fetch_add(1);
      throw std::runtime_error("injected failure");
    }
    return row;
  }

 private:
  int64_t after_;
  std::shared_ptr<std::atomic<int>> failures_;
  bool armed_ = false;
  bool checkpointed_ = false;
  int64_t seen_ = 0;
};

/// What the committed part files hold: (partition directory, line) rows.
struct CommittedFiles {
  test_support::NexmarkOracleTest::Rows rows;
  std::vector<std::string> files;   // visible part files, relative to the base path
  std::vector<std::string> hidden;  // in-progress leftovers
  std::set<std::string> days;
  std::set<std::string> partitions;
  std::vector<std::string> problems;
};

/// Reads the visible files under `root` (no path component starting with
/// '.' or '_'), as a reader of the committed output does.
CommittedFiles ReadCommitted(const std::string& root) {
  CommittedFiles out;
  test_support::CommittedFiles committed = test_support::ReadCommittedFiles(root);
  out.hidden = std::move(committed.hidden);
  for (const test_support::CommittedFile& file : committed.visible) {
    fs::path rel(file.path);
    out.files.push_back(file.path);
    const std::string partition = rel.parent_path().string();
    out.partitions.insert(partition);
    out.days.insert(rel.begin()->string());
    if (!file.text.empty() && file.text.back() != '\n') out.problems.push_back(file.path + " ends inside a line");
    std::istringstream lines(file.text);
    for (std::string line; std::getline(lines, line);) out.rows.push_back({partition, line});
  }
  return out;
}

/// q10's source rate, events per second of wall-clock time: about 2 s per
/// run, 20 checkpoint intervals.
constexpr double kQ10Rate = 100000;

/// The bid rows as q10 must write them, with their partitions.
test_support::NexmarkOracleTest::Rows ExpectedQ10Lines() {
  return test_support::NexmarkOracleTest::Sql(
      "SELECT 'dt=' || to_char(to_timestamp(date_time / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD') || "
      "'/hm=' || to_char(to_timestamp(date_time / 1000) AT TIME ZONE 'UTC', 'HH24:MI'), "
      "auction || ',' || bidder || ',' || price || ',' || date_time || ',' || extra FROM bid");
}

/// Runs q10 with a checkpoint every 100 ms into `dir`/out; with
/// `failures`, a map before the sink fails once after a checkpoint.
Result<JobExecutionResult> RunQuery10(const test_support::TempDir& dir, int parallelism,
                                     std::shared_ptr<std::atomic<int>> failures = nullptr) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(parallelism);
  env->EnableCheckpointing(Duration(100), CheckpointingMode::kExactlyOnce);
  env->GetCheckpointConfig().directory = dir.Sub("checkpoints");
  RestartStrategyOptions restart;
  restart.kind = RestartStrategyOptions::Kind::kFixedDelay;
  restart.fixed_delay_attempts = 3;
  restart.fixed_delay_ms = 20;
  env->SetRestartStrategy(restart);
  DataStream<PartitionedBid> rows = Query10(RateLimitedEvents(*env, WindowConfig(), kEvents, kQ10Rate)).Uid("q10");
  if (failures) rows = rows.Map(FailOnceAfterCheckpoint(20000, failures)).Name("fail once").Uid("fail once");
  SinkQuery10(rows, dir.Sub("out")).Uid("q10 files");
  return env->Execute("q10");
}

/// The committed files hold exactly `expected`, in the right partitions
/// (both days), and nothing else is visible.
void ExpectCommitted(const std::string& root, const test_support::NexmarkOracleTest::Rows& expected) {
  CommittedFiles committed = ReadCommitted(root);
  EXPECT_TRUE(committed.problems.empty()) << ::testing::PrintToString(committed.problems);
  EXPECT_EQ(committed.days, (std::set<std::string>{"dt=2015-07-15", "dt=2015-07-16"}));
  EXPECT_GT(committed.partitions.size(), 30u);
  EXPECT_GE(committed.files.size(), committed.partitions.size());
  for (const std::string& f : committed.hidden) EXPECT_NE(f.find(".inprogress."), std::string::npos) << f;
  // Each line with the partition PostgreSQL computes from its date_time:
  // equal multisets mean every bid was written once, in its partition.
  test_support::NexmarkOracleTest::ExpectSameRows(std::move(committed.rows), expected);
}

TEST_F(NexmarkWindowQueriesTest, Q10WritesEveryBidIntoThePartitionOfItsEventTime) {
  Rows expected = ExpectedQ10Lines();
  ASSERT_GT(expected.size(), 180000u);
  for (int parallelism : {1, 2}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    test_support::TempDir dir("freshet-q10");
    Result<JobExecutionResult> r = RunQuery10(dir, parallelism);
    ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    // Files roll at every checkpoint and are committed when it completes.
    EXPECT_GE(r->checkpoints_completed, 3);
    EXPECT_EQ(r->restarts, 0);
    ExpectCommitted(dir.Sub("out"), expected);
  }
}

TEST_F(NexmarkWindowQueriesTest, Q10WritesEveryBidExactlyOnceAcrossAFailure) {
  Rows expected = ExpectedQ10Lines();
  test_support::TempDir dir("freshet-q10");
  auto failures = std::make_shared<std::atomic<int>>(0);
  Result<JobExecutionResult> r = RunQuery10(dir, 2, failures);
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(failures->load(), 1);
  EXPECT_EQ(r->restarts, 1);
  bool from_checkpoint = false;
  for (const std::string& e : r->recovery_events) from_checkpoint |= e.find("from checkpoint") != std::string::npos;
  EXPECT_TRUE(from_checkpoint) << ::testing::PrintToString(r->recovery_events);
  ExpectCommitted(dir.Sub("out"), expected);
}

}  // namespace
}  // namespace freshet::nexmark
