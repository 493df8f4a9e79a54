#pragma once
/// Transformations: what the DataStream API records, one per API call.
/// The graph layer turns them into a StreamGraph and then a JobGraph.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "freshet/internal/operator.h"

namespace freshet::internal {

enum class TransformationKind { kSource, kOneInput, kTwoInput, kSink, kUnion, kPartition, kSideOutput };

enum class ChainingStrategy {
  kAlways,  // chain to the predecessor and successors where the rules allow
  kHead,    // start a new chain here (StartNewChain)
  kNever,   // never chain (DisableChaining)
};

/// Creates one operator instance for one subtask. `output` is the typed
/// Output<OUT>* (nullptr for sinks).
using OperatorFactory = std::function<std::unique_ptr<StreamOperator>(OperatorContext&, OutputBase* output)>;

struct Transformation {
  int id = -1;
  TransformationKind kind = TransformationKind::kOneInput;
  std::string name;
  std::string uid;
  int parallelism = -1;       // -1: the environment's default
  int max_parallelism = -1;   // -1: the environment's default
  int parallelism_limit = 0;  // > 0: the operator cannot run wider (non-parallel sources)
  std::vector<int> inputs;    // ids of input transformations (two-input: first, second)
  std::shared_ptr<const PartitionerFactory> partitioner;  // kPartition only
  std::shared_ptr<const TypeOps> output_type;             // ops of the output record type
  OperatorFactory factory;                                // not for kUnion / kPartition
  ChainingStrategy chaining = ChainingStrategy::kAlways;
  std::string slot_sharing_group;  // empty: inherit from inputs
  bool bounded = true;             // sources: whether the input ends
  std::string side_output_tag;     // kSideOutput: the tag id selected from the input
};

}  // namespace freshet::internal
