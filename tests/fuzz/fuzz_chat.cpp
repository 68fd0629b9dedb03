// libFuzzer target for the chat path a `generate` takes: the body is decoded with the protocol's limits, its
// messages parsed and rendered with DeepSeek-V3's chat template and encoded with the real tokenizer. Whatever
// is accepted must render and encode without fault, start with exactly one BOS, and never turn message text
// into control tokens. Tokenizer directory as in fuzz_tokenizer.
#include <cstdint>
#include <string>
#include <string_view>

#include "net/protocol.hpp"
#include "tests/fuzz/real_tokenizer.hpp"
#include "tokenizer/chat_template.hpp"

using namespace rampart;

namespace {

const model::chat_template& chat() {
  static const model::chat_template c = [] {
    std::string error;
    auto t = model::chat_template::create(fuzz::real_tokenizer("fuzz_chat"), &error);
    fuzz::check(t.has_value(), "fuzz_chat", "the tokenizer has no usable chat template");
    return *t;
  }();
  return c;
}

void check(bool ok, const char* what) { fuzz::check(ok, "fuzz_chat", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const model::tokenizer& tok = fuzz::real_tokenizer("fuzz_chat");
  std::string_view body(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> frames = {"rampart/1", "generate", body};
  net::decode_limits limits;
  net::decode_error err;
  auto msg = net::decode_client_message(frames, limits, &err);
  if (!msg || msg->generate.kind != net::input_kind::chat) return 0;
  std::vector<model::chat_message> messages;
  std::string error;
  if (!model::parse_chat_messages(msg->generate.messages, &messages, &error)) return 0;
  std::vector<model::token_id> ids;
  if (!chat().encode(messages, msg->generate.add_generation_prompt, &ids, &error)) return 0;
  check(!ids.empty(), "an encoded prompt is empty");
  const model::token_id bos = tok.bos_id();
  check(ids.front() == bos, "a prompt must start with BOS");
  size_t bos_count = 0;
  for (auto id : ids) bos_count += id == bos;
  check(bos_count == 1, "a prompt must hold exactly one BOS");
  // Message text never becomes a control token: encoding the same messages with their text reduced to "x"
  // gives the same number of added tokens.
  auto added_tokens = [&](const std::vector<model::token_id>& v) {
    size_t n = 0;
    for (auto id : v) n += tok.added_token_id(tok.token_bytes(id)) == id;
    return n;
  };
  const size_t added = added_tokens(ids);
  for (auto& m : messages) {
    if (m.content && !m.content->empty()) m.content = "x";
    for (auto& call : m.tool_calls) {
      if (!call.name.empty()) call.name = "x";
      if (!call.arguments.empty()) call.arguments = "x";
    }
  }
  std::vector<model::token_id> plain;
  check(chat().encode(messages, msg->generate.add_generation_prompt, &plain, &error), "plain messages refused");
  check(added == added_tokens(plain), "message text produced a control token");
  return 0;
}
