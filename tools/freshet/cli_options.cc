#include "cli_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/config_options.h"

namespace freshet::internal {

namespace {

/// Splits "-D key=value" (or "-Dkey=value") into the configuration.
Status ParseDynamic(const std::string& action, const std::string& kv, Configuration& out) {
  size_t eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::InvalidArgument(fmt::format("{}: -D expects <key>=<value>, got '{}'", action, kv));
  }
  out.Set(kv.substr(0, eq), kv.substr(eq + 1));
  return Status::Ok();
}

}  // namespace

std::string ConfigurationFileOf(const ClusterTarget& target) {
  if (!target.config_file.empty()) return target.config_file;
  const char* dir = std::getenv("FRESHET_CONF_DIR");
  if (dir == nullptr || *dir == '\0') return "";
  std::filesystem::path file = std::filesystem::path(dir) / "freshet.yaml";
  std::error_code ec;
  return std::filesystem::exists(file, ec) ? file.string() : "";
}

Result<std::string> ResolveJobManager(const ClusterTarget& target) {
  if (target.jobmanager) return *target.jobmanager;
  Configuration conf;
  std::string file = ConfigurationFileOf(target);
  if (!file.empty()) {
    FRESHET_ASSIGN_OR_RETURN(conf, LoadConfigurationFile(file));
  }
  for (const auto& [key, value] : target.dynamic.Values()) conf.Set(key, value);
  std::string host = OptionValue(conf, "rest.address");
  FRESHET_ASSIGN_OR_RETURN(int port, GetPortOption(conf, "rest.port"));
  if (host.empty()) return Status::InvalidArgument("rest.address is empty: give the JobManager with -m host:port");
  if (port == 0) {
    return Status::InvalidArgument("rest.port is 0 (any free port): give the JobManager's actual port with -m");
  }
  return fmt::format("{}:{}", host, port);
}

bool NamesJobManager(const ClusterTarget& target) {
  if (target.jobmanager) return true;
  for (const char* key : {"rest.address", "rest.port"}) {
    if (target.dynamic.Get(key)) return true;
  }
  if (target.config_file.empty()) return false;
  Result<Configuration> conf = LoadConfigurationFile(target.config_file);
  // An unreadable file names the JobManager as far as the user meant to:
  // resolving it then reports the error.
  return !conf.IsOk() || conf->Get("rest.address") || conf->Get("rest.port");
}

Result<bool> WantsWebUi(const ProgramOptions& options) {
  if (options.web_ui) return true;
  Configuration conf;
  if (std::optional<std::string> value = options.target.dynamic.Get("rest.enabled")) {
    conf.Set("rest.enabled", *value);
  } else {
    std::string file = ConfigurationFileOf(options.target);
    if (file.empty()) return false;
    // A file that does not load is no request for the web UI; the run
    // reports it where it reads the file for its own purpose, as before.
    Result<Configuration> loaded = LoadConfigurationFile(file);
    if (!loaded.IsOk()) return false;
    conf = std::move(loaded).Value();
  }
  return GetBoolOption(conf, "rest.enabled");
}

