#include "graph/stream_graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cluster/job_master.h"
#include "freshet/configuration.h"
#include "freshet/data_stream.h"

namespace freshet::internal {
namespace {

using Env = StreamExecutionEnvironment;

Result<StreamGraph> BuildStream(Env& env) { return BuildStreamGraph(env.Transformations(), env.GetOptions(), "job"); }

// Builds both graphs; fails the test when the stream graph is rejected.
struct Graphs {
  std::shared_ptr<const StreamGraph> stream;
  JobGraph job;

  const StreamNode& NodeNamed(const std::string& name) const {
    for (const auto& [id, node] : stream->nodes) {
      if (node.name == name) return node;
    }
    ADD_FAILURE() << "no node named " << name;
    return stream->nodes.begin()->second;
  }
  const JobVertex& VertexOf(const std::string& name) const { return job.VertexOfNode(NodeNamed(name).id); }
  bool Chained(const std::string& a, const std::string& b) const { return VertexOf(a).id == VertexOf(b).id; }
  // The single edge from node `a` to node `b`.
  const StreamEdge& EdgeBetween(const std::string& a, const std::string& b) const {
    int from = NodeNamed(a).id;
    int to = NodeNamed(b).id;
    const StreamEdge* found = nullptr;
    for (const StreamEdge& e : stream->edges) {
      if (e.source == from && e.target == to) {
        EXPECT_EQ(found, nullptr) << "several edges " << a << " -> " << b;
        found = &e;
      }
    }
    if (found == nullptr) {
      ADD_FAILURE() << "no edge " << a << " -> " << b;
      return stream->edges.front();
    }
    return *found;
  }
};

Graphs Build(Env& env) {
  Result<StreamGraph> sg = BuildStream(env);
  EXPECT_TRUE(sg.IsOk()) << sg.GetStatus().ToString();
  Graphs g;
  if (!sg.IsOk()) {
    g.stream = std::make_shared<const StreamGraph>();
    return g;
  }
  g.stream = std::make_shared<const StreamGraph>(std::move(sg).Value());
  g.job = BuildJobGraph(g.stream, "job-id");
  return g;
}

Status BuildError(Env& env) {
  Result<StreamGraph> sg = BuildStream(env);
  EXPECT_FALSE(sg.IsOk()) << "expected the graph to be rejected";
  return sg.IsOk() ? Status::Ok() : sg.GetStatus();
}

auto Identity() {
  return [](int64_t x) { return x; };
}
auto KeepAll() {
  return [](int64_t) { return true; };
}
auto Discard() {
  return [](const int64_t&) {};
}

// ---- chaining ----------------------------------------------------------------------------------

TEST(StreamGraphTest, ForwardEqualParallelismOperatorsChainIntoOneVertex) {
  auto env = Env::Create();
  env->SetParallelism(3);
  env->FromSequence(1, 10).Map(Identity()).Filter(KeepAll()).SinkTo(Discard());
  Graphs g = Build(*env);
  ASSERT_EQ(g.stream->nodes.size(), 4u);
  ASSERT_EQ(g.stream->edges.size(), 3u);
  for (const StreamEdge& e : g.stream->edges) {
    EXPECT_EQ(e.Kind(), PartitionerKind::kForward);
    EXPECT_TRUE(IsChainable(*g.stream, e));
  }
  ASSERT_EQ(g.job.vertices.size(), 1u);
  const JobVertex& v = g.job.vertices[0];
  EXPECT_EQ(v.name, "Source: Sequence Source -> Map -> Filter -> Sink");
  EXPECT_EQ(v.chain.size(), 4u);
  EXPECT_EQ(v.Head(), g.NodeNamed("Source: Sequence Source").id);
  EXPECT_EQ(v.parallelism, 3);
  EXPECT_EQ(v.max_parallelism, 128);
  EXPECT_TRUE(v.is_source);
  EXPECT_TRUE(v.input_edges.empty());
  EXPECT_TRUE(v.output_edges.empty());
  EXPECT_EQ(v.slot_sharing_group, "default");
  EXPECT_EQ(g.job.job_id, "job-id");
  EXPECT_EQ(g.stream->job_name, "job");
}

TEST(StreamGraphTest, CustomNamesAppearInTheVertexName) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Name("Numbers").Map(Identity()).Name("Double").SinkTo(Discard()).Name("Out");
  Graphs g = Build(*env);
  ASSERT_EQ(g.job.vertices.size(), 1u);
  EXPECT_EQ(g.job.vertices[0].name, "Numbers -> Double -> Out");
}

TEST(StreamGraphTest, DifferentParallelismGetsRebalanceAndDoesNotChain) {
  auto env = Env::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10).Map(Identity()).SetParallelism(3).Name("Wide").SinkTo(Discard());
  Graphs g = Build(*env);
  const StreamEdge& in = g.EdgeBetween("Source: Sequence Source", "Wide");
  EXPECT_EQ(in.Kind(), PartitionerKind::kRebalance);
  EXPECT_FALSE(IsChainable(*g.stream, in));
  // The sink runs at the default parallelism 2: another rebalance.
  EXPECT_EQ(g.EdgeBetween("Wide", "Sink").Kind(), PartitionerKind::kRebalance);
  ASSERT_EQ(g.job.vertices.size(), 3u);
  EXPECT_EQ(g.VertexOf("Wide").parallelism, 3);
  EXPECT_EQ(g.VertexOf("Sink").parallelism, 2);
  const JobVertex& source = g.VertexOf("Source: Sequence Source");
  ASSERT_EQ(source.output_edges.size(), 1u);
  EXPECT_EQ(source.output_edges[0], in.id);
  EXPECT_EQ(g.VertexOf("Wide").input_edges, std::vector<int>{in.id});
}

