// The merge loop against a plain reference: the textbook BPE (repeatedly merge the leftmost lowest-rank pair,
// rescanning everything each time) over tokenizer.json's merges, read here with nlohmann::json.
#include <fstream>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/tokenizer/tokenizer_test_support.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace rampart::model;

namespace {

struct reference_bpe {
  std::map<std::pair<std::string, std::string>, size_t> rank;
  std::map<std::string, token_id> vocab;
  std::string alphabet[256];  // byte -> its character in the byte-level alphabet (spec §3.2 step 4)

  explicit reference_bpe(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    auto j = nlohmann::json::parse(s.str());
    for (auto& [k, v] : j["model"]["vocab"].items()) vocab[k] = v.get<token_id>();
    const auto& merges = j["model"]["merges"];
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string m = merges[r].get<std::string>();
      size_t sp = m.find(' ');
      rank.emplace(std::make_pair(m.substr(0, sp), m.substr(sp + 1)), r);
    }
    int next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      int cp = self ? b : next++;
      std::string ch;
      if (cp < 0x80) {
        ch += static_cast<char>(cp);
      } else {
        ch += static_cast<char>(0xC0 | (cp >> 6));
        ch += static_cast<char>(0x80 | (cp & 0x3F));
      }
      alphabet[b] = ch;
    }
  }

  std::vector<token_id> encode_piece(const std::string& piece) const {
    std::vector<std::string> sym;
    for (unsigned char c : piece) sym.push_back(alphabet[c]);
    for (;;) {
      size_t best = sym.size(), best_rank = SIZE_MAX;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        auto it = rank.find({sym[i], sym[i + 1]});
        if (it != rank.end() && it->second < best_rank) {
          best_rank = it->second;
          best = i;
        }
      }
      if (best == sym.size()) break;
      sym[best] += sym[best + 1];
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    std::vector<token_id> out;
    for (const auto& s : sym) out.push_back(vocab.at(s));
    return out;
  }
};

}  // namespace

TEST_CASE("long single pieces merge exactly as the textbook BPE does", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  reference_bpe ref(RAMPART_SOURCE_DIR "/models/deepseek-v3-tokenizer/tokenizer.json");
  uint32_t x = 7;
  auto next = [&x] {
    x = x * 1103515245u + 12345u;
    return x >> 16;
  };
  // Letter runs of lengths around the short/long switch of the merge loop and well beyond it. One piece each:
  // ASCII letters only.
  for (size_t length : {2, 3, 17, 47, 48, 49, 50, 64, 200, 1500}) {
    for (int alphabet_size : {2, 5, 26}) {
      std::string piece;
      for (size_t i = 0; i < length; ++i) piece += static_cast<char>('a' + next() % alphabet_size);
      INFO("piece of " << length << " letters from " << alphabet_size);
      CHECK(tok->encode(piece) == ref.encode_piece(piece));
    }
  }
  // A long run of one punctuation character and of spaces at the end of the text (one piece each).
  CHECK(tok->encode(std::string(700, '=')) == ref.encode_piece(std::string(700, '=')));
  CHECK(tok->encode("x" + std::string(300, ' ')) ==
        [&] { auto v = ref.encode_piece("x"); auto w = ref.encode_piece(std::string(300, ' ')); v.insert(v.end(), w.begin(), w.end()); return v; }());
}
