// Logging through spdlog: human lines by default, JSON lines (one object per line, JSON-escaped) on request.
#pragma once

#include <string>

#include "config/server_config.hpp"

namespace rampart::actors {

// Installs the default logger for the process according to CONFIG. Returns false with *error when the log
// file cannot be opened.
bool setup_logging(const config::log_config& config, std::string* error);

}  // namespace rampart::actors
