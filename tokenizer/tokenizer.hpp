// The DeepSeek-V3 byte-level BPE tokenizer, read from a Hugging Face tokenizer.json + tokenizer_config.json.
//
// Encoding matches Hugging Face's `tokenizers` (the reference; see shared/specs/tokenizer.md): added tokens are
// matched first, the rest is pre-tokenized by the three DeepSeek-V3 regex splits (Unicode 16.0 classes), each
// piece is byte-level BPE-merged by rank. Like the reference, encode() adds no BOS; callers that want the
// transformers-Python behaviour for raw completions prepend bos_id() themselves (see add_bos_token()).
//
// Thread safety: a loaded tokenizer is immutable; every const member may be called from many threads at once.
// A per-thread cache of recently merged pieces keeps no state that changes results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rampart::model {

using token_id = int32_t;

// A stretch of text to encode, and whether added tokens (such as "<｜User｜>") written in it are recognized as
// such. Chat prompts mark template text true and user-supplied content false, so content cannot forge control
// tokens.
struct text_segment {
  std::string_view text;
  bool parse_special = false;
};

class tokenizer {
 public:
  // Loads DIR/tokenizer.json and DIR/tokenizer_config.json. Returns null and sets *ERROR to one line naming the
  // file and the problem when a file is missing, is not JSON, or describes anything this implementation does not
  // reproduce exactly (another model type, normalizer, pre-tokenizer, decoder, or options it does not support).
  static std::unique_ptr<tokenizer> load(const std::string& dir, std::string* error);
  // The same from the two files' contents.
  static std::unique_ptr<tokenizer> from_json(std::string_view tokenizer_json, std::string_view config_json,
                                              std::string* error);
  ~tokenizer();
  tokenizer(const tokenizer&) = delete;
  tokenizer& operator=(const tokenizer&) = delete;

  // Appends the ids of TEXT to *OUT. Invalid UTF-8 in TEXT is first replaced by U+FFFD (one per maximal invalid
  // subpart), then encoded. With PARSE_SPECIAL, added tokens in TEXT become their ids; without, they are
  // encoded as ordinary text.
  void encode(std::string_view text, bool parse_special, std::vector<token_id>* out) const;
  std::vector<token_id> encode(std::string_view text, bool parse_special = true) const;
  // Encodes the concatenation of SEGMENTS as one text, recognizing added tokens only where they lie wholly
  // inside a segment with parse_special set. Appends to *OUT.
  void encode_segments(const std::vector<text_segment>& segments, std::vector<token_id>* out) const;

  // The text of IDS: their bytes joined and converted to UTF-8 with U+FFFD for invalid parts. Ids without a
  // token (negative, or beyond the tokenizer's vocabulary, which is smaller than the model's) are dropped, as
  // the reference does. With SKIP_SPECIAL, added tokens marked special (BOS, EOS, pad, placeholders, <|EOT|>)
  // are dropped too, before the bytes are joined.
  std::string decode(const std::vector<token_id>& ids, bool skip_special = false) const;
  void decode(const token_id* ids, size_t n, bool skip_special, std::string* out) const;

  // The bytes ID stands for in decoding, after the skip rule; empty for an id without a token or a skipped one.
  // The view lives as long as the tokenizer. Pieces of multi-byte characters are not valid UTF-8 alone.
  std::string_view token_bytes(token_id id, bool skip_special = false) const;
  bool has_token(token_id id) const;
  bool is_special(token_id id) const;  // an added token with "special": true
  // The id of the added token whose content is CONTENT, if there is one.
  std::optional<token_id> added_token_id(std::string_view content) const;
  // One past the highest id that has a token (128815 for DeepSeek-V3).
  token_id vocab_size() const;

  token_id bos_id() const;
  token_id eos_id() const;
  const std::string& bos_text() const;
  const std::string& eos_text() const;
  // tokenizer_config.json's add_bos_token: whether transformers' Python prepends BOS to a plain encode.
  bool add_bos_token() const;
  // tokenizer_config.json's chat_template source; empty if the file has none.
  const std::string& chat_template_source() const;

  struct impl;

 private:
  explicit tokenizer(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace rampart::model