TEST(StreamGraphTest, KeyByMakesAHashEdgeThatIsNotChained) {
  auto env = Env::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10)
      .KeyBy([](int64_t x) { return x % 4; })
      .Reduce([](int64_t a, int64_t b) { return a + b; })
      .SinkTo(Discard());
  Graphs g = Build(*env);
  // The partitioning is an edge property, not a node.
  ASSERT_EQ(g.stream->nodes.size(), 3u);
  const StreamEdge& keyed = g.EdgeBetween("Source: Sequence Source", "Keyed Reduce");
  EXPECT_EQ(keyed.Kind(), PartitionerKind::kHash);
  EXPECT_FALSE(IsChainable(*g.stream, keyed));
  EXPECT_FALSE(g.Chained("Source: Sequence Source", "Keyed Reduce"));
  EXPECT_TRUE(g.Chained("Keyed Reduce", "Sink"));
  ASSERT_EQ(g.job.vertices.size(), 2u);
  EXPECT_EQ(g.job.vertices[1].name, "Keyed Reduce -> Sink");
  EXPECT_FALSE(g.job.vertices[1].is_source);
}

TEST(StreamGraphTest, ExplicitPartitioningsAreKeptAndNeverChained) {
  struct Case {
    const char* name;
    PartitionerKind kind;
  };
  for (Case c : {Case{"rebalance", PartitionerKind::kRebalance}, Case{"rescale", PartitionerKind::kRescale},
                 Case{"shuffle", PartitionerKind::kShuffle}, Case{"broadcast", PartitionerKind::kBroadcast},
                 Case{"global", PartitionerKind::kGlobal}}) {
    SCOPED_TRACE(c.name);
    auto env = Env::Create();
    env->SetParallelism(2);
    auto source = env->FromSequence(1, 10);
    DataStream<int64_t> partitioned = source;
    switch (c.kind) {
      case PartitionerKind::kRebalance:
        partitioned = source.Rebalance();
        break;
      case PartitionerKind::kRescale:
        partitioned = source.Rescale();
        break;
      case PartitionerKind::kShuffle:
        partitioned = source.Shuffle();
        break;
      case PartitionerKind::kBroadcast:
        partitioned = source.Broadcast();
        break;
      default:
        partitioned = source.Global();
        break;
    }
    partitioned.Map(Identity()).SinkTo(Discard());
    Graphs g = Build(*env);
    const StreamEdge& e = g.EdgeBetween("Source: Sequence Source", "Map");
    EXPECT_EQ(e.Kind(), c.kind);
    EXPECT_FALSE(IsChainable(*g.stream, e));
    EXPECT_EQ(g.job.vertices.size(), 2u);
  }
}

