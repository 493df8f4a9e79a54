#pragma once
/// Sinks: a `Sink<T>` creates one writer per parallel subtask.

#include <memory>

#include "freshet/functions.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {

template <class T>
class SinkWriter {
 public:
  virtual ~SinkWriter() = default;
  /// Opens files or connections. An error fails the task with its message.
  virtual Status Open(RuntimeContext& /*context*/) { return Status::Ok(); }
  virtual Status Write(const T& value, Timestamp ts) = 0;
  /// Makes written records durable or visible; `end_of_input` at the end of a bounded job.
  virtual Status Flush(bool /*end_of_input*/) { return Status::Ok(); }
  virtual void Close() {}
};

template <class T>
class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::unique_ptr<SinkWriter<T>> CreateWriter(RuntimeContext& context) const = 0;
};

}  // namespace freshet
