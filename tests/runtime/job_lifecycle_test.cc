// The life of whole jobs on the embedded mini-cluster: failures of user
// functions, cancellation (also under back-pressure), bounded memory and
// throttling of a fast source in front of a slow sink, and clean-up when a
// job client goes away.

#include <freshet/freshet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace freshet {
namespace {

using SteadyClock = std::chrono::steady_clock;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
template <class F>
bool PollUntil(F done, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  auto deadline = SteadyClock::now() + timeout;
  while (!done()) {
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

/// Resident memory of this process in bytes.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

std::unique_ptr<JobClient> Submit(StreamExecutionEnvironment& env, const std::string& name) {
  auto client = env.ExecuteAsync(name);
  if (!client.IsOk()) {
    ADD_FAILURE() << client.GetStatus().ToString();
    return nullptr;
  }
  return std::move(client).Value();
}

/// Waits up to `seconds` for the job's outcome; a hang fails the test and
/// cancels the job so the test can end.
Result<JobExecutionResult> WaitBounded(JobClient& client, double seconds) {
  auto r = client.WaitFor(Duration(static_cast<int64_t>(seconds * 1000)));
  if (!r.has_value()) {
    ADD_FAILURE() << "the job did not end within " << seconds << " s";
    client.Cancel();
    return client.Wait();
  }
  return std::move(*r);
}

// ---- failures of user functions -----------------------------------------------

TEST(JobFailureTest, ThrowingMapFailsTheJobNamingOperatorSubtaskAndMessage) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(0, 9999)
      .Map([](int64_t x) -> int64_t {
        if (x == 7000) throw std::runtime_error("boom");  // in the second subtask's range
        return x;
      })
      .Name("Exploder")
      .SinkTo([](const int64_t&) {});
  auto start = SteadyClock::now();
  std::unique_ptr<JobClient> client = Submit(*env, "failing job");
  ASSERT_NE(client, nullptr);
  Result<JobExecutionResult> result = WaitBounded(*client, 10);
  EXPECT_LT(SecondsSince(start), 5.0);
  ASSERT_FALSE(result.IsOk());
  const Status& status = result.GetStatus();
  EXPECT_EQ(status.Code(), StatusCode::kUserFunctionError) << status.ToString();
  EXPECT_THAT(status.Message(), HasSubstr("Exploder"));
  EXPECT_THAT(status.Message(), HasSubstr("2/2)"));
  EXPECT_THAT(status.Message(), HasSubstr("boom"));
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kFailed);
}

TEST(JobFailureTest, ExecuteReturnsTheFailureOfEverySubtaskThrowing) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(0, 999)
      .Map([](int64_t x) -> int64_t {
        if (x >= 0) throw std::runtime_error("boom");
        return x;
      })
      .Name("Exploder")
      .SinkTo([](const int64_t&) {});
  auto start = SteadyClock::now();
  Result<JobExecutionResult> result = env->Execute();
  EXPECT_LT(SecondsSince(start), 5.0);
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kUserFunctionError);
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("Exploder"));
  EXPECT_THAT(result.GetStatus().Message(), ContainsRegex("[12]/2\\)"));
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("boom"));
}

TEST(JobFailureTest, ThrowingOperatorBehindANetworkBoundaryWithAnUnboundedSource) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromGenerator([](int64_t i) { return i; }, -1)
      .Rebalance()
      .Map([](int64_t x) -> int64_t {
        if (x == 200000) throw std::runtime_error("boom");
        return x;
      })
      .Name("Exploder")
      .SinkTo([](const int64_t&) {});
  auto start = SteadyClock::now();
  std::unique_ptr<JobClient> client = Submit(*env, "unbounded failing job");
  ASSERT_NE(client, nullptr);
  Result<JobExecutionResult> result = WaitBounded(*client, 10);
  EXPECT_LT(SecondsSince(start), 5.0);
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kUserFunctionError) << result.GetStatus().ToString();
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("Exploder"));
  EXPECT_THAT(result.GetStatus().Message(), ContainsRegex("[12]/2\\)"));
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("boom"));
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kFailed);
}

