#pragma once
// The output of a file sink as a reader of committed data sees it: files
// with no path component starting with '.' or '_' are visible (committed);
// the others are in-progress or pending leftovers.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace freshet::test_support {

struct CommittedFile {
  std::string path;  // relative to the sink's base path
  std::string text;
};

struct CommittedFiles {
  std::vector<CommittedFile> visible;  // sorted by path
  std::vector<std::string> hidden;     // relative paths
};

/// Reads every file under `root` (none when it does not exist).
inline CommittedFiles ReadCommittedFiles(const std::string& root) {
  namespace fs = std::filesystem;
  CommittedFiles out;
  if (!fs::exists(root)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    fs::path rel = fs::relative(entry.path(), root);
    bool hidden = false;
    for (const auto& part : rel) hidden |= part.string().starts_with(".") || part.string().starts_with("_");
    if (hidden) {
      out.hidden.push_back(rel.string());
    } else {
      out.visible.push_back({rel.string(), ReadFile(entry.path())});
    }
  }
  std::sort(out.visible.begin(), out.visible.end(),
            [](const CommittedFile& a, const CommittedFile& b) { return a.path < b.path; });
  return out;
}

}  // namespace freshet::test_support
