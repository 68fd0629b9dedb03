#include "base/utf8.hpp"

#include <cstring>

namespace rampart::model::utf8 {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

// Number of bytes a sequence starting with lead byte B has, 0 for a byte that cannot start one.
inline int sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b < 0xC2) return 0;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  if (b < 0xF5) return 4;
  return 0;
}

// Allowed range of the byte after lead B (the others must be 80..BF); this excludes overlongs, surrogates and
// code points above U+10FFFF.
inline bool second_byte_ok(unsigned char lead, unsigned char b) {
  switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
  }
}

// Length of the ASCII run at the start of [P, END).
inline size_t ascii_run(const unsigned char* p, const unsigned char* end) {
  const unsigned char* q = p;
  while (end - q >= 8) {
    uint64_t w;
    std::memcpy(&w, q, 8);
    if (w & 0x8080808080808080ull) break;
    q += 8;
  }
  while (q < end && *q < 0x80) ++q;
  return static_cast<size_t>(q - p);
}

// Examines the sequence at P. Returns its length when it is complete and valid; otherwise returns 0 and sets
// *SUBPART to the length of the maximal subpart (>= 1) and *TRUNCATED when the input ended inside a sequence that
// could still have become valid.
inline int check_sequence(const unsigned char* p, const unsigned char* end, int* subpart, bool* truncated) {
  *truncated = false;
  int n = sequence_length(p[0]);
  if (n == 1) return 1;
  if (n == 0) {
    *subpart = 1;
    return 0;
  }
  for (int i = 1; i < n; ++i) {
    if (p + i >= end) {
      *subpart = i;
      *truncated = true;
      return 0;
    }
    bool ok = i == 1 ? second_byte_ok(p[0], p[1]) : (p[i] >= 0x80 && p[i] <= 0xBF);
    if (!ok) {
      *subpart = i;
      return 0;
    }
  }
  return n;
}

}  // namespace

bool is_valid(std::string_view text) {
  auto* p = reinterpret_cast<const unsigned char*>(text.data());
  auto* end = p + text.size();
  while (p < end) {
    p += ascii_run(p, end);
    if (p == end) break;
    int subpart;
    bool truncated;
    int n = check_sequence(p, end, &subpart, &truncated);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

size_t append_lossy(std::string_view bytes, bool final, std::string* out) {
  auto* begin = reinterpret_cast<const unsigned char*>(bytes.data());
  auto* p = begin;
  auto* end = p + bytes.size();
  auto* valid_from = p;  // start of the valid stretch not yet copied to OUT
  while (p < end) {
    p += ascii_run(p, end);
    if (p == end) break;
    int subpart;
    bool truncated;
    int n = check_sequence(p, end, &subpart, &truncated);
    if (n > 0) {
      p += n;
      continue;
    }
    out->append(reinterpret_cast<const char*>(valid_from), static_cast<size_t>(p - valid_from));
    if (truncated && !final) return static_cast<size_t>(p - begin);
    out->append(kReplacement, 3);
    p += subpart;
    valid_from = p;
  }
  out->append(reinterpret_cast<const char*>(valid_from), static_cast<size_t>(end - valid_from));
  return bytes.size();
}

std::string to_valid(std::string_view text) {
  if (is_valid(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  append_lossy(text, true, &out);
  return out;
}

void append_code_point(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace rampart::model::utf8
