#include "cluster/log_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace freshet::internal {

namespace fs = std::filesystem;

std::vector<LogFileInfo> ListLogFiles(const std::string& dir) {
  std::vector<LogFileInfo> files;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    LogFileInfo info;
    info.name = e.path().filename().string();
    std::error_code size_ec, time_ec;
    uintmax_t size = fs::file_size(e.path(), size_ec);
    info.size = size_ec ? 0 : static_cast<int64_t>(size);
    auto mtime = fs::last_write_time(e.path(), time_ec);
    if (!time_ec) {
      info.mtime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                          .count();
    }
    files.push_back(std::move(info));
  }
  std::sort(files.begin(), files.end(), [](const LogFileInfo& a, const LogFileInfo& b) { return a.name < b.name; });
  return files;
}

Result<std::string> ReadLogFile(const std::string& dir, const std::string& name, size_t max_bytes) {
  std::error_code ec;
  bool listed = false;
  if (!dir.empty() && name.find('/') == std::string::npos && name != "." && name != "..") {
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      if (e.path().filename().string() == name && e.is_regular_file(ec)) {
        listed = true;
        break;
      }
    }
  }
  if (!listed) {
    std::string shown = name.size() > 80 ? name.substr(0, 80) + "..." : name;
    return Status::NotFound(fmt::format("there is no log file '{}'", shown));
  }
  fs::path path = fs::path(dir) / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("cannot read log file '{}'", name));
  uintmax_t size = fs::file_size(path, ec);
  if (!ec && size > max_bytes) in.seekg(static_cast<std::streamoff>(size - max_bytes));
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  // The file may have grown since its size was taken.
  if (bytes.size() > max_bytes) bytes.erase(0, bytes.size() - max_bytes);
  return bytes;
}

}  // namespace freshet::internal
