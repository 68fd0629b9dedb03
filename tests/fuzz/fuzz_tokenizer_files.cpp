// Fuzzes loading tokenizer.json and tokenizer_config.json (tokenizer::from_json). An input is the two files'
// text separated by a line "#config" (JSON never holds a '#' outside strings, and a raw newline never inside
// one); without the separator the whole input is tokenizer.json and the config is a minimal valid one. Any bytes
// must load or fail with one line naming the file, never crash or hang; a tokenizer that loads must encode a
// fixed text into ids inside its vocabulary, and decode any ids without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::model;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view tokenizer_json = input;
  std::string_view config_json = R"({"bos_token": "<s>", "eos_token": "</s>"})";
  if (const size_t at = input.find("\n#config\n"); at != std::string_view::npos) {
    tokenizer_json = input.substr(0, at);
    config_json = input.substr(at + 9);
  }
  std::string error;
  auto tok = tokenizer::from_json(tokenizer_json, config_json, &error);
  if (!tok) {
    const bool named = error.rfind("tokenizer.json: ", 0) == 0 || error.rfind("tokenizer_config.json: ", 0) == 0;
    if (!named || error.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  const token_id v = tok->vocab_size();
  if (v < 1 || v > (1 << 24) || tok->bos_id() < 0 || tok->bos_id() >= v || tok->eos_id() < 0 || tok->eos_id() >= v)
    std::abort();
  for (bool special : {true, false})
    for (token_id id : tok->encode("Hello, world! <s> 123 \xe4\xbd\xa0\xe5\xa5\xbd \xff", special))
      if (id < 0 || id >= v) std::abort();
  (void)tok->decode({-1, 0, v - 1, v, v + 1000, tok->eos_id()}, false);
  (void)tok->decode({0, v - 1, tok->bos_id()}, true);
  return 0;
}
