// Shared by the tokenizer, detokenizer and chat template tests: the real DeepSeek-V3 tokenizer (fetched by
// tools/setup.sh) and the reference fixtures in tests/fixtures/tokenizer/.
#pragma once

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.hpp"

namespace rampart::test {

// Why the tokenizer did not load, when it did not.
inline std::string& tokenizer_load_error() {
  static std::string error;
  return error;
}

// The tokenizer, loaded once per process; null when it did not load (see tokenizer_load_error()).
inline const model::tokenizer* real_tokenizer() {
  static std::unique_ptr<model::tokenizer> tok = [] {
    auto t = model::tokenizer::load(RAMPART_SOURCE_DIR "/models/deepseek-v3-tokenizer", &tokenizer_load_error());
    if (!t) std::printf("tokenizer not loaded: %s\n", tokenizer_load_error().c_str());
    return t;
  }();
  return tok.get();
}

inline bool tokenizer_files_present() {
  return std::ifstream(RAMPART_SOURCE_DIR "/models/deepseek-v3-tokenizer/tokenizer.json").good();
}

// Skips the test only when the tokenizer's files are absent; files that are there but do not load fail it.
#define RAMPART_REQUIRE_TOKENIZER(name)                                                        \
  const rampart::model::tokenizer* name = rampart::test::real_tokenizer();                     \
  if (name == nullptr) {                                                                       \
    if (rampart::test::tokenizer_files_present()) {                                            \
      FAIL("models/deepseek-v3-tokenizer is there but does not load: "                         \
           << rampart::test::tokenizer_load_error());                                          \
    }                                                                                          \
    std::printf("SKIPPED: models/deepseek-v3-tokenizer is missing (run tools/setup.sh)\n");   \
    return;                                                                                    \
  }

struct fixture_record {
  std::string text;
  std::vector<model::token_id> ids;
  std::string decoded;
};

// Reads tests/fixtures/tokenizer/NAME (one JSON object per line). Fails the test if the file is missing.
inline std::vector<fixture_record> read_fixture(const std::string& name) {
  std::ifstream in(std::string(RAMPART_SOURCE_DIR "/tests/fixtures/tokenizer/") + name);
  REQUIRE(in.good());
  std::vector<fixture_record> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    out.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<model::token_id>>(),
                   j.at("decoded").get<std::string>()});
  }
  REQUIRE(!out.empty());
  return out;
}

// The id of the single-byte token for B, by the rule in shared/specs/tokenizer.md §2: ids 3..190 are bytes
// 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF in that order, ids 191..258 the other 68 bytes in increasing order.
inline model::token_id byte_token(unsigned char b) {
  int printable = 0, other = 0;
  for (int x = 0; x < 256; ++x) {
    bool self = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
    if (x == b) return self ? 3 + printable : 191 + other;
    (self ? printable : other)++;
  }
  return -1;
}

// One byte token per byte of S.
inline std::vector<model::token_id> byte_tokens(const std::string& s) {
  std::vector<model::token_id> ids;
  for (unsigned char c : s) ids.push_back(byte_token(c));
  return ids;
}

}  // namespace rampart::test
