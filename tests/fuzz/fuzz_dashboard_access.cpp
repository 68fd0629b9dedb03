// Fuzzes what the web dashboard reads from a request's headers (net/dashboard_access.hpp): the Host check, the
// cookie lookup, the Last-Event-ID parse and the token comparison, each with what must hold for any input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/dashboard_access.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::net;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // The whole input as a Host header: loopback only when it is one of the three names, then nothing or a port.
  if (loopback_host(in)) {
    bool named = false;
    for (std::string_view n : {"127.0.0.1", "localhost", "[::1]"}) {
      named = named || (starts_with(in, n) && (in.size() == n.size() || in[n.size()] == ':'));
    }
    check(named);
  }
  // The input as a Cookie header: the value found is part of it, after "NAME=", and holds no separator.
  const std::string_view value = cookie_value(in, "rampart_operator");
  if (!value.empty()) {
    check(value.data() >= in.data() && value.data() + value.size() <= in.data() + in.size());
    check(value.find(';') == std::string_view::npos);
    check(std::string_view(value.data() - 17, 17) == "rampart_operator=");
  }
  // The input as a Last-Event-ID: a number only when it is all digits, and it reads back as itself.
  if (const uint64_t id = parse_event_id(in); id != 0) {
    check(in.size() <= 19 && in.find_first_not_of("0123456789") == std::string_view::npos);
    const std::string back = std::to_string(id);
    check(in.size() >= back.size() && in.substr(in.size() - back.size()) == back);
    check(in.substr(0, in.size() - back.size()).find_first_not_of('0') == std::string_view::npos);
  }
  // Split in two: the comparison is equality.
  const std::string_view a = in.substr(0, size / 2), b = in.substr(size / 2);
  check(same_secret(a, b) == (a == b));
  check(same_secret(in, in));
  return 0;
}
