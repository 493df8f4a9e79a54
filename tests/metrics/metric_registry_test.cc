// The metric registry: Flink's scopes and variables, removal of closed
// groups, registration errors, the REST queries and their aggregates, the
// meter updater, and the job and task manager groups.

#include "metrics/metric_registry.h"

#include <freshet/freshet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace freshet::internal {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

/// A registry on a clock the test moves, without an updater thread.
class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() : registry_(Options()) {}
  MetricRegistryOptions Options() {
    MetricRegistryOptions o;
    o.host = "test-host";
    o.update_interval = milliseconds(0);
    o.clock = [this] { return nanoseconds(now_ns_.load()); };
    return o;
  }
  void Advance(milliseconds d) { now_ns_ += nanoseconds(d).count(); }
  static TaskScope Task(int vertex, int subtask, int attempt = 0) {
    return TaskScope{"", "tm-1", "job-a", "Job A", vertex, "Source -> Map", subtask, attempt};
  }

  std::atomic<int64_t> now_ns_{1'000'000'000};
  MetricRegistry registry_;
};

std::optional<double> ValueOf(const std::vector<MetricReading>& readings, const std::string& name) {
  for (const MetricReading& r : readings) {
    if (r.name == name) return r.value;
  }
  return std::nullopt;
}

TEST_F(RegistryTest, TaskAndOperatorScopesHaveFlinksComponentsAndVariables) {
  std::unique_ptr<TaskMetricGroup> task = registry_.CreateTaskGroup(Task(3, 1, 2));
  EXPECT_THAT(task->GetScopeComponents(),
              ElementsAre("test-host", "taskmanager", "tm-1", "Job A", "Source -> Map", "1"));
  EXPECT_THAT(task->GetAllVariables(),
              UnorderedElementsAre(Pair("<host>", "test-host"), Pair("<tm_id>", "tm-1"), Pair("<job_id>", "job-a"),
                                   Pair("<job_name>", "Job A"), Pair("<task_id>", "3"),
                                   Pair("<task_name>", "Source -> Map"), Pair("<subtask_index>", "1"),
                                   Pair("<task_attempt_num>", "2")));
  MetricGroup& op = task->AddOperator(7, "Map");
  EXPECT_EQ(&op, &task->AddOperator(7, "Map"));
  EXPECT_THAT(op.GetScopeComponents(), ElementsAre("test-host", "taskmanager", "tm-1", "Job A", "Map", "1"));
  std::map<std::string, std::string> vars = op.GetAllVariables();
  EXPECT_EQ(vars.at("<operator_id>"), "7");
  EXPECT_EQ(vars.at("<operator_name>"), "Map");
  EXPECT_EQ(vars.at("<task_name>"), "Source -> Map");
  EXPECT_EQ(op.GetMetricIdentifier("hits"), "test-host.taskmanager.tm-1.Job A.Map.1.hits");

  MetricGroup& cache = op.AddGroup("cache");
  EXPECT_EQ(&cache, &op.AddGroup("cache"));
  cache.Counter("hits").Inc(5);
  MetricGroup& shard = op.AddGroup("shard", "3");
  EXPECT_EQ(shard.GetAllVariables().at("<shard>"), "3");
  EXPECT_EQ(shard.GetMetricIdentifier("size"), "test-host.taskmanager.tm-1.Job A.Map.1.shard.3.size");
  shard.Gauge("size", [] { return 12.0; });

  // REST names are relative to the task.
  Result<std::vector<MetricReading>> subtask = registry_.ReadSubtask("job-a", 3, 1);
  ASSERT_TRUE(subtask.IsOk()) << subtask.GetStatus().ToString();
  EXPECT_EQ(ValueOf(*subtask, "Map.cache.hits"), 5);
  EXPECT_EQ(ValueOf(*subtask, "Map.shard.3.size"), 12);
  EXPECT_EQ(ValueOf(*subtask, "numRecordsIn"), 0);

  // Reporters get the logical scope and the variables.
  bool found_hits = false;
  bool found_size = false;
  for (const ScopedMetricReading& r : registry_.ReadAll()) {
    if (r.metric.name == "hits") {
      found_hits = true;
      EXPECT_EQ(r.logical_scope, "taskmanager.job.task.operator.cache");
      EXPECT_THAT(r.variables, ::testing::Contains(Pair("operator_name", "Map")));
      EXPECT_THAT(r.variables, ::testing::Contains(Pair("job_id", "job-a")));
    }
    if (r.metric.name == "size") {
      found_size = true;
      EXPECT_EQ(r.logical_scope, "taskmanager.job.task.operator.shard");
      EXPECT_THAT(r.variables, ::testing::Contains(Pair("shard", "3")));
    }
    if (r.metric.name == "numRecordsIn") {
      EXPECT_EQ(r.logical_scope, "taskmanager.job.task");
    }
  }
  EXPECT_TRUE(found_hits);
  EXPECT_TRUE(found_size);
}

