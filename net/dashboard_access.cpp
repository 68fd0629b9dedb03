#include "net/dashboard_access.hpp"

namespace rampart::net {

bool loopback_host(std::string_view h) {
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view rest = h.substr(close + 1);
    return h.substr(0, close + 1) == "[::1]" && (rest.empty() || rest.front() == ':');
  }
  const std::string_view name = h.substr(0, h.find(':'));
  return name == "127.0.0.1" || name == "localhost";
}

std::string_view cookie_value(std::string_view c, std::string_view name) {
  while (!c.empty()) {
    const size_t semi = c.find(';');
    std::string_view pair = c.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (semi == std::string_view::npos) break;
    c.remove_prefix(semi + 1);
  }
  return {};
}

uint64_t parse_event_id(std::string_view text) {
  if (text.empty() || text.size() > 19) return 0;
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  return v;
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace rampart::net