TEST(StreamGraphTest, ExplicitForwardWithEqualParallelismChains) {
  auto env = Env::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10).Forward().Map(Identity()).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.EdgeBetween("Source: Sequence Source", "Map").Kind(), PartitionerKind::kForward);
  EXPECT_EQ(g.job.vertices.size(), 1u);
}

TEST(StreamGraphTest, PartitioningClosestToTheConsumerWins) {
  auto env = Env::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10).KeyBy([](int64_t x) { return x; }).Rebalance().Map(Identity()).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.EdgeBetween("Source: Sequence Source", "Map").Kind(), PartitionerKind::kRebalance);
}

TEST(StreamGraphTest, DisableChainingIsolatesTheOperator) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity()).DisableChaining().Filter(KeepAll()).SinkTo(Discard());
  Graphs g = Build(*env);
  ASSERT_EQ(g.job.vertices.size(), 3u);
  EXPECT_EQ(g.job.vertices[0].name, "Source: Sequence Source");
  EXPECT_EQ(g.job.vertices[1].name, "Map");
  EXPECT_EQ(g.job.vertices[2].name, "Filter -> Sink");
  EXPECT_EQ(g.EdgeBetween("Map", "Filter").Kind(), PartitionerKind::kForward);
  EXPECT_FALSE(IsChainable(*g.stream, g.EdgeBetween("Map", "Filter")));
  EXPECT_FALSE(IsChainable(*g.stream, g.EdgeBetween("Source: Sequence Source", "Map")));
}

TEST(StreamGraphTest, StartNewChainBreaksOnlyBeforeTheOperator) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity()).StartNewChain().Filter(KeepAll()).SinkTo(Discard());
  Graphs g = Build(*env);
  ASSERT_EQ(g.job.vertices.size(), 2u);
  EXPECT_EQ(g.job.vertices[0].name, "Source: Sequence Source");
  EXPECT_EQ(g.job.vertices[1].name, "Map -> Filter -> Sink");
  EXPECT_EQ(g.job.vertices[1].Head(), g.NodeNamed("Map").id);
}

TEST(StreamGraphTest, SinkDisableChainingRunsTheSinkAlone) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity()).SinkTo(Discard()).DisableChaining();
  Graphs g = Build(*env);
  ASSERT_EQ(g.job.vertices.size(), 2u);
  EXPECT_EQ(g.job.vertices[1].name, "Sink");
}

TEST(StreamGraphTest, DisableOperatorChainingGivesEveryOperatorAVertex) {
  auto env = Env::Create();
  env->DisableOperatorChaining();
  env->FromSequence(1, 10).Map(Identity()).Filter(KeepAll()).SinkTo(Discard());
  Graphs g = Build(*env);
  ASSERT_EQ(g.job.vertices.size(), 4u);
  for (const JobVertex& v : g.job.vertices) EXPECT_EQ(v.chain.size(), 1u);
  for (const StreamEdge& e : g.stream->edges) {
    EXPECT_EQ(e.Kind(), PartitionerKind::kForward);
    EXPECT_FALSE(IsChainable(*g.stream, e));
  }
}

TEST(StreamGraphTest, ChainingDisabledThroughConfiguration) {
  Configuration config;
  config.Set("pipeline.operator-chaining", "false");
  auto env = Env::Create(config);
  EXPECT_FALSE(env->GetOptions().chaining_enabled);
  env->FromSequence(1, 10).Map(Identity()).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.job.vertices.size(), 3u);
}