TEST_F(RegistryTest, JobManagerAndTaskManagerScopes) {
  std::unique_ptr<MetricGroupImpl> jm = registry_.CreateJobManagerGroup();
  EXPECT_THAT(jm->GetScopeComponents(), ElementsAre("test-host", "jobmanager"));
  std::unique_ptr<JobMetricGroup> job = registry_.CreateJobGroup("job-a", "Job A");
  EXPECT_THAT(job->GetScopeComponents(), ElementsAre("test-host", "jobmanager", "Job A"));
  EXPECT_THAT(job->GetAllVariables(), UnorderedElementsAre(Pair("<host>", "test-host"), Pair("<job_id>", "job-a"),
                                                           Pair("<job_name>", "Job A")));
  std::unique_ptr<TaskManagerMetricGroup> tm = registry_.CreateTaskManagerGroup("tm-1", 4, [] { return 3; });
  EXPECT_EQ(tm->GetMetricIdentifier("taskSlotsTotal"), "test-host.taskmanager.tm-1.taskSlotsTotal");

  std::vector<MetricReading> jm_metrics = registry_.ReadJobManager();
  EXPECT_GT(ValueOf(jm_metrics, "Status.Process.CpuTime").value_or(0), 0);
  Result<std::vector<MetricReading>> tm_metrics = registry_.ReadTaskManager("tm-1");
  ASSERT_TRUE(tm_metrics.IsOk());
  EXPECT_EQ(ValueOf(*tm_metrics, "taskSlotsTotal"), 4);
  EXPECT_EQ(ValueOf(*tm_metrics, "taskSlotsAvailable"), 3);
  EXPECT_GT(ValueOf(*tm_metrics, "Status.Process.ResidentMemory").value_or(0), 1 << 20);
  EXPECT_GT(ValueOf(*tm_metrics, "Status.Process.CpuTime").value_or(0), 0);
  EXPECT_THAT(registry_.TaskManagerIds(), ElementsAre("tm-1"));
  for (const ScopedMetricReading& r : registry_.ReadAll()) {
    if (r.metric.name == "taskSlotsTotal") {
      EXPECT_EQ(r.logical_scope, "taskmanager");
    }
    if (r.metric.name == "CpuTime") {
      EXPECT_THAT(r.logical_scope, ::testing::EndsWith(".Status.Process"));
    }
    if (r.metric.name == "numRestarts") {
      EXPECT_EQ(r.logical_scope, "jobmanager.job");
    }
  }
}

