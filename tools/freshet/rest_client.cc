#include "rest_client.h"

#include <fmt/format.h>
#include <httplib.h>

#include <charconv>
#include <filesystem>
#include <fstream>

namespace freshet::internal {

Result<RestClient> RestClient::Create(const std::string& address) {
  std::string rest = address;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  if (rest.rfind("https://", 0) == 0) {
    return Status::InvalidArgument(fmt::format("'{}': https is not supported; use http://host:port", address));
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument(fmt::format("'{}' is not a JobManager address (host:port)", address));
  }
  std::string host = rest.substr(0, colon);
  std::string port_text = rest.substr(colon + 1);
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return Status::InvalidArgument(
        fmt::format("'{}' is not a JobManager address (host:port with a port from 1 to 65535)", address));
  }
  return RestClient(host, port);
}

RestClient::RestClient(std::string host, int port)
    : host_(std::move(host)), port_(port), address_(fmt::format("http://{}:{}", host_, port_)) {
  client_ = std::make_unique<httplib::Client>(host_, port_);
  client_->set_connection_timeout(std::chrono::seconds(5));
  // Running a job library's program to build its graph happens within a
  // request, and uploads may be large.
  client_->set_read_timeout(std::chrono::seconds(120));
  client_->set_write_timeout(std::chrono::seconds(120));
}

RestClient::RestClient(RestClient&&) noexcept = default;
RestClient& RestClient::operator=(RestClient&&) noexcept = default;
RestClient::~RestClient() = default;

namespace {

Status FromHttpStatus(int http, const std::string& message) {
  std::string text = fmt::format("{} (HTTP {})", message, http);
  switch (http) {
    case 400:
      return Status::InvalidArgument(text);
    case 404:
      return Status::NotFound(text);
    case 409:
      return Status::FailedPrecondition(text);
    case 503:
      return Status::Unavailable(text);
    default:
      return Status::Internal(text);
  }
}

Result<nlohmann::json> Answer(const std::string& address, const std::string& what, const httplib::Result& r) {
  if (!r) {
    return Status::Unavailable(fmt::format("cannot reach the JobManager at {}: {} (is it running? give its REST "
                                           "address with -m host:port or rest.address/rest.port)",
                                           address, httplib::to_string(r.error())));
  }
  nlohmann::json body = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (r->status >= 400) {
    std::string message;
    if (!body.is_discarded() && body.is_object() && body.contains("errors") && body["errors"].is_array()) {
      for (const nlohmann::json& e : body["errors"]) {
        if (!message.empty()) message += "; ";
        message += e.is_string() ? e.get<std::string>() : e.dump();
      }
    }
    if (message.empty()) message = fmt::format("{} failed", what);
    return FromHttpStatus(r->status, message);
  }
  if (body.is_discarded()) {
    return Status::Internal(fmt::format("{}: the JobManager at {} answered with a body that is not JSON", what,
                                        address));
  }
  return body;
}

}  // namespace

Result<nlohmann::json> RestClient::Get(const std::string& path) {
  return Answer(address_, "GET " + path, client_->Get(path.c_str()));
}

Result<nlohmann::json> RestClient::Post(const std::string& path, const nlohmann::json& body) {
  return Answer(address_, "POST " + path, client_->Post(path.c_str(), body.dump(), "application/json"));
}

Result<nlohmann::json> RestClient::Patch(const std::string& path) {
  return Answer(address_, "PATCH " + path, client_->Patch(path.c_str()));
}

Result<nlohmann::json> RestClient::Upload(const std::string& path, const std::string& field,
                                          const std::string& file_path) {
  std::ifstream in(file_path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("cannot read {}", file_path));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  httplib::MultipartFormDataItems items = {
      {field, std::move(content), std::filesystem::path(file_path).filename().string(), "application/octet-stream"}};
  return Answer(address_, "uploading " + file_path, client_->Post(path.c_str(), items));
}

}  // namespace freshet::internal
