// Tasks of one job in two simulated TaskManager processes: the consumer's
// input channels name the producer's network address in their deployment
// descriptors, and the task layer reads them through the network.

#include <freshet/freshet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "graph/stream_graph.h"
#include "net/net_test_env.h"
#include "runtime/net/network_environment.h"
#include "runtime/task/stream_task.h"

namespace freshet::internal {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
using net_test::PollUntil;
using net_test::Process;

std::shared_ptr<const JobGraph> BuildJob(StreamExecutionEnvironment& env, const std::string& job_id) {
  ExecutionOptions options;
  options.parallelism = env.GetParallelism();
  options.chaining_enabled = false;  // one vertex per operator, so they can be placed apart
  options.buffer_timeout_ms = 5;
  options.segment_size = 4096;
  Result<StreamGraph> graph = BuildStreamGraph(env.Transformations(), options, job_id);
  EXPECT_TRUE(graph.IsOk()) << graph.GetStatus().ToString();
  return std::make_shared<const JobGraph>(
      BuildJobGraph(std::make_shared<const StreamGraph>(std::move(graph).Value()), job_id));
}

/// Deployment descriptors as the JobMaster makes them, with each vertex in
/// process `process_of(vertex)`; a channel whose producer is in another
/// process names that process's data address.
std::vector<TaskDeploymentDescriptor> Deploy(const JobGraph& job, const std::function<int(int)>& process_of,
                                             const std::vector<std::string>& addresses) {
  const StreamGraph& g = *job.stream_graph;
  std::vector<TaskDeploymentDescriptor> out;
  for (const JobVertex& v : job.vertices) {
    for (int i = 0; i < v.parallelism; ++i) {
      TaskDeploymentDescriptor tdd;
      tdd.job_id = job.job_id;
      tdd.vertex = v.id;
      tdd.subtask = i;
      tdd.parallelism = v.parallelism;
      tdd.max_parallelism = v.max_parallelism;
      tdd.key_groups = KeyGroupRangeForSubtask(i, v.parallelism, v.max_parallelism);
      for (int e : v.output_edges) {
        const JobVertex& consumer = job.VertexOfNode(g.Edge(e).target);
        tdd.produced.push_back({e, PartitionId{job.job_id, e, i}, consumer.parallelism});
      }
      for (int e : v.input_edges) {
        const StreamEdge& edge = g.Edge(e);
        const JobVertex& producer = job.VertexOfNode(edge.source);
        InputGateDescriptor gate;
        gate.edge = e;
        gate.input_index = edge.target_input;
        for (int j = 0; j < producer.parallelism; ++j) {
          InputChannelDescriptor channel;
          channel.partition = PartitionId{job.job_id, e, j};
          channel.subpartition = i;
          if (process_of(producer.id) != process_of(v.id)) {
            channel.producer_address = addresses[static_cast<size_t>(process_of(producer.id))];
          }
          gate.channels.push_back(std::move(channel));
        }
        tdd.inputs.push_back(std::move(gate));
      }
      out.push_back(std::move(tdd));
    }
  }
  return out;
}

struct RunningTask {
  std::unique_ptr<StreamTask> task;
  Status status;
  std::thread thread;
};

TEST(RemoteTaskTest, ConsumerTasksReadAProducerInAnotherProcess) {
  Process a;  // sources
  Process b;  // maps and sinks
  constexpr int64_t kRecords = 50000;
  auto sum = std::make_shared<std::atomic<int64_t>>(0);
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  env->FromSequence(1, kRecords)
      .Map([](int64_t x) { return x * 3; })
      .Rebalance()
      .SinkTo([sum, count](int64_t v) {
        sum->fetch_add(v);
        count->fetch_add(1);
      });
  auto job = BuildJob(*env, "remote-job");
  ASSERT_GE(job->vertices.size(), 3u);
  const int source_vertex = job->vertices.front().id;
  auto process_of = [&](int vertex) { return vertex == source_vertex ? 0 : 1; };
  std::vector<TaskDeploymentDescriptor> tdds = Deploy(*job, process_of, {a.network.Address(), b.network.Address()});

  // Consumers first: their requests wait on the producer's side until the
  // sources deploy and register their partitions.
  std::vector<std::unique_ptr<RunningTask>> tasks;
  auto start = [&](TaskDeploymentDescriptor tdd, Process& p) {
    auto t = std::make_unique<RunningTask>();
    t->task = std::make_unique<StreamTask>(std::move(tdd), job, p.shuffle, Clock::System());
    RunningTask* raw = t.get();
    t->thread = std::thread([raw] { raw->status = raw->task->Run(); });
    tasks.push_back(std::move(t));
  };
  for (const auto& tdd : tdds) {
    if (tdd.vertex != source_vertex) start(tdd, b);
  }
  EXPECT_TRUE(PollUntil([&] { return a.network.Stats().pending_requests == 2; }))
      << "both map subtasks ask for their source partitions before the sources deploy";
  for (const auto& tdd : tdds) {
    if (tdd.vertex == source_vertex) start(tdd, a);
  }
  for (auto& t : tasks) t->thread.join();
  for (auto& t : tasks) EXPECT_TRUE(t->status.IsOk()) << t->task->Name() << ": " << t->status.ToString();

  EXPECT_EQ(count->load(), kRecords);
  EXPECT_EQ(sum->load(), 3 * kRecords * (kRecords + 1) / 2);
  NetworkStats bs = b.network.Stats();
  EXPECT_EQ(bs.connections_opened, 1) << "4 remote channels, one connection";
  EXPECT_GT(bs.data_buffers_received, 0);
  EXPECT_EQ(bs.event_buffers_received, 4) << "one end of partition per remote channel";
  EXPECT_EQ(a.network.Stats().protocol_errors + bs.protocol_errors, 0);
}

TEST(RemoteTaskTest, LosingTheProducerProcessFailsTheConsumerTaskNamingIt) {
  auto a = std::make_unique<Process>();
  Process b;
  std::string address = a->network.Address();
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  env->FromGenerator([](int64_t i) { return i; }, -1)
      .Map([](int64_t x) { return x + 1; })
      .SinkTo([count](int64_t) { count->fetch_add(1); });
  auto job = BuildJob(*env, "lost-job");
  const int source_vertex = job->vertices.front().id;
  auto process_of = [&](int vertex) { return vertex == source_vertex ? 0 : 1; };
  std::vector<TaskDeploymentDescriptor> tdds = Deploy(*job, process_of, {address, b.network.Address()});

  std::vector<std::unique_ptr<RunningTask>> tasks;
  RunningTask* remote_consumer = nullptr;
  for (const auto& tdd : tdds) {
    auto t = std::make_unique<RunningTask>();
    Process& p = tdd.vertex == source_vertex ? *a : b;
    t->task = std::make_unique<StreamTask>(tdd, job, p.shuffle, Clock::System());
    RunningTask* raw = t.get();
    bool reads_remote = false;
    for (const auto& gate : tdd.inputs) {
      for (const auto& c : gate.channels) reads_remote |= !c.producer_address.empty();
    }
    if (reads_remote) remote_consumer = raw;
    t->thread = std::thread([raw] { raw->status = raw->task->Run(); });
    tasks.push_back(std::move(t));
  }
  ASSERT_NE(remote_consumer, nullptr);
  ASSERT_TRUE(PollUntil([&] { return count->load() > 10000; })) << "records flow before the failure";
  a->network.Stop();
  remote_consumer->thread.join();
  EXPECT_EQ(remote_consumer->status.Code(), StatusCode::kUnavailable) << remote_consumer->status.ToString();
  EXPECT_THAT(remote_consumer->status.Message(), HasSubstr("lost an input"));
  EXPECT_THAT(remote_consumer->status.Message(), HasSubstr(address));
  EXPECT_THAT(remote_consumer->status.Message(), HasSubstr("lost-job/"));
  // The rest of the job is cancelled, as the JobMaster would.
  for (auto& t : tasks) {
    if (t.get() != remote_consumer) t->task->Cancel();
  }
  a->shuffle.CancelJob("lost-job");
  for (auto& t : tasks) {
    if (t.get() != remote_consumer) t->thread.join();
  }
}

TEST(RemoteTaskTest, RemoteChannelWithoutANetworkFailsSetupClearly) {
  ShuffleEnvironment lonely;  // no network environment set
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(1);
  env->FromSequence(1, 10).Map([](int64_t x) { return x; }).SinkTo([](int64_t) {});
  auto job = BuildJob(*env, "no-net-job");
  const int source_vertex = job->vertices.front().id;
  std::vector<TaskDeploymentDescriptor> tdds =
      Deploy(*job, [&](int v) { return v == source_vertex ? 0 : 1; }, {"127.0.0.1:1", "127.0.0.1:2"});
  int checked = 0;
  for (const auto& tdd : tdds) {
    if (tdd.vertex == source_vertex) continue;
    bool reads_remote = !tdd.inputs.empty() && !tdd.inputs[0].channels[0].producer_address.empty();
    if (!reads_remote) continue;
    StreamTask task(tdd, job, lonely, Clock::System());
    Status s = task.Run();
    EXPECT_EQ(s.Code(), StatusCode::kFailedPrecondition) << s.ToString();
    EXPECT_THAT(s.Message(), HasSubstr("127.0.0.1:1"));
    EXPECT_THAT(s.Message(), HasSubstr("no network environment"));
    ++checked;
  }
  EXPECT_EQ(checked, 1) << "the map task reads the source remotely";
}

TEST(RemoteTaskTest, CreditsCoverExclusiveBuffersAndAShareOfTheFloatingOnes) {
  ExecutionOptions o;
  o.buffers_per_channel = 2;
  o.floating_buffers = 8;
  EXPECT_EQ(RemoteChannelCredits(o, 1), 10);
  EXPECT_EQ(RemoteChannelCredits(o, 4), 4);
  EXPECT_EQ(RemoteChannelCredits(o, 100), 3) << "at least one floating buffer each";
  o.buffers_per_channel = 0;
  EXPECT_GE(RemoteChannelCredits(o, 100), 1);
}

}  // namespace
}  // namespace freshet::internal
