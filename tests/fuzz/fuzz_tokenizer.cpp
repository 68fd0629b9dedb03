// libFuzzer target for the tokenizer: arbitrary bytes are encoded (with and without added-token matching), and
// decoding must give back the input with each invalid UTF-8 part replaced by U+FFFD (the input itself when it is
// valid UTF-8); streaming the ids one at a time must give the same text. The tokenizer directory comes from
// RAMPART_TOKENIZER_DIR, else the repository's models/deepseek-v3-tokenizer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "base/utf8.hpp"
#include "tests/fuzz/real_tokenizer.hpp"
#include "tokenizer/detokenizer.hpp"

using namespace rampart::model;

namespace {

void check(bool ok, const char* what) { rampart::fuzz::check(ok, "fuzz_tokenizer", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const tokenizer& tok = rampart::fuzz::real_tokenizer("fuzz_tokenizer");
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string expected = utf8::to_valid(input);
  for (bool parse_special : {true, false}) {
    std::vector<token_id> ids = tok.encode(input, parse_special);
    check(ids.size() <= expected.size(), "more tokens than bytes");
    for (token_id id : ids) check(tok.has_token(id), "an id without a token");
    check(tok.decode(ids) == expected, "decode(encode(x)) differs from x");
    std::string error;
    auto detok = detokenizer::create(tok, {}, &error);
    check(detok.has_value(), "detokenizer refused empty options");
    std::string streamed;
    for (token_id id : ids) streamed.append(detok->feed(id).text);
    streamed.append(detok->finish().text);
    check(streamed == expected, "streaming decode differs from one-shot decode");
  }
  return 0;
}
