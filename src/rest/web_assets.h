#pragma once
// The web UI's files (web/src and the front-end packages it uses), compiled
// into the cluster library by web/CMakeLists.txt, and how the REST server
// answers for them: GET / is index.html, GET /web/<name> any other file.
// Flink serves its UI at the root of the REST endpoint too; the API's paths
// are untouched.
//
// Threading: the table is constant; every function is thread-safe.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "rest/rest_router.h"

namespace freshet::internal {

struct WebAsset {
  /// The served name under /web/, e.g. "app.js" or "vendor/uPlot.min.css".
  const char* path;
  const char* content_type;
  /// A quoted strong ETag derived from the content.
  const char* etag;
  const unsigned char* data;
  size_t size;

  std::string_view Content() const { return {reinterpret_cast<const char*>(data), size}; }
};

/// Every embedded file; empty when the build had FRESHET_BUILD_WEB=OFF.
/// Defined in the source web/embed_assets.cmake generates.
std::span<const WebAsset> EmbeddedWebAssets();

/// The file served as `path` (relative to /web/), or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

/// The answer to GET `url_path` ("/" or "/web/<name>"): the file with its
/// content type and caching headers, 304 when `if_none_match` names its
/// ETag, 404 with an error body when there is no such file (or no UI was
/// built, saying so).
RestResponse ServeWebAsset(std::string_view url_path, std::string_view if_none_match);

}  // namespace freshet::internal
