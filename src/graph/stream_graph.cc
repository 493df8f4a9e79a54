#include "graph/stream_graph.h"

#include <fmt/format.h>

#include <set>

namespace freshet::internal {

namespace {

bool IsVirtual(TransformationKind k) {
  return k == TransformationKind::kUnion || k == TransformationKind::kPartition ||
         k == TransformationKind::kSideOutput;
}

struct ResolvedInput {
  int node;
  std::shared_ptr<const PartitionerFactory> partitioner;  // nullptr: default
  std::string side_output_tag;
  std::shared_ptr<const TypeOps> record_type;
};

// Follows unions and partitionings up to physical transformations. The
// partitioning closest to the consumer wins.
void ResolveInput(const std::vector<Transformation>& ts, int id, std::shared_ptr<const PartitionerFactory> part,
                  std::string tag, std::shared_ptr<const TypeOps> type, std::vector<ResolvedInput>& out) {
  const Transformation& t = ts[static_cast<size_t>(id)];
  if (type == nullptr) type = t.output_type;
  if (t.kind == TransformationKind::kUnion) {
    for (int in : t.inputs) ResolveInput(ts, in, part, tag, type, out);
  } else if (t.kind == TransformationKind::kPartition) {
    ResolveInput(ts, t.inputs[0], part ? part : t.partitioner, tag, type, out);
  } else if (t.kind == TransformationKind::kSideOutput) {
    ResolveInput(ts, t.inputs[0], part, t.side_output_tag, type, out);
  } else {
    out.push_back({id, std::move(part), std::move(tag), std::move(type)});
  }
}

std::string Describe(const Transformation& t) { return fmt::format("'{}' (stream {})", t.name, t.id); }

}  // namespace

Result<StreamGraph> BuildStreamGraph(const std::vector<Transformation>& ts, const ExecutionOptions& options,
                                     const std::string& job_name) {
  FRESHET_RETURN_IF_ERROR(options.Validate());

  // Keep what leads to a sink.
  std::vector<bool> keep(ts.size(), false);
  bool any_sink = false;
  for (size_t i = ts.size(); i-- > 0;) {
    if (ts[i].kind == TransformationKind::kSink) {
      keep[i] = true;
      any_sink = true;
    }
    if (!keep[i]) continue;
    for (int in : ts[i].inputs) keep[static_cast<size_t>(in)] = true;
  }
  if (!any_sink) {
    return Status::InvalidArgument("the job has no sink: add Print(), SinkTo(...) or another sink before Execute()");
  }

  StreamGraph g;
  g.job_name = job_name;
  g.options = options;
  std::set<std::string> uids;

  for (size_t i = 0; i < ts.size(); ++i) {
    if (!keep[i]) continue;
    const Transformation& t = ts[i];
    if (IsVirtual(t.kind)) {
      if (t.parallelism != -1 || t.max_parallelism != -1 || !t.uid.empty() ||
          t.chaining != ChainingStrategy::kAlways || !t.slot_sharing_group.empty()) {
        return Status::InvalidArgument(fmt::format(
            "{}: parallelism, uid, chaining and slot sharing are settings of operators, not of a {}", Describe(t),
            t.kind == TransformationKind::kUnion ? "union" : "partitioning"));
      }
      continue;
    }
    StreamNode n;
    n.id = t.id;
    n.name = t.name;
    n.uid = t.uid;
    n.kind = t.kind;
    n.factory = t.factory;
    n.output_type = t.output_type;
    n.chaining = t.chaining;
    n.bounded = t.bounded;
    n.parallelism = t.parallelism == -1 ? options.parallelism : t.parallelism;
    if (t.parallelism_limit > 0 && t.parallelism == -1 && n.parallelism > t.parallelism_limit) {
      n.parallelism = t.parallelism_limit;
    }
    if (n.parallelism < 1) {
      return Status::InvalidArgument(
          fmt::format("{}: parallelism must be at least 1, got {}", Describe(t), n.parallelism));
    }
    if (t.parallelism_limit > 0 && n.parallelism > t.parallelism_limit) {
      return Status::InvalidArgument(fmt::format("{}: this source supports parallelism up to {}, got {}",
                                                 Describe(t), t.parallelism_limit, n.parallelism));
    }
    n.max_parallelism = t.max_parallelism == -1 ? std::max(options.max_parallelism, n.parallelism) : t.max_parallelism;
    if (t.max_parallelism != -1 && (n.max_parallelism < 1 || n.max_parallelism > 32768)) {
      return Status::InvalidArgument(
          fmt::format("{}: max parallelism must be in [1, 32768], got {}", Describe(t), n.max_parallelism));
    }
    if (n.max_parallelism < n.parallelism) {
      return Status::InvalidArgument(fmt::format("{}: max parallelism ({}) must not be below its parallelism ({})",
                                                 Describe(t), n.max_parallelism, n.parallelism));
    }
    if (!t.uid.empty() && !uids.insert(t.uid).second) {
      return Status::InvalidArgument(fmt::format("{}: uid '{}' is used by another operator; uids must be unique",
                                                 Describe(t), t.uid));
    }

    // Edges from resolved inputs.
    std::set<std::string> groups;
    for (size_t input = 0; input < t.inputs.size(); ++input) {
      std::vector<ResolvedInput> resolved;
      ResolveInput(ts, t.inputs[input], nullptr, "", nullptr, resolved);
      for (ResolvedInput& r : resolved) {
        StreamNode& src = g.nodes.at(r.node);
        if (src.kind == TransformationKind::kSink) {
          return Status::InvalidArgument(fmt::format("{}: a sink cannot be an input", Describe(t)));
        }
        if (!r.side_output_tag.empty() && src.kind == TransformationKind::kSource) {
          return Status::InvalidArgument(fmt::format("'{}' has no side outputs", src.name));
        }
        StreamEdge e;
        e.id = static_cast<int>(g.edges.size());
        e.source = src.id;
        e.target = n.id;
        e.target_input = t.kind == TransformationKind::kTwoInput ? static_cast<int>(input) + 1 : 1;
        e.side_output_tag = r.side_output_tag;
        e.record_type = r.record_type;
        if (r.partitioner == nullptr) {
          auto kind = src.parallelism == n.parallelism ? PartitionerKind::kForward : PartitionerKind::kRebalance;
          e.partitioner = r.record_type->MakePartitioner(static_cast<int>(kind));
        } else {
          e.partitioner = r.partitioner;
          if (e.Kind() == PartitionerKind::kForward && src.parallelism != n.parallelism) {
            return Status::InvalidArgument(fmt::format(
                "forward partitioning between '{}' (parallelism {}) and '{}' (parallelism {}) needs equal "
                "parallelism; use Rebalance() or Rescale()",
                src.name, src.parallelism, n.name, n.parallelism));
          }
        }
        src.out_edges.push_back(e.id);
        n.in_edges.push_back(e.id);
        groups.insert(src.slot_sharing_group);
        g.edges.push_back(std::move(e));
      }
    }
    if (!t.slot_sharing_group.empty()) {
      n.slot_sharing_group = t.slot_sharing_group;
    } else if (groups.size() == 1) {
      n.slot_sharing_group = *groups.begin();
    } else {
      n.slot_sharing_group = "default";
    }
    g.nodes.emplace(n.id, std::move(n));
  }
  return g;
}

bool IsChainable(const StreamGraph& g, const StreamEdge& e) {
  const StreamNode& up = g.Node(e.source);
  const StreamNode& down = g.Node(e.target);
  return g.options.chaining_enabled && down.in_edges.size() == 1 && e.Kind() == PartitionerKind::kForward &&
         up.parallelism == down.parallelism && up.slot_sharing_group == down.slot_sharing_group &&
         down.chaining == ChainingStrategy::kAlways && up.chaining != ChainingStrategy::kNever &&
         down.kind != TransformationKind::kSource;
}

JobGraph BuildJobGraph(std::shared_ptr<const StreamGraph> graph, std::string job_id) {
  JobGraph jg;
  jg.job_id = std::move(job_id);
  jg.stream_graph = graph;
  const StreamGraph& g = *graph;
  for (const auto& [id, node] : g.nodes) {
    int vertex = -1;
    if (node.in_edges.size() == 1) {
      const StreamEdge& e = g.Edge(node.in_edges[0]);
      if (IsChainable(g, e)) vertex = jg.vertex_of_node.at(e.source);
    }
    if (vertex < 0) {
      JobVertex v;
      v.id = static_cast<int>(jg.vertices.size());
      v.parallelism = node.parallelism;
      v.max_parallelism = node.max_parallelism;
      v.slot_sharing_group = node.slot_sharing_group;
      v.is_source = node.kind == TransformationKind::kSource;
      v.input_edges = node.in_edges;
      jg.vertices.push_back(std::move(v));
      vertex = jg.vertices.back().id;
    }
    JobVertex& v = jg.vertices[static_cast<size_t>(vertex)];
    v.chain.push_back(id);
    v.name += (v.name.empty() ? "" : " -> ") + node.name;
    jg.vertex_of_node[id] = vertex;
  }
  for (const StreamEdge& e : g.edges) {
    int from = jg.vertex_of_node.at(e.source);
    int to = jg.vertex_of_node.at(e.target);
    if (from != to) jg.vertices[static_cast<size_t>(from)].output_edges.push_back(e.id);
  }
  return jg;
}

}  // namespace freshet::internal
