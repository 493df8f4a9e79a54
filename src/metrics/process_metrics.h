#pragma once
// Figures of this process for the Status.Process.* metrics (the role the
// Status.JVM.* metrics play in Flink).

#include <cstdint>

namespace freshet::internal {

/// CPU time the process used so far (user + system), in nanoseconds.
int64_t ProcessCpuTimeNanos();
/// The process's resident memory in bytes (0 when it cannot be read).
int64_t ProcessResidentBytes();

}  // namespace freshet::internal
