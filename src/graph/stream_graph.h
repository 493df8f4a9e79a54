#pragma once
// StreamGraph: the job's logical operators and the edges between them,
// resolved from transformations (unions and partitionings become edge
// properties; parallelism, max parallelism and slot sharing groups are
// settled). JobGraph: the same graph with chained operators fused into
// vertices that each run as one task per parallel subtask.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "freshet/configuration.h"
#include "freshet/internal/transformation.h"
#include "freshet/status.h"

namespace freshet::internal {

struct StreamNode {
  int id = -1;  // the transformation's id
  std::string name;
  std::string uid;
  TransformationKind kind = TransformationKind::kOneInput;
  int parallelism = 1;
  int max_parallelism = 128;
  OperatorFactory factory;
  std::shared_ptr<const TypeOps> output_type;
  ChainingStrategy chaining = ChainingStrategy::kAlways;
  std::string slot_sharing_group;
  bool bounded = true;
  std::vector<int> in_edges;   // edge ids, in input order
  std::vector<int> out_edges;  // edge ids
};

struct StreamEdge {
  int id = -1;
  int source = -1;       // node id
  int target = -1;       // node id
  int target_input = 1;  // 1-based input of the target operator
  std::shared_ptr<const PartitionerFactory> partitioner;
  std::string side_output_tag;  // empty: the main output
  std::shared_ptr<const TypeOps> record_type;  // type of the records on this edge
  PartitionerKind Kind() const { return partitioner->Kind(); }
};

struct StreamGraph {
  std::string job_name;
  ExecutionOptions options;
  std::map<int, StreamNode> nodes;
  std::vector<StreamEdge> edges;

  const StreamNode& Node(int id) const { return nodes.at(id); }
  const StreamEdge& Edge(int id) const { return edges.at(static_cast<size_t>(id)); }
};

/// Resolves transformations into a StreamGraph, validating every setting.
/// Only transformations that lead to a sink are kept.
Result<StreamGraph> BuildStreamGraph(const std::vector<Transformation>& transformations,
                                     const ExecutionOptions& options, const std::string& job_name);

struct JobVertex {
  int id = -1;
  std::string name;            // "Source: X -> Map -> Filter"
  std::vector<int> chain;      // node ids, head first
  int parallelism = 1;
  int max_parallelism = 128;
  std::string slot_sharing_group;
  std::vector<int> input_edges;   // stream edges entering the head
  std::vector<int> output_edges;  // stream edges leaving the chain
  bool is_source = false;
  int Head() const { return chain.front(); }
};

/// Where a job built from a job library came from, so that other processes
/// can rebuild the same graph: the library (by checksum), the program's
/// arguments and the settings imposed on it (-p, -s, -D).
struct JobArtifact {
  std::string library_path;      // in the process that built the graph
  std::string library_checksum;  // hex SHA-256
  std::string library_name;      // for messages
  std::vector<std::string> args;
  std::map<std::string, std::string> config;
  /// The part of `config` the run itself set (-D, -p, -s; REST
  /// flinkConfiguration, parallelism, savepointPath), not the cluster's
  /// defaults: what `GET /jobs/:id/config` shows as the user config.
  std::map<std::string, std::string> run_config;
};

struct JobGraph {
  std::string job_id;
  /// Set for jobs from job libraries; jobs built by a program in this
  /// process only (null) cannot run on remote TaskManagers.
  std::shared_ptr<const JobArtifact> artifact;
  std::shared_ptr<const StreamGraph> stream_graph;
  std::vector<JobVertex> vertices;  // topological order
  std::map<int, int> vertex_of_node;

  const JobVertex& VertexOfNode(int node) const { return vertices.at(static_cast<size_t>(vertex_of_node.at(node))); }
};

/// Whether an edge is chained: forward partitioning, equal parallelism,
/// the same slot sharing group, a target with exactly one input, chaining
/// enabled and allowed by both ends.
bool IsChainable(const StreamGraph& graph, const StreamEdge& edge);

/// Fuses chainable operators into vertices.
JobGraph BuildJobGraph(std::shared_ptr<const StreamGraph> graph, std::string job_id);

}  // namespace freshet::internal
