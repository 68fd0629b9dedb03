// The [monitor] table of a Rampart TOML file -> monitor::monitor_config. Strict: unknown keys, wrong types
// (value_exact, so `true` is not 1) and impossible values are errors with file:line:column and key path.
#pragma once

#include <string>

#include <toml++/toml.h>

#include "config/config_error.hpp"
#include "monitor/monitor_config.hpp"

namespace rampart::config {

// Reads MONITOR_TABLE (the [monitor] table; FILE names its file in errors) over the defaults already in
// *OUT. Returns true and fills *OUT on success; on failure returns false, fills *ERR and leaves *OUT
// unchanged. Nested tables: [monitor.detectors.<detector name>].
bool parse_monitor_config(const toml::table& monitor_table, const std::string& file,
                          monitor::monitor_config* out, config_error* err);

// Convenience for tools: parses the TOML file at PATH and reads its [monitor] table (absent: defaults).
bool load_monitor_config(const std::string& path, monitor::monitor_config* out, config_error* err);

}  // namespace rampart::config