TEST_F(RegistryTest, ClosingOrDestroyingAGroupRemovesItsMetrics) {
  auto task = registry_.CreateTaskGroup(Task(0, 0));
  Counter& user = task->AddOperator(1, "Map").Counter("mine");
  ASSERT_TRUE(registry_.ReadSubtask("job-a", 0, 0).IsOk());
  task->Close();
  Result<std::vector<MetricReading>> gone = registry_.ReadSubtask("job-a", 0, 0);
  ASSERT_FALSE(gone.IsOk());
  EXPECT_EQ(gone.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_THAT(gone.GetStatus().Message(), HasSubstr("subtask 0 of vertex 0 of job job-a"));
  for (const ScopedMetricReading& r : registry_.ReadAll()) EXPECT_NE(r.metric.name, "mine");
  // A closed group's metrics still work for whoever holds them.
  user.Inc();
  EXPECT_EQ(user.GetCount(), 1);
  task->Close();  // idempotent

  auto other = registry_.CreateTaskGroup(Task(0, 1));
  ASSERT_TRUE(registry_.ReadSubtask("job-a", 0, 1).IsOk());
  other.reset();
  EXPECT_FALSE(registry_.ReadSubtask("job-a", 0, 1).IsOk());
  EXPECT_TRUE(registry_.ReadAll().empty());
}

TEST_F(RegistryTest, RegistrationErrorsNameTheMetric) {
  auto task = registry_.CreateTaskGroup(Task(0, 0));
  MetricGroup& op = task->AddOperator(1, "Map");
  Counter& first = op.Counter("events");
  EXPECT_EQ(&first, &op.Counter("events"));
  try {
    op.Gauge("events", [] { return 1.0; });
    FAIL() << "a gauge with a counter's name must be rejected";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("'test-host.taskmanager.tm-1.Job A.Map.0.events'"));
    EXPECT_THAT(e.what(), HasSubstr("already registered as a counter"));
  }
  op.Gauge("level");
  EXPECT_THROW(op.Gauge("level"), std::invalid_argument);
  EXPECT_THROW(op.Histogram("events"), std::invalid_argument);
  EXPECT_THROW(op.Histogram("latency", 0), std::invalid_argument);
  try {
    op.Counter("");
    FAIL() << "an empty name must be rejected";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("must not be empty"));
  }
  EXPECT_THROW(op.AddGroup(""), std::invalid_argument);
  // The task's built-in names are taken.
  EXPECT_THROW(task->Gauge("numRecordsIn", [] { return 0.0; }), std::invalid_argument);
}

TEST_F(RegistryTest, VertexQueriesAndAggregatesOverSubtasks) {
  std::vector<std::unique_ptr<TaskMetricGroup>> tasks;
  const int64_t records[] = {10, 20, 60};
  for (int s = 0; s < 3; ++s) {
    tasks.push_back(registry_.CreateTaskGroup(Task(2, s)));
    tasks.back()->Io().Publish(records[s], 2 * records[s]);
  }
  // A later attempt of subtask 1 replaces the earlier one in queries.
  auto retry = registry_.CreateTaskGroup(Task(2, 1, 1));
  retry->Io().Publish(25, 50);
  // Another vertex and another job do not mix in.
  auto other_vertex = registry_.CreateTaskGroup(Task(5, 0));
  other_vertex->Io().Publish(1000, 0);

  Result<std::vector<AggregatedMetric>> agg = registry_.AggregateSubtasks("job-a", 2, {"numRecordsIn", "nope"});
  ASSERT_TRUE(agg.IsOk()) << agg.GetStatus().ToString();
  ASSERT_EQ(agg->size(), 1U);
  const AggregatedMetric& in = agg->front();
  EXPECT_EQ(in.name, "numRecordsIn");
  EXPECT_EQ(in.subtasks, 3);
  EXPECT_EQ(in.min, 10);
  EXPECT_EQ(in.max, 60);
  EXPECT_EQ(in.sum, 95);
  EXPECT_DOUBLE_EQ(in.avg, 95.0 / 3);
  EXPECT_EQ(AggregatedValue(in, Aggregation::kSum), 95);
  EXPECT_EQ(AggregatedValue(in, Aggregation::kMin), 10);

  Result<std::vector<AggregatedMetric>> all = registry_.AggregateSubtasks("job-a", 2);
  ASSERT_TRUE(all.IsOk());
  bool has_out = false;
  for (const AggregatedMetric& a : *all) {
    if (a.name == "numRecordsOut") {
      has_out = true;
      EXPECT_EQ(a.sum, 190);
    }
  }
  EXPECT_TRUE(has_out);

  Result<std::vector<MetricReading>> vertex = registry_.ReadVertex("job-a", 2, {"0.numRecordsIn", "1.numRecordsIn"});
  ASSERT_TRUE(vertex.IsOk());
  ASSERT_EQ(vertex->size(), 2U);
  EXPECT_EQ(ValueOf(*vertex, "0.numRecordsIn"), 10);
  EXPECT_EQ(ValueOf(*vertex, "1.numRecordsIn"), 25);

  Result<std::vector<AggregatedMetric>> missing = registry_.AggregateSubtasks("job-b", 2);
  ASSERT_FALSE(missing.IsOk());
  EXPECT_EQ(missing.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.GetStatus().Message(), HasSubstr("vertex 2 of job job-b"));
  EXPECT_FALSE(registry_.ReadVertex("job-a", 9).IsOk());
  Result<std::vector<MetricReading>> no_tm = registry_.ReadTaskManager("tm-9");
  ASSERT_FALSE(no_tm.IsOk());
  EXPECT_THAT(no_tm.GetStatus().Message(), HasSubstr("'tm-9'"));
  Result<std::vector<MetricReading>> no_job = registry_.ReadJob("job-z");
  ASSERT_FALSE(no_job.IsOk());
  EXPECT_THAT(no_job.GetStatus().Message(), HasSubstr("job-z"));
}