Result<ProgramOptions> ParseProgramOptions(const std::string& action, int argc, char** argv, int first) {
  ProgramOptions out;
  int i = first;
  auto value = [&](const std::string& flag) -> Result<std::string> {
    if (i + 1 >= argc) return Status::InvalidArgument(fmt::format("{}: {} needs a value", action, flag));
    return std::string(argv[++i]);
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a[0] != '-') break;
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "-p" || a == "--parallelism") {
      FRESHET_ASSIGN_OR_RETURN(std::string v, value(a));
      char* end = nullptr;
      long p = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || p < 1 || p > 32768) {
        return Status::InvalidArgument(fmt::format("{}: {} must be a number from 1 to 32768, got '{}'", action, a, v));
      }
      out.config.Set("parallelism.default", v);
      out.parallelism = static_cast<int>(p);
    } else if (a == "-s" || a == "--fromSavepoint") {
      FRESHET_ASSIGN_OR_RETURN(std::string v, value(a));
      out.config.Set("execution.savepoint.path", v);
      out.savepoint_path = v;
    } else if (a == "-n" || a == "--allowNonRestoredState") {
      out.config.Set("execution.savepoint.ignore-unclaimed-state", "true");
      out.allow_non_restored_state = true;
    } else if (action == "run" && a == "--web-ui") {
      out.web_ui = true;
    } else if (action == "run" && a == "--web-ui-linger") {
      FRESHET_ASSIGN_OR_RETURN(std::string v, value(a));
      char* end = nullptr;
      long seconds = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || seconds < 0 || seconds > 86400) {
        return Status::InvalidArgument(
            fmt::format("{}: {} must be a number of seconds from 0 to 86400, got '{}'", action, a, v));
      }
      out.web_ui = true;
      out.web_ui_linger_s = static_cast<int>(seconds);
    } else if (a == "-d" || a == "--detached") {
      out.detached = true;
    } else if (a == "-m" || a == "--jobmanager") {
      FRESHET_ASSIGN_OR_RETURN(std::string v, value(a));
      out.target.jobmanager = v;
    } else if (a == "-c" || a == "--config") {
      FRESHET_ASSIGN_OR_RETURN(out.target.config_file, value(a));
    } else if (a == "-D" || a.rfind("-D", 0) == 0) {
      std::string kv;
      if (a == "-D") {
        FRESHET_ASSIGN_OR_RETURN(kv, value(a));
      } else {
        kv = a.substr(2);
      }
      FRESHET_RETURN_IF_ERROR(ParseDynamic(action, kv, out.config));
      FRESHET_RETURN_IF_ERROR(ParseDynamic(action, kv, out.target.dynamic));
    } else {
      return Status::InvalidArgument(fmt::format("{}: unknown option '{}' (see `freshet help`)", action, a));
    }
  }
  if (i >= argc) return Status::InvalidArgument(fmt::format("{}: no job library given (see `freshet help`)", action));
  out.library = argv[i++];
  for (; i < argc; ++i) out.args.emplace_back(argv[i]);
  return out;
}

const std::string* VerbOptions::Value(const std::vector<std::string>& names) const {
  const std::string* found = nullptr;
  for (const auto& [flag, value] : values) {
    if (std::find(names.begin(), names.end(), flag) != names.end()) found = &value;
  }
  return found;
}

bool VerbOptions::Has(const std::vector<std::string>& names) const {
  return std::any_of(switches.begin(), switches.end(),
                     [&](const std::string& s) { return std::find(names.begin(), names.end(), s) != names.end(); });
}

Result<VerbOptions> ParseVerbOptions(const std::string& action, int argc, char** argv, int first,
                                     const std::vector<std::string>& flags_with_value,
                                     const std::vector<std::string>& switches) {
  VerbOptions out;
  bool options_done = false;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (options_done || a.empty() || a[0] != '-' || a == "-") {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return Status::InvalidArgument(fmt::format("{}: {} needs a value", action, a));
      return std::string(argv[++i]);
    };
    if (a == "-m" || a == "--jobmanager") {
      FRESHET_ASSIGN_OR_RETURN(std::string v, value());
      out.target.jobmanager = v;
    } else if (a == "-c" || a == "--config") {
      FRESHET_ASSIGN_OR_RETURN(out.target.config_file, value());
    } else if (a == "-D" || a.rfind("-D", 0) == 0) {
      std::string kv;
      if (a == "-D") {
        FRESHET_ASSIGN_OR_RETURN(kv, value());
      } else {
        kv = a.substr(2);
      }
      FRESHET_RETURN_IF_ERROR(ParseDynamic(action, kv, out.target.dynamic));
    } else if (std::find(flags_with_value.begin(), flags_with_value.end(), a) != flags_with_value.end()) {
      FRESHET_ASSIGN_OR_RETURN(std::string v, value());
      out.values.emplace_back(a, v);
    } else if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
      out.switches.push_back(a);
    } else {
      return Status::InvalidArgument(fmt::format("{}: unknown option '{}' (see `freshet help`)", action, a));
    }
  }
  return out;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "freshet: %s\n", status.Message().c_str());
  return 1;
}

}  // namespace freshet::internal
