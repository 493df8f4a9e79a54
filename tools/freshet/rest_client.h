#pragma once
// The CLI's client of the JobManager's REST endpoint: JSON requests and
// job library uploads over HTTP, errors as Status values that say what
// went wrong (the JobManager is unreachable; it answered an error).

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "freshet/status.h"

namespace httplib {
class Client;
}

namespace freshet::internal {

class RestClient {
 public:
  /// `address` is "host:port" or "http://host:port". Error: malformed.
  static Result<RestClient> Create(const std::string& address);
  RestClient(RestClient&&) noexcept;
  RestClient& operator=(RestClient&&) noexcept;
  ~RestClient();

  /// "http://host:port".
  const std::string& Address() const { return address_; }

  /// Errors: Unavailable (cannot connect; names the address), or the
  /// server's error (4xx/5xx) with the messages of its {"errors": [...]}
  /// body and the HTTP status, mapped back to a code (404 NotFound,
  /// 400 InvalidArgument, 409 FailedPrecondition, 503 Unavailable, other Internal).
  Result<nlohmann::json> Get(const std::string& path);
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& body);
  Result<nlohmann::json> Patch(const std::string& path);
  /// Uploads the file at `file_path` as multipart/form-data field `field`.
  Result<nlohmann::json> Upload(const std::string& path, const std::string& field, const std::string& file_path);

 private:
  RestClient(std::string host, int port);
  std::string host_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace freshet::internal
