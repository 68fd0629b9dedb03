// The loaded state behind rampart::model::tokenizer. Private to model/.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/tokenizer_bpe.hpp"

namespace rampart::model {

// Leftmost-longest search for a set of strings (the added tokens), by a byte trie.
class added_token_matcher {
 public:
  void add(std::string_view content, token_id id);
  bool empty() const { return nodes_.size() <= 1; }
  // The first position in [FROM, TO) of TEXT where some token starts and lies wholly before TO; the longest token
  // there goes to *LENGTH and *ID. Returns TO when there is none.
  size_t find(std::string_view text, size_t from, size_t to, size_t* length, token_id* id) const;

 private:
  struct node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // byte -> node index
    token_id token = -1;                                       // token ending here, or -1
  };
  int32_t child(int32_t n, unsigned char b) const {
    for (const auto& c : nodes_[static_cast<size_t>(n)].children) {
      if (c.first == b) return c.second;
    }
    return -1;
  }
  std::vector<node> nodes_{node{}};
  bool first_byte_[256] = {};
  int distinct_first_bytes_ = 0;
  unsigned char only_first_byte_ = 0;
};

// Flags per id in tokenizer::impl::token_flags.
enum : uint8_t { kHasToken = 1, kSpecial = 2, kAdded = 4 };

struct tokenizer::impl {
  std::string bytes;                   // every token's decoded bytes, back to back
  std::vector<uint32_t> offsets;       // token i is bytes[offsets[i], offsets[i + 1])
  std::vector<uint8_t> flags;          // kHasToken | kSpecial | kAdded, per id
  int32_t byte_ids[256] = {};          // the token of each single byte
  bpe_merge_table merges;
  bpe_char_starts char_starts;         // where BPE starts for each 2- and 3-byte character
  // Added tokens with "normalized": false are matched first, then those with true in the stretches between, as
  // the reference does (with no normalizer the split only matters when two tokens overlap).
  added_token_matcher raw_added;
  added_token_matcher normalized_added;
  std::vector<std::pair<std::string, token_id>> added_by_content;  // sorted by content

  token_id bos = -1;
  token_id eos = -1;
  std::string bos_text;
  std::string eos_text;
  bool add_bos = false;
  std::string chat_template;
  uint64_t serial = 0;  // distinguishes this tokenizer's entries in the per-thread piece cache
};

// Parses the two files into *OUT; returns false with a one-line *ERROR naming the file. (tokenizer_load.cpp)
bool load_tokenizer(std::string_view tokenizer_json, std::string_view config_json, tokenizer::impl* out,
                    std::string* error);

}  // namespace rampart::model