TEST(StreamGraphTest, FanOutChainsEveryForwardConsumer) {
  auto env = Env::Create();
  auto source = env->FromSequence(1, 10);
  source.Map(Identity()).Name("A").SinkTo(Discard()).Name("SinkA");
  source.Filter(KeepAll()).Name("B").SinkTo(Discard()).Name("SinkB");
  Graphs g = Build(*env);
  ASSERT_EQ(g.job.vertices.size(), 1u);
  EXPECT_EQ(g.job.vertices[0].chain.size(), 5u);
  EXPECT_EQ(g.stream->Node(source.Id()).out_edges.size(), 2u);
}

TEST(StreamGraphTest, UnionTargetsAreNeverChainedTo) {
  auto env = Env::Create();
  auto a = env->FromSequence(1, 10).Name("A");
  auto b = env->FromSequence(11, 20).Name("B");
  a.Union(b).Map(Identity()).SinkTo(Discard());
  Graphs g = Build(*env);
  // The union is no node: the map reads both sources directly.
  ASSERT_EQ(g.stream->nodes.size(), 4u);
  const StreamNode& map = g.NodeNamed("Map");
  ASSERT_EQ(map.in_edges.size(), 2u);
  for (int e : map.in_edges) {
    EXPECT_EQ(g.stream->Edge(e).Kind(), PartitionerKind::kForward);
    EXPECT_EQ(g.stream->Edge(e).target_input, 1);
    EXPECT_FALSE(IsChainable(*g.stream, g.stream->Edge(e)));
  }
  EXPECT_FALSE(g.Chained("A", "Map"));
  EXPECT_FALSE(g.Chained("B", "Map"));
  EXPECT_TRUE(g.Chained("Map", "Sink"));
  ASSERT_EQ(g.job.vertices.size(), 3u);
  EXPECT_EQ(g.VertexOf("Map").input_edges.size(), 2u);
  EXPECT_EQ(g.VertexOf("Map").name, "Map -> Sink");
}

TEST(StreamGraphTest, UnionOfThreeStreamsIntoASink) {
  auto env = Env::Create();
  auto a = env->FromSequence(1, 2).Name("A");
  auto b = env->FromSequence(3, 4).Name("B");
  auto c = env->FromSequence(5, 6).Name("C");
  a.Union(b, c).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("Sink").in_edges.size(), 3u);
  EXPECT_EQ(g.job.vertices.size(), 4u);
  EXPECT_EQ(g.VertexOf("Sink").chain, std::vector<int>{g.NodeNamed("Sink").id});
}

TEST(StreamGraphTest, TwoInputOperatorIsAChainHead) {
  auto env = Env::Create();
  auto numbers = env->FromSequence(1, 10).Name("Numbers");
  auto words = env->FromElements(std::string("a"), std::string("b")).Name("Words");
  numbers.Connect(words)
      .CoMap([](int64_t x) { return x; }, [](const std::string& s) { return static_cast<int64_t>(s.size()); })
      .Map(Identity())
      .SinkTo(Discard());
  Graphs g = Build(*env);
  const StreamNode& co = g.NodeNamed("Co-Map");
  EXPECT_EQ(co.kind, TransformationKind::kTwoInput);
  ASSERT_EQ(co.in_edges.size(), 2u);
  EXPECT_EQ(g.stream->Edge(co.in_edges[0]).target_input, 1);
  EXPECT_EQ(g.stream->Edge(co.in_edges[0]).source, numbers.Id());
  EXPECT_EQ(g.stream->Edge(co.in_edges[1]).target_input, 2);
  EXPECT_EQ(g.stream->Edge(co.in_edges[1]).source, words.Id());
  // Numbers -> Co-Map is forward at equal parallelism, and still not chained.
  EXPECT_EQ(g.stream->Edge(co.in_edges[0]).Kind(), PartitionerKind::kForward);
  EXPECT_FALSE(g.Chained("Numbers", "Co-Map"));
  EXPECT_FALSE(g.Chained("Words", "Co-Map"));
  EXPECT_EQ(g.VertexOf("Co-Map").Head(), co.id);
  EXPECT_EQ(g.VertexOf("Co-Map").name, "Co-Map -> Map -> Sink");
}

