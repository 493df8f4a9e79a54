#include "rest/job_plan.h"

#include <fmt/format.h>

namespace freshet::internal {

std::string VertexRestId(int vertex) { return fmt::format("{:032x}", vertex); }

nlohmann::json JobPlanJson(const JobGraph& job) {
  const StreamGraph& graph = *job.stream_graph;
  nlohmann::json nodes = nlohmann::json::array();
  for (const JobVertex& v : job.vertices) {
    nlohmann::json inputs = nlohmann::json::array();
    int num = 0;
    for (int edge_id : v.input_edges) {
      const StreamEdge& e = graph.Edge(edge_id);
      inputs.push_back({{"num", num++},
                        {"id", VertexRestId(job.vertex_of_node.at(e.source))},
                        {"ship_strategy", PartitionerName(e.Kind())},
                        {"exchange", "pipelined_bounded"}});
    }
    std::string description;
    for (int node : v.chain) {
      if (!description.empty()) description += "<br/>";
      description += graph.Node(node).name;
    }
    nlohmann::json entry = {{"id", VertexRestId(v.id)},
                            {"parallelism", v.parallelism},
                            {"operator", ""},
                            {"operator_strategy", ""},
                            {"description", description},
                            {"optimizer_properties", nlohmann::json::object()}};
    if (!inputs.empty()) entry["inputs"] = std::move(inputs);
    nodes.push_back(std::move(entry));
  }
  return {{"jid", job.job_id},
          {"name", graph.job_name},
          {"type", "STREAMING"},
          {"nodes", std::move(nodes)}};
}

}  // namespace freshet::internal
