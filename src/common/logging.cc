#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cctype>
#include <filesystem>
#include <map>
#include <mutex>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/config_options.h"

namespace freshet::internal {

namespace {

constexpr std::string_view kRootLevelKey = "rootLogger.level";
constexpr std::string_view kLoggerLevelPrefix = "logger.";
constexpr std::string_view kLoggerLevelSuffix = ".level";
// Time, level, thread, logger name, message; like Flink's log4j layout.
constexpr const char* kPattern = "%Y-%m-%d %H:%M:%S,%e %* [%t] %n - %v";
constexpr std::string_view kLevelNames = "TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF or ALL";

// Prints the level as log4j does (INFO, WARN), padded to five characters,
// so logs read the same as Flink's and line up.
class Log4jLevelFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm*/, spdlog::memory_buf_t& dest) override {
    std::string_view name;
    switch (msg.level) {
      case spdlog::level::trace:
        name = "TRACE";
        break;
      case spdlog::level::debug:
        name = "DEBUG";
        break;
      case spdlog::level::info:
        name = "INFO ";
        break;
      case spdlog::level::warn:
        name = "WARN ";
        break;
      case spdlog::level::err:
        name = "ERROR";
        break;
      case spdlog::level::critical:
        name = "FATAL";
        break;
      default:
        name = "OFF  ";
        break;
    }
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<Log4jLevelFlag>(); }
};

std::unique_ptr<spdlog::formatter> MakeFormatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<Log4jLevelFlag>('*').set_pattern(kPattern);
  return formatter;
}

// Process-wide state, created on first use and never destroyed, so that
// code logging from static destructors still finds its loggers.
struct LoggingState {
  std::mutex mu;
  std::shared_ptr<spdlog::sinks::sink> console;
  // Every logger writes here; its sinks are the console and, once
  // initialised, the process's file.
  std::shared_ptr<spdlog::sinks::dist_sink_mt> fanout;
  spdlog::level::level_enum root_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum> levels;  // logger.<name>.level
  std::map<std::string, std::shared_ptr<spdlog::logger>> loggers;
  std::string file;
};

LoggingState& State() {
  static LoggingState* state = [] {
    auto* s = new LoggingState();
    s->console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    s->console->set_formatter(MakeFormatter());
    s->fanout = std::make_shared<spdlog::sinks::dist_sink_mt>(std::vector<spdlog::sink_ptr>{s->console});
    return s;
  }();
  return *state;
}

// The configured level of `name` or of its nearest configured ancestor
// ("a.b.c", then "a.b", then "a"), else the root level.
// REQUIRES: state.mu held.
spdlog::level::level_enum LevelFor(const LoggingState& state, std::string_view name) {
  while (true) {
    auto it = state.levels.find(std::string(name));
    if (it != state.levels.end()) return it->second;
    size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) return state.root_level;
    name = name.substr(0, dot);
  }
}

// REQUIRES: state.mu held.
std::shared_ptr<spdlog::logger> GetOrCreate(LoggingState& state, const std::string& name) {
  auto it = state.loggers.find(name);
  if (it != state.loggers.end()) return it->second;
  auto logger = std::make_shared<spdlog::logger>(name, state.fanout);
  logger->set_level(LevelFor(state, name));
  // A log line is worth most right before a crash: flush each one.
  logger->flush_on(spdlog::level::trace);
  state.loggers.emplace(name, logger);
  return logger;
}

// REQUIRES: state.mu held.
void Relevel(LoggingState& state) {
  for (auto& [name, logger] : state.loggers) logger->set_level(LevelFor(state, name));
}

Result<spdlog::level::level_enum> LevelSetting(const std::string& key, const std::string& value) {
  std::optional<spdlog::level::level_enum> level = ParseLogLevel(value);
  if (!level) {
    return Status::InvalidArgument(key + ": '" + value + "' is not a log level (" + std::string(kLevelNames) + ")");
  }
  return *level;
}