TEST(StreamGraphTest, KeyedConnectGetsHashEdgesOnBothInputs) {
  auto env = Env::Create();
  env->SetParallelism(2);
  auto a = env->FromSequence(1, 10).Name("A");
  auto b = env->FromSequence(1, 10).Name("B");
  a.Connect(b)
      .KeyBy([](int64_t x) { return x; }, [](int64_t x) { return x; })
      .CoMap([](int64_t x) { return x; }, [](int64_t x) { return -x; })
      .SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.EdgeBetween("A", "Co-Map").Kind(), PartitionerKind::kHash);
  EXPECT_EQ(g.EdgeBetween("B", "Co-Map").Kind(), PartitionerKind::kHash);
  EXPECT_EQ(g.EdgeBetween("B", "Co-Map").target_input, 2);
}

TEST(StreamGraphTest, NonParallelSourceIsLimitedToOneAndRebalancesToWiderOperators) {
  auto env = Env::Create();
  env->SetParallelism(4);
  env->FromElements<int64_t>({1, 2, 3}).Map(Identity()).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("Source: Collection Source").parallelism, 1);
  EXPECT_EQ(g.NodeNamed("Map").parallelism, 4);
  EXPECT_EQ(g.EdgeBetween("Source: Collection Source", "Map").Kind(), PartitionerKind::kRebalance);
  EXPECT_EQ(g.job.vertices.size(), 2u);
}

TEST(StreamGraphTest, VerticesAreInTopologicalOrder) {
  auto env = Env::Create();
  env->SetParallelism(2);
  auto a = env->FromSequence(1, 10).Name("A");
  auto b = env->FromSequence(1, 10).Name("B").SetParallelism(1);
  auto keyed = a.KeyBy([](int64_t x) { return x; }).Map(Identity()).Name("K");
  keyed.Union(b.Rebalance()).Map(Identity()).SetParallelism(3).Name("U").SinkTo(Discard());
  Graphs g = Build(*env);
  for (const StreamEdge& e : g.stream->edges) {
    EXPECT_LT(g.job.vertex_of_node.at(e.source), g.job.vertex_of_node.at(e.target)) << e.source << "->" << e.target;
  }
  std::set<int> ids;
  for (size_t i = 0; i < g.job.vertices.size(); ++i) EXPECT_EQ(g.job.vertices[i].id, static_cast<int>(i));
  // Every node sits in exactly one vertex.
  size_t chained = 0;
  for (const JobVertex& v : g.job.vertices) {
    chained += v.chain.size();
    for (int n : v.chain) EXPECT_TRUE(ids.insert(n).second);
  }
  EXPECT_EQ(chained, g.stream->nodes.size());
}

// ---- slot sharing ------------------------------------------------------------------------------

TEST(StreamGraphTest, SlotSharingGroupIsInheritedAndBreaksChains) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity()).SlotSharingGroup("heavy").Filter(KeepAll()).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("Source: Sequence Source").slot_sharing_group, "default");
  EXPECT_EQ(g.NodeNamed("Map").slot_sharing_group, "heavy");
  EXPECT_EQ(g.NodeNamed("Filter").slot_sharing_group, "heavy");
  EXPECT_EQ(g.NodeNamed("Sink").slot_sharing_group, "heavy");
  EXPECT_FALSE(g.Chained("Source: Sequence Source", "Map"));
  ASSERT_EQ(g.job.vertices.size(), 2u);
  EXPECT_EQ(g.job.vertices[1].name, "Map -> Filter -> Sink");
  EXPECT_EQ(g.job.vertices[1].slot_sharing_group, "heavy");
}

TEST(StreamGraphTest, SourceSlotSharingGroupIsInheritedDownstream) {
  auto env = Env::Create();
  env->FromSequence(1, 10).SlotSharingGroup("src").Map(Identity()).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("Map").slot_sharing_group, "src");
  EXPECT_EQ(g.job.vertices.size(), 1u);
}

