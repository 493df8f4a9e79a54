#pragma once
// The JobManager's REST endpoint: an HTTP server (cpp-httplib, a thread
// pool of workers) in front of the RestRouter and the handlers of
// rest_handlers.h. Paths are Flink's, with or without the "/v1" prefix.
//
// Threading: Start and Stop from one thread; requests are served on the
// server's own threads, which only call the Dispatcher (thread-safe).

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "freshet/status.h"
#include "rest/rest_handlers.h"
#include "rest/rest_router.h"

namespace httplib {
class Server;
}

namespace freshet::internal {

struct RestServerOptions {
  /// `rest.bind-address`: the interface to listen on.
  std::string bind_address = "127.0.0.1";
  /// `rest.port`; 0 takes any free port (Port() tells which).
  int port = 8081;
  /// `rest.address`: the host name clients use, for the advertised
  /// address; empty: the bind address.
  std::string advertised_address;
  /// Largest request body accepted (job library uploads), in bytes;
  /// larger ones are answered 413.
  size_t max_body_bytes = size_t{512} << 20;
  /// Worker threads serving requests.
  int threads = 8;
};

class RestServer {
 public:
  /// `context.address` is filled in by the server.
  RestServer(RestContext context, RestServerOptions options);
  /// Stop().
  ~RestServer();
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  /// Binds and starts serving. Errors: the address cannot be bound (naming
  /// it and the keys), called twice.
  Status Start();
  /// The bound port (0 before Start).
  int Port() const { return port_.load(); }
  /// "http://<advertised address>:<port>".
  std::string Address() const;
  /// Stops accepting and waits for the serving thread. Idempotent.
  void Stop();

  /// Routes a request without HTTP (tests of the handlers).
  RestResponse Handle(RestRequest request) const { return router_.Handle(std::move(request)); }

 private:
  RestContext context_;
  RestServerOptions options_;
  RestRouter router_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<int> port_{0};
};

}  // namespace freshet::internal
