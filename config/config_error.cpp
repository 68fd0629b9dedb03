#include "config/config_error.hpp"

#include <fstream>
#include <sstream>

namespace rampart::config {

bool read_config_file(const std::string& file, std::string* text, config_error* err, const char* message) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    *err = config_error{file, 0, 0, "", message};
    return false;
  }
  std::ostringstream out;
  out << in.rdbuf();
  *text = out.str();
  return true;
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
