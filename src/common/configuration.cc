#include "freshet/configuration.h"

#include <charconv>
#include <string_view>

namespace freshet {

std::optional<std::string> Configuration::Get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

namespace {

Result<int64_t> ParseInt(const std::string& key, const std::string& value) {
  int64_t out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  // Accept an optional "ms" suffix for durations.
  std::string_view rest(ptr, static_cast<size_t>(end - ptr));
  if (ec != std::errc() || !(rest.empty() || rest == "ms" || rest == " ms")) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is not an integer");
  }
  return out;
}

// An int setting (no unit suffix): a value outside int's range is an error, not a wrap-around.
Result<int64_t> ParseInt32(const std::string& key, const std::string& value) {
  int out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is out of range");
  }
  if (ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("setting '" + key + "': '" + value + "' is not an integer");
  }
  return out;
}

Result<bool> ParseBool(const std::string& key, const std::string& value) {
  if (value == "true") return true;
  if (value == "false") return false;
  return Status::InvalidArgument("setting '" + key + "': '" + value + "' is not true or false");
}

}  // namespace

Status Configuration::ApplyTo(ExecutionOptions& options) const {
  for (const auto& [key, value] : values_) {
    if (key == "parallelism.default") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.parallelism = static_cast<int>(v);
    } else if (key == "pipeline.max-parallelism") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.max_parallelism = static_cast<int>(v);
    } else if (key == "execution.buffer-timeout") {
      FRESHET_ASSIGN_OR_RETURN(options.buffer_timeout_ms, ParseInt(key, value));
    } else if (key == "pipeline.auto-watermark-interval") {
      FRESHET_ASSIGN_OR_RETURN(options.auto_watermark_interval_ms, ParseInt(key, value));
    } else if (key == "pipeline.operator-chaining") {
      FRESHET_ASSIGN_OR_RETURN(options.chaining_enabled, ParseBool(key, value));
    } else if (key == "taskmanager.memory.segment-size") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.segment_size = static_cast<int>(v);
    } else if (key == "taskmanager.network.memory.buffers-per-channel") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.buffers_per_channel = static_cast<int>(v);
    } else if (key == "taskmanager.network.memory.floating-buffers-per-gate") {
      FRESHET_ASSIGN_OR_RETURN(int64_t v, ParseInt32(key, value));
      options.floating_buffers = static_cast<int>(v);
    } else if (key.starts_with("pipeline.") || key.starts_with("execution.") || key.starts_with("parallelism.")) {
      return Status::InvalidArgument("unknown setting '" + key + "'");
    }
  }
  return options.Validate();
}

Status ExecutionOptions::Validate() const {
  if (parallelism < 1) {
    return Status::InvalidArgument("parallelism.default must be at least 1, got " + std::to_string(parallelism));
  }
  if (max_parallelism < 1 || max_parallelism > 32768) {
    return Status::InvalidArgument("pipeline.max-parallelism must be in [1, 32768], got " +
                                   std::to_string(max_parallelism));
  }
  if (max_parallelism < parallelism) {
    return Status::InvalidArgument("pipeline.max-parallelism (" + std::to_string(max_parallelism) +
                                   ") must not be below parallelism.default (" + std::to_string(parallelism) + ")");
  }
  if (buffer_timeout_ms < -1) {
    return Status::InvalidArgument("execution.buffer-timeout must be -1, 0 or positive, got " +
                                   std::to_string(buffer_timeout_ms));
  }
  if (auto_watermark_interval_ms < 0) {
    return Status::InvalidArgument("pipeline.auto-watermark-interval must not be negative, got " +
                                   std::to_string(auto_watermark_interval_ms));
  }
  if (segment_size < 256) {
    return Status::InvalidArgument("taskmanager.memory.segment-size must be at least 256 bytes, got " +
                                   std::to_string(segment_size));
  }
  if (buffers_per_channel < 1) {
    return Status::InvalidArgument("taskmanager.network.memory.buffers-per-channel must be at least 1, got " +
                                   std::to_string(buffers_per_channel));
  }
  if (floating_buffers < 0) {
    return Status::InvalidArgument("taskmanager.network.memory.floating-buffers-per-gate must not be negative");
  }
  return Status::Ok();
}

}  // namespace freshet
