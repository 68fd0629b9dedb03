// Where a forward pass runs, as configuration spells it: "cpu" or "cuda:N".
#pragma once

#include <string>

namespace rampart {

// "cpu" -> -1, "cuda:N" (N a device index 0-255, no leading zeros) -> N; anything else -> -2 with a one-line *err.
int parse_device_name(const std::string& text, std::string* err);

}  // namespace rampart