Status CheckProcessName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return Status::InvalidArgument("process name '" + name +
                                   "' cannot be part of a log file name (it must be non-empty, without '/')");
  }
  return Status::Ok();
}

}  // namespace

std::optional<spdlog::level::level_enum> ParseLogLevel(const std::string& name) {
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 8> kLevels = {{
      {"TRACE", spdlog::level::trace},
      {"ALL", spdlog::level::trace},
      {"DEBUG", spdlog::level::debug},
      {"INFO", spdlog::level::info},
      {"WARN", spdlog::level::warn},
      {"ERROR", spdlog::level::err},
      {"FATAL", spdlog::level::critical},
      {"OFF", spdlog::level::off},
  }};
  for (const auto& [text, level] : kLevels) {
    if (upper == text) return level;
  }
  return std::nullopt;
}

Status InitProcessLogging(const Configuration& conf, const std::string& process_name) {
  FRESHET_RETURN_IF_ERROR(CheckProcessName(process_name));

  // Everything that can fail happens before the shared state changes.
  FRESHET_ASSIGN_OR_RETURN(spdlog::level::level_enum root_level,
                           LevelSetting(std::string(kRootLevelKey), OptionValue(conf, kRootLevelKey)));
  std::map<std::string, spdlog::level::level_enum> levels;
  for (const auto& [key, value] : conf.Values()) {
    if (key.size() <= kLoggerLevelPrefix.size() + kLoggerLevelSuffix.size() || !key.starts_with(kLoggerLevelPrefix) ||
        !key.ends_with(kLoggerLevelSuffix)) {
      continue;
    }
    std::string name = key.substr(kLoggerLevelPrefix.size(),
                                  key.size() - kLoggerLevelPrefix.size() - kLoggerLevelSuffix.size());
    FRESHET_ASSIGN_OR_RETURN(levels[name], LevelSetting(key, value));
  }

  std::string dir_text = OptionValue(conf, "env.log.dir");
  if (dir_text.empty()) dir_text = "./log";
  std::filesystem::path dir(dir_text);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::IoError("cannot create log directory '" + dir_text + "' (env.log.dir): " + ec.message());
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::IoError("log directory '" + dir_text + "' (env.log.dir) exists and is not a directory");
  }
  std::filesystem::path file = std::filesystem::absolute(dir / ("freshet-" + process_name + ".log"), ec);
  if (ec) return Status::IoError("cannot resolve log directory '" + dir_text + "' (env.log.dir): " + ec.message());
  file = file.lexically_normal();

  std::shared_ptr<spdlog::sinks::sink> file_sink;
  try {
    // Appends: a restarted process keeps the history of its predecessor.
    file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), /*truncate=*/false);
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IoError("cannot open log file '" + file.string() + "' (env.log.dir): " + e.what());
  }
  file_sink->set_formatter(MakeFormatter());

  LoggingState& state = State();
  std::shared_ptr<spdlog::logger> default_logger;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    state.root_level = root_level;
    state.levels = std::move(levels);
    state.fanout->set_sinks({state.console, file_sink});
    state.file = file.string();
    Relevel(state);
    default_logger = GetOrCreate(state, "freshet");
  }
  // Code that logs through spdlog's free functions lands in the same file.
  spdlog::set_default_logger(std::move(default_logger));
  return Status::Ok();
}

std::shared_ptr<spdlog::logger> Log(const std::string& name) {
  LoggingState& state = State();
  std::lock_guard<std::mutex> lock(state.mu);
  return GetOrCreate(state, name);
}

std::string ProcessLogFile() {
  LoggingState& state = State();
  std::lock_guard<std::mutex> lock(state.mu);
  return state.file;
}

void ResetProcessLogging() {
  LoggingState& state = State();
  std::lock_guard<std::mutex> lock(state.mu);
  state.root_level = spdlog::level::info;
  state.levels.clear();
  state.fanout->set_sinks({state.console});
  state.file.clear();
  Relevel(state);
}

}  // namespace freshet::internal
