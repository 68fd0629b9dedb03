// UTF-8 checks and lossy conversion with the Unicode "maximal subpart" rule (the rule of WHATWG's decoder,
// Rust's String::from_utf8_lossy and Python's errors="replace"): every maximal prefix of a well-formed sequence
// that cannot be completed becomes one U+FFFD, and every other invalid byte becomes one U+FFFD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rampart::model::utf8 {

// True if TEXT is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid(std::string_view text);

// Appends BYTES to OUT with every invalid part replaced by U+FFFD. When FINAL is false, a trailing sequence that
// is incomplete but could still become valid is not converted: the return value is the number of bytes consumed,
// and the caller keeps the rest (at most 3 bytes) to prepend to the next call. When FINAL is true everything is
// consumed (an incomplete tail becomes one U+FFFD) and the return value is BYTES.size().
size_t append_lossy(std::string_view bytes, bool final, std::string* out);

// TEXT with every invalid part replaced by U+FFFD; TEXT itself when it is already valid.
std::string to_valid(std::string_view text);

// Appends the UTF-8 encoding of CP (a Unicode scalar value) to OUT.
void append_code_point(uint32_t cp, std::string* out);

// Decodes the sequence at P, which must start a well-formed sequence of a text already checked by is_valid:
// returns its code point and stores its byte length in *LEN.
inline uint32_t decode_valid(const unsigned char* p, int* len) {
  unsigned char b = p[0];
  if (b < 0x80) {
    *len = 1;
    return b;
  }
  if (b < 0xE0) {
    *len = 2;
    return (uint32_t(b & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b < 0xF0) {
    *len = 3;
    return (uint32_t(b & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *len = 4;
  return (uint32_t(b & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

}  // namespace rampart::model::utf8
