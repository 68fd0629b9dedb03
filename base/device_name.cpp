#include "base/device_name.hpp"

namespace rampart {

int parse_device_name(const std::string& text, std::string* err) {
  if (text == "cpu") return -1;
  const std::string prefix = "cuda:";
  if (text.compare(0, prefix.size(), prefix) == 0 && text.size() > prefix.size() && text.size() <= prefix.size() + 3) {
    int n = 0;
    bool digits = true;
    for (size_t i = prefix.size(); i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') digits = false;
      n = n * 10 + (text[i] - '0');
    }
    if (digits && n <= 255 && (text.size() == prefix.size() + 1 || text[prefix.size()] != '0')) return n;
  }
  *err = "device must be \"cpu\" or \"cuda:N\" with N a device index (0-255), not \"" + text.substr(0, 40) + "\"";
  return -2;
}

}  // namespace rampart
