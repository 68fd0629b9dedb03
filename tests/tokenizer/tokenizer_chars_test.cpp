// Character starts (bpe_char_starts): merging a piece from each character's start must give exactly what merging
// it from its bytes gives. Checked on two small tokenizers built here whose merges break each condition of the
// proof in tokenizer_bpe.cpp, and on the real DeepSeek-V3 merges for every character that has a start, alone and
// between neighbours of every kind.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "base/utf8.hpp"
#include "tests/tokenizer/tokenizer_test_support.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/tokenizer_pretokenizer.hpp"

using namespace rampart::model;
using nlohmann::json;

namespace {

// BYTES written in the byte-level alphabet (shared/specs/tokenizer.md §3.2 step 4).
std::string in_alphabet(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    int next = 0x100, cp = b;
    for (int x = 0; x < 256; ++x) {
      bool self = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
      if (!self && x == b) cp = next;
      if (!self) ++next;
    }
    utf8::append_code_point(static_cast<uint32_t>(cp), &out);
  }
  return out;
}

// A DeepSeek-V3-shaped tokenizer.json with the 256 byte tokens (ids 2 + byte) and MERGES, each a pair of raw
// byte strings; merge r makes id 258 + r.
std::string tokenizer_with_merges(const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  vocab["<s>"] = 0;
  vocab["</s>"] = 1;
  for (int b = 0; b < 256; ++b) vocab[in_alphabet(std::string(1, static_cast<char>(b)))] = 2 + b;
  json merge_list = json::array();
  for (size_t r = 0; r < merges.size(); ++r) {
    vocab[in_alphabet(merges[r].first + merges[r].second)] = 258 + static_cast<int>(r);
    merge_list.push_back(in_alphabet(merges[r].first) + " " + in_alphabet(merges[r].second));
  }
  auto split = [](const char* pattern) -> json {
    return json{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
  };
  auto added = [](int id, const char* content) {
    return json{{"id", id},         {"content", content}, {"special", true},     {"normalized", false},
                {"lstrip", false},  {"rstrip", false},    {"single_word", false}};
  };
  json pre = json::array({split(kDeepSeekV3SplitPatterns[0]), split(kDeepSeekV3SplitPatterns[1]),
                          split(kDeepSeekV3SplitPatterns[2]),
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", false}}});
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", json::array({added(0, "<s>"), added(1, "</s>")})},
              {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
              {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", pre}}},
              {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}}},
              {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", vocab},
                {"merges", merge_list}}}}
      .dump();
}

const char* kConfig = R"({"bos_token": "<s>", "eos_token": "</s>"})";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The tokens BPE starts from for the whole characters of TEXT, by the table.
std::vector<int32_t> start_of(const tokenizer::impl& t, const std::string& text) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < text.size();) {
    int length = 0;
    uint32_t cp = utf8::decode_valid(reinterpret_cast<const unsigned char*>(text.data()) + i, &length);
    bpe_char_starts::start s;  // none
    if (cp >= 0x80 && cp < bpe_char_starts::kEnd) s = t.char_starts.of(cp);
    if (s.first >= 0) {
      out.push_back(s.first);
      if (s.second >= 0) out.push_back(s.second);
    } else {
      for (size_t k = i; k < i + static_cast<size_t>(length); ++k) {
        out.push_back(t.byte_ids[static_cast<unsigned char>(text[k])]);
      }
    }
    i += static_cast<size_t>(length);
  }
  return out;
}

std::vector<int32_t> merged(const tokenizer::impl& t, const std::vector<int32_t>& start) {
  std::vector<int32_t> out;
  bpe_merge(t.merges, start.data(), start.size(), &out);
  return out;
}

}  // namespace