TEST(StreamGraphTest, InputsFromDifferentGroupsFallBackToDefault) {
  auto env = Env::Create();
  auto a = env->FromSequence(1, 10).Name("A").SlotSharingGroup("x");
  auto b = env->FromSequence(1, 10).Name("B").SlotSharingGroup("y");
  auto c = env->FromSequence(1, 10).Name("C").SlotSharingGroup("x");
  a.Union(b).Map(Identity()).Name("AB").SinkTo(Discard());
  a.Union(c).Map(Identity()).Name("AC").SinkTo(Discard()).Name("SinkAC");
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("AB").slot_sharing_group, "default");
  EXPECT_EQ(g.NodeNamed("AC").slot_sharing_group, "x");
  EXPECT_EQ(g.NodeNamed("SinkAC").slot_sharing_group, "x");
}

TEST(StreamGraphTest, SinkSlotSharingGroupPreventsChaining) {
  auto env = Env::Create();
  env->FromSequence(1, 10).SinkTo(Discard()).SlotSharingGroup("sinks");
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("Sink").slot_sharing_group, "sinks");
  EXPECT_EQ(g.job.vertices.size(), 2u);
}

TEST(JobMasterTest, RequiredSlotsIsTheWidestVertexPerSlotSharingGroup) {
  auto env = Env::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10)
      .Map(Identity())
      .SetParallelism(4)
      .Name("Wide")
      .Filter(KeepAll())
      .SetParallelism(3)
      .SlotSharingGroup("other")
      .Name("Narrow")
      .SinkTo(Discard())
      .SetParallelism(1);
  Graphs g = Build(*env);
  // default: source (2), Wide (4) -> 4; other: Narrow (3), Sink (1) -> 3.
  EXPECT_EQ(g.NodeNamed("Sink").slot_sharing_group, "other");
  EXPECT_EQ(JobMaster::RequiredSlots(g.job), 4 + 3);
}

TEST(JobMasterTest, RequiredSlotsForASingleChain) {
  auto env = Env::Create();
  env->SetParallelism(5);
  env->FromSequence(1, 10).Map(Identity()).SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(JobMaster::RequiredSlots(g.job), 5);
}

TEST(JobMasterTest, RequiredSlotsSharesSlotsAcrossVerticesOfOneGroup) {
  auto env = Env::Create();
  env->SetParallelism(3);
  env->FromSequence(1, 10).KeyBy([](int64_t x) { return x; }).Map(Identity()).Rebalance().SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.job.vertices.size(), 3u);
  EXPECT_EQ(JobMaster::RequiredSlots(g.job), 3);
}

// ---- resolved settings --------------------------------------------------------------------------

TEST(StreamGraphTest, MaxParallelismDefaultsAndOverrides) {
  auto env = Env::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10).Map(Identity()).SetParallelism(200).Name("Wide").Map(Identity()).SetMaxParallelism(
      1000).SetParallelism(2).Name("Custom").SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("Source: Sequence Source").max_parallelism, 128);
  EXPECT_EQ(g.NodeNamed("Wide").max_parallelism, 200);
  EXPECT_EQ(g.NodeNamed("Custom").max_parallelism, 1000);
  EXPECT_EQ(g.VertexOf("Custom").max_parallelism, 1000);
}

TEST(StreamGraphTest, UidsAreKept) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Uid("source-1").Map(Identity()).Uid("map-1").SinkTo(Discard()).Uid("sink-1");
  Graphs g = Build(*env);
  EXPECT_EQ(g.NodeNamed("Map").uid, "map-1");
  EXPECT_EQ(g.NodeNamed("Sink").uid, "sink-1");
}

TEST(StreamGraphTest, TransformationsNotLeadingToASinkArePruned) {
  auto env = Env::Create();
  auto source = env->FromSequence(1, 10);
  source.Map(Identity()).Name("Dangling").Filter(KeepAll()).Name("AlsoDangling");
  source.Map(Identity()).Name("Used").SinkTo(Discard());
  env->FromSequence(1, 5).Name("Unused Source").Map(Identity());
  Graphs g = Build(*env);
  std::set<std::string> names;
  for (const auto& [id, node] : g.stream->nodes) names.insert(node.name);
  EXPECT_EQ(names, (std::set<std::string>{"Source: Sequence Source", "Used", "Sink"}));
  EXPECT_EQ(g.stream->edges.size(), 2u);
  EXPECT_EQ(g.stream->Node(source.Id()).out_edges.size(), 1u);
  EXPECT_EQ(g.job.vertices.size(), 1u);
}