TEST(AggregationTest, ParsesFlinksNamesAndRejectsOthers) {
  Result<std::vector<Aggregation>> ok = ParseAggregations("min,max,avg,sum");
  ASSERT_TRUE(ok.IsOk());
  EXPECT_THAT(*ok, ElementsAre(Aggregation::kMin, Aggregation::kMax, Aggregation::kAvg, Aggregation::kSum));
  Result<std::vector<Aggregation>> bad = ParseAggregations("min,median");
  ASSERT_FALSE(bad.IsOk());
  EXPECT_EQ(bad.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.GetStatus().Message(), HasSubstr("'median'"));
  EXPECT_FALSE(ParseAggregations("").IsOk());
  EXPECT_FALSE(ParseAggregations("sum,").IsOk());
}

TEST_F(RegistryTest, MetersAdvanceWithTheRegistryClock) {
  auto task = registry_.CreateTaskGroup(Task(0, 0));
  Meter& user = task->AddOperator(1, "Map").Meter("events");
  task->Io().Publish(500, 100);
  user.MarkEvent(30);
  Advance(milliseconds(2000));
  registry_.UpdateMeters();
  Result<std::vector<MetricReading>> r = registry_.ReadSubtask("job-a", 0, 0);
  ASSERT_TRUE(r.IsOk());
  EXPECT_DOUBLE_EQ(ValueOf(*r, "numRecordsInPerSecond").value(), 250);
  EXPECT_DOUBLE_EQ(ValueOf(*r, "numRecordsOutPerSecond").value(), 50);
  EXPECT_DOUBLE_EQ(ValueOf(*r, "Map.events").value(), 15);
}

