// The web dashboard's files, embedded in the binary at build time (net/dashboard/, and Chart.js from Debian's
// libjs-chart.js, pinned by sha256 in net/CMakeLists.txt): served by the operators' HTTP listener, nothing read
// from disk at run time.
#pragma once

#include <string_view>
#include <vector>

namespace rampart::net {

struct dashboard_asset {
  std::string_view path;          // "/", "/dashboard.js", ...
  std::string_view content_type;  // without its charset: every asset is UTF-8 text
  std::string_view body;
};

const std::vector<dashboard_asset>& dashboard_assets();

}  // namespace rampart::net
