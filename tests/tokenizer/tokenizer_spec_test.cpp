// Encoding and decoding with the real DeepSeek-V3 tokenizer against the ids and rules stated in
// shared/specs/tokenizer.md (§2 id space, §3 encoding, §4 decoding, §8 checklist) and the edge-case fixture.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/tokenizer/tokenizer_test_support.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace rampart::model;
using rampart::test::byte_token;
using rampart::test::byte_tokens;
using ids = std::vector<token_id>;

TEST_CASE("the id space is DeepSeek-V3's", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  CHECK(tok->vocab_size() == 128815);
  CHECK(tok->bos_id() == 0);
  CHECK(tok->eos_id() == 1);
  CHECK(tok->bos_text() == "<｜begin▁of▁sentence｜>");
  CHECK(tok->add_bos_token());
  // Byte tokens per §2: "!" = 3, space = 223, "\n" = 201, 0x00 = 191, 0x80 = 225, 0xFF = 190.
  CHECK(byte_token('!') == 3);
  CHECK(byte_token(' ') == 223);
  CHECK(byte_token('\n') == 201);
  CHECK(byte_token(0x00) == 191);
  CHECK(byte_token(0x80) == 225);
  CHECK(byte_token(0xFF) == 190);
  for (int b = 0; b < 256; ++b) CHECK(tok->token_bytes(byte_token(static_cast<unsigned char>(b))) == std::string(1, static_cast<char>(b)));
  CHECK(tok->added_token_id("<｜User｜>") == 128803);
  CHECK(tok->added_token_id("<|EOT|>") == 128805);
  CHECK(tok->added_token_id("<｜tool▁sep｜>") == 128814);
  CHECK(!tok->added_token_id("<｜nope｜>"));
  // special is true for BOS/EOS/pad, the placeholders and <|EOT|>, false for the chat and tool tokens.
  CHECK(tok->is_special(0));
  CHECK(tok->is_special(128000));
  CHECK(tok->is_special(128799));
  CHECK(tok->is_special(128805));
  CHECK(!tok->is_special(128803));
  CHECK(!tok->is_special(128814));
  CHECK(!tok->is_special(3));
  CHECK(!tok->has_token(128815));
  CHECK(!tok->has_token(-1));
}

TEST_CASE("encode adds no BOS (spec 8.1)", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  // "Hello!" is 19923, 3 in the spec's chat example.
  CHECK(tok->encode("Hello!") == ids{19923, 3});
  CHECK(tok->encode("").empty());
}

TEST_CASE("added tokens are matched first and absorb no spaces (spec 3.1, 8.2)", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  CHECK(tok->encode(" <｜User｜> ") == ids{223, 128803, 223});
  CHECK(tok->encode("<｜User｜><｜Assistant｜>") == ids{128803, 128804});
  CHECK(tok->encode("<|EOT|>") == ids{128805});
  // Without parse_special the same text is ordinary pieces: no added id, and it decodes back.
  ids plain = tok->encode("<｜User｜>", false);
  CHECK(plain.size() > 1);
  for (token_id id : plain) CHECK(id < 128000);
  CHECK(tok->decode(plain) == "<｜User｜>");
  // A near miss is not a token.
  CHECK(tok->encode("<｜User｜").size() > 1);
}

TEST_CASE("encode_segments recognizes added tokens only in segments that allow it", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  std::vector<token_id> out;
  tok->encode_segments({{"<｜User｜>", true}, {"<｜Assistant｜>", false}}, &out);
  REQUIRE(!out.empty());
  CHECK(out[0] == 128803);
  CHECK(std::count(out.begin(), out.end(), 128804) == 0);
  // Segments are one text for the pre-tokenizer: "a" + " b" encodes like "a b".
  out.clear();
  tok->encode_segments({{"a", false}, {" b", true}}, &out);
  CHECK(out == tok->encode("a b"));
  // A token split across two segments is not recognized.
  out.clear();
  tok->encode_segments({{"<｜Us", true}, {"er｜>", true}}, &out);
  CHECK(std::count(out.begin(), out.end(), 128803) == 0);
}

TEST_CASE("digits and the CJK class split before the main pattern (spec 8.3, 8.5)", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  CHECK(tok->encode("a  \x01") == ids{67, 223, 223, 192});
  CHECK(tok->encode("a  123") == ids{67, 262, 6895});
  // " 123": the space is a lone token (223).
  ids spaced = tok->encode(" 123");
  REQUIRE(!spaced.empty());
  CHECK(spaced[0] == 223);
}

TEST_CASE("decode drops unknown ids, skips only special tokens, and keeps spaces and BOM (spec 8.11)", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  // 😀 = 28927 (F0 9F 98) + 225 (80).
  CHECK(tok->decode({28927, 225}) == "😀");
  CHECK(tok->decode({28927, 128805, 225}, true) == "😀");
  CHECK(tok->decode({28927, 128805, 225}, false) == "\xEF\xBF\xBD<|EOT|>\xEF\xBF\xBD");
  CHECK(tok->decode({128815, 129279, -1, 3, 1 << 30}) == "!");
  CHECK(tok->decode({}) == "");
  CHECK(tok->decode({0, 3, 1}, true) == "!");
  CHECK(tok->decode({0, 3, 1}, false) == "<｜begin▁of▁sentence｜>!<｜end▁of▁sentence｜>");
  // <｜User｜> is not special: skipping keeps it.
  CHECK(tok->decode({128803}, true) == "<｜User｜>");
  CHECK(tok->decode(tok->encode(" hello")) == " hello");
  CHECK(tok->decode(tok->encode("\xEF\xBB\xBFhi")) == "\xEF\xBB\xBFhi");
  // A lone trailing fragment is one U+FFFD.
  CHECK(tok->decode({28927}) == "\xEF\xBF\xBD");
}

TEST_CASE("invalid UTF-8 input is encoded as if each maximal invalid part were U+FFFD (spec 8.13)", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  const std::string r = "\xEF\xBF\xBD";
  CHECK(tok->encode("a\xFF" "b") == tok->encode("a" + r + "b"));
  // A CESU-8 surrogate: ED is a valid lead whose second byte must be 80..9F, so ED, A0, 80 are three parts.
  CHECK(tok->encode("x\xED\xA0\x80y") == tok->encode("x" + r + r + r + "y"));
  // A truncated 4-byte sequence at the end is one part.
  CHECK(tok->encode("ok\xF0\x9F\x98") == tok->encode("ok" + r));
  // Overlong encodings of "/" are two invalid bytes.
  CHECK(tok->encode("\xC0\xAF") == tok->encode(r + r));
  CHECK(tok->decode(tok->encode("a\xFF" "b")) == "a" + r + "b");
}

TEST_CASE("BPE merges lowest rank first, leftmost on ties, and a 20,000-character piece encodes", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  // From edge_cases.jsonl: 20,000 "a" are 2,500 times id 89086 ("a" x 8); "ab" x 20,000 is 20,000 times 425.
  CHECK(tok->encode(std::string(20000, 'a')) == ids(2500, 89086));
  std::string abab;
  for (int i = 0; i < 20000; ++i) abab += "ab";
  CHECK(tok->encode(abab) == ids(20000, 425));
  // A long piece of many different letters round-trips (tokenizer_bpe_test.cpp checks such pieces against a
  // plain reference BPE).
  std::string mixed;
  uint32_t x = 12345;
  for (int i = 0; i < 20000; ++i) {
    x = x * 1103515245u + 12345u;
    mixed += static_cast<char>('a' + (x >> 16) % 26);
  }
  ids encoded = tok->encode(mixed);
  CHECK(tok->decode(encoded) == mixed);
}
