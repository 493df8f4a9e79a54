#pragma once
/// Errors as values: `Status` and `Result<T>`, used across module boundaries.
///
/// Codes and whether a caller may retry:
///   kOk                  success.
///   kInvalidArgument     a user mistake (bad setting, malformed input); not retryable.
///   kNotFound            a named file, partition or object does not exist; not retryable.
///   kIoError             the operating system refused an operation; retryable.
///   kUnavailable         a peer (socket, process) cannot be reached now; retryable.
///   kUserFunctionError   a user function threw; the job fails, a restart may help.
///   kCancelled           the operation was cancelled on request; not retryable.
///   kCorruption          bytes did not decode; not retryable.
///   kFailedPrecondition  the system is not in a state that allows the operation
///                        (e.g. a snapshot incompatible with the job); not retryable.
///   kInternal            an invariant of Freshet broke; a bug.

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace freshet {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kIoError,
  kUnavailable,
  kUserFunctionError,
  kCancelled,
  kCorruption,
  kFailedPrecondition,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status UserFunctionError(std::string m) { return {StatusCode::kUserFunctionError, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool IsOk() const { return code_ == StatusCode::kOk; }
  StatusCode Code() const { return code_; }
  const std::string& Message() const { return message_; }
  /// "InvalidArgument: <message>", or "OK".
  std::string ToString() const;

  /// Returns a status with `context` prepended to the message: "context: message".
  Status WithContext(std::string_view context) const;

  /// Marks a deliberate drop of a status.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// Thrown by the few APIs that return plain values (for example
/// `DataStream::ExecuteAndCollect`) when the job fails. Carries the status.
class JobFailedError : public std::runtime_error {
 public:
  explicit JobFailedError(Status status)
      : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const Status& GetStatus() const { return status_; }

 private:
  Status status_;
};

/// A value or the status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.IsOk()) status_ = Status::Internal("Result constructed from an OK status without a value");
  }

  bool IsOk() const { return value_.has_value(); }
  const Status& GetStatus() const { return status_; }
  T& Value() & { return *value_; }
  const T& Value() const& { return *value_; }
  T&& Value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  /// The value, or throws JobFailedError with the status.
  T ValueOrThrow() && {
    if (!value_) throw JobFailedError(status_);
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace freshet

#define FRESHET_CONCAT_INNER(a, b) a##b
#define FRESHET_CONCAT(a, b) FRESHET_CONCAT_INNER(a, b)

#define FRESHET_RETURN_IF_ERROR(expr)          \
  do {                                         \
    ::freshet::Status _st = (expr);            \
    if (!_st.IsOk()) return _st;               \
  } while (0)

#define FRESHET_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.IsOk()) return tmp.GetStatus();            \
  lhs = std::move(tmp).Value()

#define FRESHET_ASSIGN_OR_RETURN(lhs, expr) \
  FRESHET_ASSIGN_OR_RETURN_IMPL(FRESHET_CONCAT(_result_, __LINE__), lhs, expr)

/// Internal invariant check: aborts with context. Never used for user mistakes.
#define FRESHET_CHECK(cond)                                                          \
  do {                                                                               \
    if (!(cond)) ::freshet::internal::CheckFailed(#cond, __FILE__, __LINE__, nullptr); \
  } while (0)
#define FRESHET_CHECK_MSG(cond, msg)                                                 \
  do {                                                                               \
    if (!(cond)) ::freshet::internal::CheckFailed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)

namespace freshet::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line, const char* msg);
}  // namespace freshet::internal
