// Fuzzes the protocol decoder: arbitrary bytes split into frames at 0x00 bytes must decode or fail cleanly.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "net/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> frames;
  size_t start = 0;
  for (size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || all[i] == '\0') {
      frames.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  }
  rampart::net::decode_limits limits;
  limits.vocab_size = 129280;
  rampart::net::decode_error err;
  auto msg = rampart::net::decode_client_message(frames, limits, &err);
  if (msg && msg->type == rampart::net::message_type::register_tenant) {
    // An accepted CURVE key is empty or 40 characters.
    const size_t n = msg->registration.curve_public_key.size();
    if (n != 0 && n != 40) __builtin_trap();
  }
  if (msg && msg->type == rampart::net::message_type::generate) {
    // Whatever was accepted must satisfy the documented limits.
    if (msg->generate.max_tokens < 1 || msg->generate.max_tokens > limits.max_tokens_limit) __builtin_trap();
    if (msg->generate.stop.size() > limits.max_stop_strings) __builtin_trap();
    for (int32_t id : msg->generate.ids) {
      if (id < 0 || id >= limits.vocab_size) __builtin_trap();
    }
  }
  return 0;
}
