#include "rest/rest_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <cerrno>
#include <cstring>

#include "common/logging.h"
#include "rest/web_assets.h"

namespace freshet::internal {

namespace {

RestRequest ToRestRequest(const httplib::Request& req) {
  RestRequest r;
  r.method = req.method;
  r.path = req.path;
  // Flink serves its API under /v1 as well as at the root.
  if (r.path == "/v1" || r.path.rfind("/v1/", 0) == 0) r.path = r.path.substr(3);
  for (const auto& [key, value] : req.params) r.query.emplace(key, value);
  r.body = req.body;
  r.content_type = req.get_header_value("Content-Type");
  for (const auto& [field, file] : req.files) {
    // Form fields without a file name are plain values, not uploads.
    if (!file.filename.empty()) r.uploads.push_back({field, file.filename, file.content});
  }
  return r;
}

}  // namespace

RestServer::RestServer(RestContext context, RestServerOptions options)
    : context_(std::move(context)), options_(std::move(options)) {
  context_.address = [this] { return Address(); };
  AddAllHandlers(router_, context_);
}

RestServer::~RestServer() { Stop(); }

std::string RestServer::Address() const {
  const std::string& host = options_.advertised_address.empty() ? options_.bind_address : options_.advertised_address;
  return fmt::format("http://{}:{}", host, Port());
}

Status RestServer::Start() {
  if (server_ != nullptr) return Status::FailedPrecondition("the REST endpoint is started already");
  auto server = std::make_unique<httplib::Server>();
  int threads = std::max(1, options_.threads);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server->set_payload_max_length(options_.max_body_bytes);
  // SO_REUSEADDR (restart while old connections linger), not httplib's
  // default SO_REUSEPORT, which would let a second JobManager share the port.
  server->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->set_read_timeout(std::chrono::seconds(60));
  server->set_write_timeout(std::chrono::seconds(60));
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    RestResponse r = router_.Handle(ToRestRequest(req));
    res.status = r.status;
    for (const auto& [name, value] : r.headers) res.set_header(name, value);
    res.set_content(std::move(r.body), r.content_type.c_str());
  };
  // The web UI's files, before the catch-all below (httplib takes the first
  // pattern that matches): "/" and "/web/..." are no API paths.
  auto web_handler = [](const httplib::Request& req, httplib::Response& res) {
    RestResponse r = ServeWebAsset(req.path, req.get_header_value("If-None-Match"));
    res.status = r.status;
    for (const auto& [name, value] : r.headers) res.set_header(name, value);
    if (r.status != 304) res.set_content(std::move(r.body), r.content_type.c_str());
  };
  server->Get("/", web_handler);
  server->Get("/web/.*", web_handler);
  // Every other path goes to the router, which knows the routes, the 404s
  // and the 405s.
  server->Get(".*", handler);
  server->Post(".*", handler);
  server->Put(".*", handler);
  server->Patch(".*", handler);
  server->Delete(".*", handler);
  server->Options(".*", handler);
  // Errors httplib answers itself (malformed requests, 413, 414) get
  // Flink's error body too.
  server->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = res.status == 413   ? "the request body is too large"
                          : res.status == 414 ? "the request path is too long"
                                              : fmt::format("the request could not be served (HTTP {})", res.status);
    res.set_content(ErrorResponse(res.status, message).body, "application/json; charset=UTF-8");
    return httplib::Server::HandlerResponse::Handled;
  }));

  int port = options_.port;
  errno = 0;
  if (port == 0) {
    port = server->bind_to_any_port(options_.bind_address);
    if (port <= 0) port = -1;
  } else if (!server->bind_to_port(options_.bind_address, port)) {
    port = -1;
  }
  if (port < 0) {
    return Status::Unavailable(fmt::format("cannot listen on {}:{} (rest.bind-address, rest.port){}",
                                           options_.bind_address, options_.port,
                                           errno != 0 ? fmt::format(": {}", std::strerror(errno)) : ""));
  }
  port_.store(port);
  server_ = std::move(server);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() only takes effect once the server runs: wait for that, so that
  // a Stop() right after Start() cannot be lost.
  for (int i = 0; i < 10000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Log("rest")->info("REST endpoint listening on {}:{}", options_.bind_address, port);
  return Status::Ok();
}

void RestServer::Stop() {
  if (server_ == nullptr) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace freshet::internal
