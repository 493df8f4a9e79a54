#pragma once
// Requests, responses and routing of the REST endpoint, independent of the
// HTTP library: handlers see a parsed request and return a response, so
// they can be tested without a socket.
//
// Errors follow Flink: a 4xx or 5xx status with the body
// {"errors": ["<message>"]}. A path no route knows is 404; a known path
// with another method is 405 (with an Allow header).

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "freshet/status.h"

namespace freshet::internal {

/// A file of a multipart/form-data body.
struct RestUpload {
  std::string field;     // the form field ("jarfile")
  std::string filename;  // as the client named it
  std::string content;
};

struct RestRequest {
  std::string method;  // GET, POST, PATCH, DELETE, PUT, ...
  std::string path;    // decoded, without the query
  std::map<std::string, std::string> query;
  std::string body;
  std::string content_type;
  std::vector<RestUpload> uploads;
  /// Path parameters by name (":jobid" -> "jobid"), set by the router.
  std::map<std::string, std::string> params;

  const std::string& Param(const std::string& name) const;
};

struct RestResponse {
  int status = 200;
  std::string content_type = "application/json; charset=UTF-8";
  std::string body;
  std::map<std::string, std::string> headers;
};

using RestHandler = std::function<RestResponse(const RestRequest&)>;

/// Matches requests to handlers by method and path pattern. Patterns are
/// '/'-separated; a segment ":name" matches any one non-empty segment and
/// is passed on as a parameter. When several routes match, the one with
/// the most literal segments wins (then the first added), so
/// `/a/:x/config` takes precedence over `/a/:x/:id`. Add every route before
/// the first Handle; Handle is then safe from any number of threads.
class RestRouter {
 public:
  void Add(const std::string& method, const std::string& pattern, RestHandler handler);
  /// Routes the request. Never throws: an exception leaving a handler is a
  /// 500 naming it.
  RestResponse Handle(RestRequest request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    RestHandler handler;
  };
  std::vector<Route> routes_;
};

RestResponse JsonResponse(int status, const nlohmann::json& body);
/// {"errors": [message]} with `status`.
RestResponse ErrorResponse(int status, const std::string& message);
/// The HTTP status for an error: InvalidArgument 400, NotFound 404,
/// FailedPrecondition and Cancelled 409, Unavailable 503, others 500.
int HttpStatusOf(const Status& status);
RestResponse ErrorResponse(const Status& status);

/// The request body as a JSON object; an empty body is {}. Errors
/// (InvalidArgument): not JSON, not an object.
Result<nlohmann::json> JsonBody(const RestRequest& request);

/// Typed fields of a JSON object body; absent or null fields are nullopt.
/// Errors (InvalidArgument) name the field and the expected type.
Result<std::optional<std::string>> StringField(const nlohmann::json& body, const std::string& name);
Result<std::optional<int64_t>> IntField(const nlohmann::json& body, const std::string& name);
Result<std::optional<bool>> BoolField(const nlohmann::json& body, const std::string& name);
Result<std::optional<std::vector<std::string>>> StringListField(const nlohmann::json& body, const std::string& name);

/// Splits a command line into arguments: whitespace separates them;
/// single or double quotes group (and are removed). Error: an unclosed quote.
Result<std::vector<std::string>> SplitArguments(const std::string& text);

/// An id path parameter of 32 hexadecimal digits (job, vertex, trigger
/// ids), lower-cased. Error (InvalidArgument) names what it should be.
Result<std::string> HexIdParam(const RestRequest& request, const std::string& name, const std::string& what);

}  // namespace freshet::internal
