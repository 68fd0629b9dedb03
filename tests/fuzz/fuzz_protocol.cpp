// Fuzzes the protocol decoder at the real message size (make fuzz runs it with -max_len=1048576 and a
// dictionary): arbitrary bytes split into frames at 0x00 bytes must decode or fail cleanly, and whatever was
// decoded must copy, encode and decode again, the way the server echoes and forwards it.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "net/protocol.hpp"

namespace {

size_t depth(const nlohmann::json& v) {
  size_t d = 0;
  if (v.is_object()) {
    for (const auto& [k, x] : v.items()) d = std::max(d, depth(x));
    return d + 1;
  }
  if (v.is_array()) {
    for (const auto& x : v) d = std::max(d, depth(x));
    return d + 1;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::net;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> frames;
  size_t start = 0;
  for (size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || all[i] == '\0') {
      frames.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  }
  decode_limits limits;
  limits.vocab_size = 129280;
  decode_error err;
  auto msg = decode_client_message(frames, limits, &err);
  if (!msg) {
    // The error event is small whatever the input was.
    auto e = encode_event("error", error_body(err.request_id, err.code, err.message));
    if (e[2].size() > 4096) __builtin_trap();
    return 0;
  }
  const client_message copy = *msg;  // the gateway and the stages copy decoded messages
  if (msg->type == message_type::register_tenant) {
    // An accepted CURVE key is empty or 40 characters.
    const size_t n = copy.registration.curve_public_key.size();
    if (n != 0 && n != 40) __builtin_trap();
  }
  if (msg->type == message_type::generate) {
    const auto& g = copy.generate;
    // Whatever was accepted must satisfy the documented limits.
    if (g.max_tokens < 1 || g.max_tokens > limits.max_tokens_limit) __builtin_trap();
    if (g.stop.size() > limits.max_stop_strings) __builtin_trap();
    for (int32_t id : g.ids) {
      if (id < 0 || id >= limits.vocab_size) __builtin_trap();
    }
    if (static_cast<int64_t>(g.ids.size()) > limits.max_prompt_tokens) __builtin_trap();
    if (g.input_bytes > limits.max_input_bytes) __builtin_trap();
    if (depth(g.messages) + 1 > limits.max_depth) __builtin_trap();  // + 1: the body object around them
    if (g.kind == input_kind::chat) (void)encode_event("x", g.messages);
    // A token event for this request, with the input's bytes as its text (valid UTF-8 or not): the direct
    // writer says exactly what the document would.
    const std::vector<int32_t> ids(g.ids.begin(), g.ids.begin() + std::min<size_t>(g.ids.size(), 4));
    const std::string direct = token_event_body(copy.request_id(), 7, all, ids.data(), ids.size());
    const std::string document =
        nlohmann::json{{"request_id", copy.request_id()}, {"index", 7}, {"text", all}, {"ids", ids}}
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (direct != document) __builtin_trap();
  }
  if (msg->type == message_type::ping) {
    // The echo: encoded into a pong, then read back as a client would send it again.
    if (depth(copy.ping_body) > limits.max_depth) __builtin_trap();
    auto pong = encode_event("pong", copy.ping_body);
    decode_error again;
    std::vector<std::string_view> back = {pong[0], "ping", pong[2]};
    auto re = decode_client_message(back, limits, &again);
    if (!re && pong[2].size() <= limits.max_body_bytes) __builtin_trap();
  }
  return 0;
}
