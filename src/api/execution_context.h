#pragma once
// How StreamExecutionEnvironments created on this thread behave when a host
// (the `freshet` CLI, a JobManager, a TaskManager) runs a job program:
// settings the host imposes (-p, -D, -s) and, in plan mode, that Execute()
// records the job graph instead of running it.

#include <exception>
#include <optional>
#include <string>

#include "freshet/configuration.h"
#include "graph/stream_graph.h"

namespace freshet::internal {

struct ExecutionContext {
  /// Applied by StreamExecutionEnvironment::Create() before the program's
  /// own settings (which therefore win, as in Flink).
  Configuration config;
  /// Plan mode: Execute() stores the graph here and throws PlanCaptured.
  bool capture_plan = false;
  std::optional<StreamGraph> captured;
  /// Plan mode: why Execute() could not build the graph.
  Status plan_error;
};

/// Thrown by Execute() in plan mode to leave the job program: nothing the
/// program does after Execute() runs while a plan is taken.
class PlanCaptured final : public std::exception {
 public:
  const char* what() const noexcept override;
};

/// The context of this thread (nullptr: none; Execute() runs embedded).
ExecutionContext* CurrentExecutionContext();

/// Installs a context on this thread for its lifetime.
class ScopedExecutionContext {
 public:
  explicit ScopedExecutionContext(ExecutionContext* context);
  ~ScopedExecutionContext();
  ScopedExecutionContext(const ScopedExecutionContext&) = delete;
  ScopedExecutionContext& operator=(const ScopedExecutionContext&) = delete;

 private:
  ExecutionContext* previous_;
};

}  // namespace freshet::internal