TEST(JobFailureTest, ThrowingSinkBehindABackPressuredUnboundedSource) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto seen = std::make_shared<std::atomic<int64_t>>(0);
  env->FromGenerator([](int64_t i) { return std::to_string(i); }, -1)
      .Rebalance()
      .SinkTo([seen](const std::string&) {
        if (seen->fetch_add(1) + 1 == 20000) throw std::runtime_error("boom in sink");
        if (seen->load() % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      })
      .Name("Exploding Sink");
  auto start = SteadyClock::now();
  std::unique_ptr<JobClient> client = Submit(*env, "failing sink");
  ASSERT_NE(client, nullptr);
  Result<JobExecutionResult> result = WaitBounded(*client, 10);
  EXPECT_LT(SecondsSince(start), 5.0);
  ASSERT_FALSE(result.IsOk());
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("Exploding Sink"));
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("boom in sink"));
}

TEST(JobFailureTest, ThrowingGeneratorNamesTheSource) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromGenerator(
         [](int64_t i) -> int64_t {
           if (i == 123) throw std::runtime_error("boom at 123");
           return i;
         },
         1000)
      .SinkTo([](const int64_t&) {});
  Result<JobExecutionResult> result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kUserFunctionError);
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("Generator Source"));
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("1/2)"));  // index 123 is in the first half
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("boom at 123"));
}

class FailingOpen : public RichMapFunction<int64_t, int64_t> {
 public:
  void Open() override {
    if (GetRuntimeContext().GetIndexOfThisSubtask() == 1) throw std::runtime_error("cannot open resource");
  }
  int64_t Map(const int64_t& x) override { return x; }
};

TEST(JobFailureTest, ThrowingOpenFailsTheJob) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(0, 99).Map(FailingOpen()).Name("Opener").SinkTo([](const int64_t&) {});
  Result<JobExecutionResult> result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("Opener"));
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("2/2)"));
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("cannot open resource"));
}

TEST(JobFailureTest, NonStandardExceptionIsReported) {
  auto env = StreamExecutionEnvironment::Create();
  env->FromSequence(0, 9)
      .Filter([](int64_t x) -> bool {
        if (x == 5) throw 42;
        return true;
      })
      .Name("Odd Thrower")
      .SinkTo([](const int64_t&) {});
  Result<JobExecutionResult> result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kUserFunctionError);
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("Odd Thrower"));
}

TEST(JobFailureTest, ExecuteAndCollectThrowsJobFailedError) {
  auto env = StreamExecutionEnvironment::Create();
  auto stream = env->FromSequence(0, 9).Map([](int64_t x) -> int64_t {
    if (x == 3) throw std::runtime_error("boom");
    return x;
  });
  stream.Name("Exploder");
  try {
    stream.ExecuteAndCollect();
    ADD_FAILURE() << "the job should fail";
  } catch (const JobFailedError& e) {
    EXPECT_EQ(e.GetStatus().Code(), StatusCode::kUserFunctionError);
    EXPECT_THAT(e.what(), HasSubstr("Exploder"));
    EXPECT_THAT(e.what(), HasSubstr("boom"));
  }
}

TEST(JobFailureTest, JobWithoutASinkIsRejected) {
  auto env = StreamExecutionEnvironment::Create();
  env->FromSequence(1, 10).Map([](int64_t x) { return x + 1; });
  Result<JobExecutionResult> result = env->Execute();
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(result.GetStatus().Message(), HasSubstr("no sink"));

  auto empty = StreamExecutionEnvironment::Create();
  Result<JobExecutionResult> nothing = empty->Execute();
  ASSERT_FALSE(nothing.IsOk());
  EXPECT_THAT(nothing.GetStatus().Message(), HasSubstr("no sink"));
}

// ---- cancellation --------------------------------------------------------------