TEST(StreamGraphTest, PrunedOperatorsAreNotValidated) {
  auto env = Env::Create();
  auto source = env->FromSequence(1, 10);
  source.Map(Identity()).SetParallelism(0);
  source.SinkTo(Discard());
  Graphs g = Build(*env);
  EXPECT_EQ(g.stream->nodes.size(), 2u);
}

// ---- errors --------------------------------------------------------------------------------------

TEST(StreamGraphErrorTest, JobWithoutSinkIsRejected) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity());
  Status s = BuildError(*env);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("sink"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, EmptyJobIsRejected) {
  auto env = Env::Create();
  Status s = BuildError(*env);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
}

TEST(StreamGraphErrorTest, ForwardBetweenDifferentParallelismNamesBothOperators) {
  auto env = Env::Create();
  env->SetParallelism(2);
  env->FromSequence(1, 10).Name("Numbers").Forward().Map(Identity()).SetParallelism(3).Name("Widened").SinkTo(
      Discard());
  Status s = BuildError(*env);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("Numbers"), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("Widened"), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("forward"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, DuplicateUidIsRejected) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity()).Uid("same").Filter(KeepAll()).Uid("same").SinkTo(Discard());
  Status s = BuildError(*env);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("'same'"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, ZeroOperatorParallelismIsRejected) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity()).SetParallelism(0).Name("Broken").SinkTo(Discard());
  Status s = BuildError(*env);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("Broken"), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("parallelism"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, ZeroSinkParallelismIsRejected) {
  auto env = Env::Create();
  env->FromSequence(1, 10).SinkTo(Discard()).SetParallelism(0).Name("Zero Sink");
  Status s = BuildError(*env);
  EXPECT_NE(s.Message().find("Zero Sink"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, NonParallelSourceSetWiderIsRejected) {
  auto env = Env::Create();
  env->FromElements(1, 2, 3).SetParallelism(2).SinkTo([](const int&) {});
  Status s = BuildError(*env);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("Collection Source"), std::string::npos) << s.Message();
  EXPECT_NE(s.Message().find("up to 1"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, OperatorMaxParallelismOutOfRangeIsRejected) {
  for (int bad : {0, 32769}) {
    auto env = Env::Create();
    env->FromSequence(1, 10).Map(Identity()).SetMaxParallelism(bad).Name("Odd").SinkTo(Discard());
    Status s = BuildError(*env);
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.Message().find("Odd"), std::string::npos) << s.Message();
  }
}

TEST(StreamGraphErrorTest, OperatorMaxParallelismBelowParallelismIsRejected) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Map(Identity()).SetParallelism(8).SetMaxParallelism(4).Name("Tight").SinkTo(Discard());
  Status s = BuildError(*env);
  EXPECT_NE(s.Message().find("Tight"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, SettingsOnAPartitioningAreRejected) {
  auto env = Env::Create();
  env->FromSequence(1, 10).Rebalance().SetParallelism(3).Map(Identity()).SinkTo(Discard());
  Status s = BuildError(*env);
  EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.Message().find("partitioning"), std::string::npos) << s.Message();
}

TEST(StreamGraphErrorTest, InvalidEnvironmentOptionsAreRejected) {
  auto env = Env::Create();
  env->SetParallelism(0);
  env->FromSequence(1, 10).SinkTo(Discard());
  Status s = BuildError(*env);
  EXPECT_NE(s.Message().find("parallelism.default"), std::string::npos) << s.Message();

  auto env2 = Env::Create();
  env2->SetParallelism(200);
  env2->FromSequence(1, 10).SinkTo(Discard());
  Status s2 = BuildError(*env2);
  EXPECT_NE(s2.Message().find("pipeline.max-parallelism"), std::string::npos) << s2.Message();
}

}  // namespace
}  // namespace freshet::internal
