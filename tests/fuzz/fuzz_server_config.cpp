// Fuzzes the server configuration schema (config/rampart.toml: every section, [monitor] included): any bytes must
// parse or fail with a located error naming this file, never crash; whatever is accepted holds the bounds the
// schema promises (a read buffer that fits the connection budget, a shard link that is either authenticated or
// on loopback, a monitor configuration that validates).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/server_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  server_config c;
  config_error err;
  // No base directory: a relative path stays relative to the fuzzer's own directory (nothing there is a key).
  if (!parse_server_config(text, "fuzz.toml", "", &c, &err)) {
    // (A key file the input names that is not a key file is reported at its own path and line.)
    if (err.message.empty() || err.file.empty() || err.line < 0 || err.column < 0) std::abort();
    return 0;
  }
  const frontend_config& f = c.frontend;
  if (f.endpoint.empty() || f.max_message_size < 256 || f.rcvhwm < 1 ||
      f.rcvhwm * f.max_message_size > f.connection_memory_budget || f.source_burst_bytes < f.max_message_size + 256)
    std::abort();
  const engine_config& e = c.engine;
  if (!e.shard_endpoints.empty() && e.shards > 1) std::abort();
  if (e.shard_curve_key_file.empty()) {
    if (!e.shard_server_keys.empty()) std::abort();
    for (const auto& ep : e.shard_endpoints)
      if (!is_loopback_endpoint(ep)) std::abort();
  } else if (e.shard_server_keys.size() != e.shard_endpoints.size()) {
    std::abort();
  }
  if (!c.shard.curve_key_file.empty() && c.shard.client_keys.empty()) std::abort();
  if (!c.monitor.validate().empty()) std::abort();
  return 0;
}
