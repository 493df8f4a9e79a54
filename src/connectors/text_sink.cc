#include <cstdio>
#include <mutex>

#include "freshet/connectors.h"

namespace freshet::internal {

void WriteConsoleLine(const std::string& line, bool to_stderr) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  FILE* f = to_stderr ? stderr : stdout;
  std::fwrite(line.data(), 1, line.size(), f);
  std::fputc('\n', f);
}

Result<std::string> TextSinkFilePath(FileSystem& fs, const std::string& path, int subtask, int parallelism) {
  if (parallelism == 1) return path;
  FRESHET_RETURN_IF_ERROR(fs.CreateDirectories(path).WithContext("text file sink"));
  return path + "/" + std::to_string(subtask + 1);
}

Status TextFileWriterCore::Open() {
  Result<std::unique_ptr<WritableFile>> f = fs_->OpenForWrite(path_);
  if (!f.IsOk()) return f.GetStatus().WithContext("text file sink");
  file_ = std::move(*f);
  return Status::Ok();
}

Status TextFileWriterCore::AppendLine(const std::string& text) {
  pending_ += text;
  pending_ += '\n';
  if (pending_.size() >= 64 * 1024) return Flush();
  return Status::Ok();
}

Status TextFileWriterCore::Flush() {
  if (pending_.empty()) return Status::Ok();
  Status s = file_->Append(pending_.data(), pending_.size()).WithContext("text file sink");
  pending_.clear();
  FRESHET_RETURN_IF_ERROR(s);
  return file_->Flush();
}

void TextFileWriterCore::Close() {
  if (file_ == nullptr) return;
  Flush().IgnoreError();  // Finish() already flushed on success; on failure the output is incomplete anyway
  file_->Close().IgnoreError();
  file_.reset();
}

}  // namespace freshet::internal
