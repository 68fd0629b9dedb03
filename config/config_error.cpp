#include "config/config_error.hpp"

#include "base/file.hpp"

namespace rampart::config {

bool read_config_file(const std::string& file, std::string* text, config_error* err, const char* message) {
  std::string why;
  if (read_regular_file(file, kMaxConfigFileBytes, text, &why)) return true;
  // A missing or unreadable file keeps the caller's message alone; what the path is, or its size, is added.
  const bool named_wrong = why == "not a regular file" || why.rfind("larger than", 0) == 0;
  *err = config_error{file, 0, 0, "", named_wrong ? std::string(message) + ": " + why : std::string(message)};
  return false;
}

std::string config_error::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

}  // namespace rampart::config
