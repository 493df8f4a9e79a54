// Configuration files (YAML, flat or nested) and -D key=value arguments.

// GCC 12 reports yaml-cpp 0.7's node accessors (node/impl.h) as keeping a
// pointer to a temporary once they are inlined here; the pointer does not
// outlive the call, so the warning is a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <yaml-cpp/yaml.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "common/config_options.h"
#include "freshet/configuration.h"

namespace freshet {

namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    int error = errno;
    std::string message = "cannot read configuration file '" + path + "': " + std::strerror(error);
    return error == ENOENT ? Status::NotFound(message) : Status::IoError(message);
  }
  std::string text;
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
  // Reading a directory opens fine and fails here (EISDIR).
  bool failed = std::ferror(file) != 0;
  int error = errno;
  std::fclose(file);
  if (failed) return Status::IoError("cannot read configuration file '" + path + "': " + std::strerror(error));
  return text;
}

// Flattens one YAML map into `out`, joining nested keys with dots and
// checking each entry as it is met, so the first error reported is the
// first in the file.
class Flattener {
 public:
  explicit Flattener(const std::string& path) : path_(path) {}

  Status Flatten(const YAML::Node& map, const std::string& prefix) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies: `it->` is a temporary proxy, so references to its members
      // would dangle. Nodes are handles; copying one is cheap.
      YAML::Node key_node = it->first;
      YAML::Node value = it->second;
      int line = key_node.Mark().line + 1;
      if (!key_node.IsScalar() || key_node.Scalar().empty()) {
        return Error(line, "a key must be a non-empty text" + (prefix.empty() ? "" : " (under '" + prefix + "')"));
      }
      std::string key = prefix.empty() ? key_node.Scalar() : prefix + "." + key_node.Scalar();
      switch (value.Type()) {
        case YAML::NodeType::Map:
          FRESHET_RETURN_IF_ERROR(Flatten(value, key));
          break;
        case YAML::NodeType::Scalar:
          FRESHET_RETURN_IF_ERROR(Add(key, value.Scalar(), line));
          break;
        case YAML::NodeType::Sequence: {
          std::string joined;
          for (size_t i = 0; i < value.size(); ++i) {
            if (!value[i].IsScalar()) {
              return Error(line, key + ": a list may hold only plain values (element " + std::to_string(i + 1) +
                                     " is not)");
            }
            if (i > 0) joined += ",";
            joined += value[i].Scalar();
          }
          FRESHET_RETURN_IF_ERROR(Add(key, joined, line));
          break;
        }
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
          return Error(line, key + ": no value (give one, or remove or comment out the key)");
      }
    }
    return Status::Ok();
  }

  Configuration Take() { return std::move(conf_); }

 private:
  Status Add(const std::string& key, const std::string& value, int line) {
    auto [it, inserted] = lines_.emplace(key, line);
    if (!inserted) {
      return Error(line, "key '" + key + "' is set twice (first on line " + std::to_string(it->second) + ")");
    }
    Status checked = internal::CheckConfigEntry(key, value);
    if (!checked.IsOk()) return Error(line, checked.Message());
    conf_.Set(key, value);
    return Status::Ok();
  }

  Status Error(int line, const std::string& message) const {
    return Status::InvalidArgument(path_ + ":" + std::to_string(line) + ": " + message);
  }

  const std::string& path_;
  Configuration conf_;
  std::map<std::string, int> lines_;  // key -> line where it was set
};

}  // namespace

Result<Configuration> LoadConfigurationFile(const std::string& path) {
  FRESHET_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp counts lines and columns from 0.
    return Status::InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
  }
  // An empty file, or one holding only comments, sets nothing.
  if (root.IsNull()) return Configuration();
  if (!root.IsMap()) {
    return Status::InvalidArgument(path + ":" + std::to_string(root.Mark().line + 1) +
                                   ": expected a map of keys to values at the top level");
  }
  Flattener flattener(path);
  try {
    FRESHET_RETURN_IF_ERROR(flattener.Flatten(root, ""));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return flattener.Take();
}

Status ValidateConfiguration(const Configuration& conf, const std::string& origin) {
  for (const auto& [key, value] : conf.Values()) {
    Status checked = internal::CheckConfigEntry(key, value);
    if (!checked.IsOk()) return Status::InvalidArgument(origin + ": " + checked.Message());
  }
  return Status::Ok();
}

Status ApplyDynamicProperty(Configuration& conf, const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos) {
    return Status::InvalidArgument("-D '" + arg + "': expected key=value (e.g. -D rest.port=8081)");
  }
  std::string key = arg.substr(0, eq);
  std::string value = arg.substr(eq + 1);
  if (key.empty()) return Status::InvalidArgument("-D '" + arg + "': the key before '=' is empty");
  if (key.find_first_of(" \t\r\n") != std::string::npos) {
    return Status::InvalidArgument("-D '" + arg + "': the key '" + key + "' contains white space");
  }
  Status checked = internal::CheckConfigEntry(key, value);
  if (!checked.IsOk()) return Status::InvalidArgument("-D " + arg + ": " + checked.Message());
  conf.Set(key, value);
  return Status::Ok();
}

}  // namespace freshet
