#pragma once
// The job plan in the JSON shape of Flink's `/jobs/:jobid/plan` (and of
// `flink info`): one node per job vertex with its inputs and their ship
// strategies.

#include <nlohmann/json.hpp>

#include "graph/stream_graph.h"

namespace freshet::internal {

/// {"jid", "name", "type", "nodes": [{"id", "parallelism", "operator",
/// "operator_strategy", "description", "inputs": [{"num", "id",
/// "ship_strategy", "exchange"}], "optimizer_properties"}]}. Vertex ids are
/// the vertices' index as a 32-hex-digit string, as REST paths use them.
nlohmann::json JobPlanJson(const JobGraph& job);

/// The REST id of a job vertex (32 hex digits, derived from its index).
std::string VertexRestId(int vertex);

}  // namespace freshet::internal
