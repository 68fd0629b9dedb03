// Character classes of the DeepSeek-V3 pre-tokenizer, from generated Unicode 16.0 tables
// (tokenizer/unicode_tables.cpp, written by tools/gen_unicode_tables.mjs). Private to model/.
#pragma once

#include <cstdint>

namespace rampart::model::unicode {

// One class per code point. The pre-tokenizer's regexes only ask about \p{L}, \p{M}, \p{N}, \p{P}, \p{S},
// \s (Unicode White_Space) and [\r\n]; these are disjoint, so one value answers all of them.
enum char_class : uint8_t {
  cc_other = 0,       // none of the below: unassigned, controls that are not White_Space, Cf, Co
  cc_letter = 1,      // \p{L}
  cc_mark = 2,        // \p{M}
  cc_number = 3,      // \p{N}
  cc_punct = 4,       // \p{P}
  cc_symbol = 5,      // \p{S}
  cc_space = 6,       // White_Space other than CR and LF
  cc_line_break = 7,  // CR or LF (also White_Space)
};

// Set on top of the class for [一-龥぀-ゟ゠-ヿ] (U+4E00–9FA5, U+3040–309F, U+30A0–30FF).
constexpr uint8_t cjk_flag = 8;

// Class bits of CP (a char_class, possibly | cjk_flag). Code points above U+10FFFF give cc_other.
uint8_t class_bits(uint32_t cp);

}  // namespace rampart::model::unicode
