#pragma once
// Process logging: named spdlog loggers that write to the process's log
// file (<env.log.dir>/freshet-<process>.log) and to stderr, with levels
// from the configuration (rootLogger.level, logger.<name>.level).
//
// Every logger handed out by Log() writes to one shared distributing sink;
// InitProcessLogging swaps the sinks inside it and re-levels the existing
// loggers, so loggers taken before initialisation (by library code, by
// tests) follow the process configuration afterwards.
//
// Thread safety: every function here may be called from any thread.
// Logging itself takes the sinks' mutex and flushes each line (logs end
// where a crash happens); it belongs on control paths, never per record.

#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include "freshet/configuration.h"
#include "freshet/status.h"

namespace freshet::internal {

/// Sets up this process's logging: creates `env.log.dir` (default ./log)
/// if needed and appends to `<dir>/freshet-<process_name>.log`, keeping the
/// console (stderr) sink. Levels: `rootLogger.level` (default INFO) and
/// `logger.<name>.level`, which applies to the logger `name` and to the
/// loggers below it (`name.child`); names are TRACE, DEBUG, INFO, WARN,
/// ERROR, FATAL, OFF and ALL, in any case. spdlog's default logger (used by
/// code calling spdlog::info directly) becomes the logger "freshet" on the
/// same sinks. May be called again: the newer configuration replaces the
/// older. Errors: a malformed level (naming the key), a process name that
/// is not a plain file name part, a directory or file that cannot be
/// created (naming the path and env.log.dir). On error nothing changes.
Status InitProcessLogging(const Configuration& conf, const std::string& process_name);

/// The logger `name`, created on first use on the process's sinks with its
/// configured level. Before InitProcessLogging: console only, INFO.
/// Callers on busy paths keep the returned pointer instead of calling this
/// for each message (it takes a lock).
std::shared_ptr<spdlog::logger> Log(const std::string& name);

/// Absolute path of the process's log file; empty before InitProcessLogging.
std::string ProcessLogFile();

/// Back to console-only INFO logging with no per-logger levels; closes the
/// log file. For tests, and for a process shutting its logging down.
void ResetProcessLogging();

/// Reads a log4j level name (case-insensitive); nullopt when unknown.
std::optional<spdlog::level::level_enum> ParseLogLevel(const std::string& name);

}  // namespace freshet::internal