TEST(JobCancelTest, CancelStopsAnUnboundedJob) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  env->FromGenerator([](int64_t i) { return i; }, -1).SinkTo([count](const int64_t&) { count->fetch_add(1); });
  std::unique_ptr<JobClient> client = Submit(*env, "unbounded");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(PollUntil([&] { return count->load() > 10000; })) << "records flow";
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kRunning);
  auto start = SteadyClock::now();
  client->Cancel();
  JobStatus after_cancel = client->GetJobStatus();
  EXPECT_TRUE(after_cancel == JobStatus::kCanceling || after_cancel == JobStatus::kCanceled)
      << JobStatusName(after_cancel);
  Result<JobExecutionResult> result = WaitBounded(*client, 5);
  EXPECT_LT(SecondsSince(start), 2.0);
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kCancelled) << result.GetStatus().ToString();
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kCanceled);
  // Nothing runs any more.
  int64_t final_count = count->load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(count->load(), final_count);
}

TEST(JobCancelTest, CancelRightAfterSubmission) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromGenerator([](int64_t i) { return i; }, -1).Rebalance().SinkTo([](const int64_t&) {});
  std::unique_ptr<JobClient> client = Submit(*env, "cancelled at once");
  ASSERT_NE(client, nullptr);
  client->Cancel();
  client->Cancel();  // repeated requests are harmless
  Result<JobExecutionResult> result = WaitBounded(*client, 5);
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kCancelled) << result.GetStatus().ToString();
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kCanceled);
}

TEST(JobCancelTest, CancelABackPressuredPipeline) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  auto consumed = std::make_shared<std::atomic<int64_t>>(0);
  env->FromGenerator([](int64_t i) { return i; }, -1)
      .Rebalance()
      .Map([](int64_t x) { return x * 2; })
      .Rebalance()
      .SinkTo([consumed](const int64_t&) {
        // A slow sink: about 50,000 records per second per subtask.
        if (consumed->fetch_add(1) % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      });
  std::unique_ptr<JobClient> client = Submit(*env, "back-pressured");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(PollUntil([&] { return consumed->load() > 5000; }));
  auto start = SteadyClock::now();
  client->Cancel();
  Result<JobExecutionResult> result = WaitBounded(*client, 5);
  EXPECT_LT(SecondsSince(start), 2.0);
  ASSERT_FALSE(result.IsOk());
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kCancelled) << result.GetStatus().ToString();
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kCanceled);
}

TEST(JobCancelTest, CancelAJobWaitingForRateLimitedInput) {
  auto env = StreamExecutionEnvironment::Create();
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  env->FromGenerator([](int64_t i) { return i; }, -1, 2.0).SinkTo([count](const int64_t&) { count->fetch_add(1); });
  std::unique_ptr<JobClient> client = Submit(*env, "slow source");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(PollUntil([&] { return count->load() >= 1; }));
  auto start = SteadyClock::now();
  client->Cancel();
  Result<JobExecutionResult> result = WaitBounded(*client, 5);
  EXPECT_LT(SecondsSince(start), 2.0);
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kCancelled);
}

// ---- back-pressure ---------------------------------------------------------------

TEST(BackPressureTest, FastSourceIsThrottledBySlowSinkWithBoundedMemory) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  auto generated = std::make_shared<std::atomic<int64_t>>(0);
  auto consumed = std::make_shared<std::atomic<int64_t>>(0);
  env->FromGenerator(
         [generated](int64_t i) {
           generated->fetch_add(1, std::memory_order_relaxed);
           return i;
         },
         -1)
      .Rebalance()  // a network hop between the source and the sink
      .SinkTo([consumed](const int64_t&) {
        if (consumed->fetch_add(1, std::memory_order_relaxed) % 1000 == 999) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      });
  std::unique_ptr<JobClient> client = Submit(*env, "back-pressure");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(PollUntil([&] { return consumed->load() > 50000; })) << "records flow";

  const int64_t rss_start = ResidentBytes();
  const int64_t generated_start = generated->load();
  const int64_t consumed_start = consumed->load();
  int64_t rss_max = rss_start;
  int64_t max_gap = 0;
  auto start = SteadyClock::now();
  while (SecondsSince(start) < 1.5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    rss_max = std::max(rss_max, ResidentBytes());
    // Read the consumer first: the gap can then only be overestimated.
    int64_t c = consumed->load();
    int64_t g = generated->load();
    max_gap = std::max(max_gap, g - c);
  }
  const int64_t generated_delta = generated->load() - generated_start;
  const int64_t consumed_delta = consumed->load() - consumed_start;
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kRunning);

  // The records in flight are what the bounded network buffers hold
  // (a few hundred KiB of 20-byte records), not an ever growing queue.
  EXPECT_LT(max_gap, 100000) << "generated " << generated->load() << ", consumed " << consumed->load();
  EXPECT_GT(consumed_delta, 1000) << "the sink makes progress";
  EXPECT_LT(generated_delta, consumed_delta + 100000) << "the source runs at the sink's pace";
  EXPECT_LT(rss_max - rss_start, int64_t{50} * 1024 * 1024) << "resident memory stays bounded";

  client->Cancel();
  Result<JobExecutionResult> result = WaitBounded(*client, 5);
  EXPECT_EQ(result.GetStatus().Code(), StatusCode::kCancelled);
}

