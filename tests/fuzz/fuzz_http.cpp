// Fuzzes the HTTP door's request path up to the JSON body (make fuzz runs it with -max_len=1114112, the
// largest request the door reads at its default limits, and a dictionary): arbitrary bytes as one client's
// request must be refused with a whole HTTP answer, taken as the generate the server would be handed, or left
// waiting for more; never anything else, and never a response without its status line and JSON error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/http_door.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::net;
  static const http_door_options options = [] {
    http_door_options o;
    o.model_name = "m";
    return o;
  }();
  const http_reading r = read_http_request(std::string_view(reinterpret_cast<const char*>(data), size), options);
  check(!(r.request && !r.response.empty()));
  if (r.request) {
    const auto& g = r.request->message.generate;
    check(r.request->message.type == message_type::generate);
    check(g.request_id == "r");
    check(g.max_tokens >= 1 && g.max_tokens <= options.limits.max_tokens_limit);
    check(g.input_bytes <= options.limits.max_input_bytes);
    check(g.stop.size() <= options.limits.max_stop_strings);
    check(static_cast<int64_t>(g.ids.size()) <= options.limits.max_prompt_tokens);
    check(r.request->model == "m");
    // What the server copies and serialises must stay within the structural bounds.
    (void)g.messages.dump();
  }
  if (!r.response.empty()) {
    check(r.response.rfind("HTTP/1.1 ", 0) == 0);
    const size_t body = r.response.find("\r\n\r\n");
    check(body != std::string::npos);
    const auto parsed = nlohmann::json::parse(r.response.substr(body + 4), nullptr, false);
    check(!parsed.is_discarded());
    check(r.response.find("Content-Length: " + std::to_string(r.response.size() - body - 4) + "\r\n") !=
          std::string::npos);
  }
  return 0;
}