TEST_CASE("a character gets no start where a merge across its edge ranks below its own merges", "[tokenizer]") {
  const std::string e_acute = "\xC3\xA9", ko_kai = "\xE0\xB8\x81";  // é and Thai ก, letters like "a"
  SECTION("an edge merge before the character's only merge (condition a)") {
    // "a" + lead byte of é (rank 0) comes before é's own merge (rank 1): "aé" is aÃ + ©, not a + é.
    std::string error;
    auto tok = tokenizer::from_json(tokenizer_with_merges({{"a", "\xC3"}, {"\xC3", "\xA9"}}), kConfig, &error);
    INFO(error);
    REQUIRE(tok);
    CHECK(tok->encode("a" + e_acute) == std::vector<token_id>{258, 2 + 0xA9});
    CHECK(tok->encode(e_acute) == std::vector<token_id>{259});
    CHECK(tok->encode(e_acute + e_acute) == std::vector<token_id>{259, 259});
  }
  SECTION("an edge merge of a partial state before the character's last merge (conditions a and b)") {
    // ก = E0 B8 81: E0+B8 (rank 0), then "a" + that (rank 1) before the last merge (rank 2). From bytes, "aก"
    // is a·E0·B8 + 81; ก may start from E0·B8 + 81 but not from ก.
    std::string error;
    auto tok = tokenizer::from_json(
        tokenizer_with_merges({{"\xE0", "\xB8"}, {"a", "\xE0\xB8"}, {"\xE0\xB8", "\x81"}}), kConfig, &error);
    INFO(error);
    REQUIRE(tok);
    CHECK(tok->encode("a" + ko_kai) == std::vector<token_id>{259, 2 + 0x81});
    CHECK(tok->encode(ko_kai) == std::vector<token_id>{260});
    CHECK(tok->encode(ko_kai + ko_kai) == std::vector<token_id>{260, 260});
  }
}

TEST_CASE("every character's start merges exactly as its bytes do, alone and among neighbours", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  std::string dir = RAMPART_SOURCE_DIR "/models/deepseek-v3-tokenizer/";
  tokenizer::impl t;
  std::string error;
  REQUIRE(load_tokenizer(read_text(dir + "tokenizer.json"), read_text(dir + "tokenizer_config.json"), &t, &error));
  // Most CJK characters have a start; an empty table would pass the checks below vacuously.
  INFO(t.char_starts.single_starts() << " single, " << t.char_starts.double_starts() << " double");
  CHECK(t.char_starts.single_starts() + t.char_starts.double_starts() > 20000);

  // Neighbours of every kind: ASCII, 2-, 3- and 4-byte characters, with and without starts.
  std::vector<std::string> with_start, all;
  for (uint32_t cp = 0x20; cp < 0x110000; cp += cp < 0x10000 ? 1 : 97) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    std::string s;
    utf8::append_code_point(cp, &s);
    all.push_back(s);
    if (cp >= 0x80 && cp < bpe_char_starts::kEnd && t.char_starts.of(cp).first >= 0) with_start.push_back(s);
  }
  uint32_t x = 12345;
  auto pick = [&x](const std::vector<std::string>& from) -> const std::string& {
    x = x * 1664525u + 1013904223u;
    return from[(x >> 8) % from.size()];
  };
  size_t mismatches = 0;
  auto check = [&](const std::string& text) {
    std::vector<int32_t> bytes;
    for (unsigned char b : text) bytes.push_back(t.byte_ids[b]);
    if (merged(t, start_of(t, text)) != merged(t, bytes) && ++mismatches <= 5) FAIL_CHECK("differs: " << text);
  };
  for (const std::string& c : with_start) {
    check(c);
    check(c + c + c);
    for (int k = 0; k < 6; ++k) {
      check(pick(all) + c + pick(all));
      check(pick(with_start) + c + pick(with_start));
    }
  }
  // Runs of up to 24 characters with starts, mixed with any characters.
  for (int k = 0; k < 20000; ++k) {
    std::string text;
    int length = 2 + static_cast<int>(x % 23);
    for (int i = 0; i < length; ++i) text += x % 5 == 0 ? pick(all) : pick(with_start);
    check(text);
  }
  CHECK(mismatches == 0);
}
