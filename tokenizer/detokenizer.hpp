// Streaming detokenization of one generated sequence: ids in, UTF-8 text deltas out, with stop strings.
//
// The concatenation of all deltas (feed ... feed, finish) equals tokenizer::decode of the same ids, up to the
// start of the first stop string when one matched. A character whose bytes span several tokens is emitted once
// it is complete; bytes that can no longer form a character become U+FFFD exactly as in the one-shot decode.
// Text that may be the start of a stop string is held back until decided, so no part of a stop string is ever
// emitted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace rampart::model {

struct detokenizer_options {
  bool skip_special = false;              // drop BOS/EOS/pad/placeholder/<|EOT|> as tokenizer::decode does
  std::vector<std::string> stop_strings;  // each non-empty, valid UTF-8
};

class detokenizer {
 public:
  // The result of one feed() or finish().
  struct delta {
    std::string_view text;  // to send now; valid until the next call on this detokenizer
    // A stop string matched: TEXT ends just before it, and no later call produces text.
    bool stopped = false;
    // Cumulative count of fed tokens whose text has been emitted in full (by this or earlier deltas). The ids
    // behind this delta are those between the previous delta's tokens_done and this one. A token is counted in
    // the delta that completes its text (a character split across tokens counts all of them there), a token
    // with no text as soon as those before it are counted; after a stop or finish() every fed token is counted.
    size_t tokens_done = 0;
  };

  // Checks the options: returns nothing and sets *ERROR when a stop string is empty or not valid UTF-8. TOK must
  // outlive the detokenizer.
  static std::optional<detokenizer> create(const tokenizer& tok, detokenizer_options options, std::string* error);

  // Adds one generated id (ids without a token add no text).
  delta feed(token_id id);
  // Ends the sequence: flushes an incomplete trailing character (as one U+FFFD) and any text held back for a
  // stop string that can no longer complete.
  delta finish();

  bool stopped() const { return stop_index_ >= 0; }
  // The index in stop_strings of the stop string that matched, or -1.
  int stop_index() const { return stop_index_; }

 private:
  detokenizer(const tokenizer& tok, detokenizer_options options) : tok_(&tok), options_(std::move(options)) {}
  // Moves converted text through the stop-string check into out_.
  void release_text(bool final);
  delta make_delta();

  const tokenizer* tok_;
  detokenizer_options options_;
  std::string pending_bytes_;  // an incomplete UTF-8 sequence (at most 3 bytes) waiting for its continuation
  std::string held_text_;      // complete text held back because it may start a stop string
  std::string out_;            // the current delta's text
  uint64_t input_bytes_ = 0;   // bytes of all fed tokens
  uint64_t converted_input_ = 0;  // of those, bytes turned into text
  uint64_t converted_text_ = 0;   // length of the text they became
  uint64_t emitted_text_ = 0;     // of that text, bytes emitted
  // Fed tokens not yet counted as done: the input offset their bytes end at, and once it has been converted,
  // the text length by which they are complete (kUnknown before).
  struct pending_token {
    uint64_t input_end;
    uint64_t text_end;
  };
  static constexpr uint64_t kUnknown = ~uint64_t{0};
  std::deque<pending_token> tokens_;
  size_t tokens_fed_ = 0;
  size_t tokens_done_ = 0;
  int stop_index_ = -1;
  bool finished_ = false;
};

}  // namespace rampart::model
