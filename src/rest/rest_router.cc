#include "rest/rest_router.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace freshet::internal {

namespace {

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    if (slash > at) out.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}

/// Quotes a client-supplied value for an error message, cut to a length a
/// reader can take in.
std::string Shown(const std::string& value) {
  std::string shown = value.size() > 80 ? value.substr(0, 80) + "..." : value;
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return "'" + shown + "'";
}

}  // namespace

const std::string& RestRequest::Param(const std::string& name) const {
  static const std::string kEmpty;
  auto it = params.find(name);
  return it == params.end() ? kEmpty : it->second;
}

void RestRouter::Add(const std::string& method, const std::string& pattern, RestHandler handler) {
  routes_.push_back({method, Segments(pattern), std::move(handler)});
}

RestResponse RestRouter::Handle(RestRequest request) const {
  std::vector<std::string> segments = Segments(request.path);
  std::set<std::string> allowed;
  // Of the routes that match, the one with the most literal segments wins
  // (then the first added): /jobs/:jobid/checkpoints/config before
  // /jobs/:jobid/checkpoints/:triggerid, whatever the order of Add.
  const Route* best = nullptr;
  int best_literals = -1;
  std::map<std::string, std::string> best_params;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    int literals = 0;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      const std::string& want = route.segments[i];
      if (!want.empty() && want[0] == ':') {
        params[want.substr(1)] = segments[i];
      } else {
        match = want == segments[i];
        ++literals;
      }
    }
    if (!match) continue;
    if (route.method != request.method) {
      allowed.insert(route.method);
      continue;
    }
    if (literals > best_literals) {
      best = &route;
      best_literals = literals;
      best_params = std::move(params);
    }
  }
  if (best != nullptr) {
    const Route& route = *best;
    request.params = std::move(best_params);
    try {
      return route.handler(request);
    } catch (const std::exception& e) {
      return ErrorResponse(500, fmt::format("internal server error while handling {} {}: {}", request.method,
                                            Shown(request.path), e.what()));
    } catch (...) {
      return ErrorResponse(500, fmt::format("internal server error while handling {} {}", request.method,
                                            Shown(request.path)));
    }
  }
  if (!allowed.empty()) {
    std::string list;
    for (const std::string& m : allowed) list += (list.empty() ? "" : ", ") + m;
    RestResponse r = ErrorResponse(405, fmt::format("method {} is not allowed on {}; allowed: {}", request.method,
                                                    Shown(request.path), list));
    r.headers["Allow"] = list;
    return r;
  }
  return ErrorResponse(404, fmt::format("not found: {} (no such REST path)", Shown(request.path)));
}

RestResponse JsonResponse(int status, const nlohmann::json& body) {
  RestResponse r;
  r.status = status;
  // Replacement keeps invalid UTF-8 (from file names, user messages) from
  // making the response unserialisable.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

RestResponse ErrorResponse(int status, const std::string& message) {
  return JsonResponse(status, {{"errors", nlohmann::json::array({message})}});
}

int HttpStatusOf(const Status& status) {
  switch (status.Code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kCancelled:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

RestResponse ErrorResponse(const Status& status) { return ErrorResponse(HttpStatusOf(status), status.Message()); }

Result<nlohmann::json> JsonBody(const RestRequest& request) {
  bool blank = std::all_of(request.body.begin(), request.body.end(),
                           [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
  if (blank) return nlohmann::json::object();
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Status::InvalidArgument("the request body is not valid JSON");
  if (!body.is_object()) return Status::InvalidArgument("the request body must be a JSON object");
  return body;
}

Result<std::optional<std::string>> StringField(const nlohmann::json& body, const std::string& name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Status::InvalidArgument(fmt::format("field '{}' must be a string", name));
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<int64_t>> IntField(const nlohmann::json& body, const std::string& name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_integer()) return std::optional<int64_t>(it->get<int64_t>());
  if (it->is_number_unsigned()) {
    return Status::InvalidArgument(fmt::format("field '{}' is out of range", name));
  }
  return Status::InvalidArgument(fmt::format("field '{}' must be an integer", name));
}

Result<std::optional<bool>> BoolField(const nlohmann::json& body, const std::string& name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return Status::InvalidArgument(fmt::format("field '{}' must be true or false", name));
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<std::vector<std::string>>> StringListField(const nlohmann::json& body, const std::string& name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::vector<std::string>>();
  if (!it->is_array()) return Status::InvalidArgument(fmt::format("field '{}' must be a list of strings", name));
  std::vector<std::string> out;
  for (const nlohmann::json& e : *it) {
    if (!e.is_string()) return Status::InvalidArgument(fmt::format("field '{}' must be a list of strings", name));
    out.push_back(e.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::vector<std::string>> SplitArguments(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  bool in_token = false;
  char quote = 0;
  for (char c : text) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        current.push_back(c);
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_token = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_token) out.push_back(std::move(current));
      current.clear();
      in_token = false;
    } else {
      current.push_back(c);
      in_token = true;
    }
  }
  if (quote != 0) return Status::InvalidArgument(fmt::format("unclosed {} quote in the program arguments", quote));
  if (in_token) out.push_back(std::move(current));
  return out;
}

Result<std::string> HexIdParam(const RestRequest& request, const std::string& name, const std::string& what) {
  std::string value = request.Param(name);
  bool hex = value.size() == 32 && std::all_of(value.begin(), value.end(), [](char c) {
               return std::isxdigit(static_cast<unsigned char>(c)) != 0;
             });
  if (!hex) {
    return Status::InvalidArgument(fmt::format("{} is not a valid {} (32 hexadecimal digits)", Shown(value), what));
  }
  std::transform(value.begin(), value.end(), value.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  return value;
}

}  // namespace freshet::internal