TEST_F(RegistryTest, BackPressureAndBusyTimeFromTheBackPressureSource) {
  auto task = registry_.CreateTaskGroup(Task(0, 0));
  std::atomic<int64_t> waited_ns{0};
  task->Io().SetBackPressureSource([&waited_ns] { return waited_ns.load(); });
  waited_ns = 600'000'000;  // 600 ms of the next second blocked on output
  Advance(milliseconds(1000));
  registry_.UpdateMeters();
  Result<std::vector<MetricReading>> r = registry_.ReadSubtask("job-a", 0, 0);
  ASSERT_TRUE(r.IsOk());
  EXPECT_DOUBLE_EQ(ValueOf(*r, "backPressuredTimeMsPerSecond").value(), 600);
  EXPECT_EQ(ValueOf(*r, "accumulateBackPressuredTimeMs").value(), 600);
  // No wait for input happened: the rest of the second was busy.
  EXPECT_EQ(ValueOf(*r, "idleTimeMsPerSecond").value(), 0);
  EXPECT_DOUBLE_EQ(ValueOf(*r, "busyTimeMsPerSecond").value(), 400);
  // No input watermark yet: Flink's Long.MIN_VALUE.
  EXPECT_EQ(ValueOf(*r, "currentInputWatermark").value(), static_cast<double>(INT64_MIN));
  task->Io().SetInputWatermark(1234);
  EXPECT_EQ(ValueOf(*registry_.ReadSubtask("job-a", 0, 0), "currentInputWatermark").value(), 1234);
}

TEST(WaitTimerTest, CountsCompletedWaitsAndTheOneInProgress) {
  WaitTimer t;
  EXPECT_EQ(t.TotalNanos(100), 0);
  t.Begin(100);
  EXPECT_EQ(t.TotalNanos(150), 50);
  t.End(300);
  EXPECT_EQ(t.TotalNanos(1000), 200);
  t.End(400);  // no wait in progress: nothing changes
  EXPECT_EQ(t.TotalNanos(1000), 200);
  t.Begin(1000);
  EXPECT_EQ(t.TotalNanos(1500), 700);
}

TEST(WaitTimerTest, ReadersOnAnotherThreadSeeAMonotonicTotal) {
  WaitTimer t;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    int64_t now = 0;
    for (int i = 0; i < 200'000; ++i) {
      t.Begin(now);
      now += 3;
      t.End(now);
      now += 2;
    }
    done.store(true);
  });
  // Wait k runs from 5k to 5k + 3. Read at a time far ahead, a consistent
  // view is either k completed waits (3k) or k completed plus the one in
  // progress (3k + far - 5k = far - 2k). A torn view (the new total with
  // the old start) would read far - 2k + 3, which is neither.
  const int64_t far = int64_t{1} << 40;
  int64_t last_completed = 0;
  while (!done.load()) {
    int64_t v = t.TotalNanos(far);
    if (v < far / 2) {
      ASSERT_EQ(v % 3, 0) << v;
      ASSERT_GE(v, last_completed);
      last_completed = v;
    } else {
      ASSERT_EQ((far - v) % 2, 0) << v;
    }
  }
  writer.join();
  EXPECT_EQ(t.TotalNanos(far), 3 * 200'000);
}

