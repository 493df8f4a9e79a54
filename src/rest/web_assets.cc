#include "rest/web_assets.h"

#include <fmt/format.h>

namespace freshet::internal {

const WebAsset* FindWebAsset(std::string_view path) {
  for (const WebAsset& asset : EmbeddedWebAssets()) {
    if (path == asset.path) return &asset;
  }
  return nullptr;
}

RestResponse ServeWebAsset(std::string_view url_path, std::string_view if_none_match) {
  if (EmbeddedWebAssets().empty()) {
    return ErrorResponse(404, "this JobManager was built without the web UI (FRESHET_BUILD_WEB=OFF)");
  }
  std::string_view name;
  if (url_path == "/") {
    name = "index.html";
  } else if (url_path.starts_with("/web/")) {
    name = url_path.substr(5);
  }
  const WebAsset* asset = name.empty() ? nullptr : FindWebAsset(name);
  if (asset == nullptr) {
    std::string shown(url_path.substr(0, 200));
    return ErrorResponse(404, fmt::format("not found: '{}' (no such web UI file)", shown));
  }
  RestResponse response;
  response.content_type = asset->content_type;
  // The files change with every build and their names carry no version:
  // browsers keep them but ask again each time, a cheap 304 when unchanged.
  response.headers["Cache-Control"] = "no-cache";
  response.headers["ETag"] = asset->etag;
  response.headers["X-Content-Type-Options"] = "nosniff";
  if (!if_none_match.empty() && if_none_match.find(asset->etag) != std::string_view::npos) {
    response.status = 304;
    return response;
  }
  response.body.assign(asset->Content());
  return response;
}

}  // namespace freshet::internal