// ---- job clients ------------------------------------------------------------------

struct LifecycleLog {
  std::mutex mu;
  std::multiset<int> opened;
  std::multiset<int> closed;
  std::atomic<int64_t> records{0};
};

class LoggingSink : public RichFunction {
 public:
  explicit LoggingSink(std::shared_ptr<LifecycleLog> log) : log_(std::move(log)) {}
  void Open() override {
    std::lock_guard lock(log_->mu);
    log_->opened.insert(GetRuntimeContext().GetIndexOfThisSubtask());
  }
  void Close() override {
    std::lock_guard lock(log_->mu);
    log_->closed.insert(GetRuntimeContext().GetIndexOfThisSubtask());
  }
  void operator()(const int64_t&) { log_->records.fetch_add(1); }

 private:
  std::shared_ptr<LifecycleLog> log_;
};

TEST(JobClientTest, DestroyingTheClientCancelsARunningJobCleanly) {
  auto log = std::make_shared<LifecycleLog>();
  auto generator_state = std::make_shared<int>(0);
  {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(2);
    env->FromGenerator([generator_state](int64_t i) { return i + *generator_state; }, -1)
        .Rebalance()
        .SinkTo(LoggingSink(log));
    std::unique_ptr<JobClient> client = Submit(*env, "dropped client");
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(PollUntil([&] { return log->records.load() > 10000; }));
    auto start = SteadyClock::now();
    client.reset();
    EXPECT_LT(SecondsSince(start), 2.0) << "destruction cancels and joins the job";
  }
  // Every subtask was opened and closed once, and the job's objects are gone.
  EXPECT_EQ(log->opened, (std::multiset<int>{0, 1}));
  EXPECT_EQ(log->closed, (std::multiset<int>{0, 1}));
  EXPECT_EQ(generator_state.use_count(), 1);
  int64_t final_count = log->records.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(log->records.load(), final_count);
}

TEST(JobClientTest, DestroyingTheClientOfAFinishedJob) {
  auto log = std::make_shared<LifecycleLog>();
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 1000).SinkTo(LoggingSink(log));
  std::unique_ptr<JobClient> client = Submit(*env, "finished");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(PollUntil([&] { return client->GetJobStatus() == JobStatus::kFinished; }));
  client.reset();
  EXPECT_EQ(log->records.load(), 1000);
  EXPECT_EQ(log->closed, (std::multiset<int>{0, 1}));
}

TEST(JobClientTest, WaitForTimesOutWhileRunningThenReportsTheOutcome) {
  auto env = StreamExecutionEnvironment::Create();
  env->FromGenerator([](int64_t i) { return i; }, -1).SinkTo([](const int64_t&) {});
  std::unique_ptr<JobClient> client = Submit(*env, "waiting");
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->WaitFor(Duration(30)).has_value());
  EXPECT_EQ(client->GetJobStatus(), JobStatus::kRunning);
  client->Cancel();
  auto result = client->WaitFor(Duration(5000));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->GetStatus().Code(), StatusCode::kCancelled);
  // Asking again gives the same outcome.
  auto again = client->Wait();
  EXPECT_EQ(again.GetStatus().Code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace freshet