TEST_F(RegistryTest, JobGroupShowsWhatItsSamplerReturnsWhenRead) {
  // Before the first read the gauges show the figures of a job that has
  // not run: no restarts, no checkpoint yet (-1).
  JobMetricsSample sample;
  sample.restarts = 1;
  sample.uptime_ms = 2500;
  sample.downtime_ms = 0;
  sample.last_checkpoint_duration_ms = 120;
  sample.last_checkpoint_size = 4096;
  sample.completed_checkpoints = 3;
  sample.failed_checkpoints = 2;
  sample.in_progress_checkpoints = 1;
  sample.last_restore_timestamp_ms = 1'700'000'000'000;
  std::atomic<int> calls{0};
  std::atomic<bool> job_gone{false};
  auto job = registry_.CreateJobGroup("job-a", "Job A", [&]() -> std::optional<JobMetricsSample> {
    ++calls;
    if (job_gone) return std::nullopt;
    // Sampled without the registry's lock (reading the registry here
    // would deadlock otherwise).
    EXPECT_TRUE(registry_.TaskManagerIds().empty());
    return sample;
  });
  EXPECT_EQ(calls.load(), 0);  // creating the group samples nothing
  auto read = [&](const std::string& name) { return ValueOf(*registry_.ReadJob("job-a"), name).value(); };
  EXPECT_EQ(read("numRestarts"), 1);
  EXPECT_EQ(read("fullRestarts"), 1);
  EXPECT_EQ(read("uptime"), 2500);
  EXPECT_EQ(read("downtime"), 0);
  EXPECT_EQ(read("lastCheckpointDuration"), 120);
  EXPECT_EQ(read("lastCheckpointSize"), 4096);
  EXPECT_EQ(read("numberOfCompletedCheckpoints"), 3);
  EXPECT_EQ(read("numberOfFailedCheckpoints"), 2);
  EXPECT_EQ(read("numberOfInProgressCheckpoints"), 1);
  EXPECT_EQ(read("totalNumberOfCheckpoints"), 6);
  EXPECT_EQ(read("lastCheckpointRestoreTimestamp"), 1'700'000'000'000);
  EXPECT_GE(calls.load(), 1);

  // Every read samples again.
  sample.restarts = 2;
  sample.uptime_ms = -1;
  EXPECT_EQ(read("numRestarts"), 2);
  EXPECT_EQ(read("uptime"), -1);
  // So does a reporter's scrape, with the job's scope.
  sample.restarts = 5;
  bool scraped = false;
  for (const ScopedMetricReading& r : registry_.ReadAll()) {
    if (r.metric.name != "numRestarts") continue;
    scraped = true;
    EXPECT_EQ(r.logical_scope, "jobmanager.job");
    EXPECT_EQ(r.metric.value, 5);
    EXPECT_THAT(r.variables, ::testing::Contains(Pair("job_id", "job-a")));
  }
  EXPECT_TRUE(scraped);
  // A sampler that has nothing (its job is gone) leaves the last figures.
  job_gone = true;
  EXPECT_EQ(read("numRestarts"), 5);

  job.reset();
  EXPECT_EQ(registry_.ReadJob("job-a").GetStatus().Code(), StatusCode::kNotFound);
}

TEST_F(RegistryTest, JobGroupWithoutSamplerShowsAJobThatHasNotRun) {
  auto job = registry_.CreateJobGroup("job-b", "Job B");
  auto read = [&](const std::string& name) { return ValueOf(*registry_.ReadJob("job-b"), name).value(); };
  EXPECT_EQ(read("numRestarts"), 0);
  EXPECT_EQ(read("uptime"), 0);
  EXPECT_EQ(read("lastCheckpointDuration"), -1);
  EXPECT_EQ(read("lastCheckpointSize"), -1);
  EXPECT_EQ(read("lastCheckpointRestoreTimestamp"), -1);
  EXPECT_EQ(registry_.ReadJob("job-c").GetStatus().Code(), StatusCode::kNotFound);
}

TEST(MetricRegistryTest, UpdaterThreadRefreshesMeters) {
  MetricRegistryOptions options;
  options.update_interval = milliseconds(20);
  MetricRegistry registry(options);
  auto task = registry.CreateTaskGroup(TaskScope{"", "tm", "job", "Job", 0, "Task", 0, 0});
  task->Io().Publish(1000, 0);
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  double rate = 0;
  while (rate <= 0 && std::chrono::steady_clock::now() < deadline) {
    rate = ValueOf(*registry.ReadSubtask("job", 0, 0), "numRecordsInPerSecond").value();
    if (rate <= 0) std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_GT(rate, 0);
  EXPECT_FALSE(registry.Host().empty());
}

TEST(MetricRegistryTest, GroupsMayOutliveTheRegistry) {
  std::unique_ptr<TaskMetricGroup> task;
  {
    MetricRegistry registry(MetricRegistryOptions{"h", milliseconds(0), {}});
    task = registry.CreateTaskGroup(TaskScope{"", "tm", "job", "Job", 0, "Task", 0, 0});
  }
  task->AddOperator(1, "Map").Counter("late").Inc();
  task->Io().Publish(1, 1);
  task.reset();
}

}  // namespace
}  // namespace freshet::internal
