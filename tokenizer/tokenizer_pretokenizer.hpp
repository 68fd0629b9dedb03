// The DeepSeek-V3 pre-tokenizer: three Isolated regex Splits applied in sequence, written out by hand.
//   1. \p{N}{1,3}
//   2. [一-龥぀-ゟ゠-ヿ]+
//   3. [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ |
//       ?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// Each regex match becomes a piece and so does each stretch between matches. At each position the alternatives
// of split 3 are tried in order and the first that matches wins (backtracking semantics, not longest match).
// Private to model/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace rampart::model {

// The three split patterns exactly as tokenizer.json spells them; a file with any other pattern is rejected.
extern const char* const kDeepSeekV3SplitPatterns[3];

// Splits TEXT, which must be valid UTF-8, into pieces covering it in order, and appends each piece's end offset
// (in bytes from the start of TEXT) to *ENDS. CLASSES is scratch space the caller may reuse between calls.
void pretokenize(std::string_view text, std::vector<uint8_t>* classes, std::vector<size_t>* ends);

}  // namespace rampart::model
