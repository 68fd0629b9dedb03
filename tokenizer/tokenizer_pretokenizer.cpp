#include "tokenizer/tokenizer_pretokenizer.hpp"

#include "base/utf8.hpp"
#include "tokenizer/unicode.hpp"

namespace rampart::model {

const char* const kDeepSeekV3SplitPatterns[3] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    ("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
     "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
};

namespace {

using namespace unicode;

// Per code point of the text: class bits (low 4) and UTF-8 length (bits 4..6).
constexpr uint8_t kClassMask = 0x0F;
constexpr int kLengthShift = 4;

struct ascii_tables {
  uint8_t info[128];
  bool punct[128];   // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]
  bool letter[128];  // [A-Za-z]
  ascii_tables() {
    for (int c = 0; c < 128; ++c) {
      info[c] = static_cast<uint8_t>(class_bits(static_cast<uint32_t>(c)) | (1 << kLengthShift));
      letter[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
      punct[c] = (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                 (c >= 0x7B && c <= 0x7E);
    }
  }
};
const ascii_tables kAscii;

inline bool is_letter_or_mark(uint8_t c) {
  c &= 7;
  return c == cc_letter || c == cc_mark;
}
inline bool is_punct_or_symbol(uint8_t c) {
  c &= 7;
  return c == cc_punct || c == cc_symbol;
}
inline bool is_white_space(uint8_t c) {
  c &= 7;
  return c == cc_space || c == cc_line_break;
}

class splitter {
 public:
  splitter(const unsigned char* text, const uint8_t* info, std::vector<size_t>* ends)
      : text_(text), info_(info), ends_(ends) {}

  // Split 3 over code points [I, END) starting at byte B.
  void split_main(size_t i, size_t end, size_t b) {
    size_t gap_start = kNone;
    while (i < end) {
      size_t j = i, bj = b;
      if (match_at(i, end, b, &j, &bj)) {
        if (gap_start != kNone) ends_->push_back(b);
        gap_start = kNone;
        ends_->push_back(bj);
        i = j;
        b = bj;
      } else {
        if (gap_start == kNone) gap_start = b;
        b += len(i);
        ++i;
      }
    }
    if (gap_start != kNone) ends_->push_back(b);
  }

 private:
  static constexpr size_t kNone = ~size_t{0};

  uint8_t cls(size_t i) const { return info_[i] & kClassMask; }
  size_t len(size_t i) const { return info_[i] >> kLengthShift; }
  void step(size_t* j, size_t* bj) const {
    *bj += len(*j);
    ++*j;
  }
  bool ascii_punct_at(size_t b) const { return text_[b] < 0x80 && kAscii.punct[text_[b]]; }
  bool ascii_letter_at(size_t b) const { return text_[b] < 0x80 && kAscii.letter[text_[b]]; }

  // The first alternative of split 3 matching at I, its end in *J (code points) and *BJ (bytes).
  bool match_at(size_t i, size_t end, size_t b, size_t* j, size_t* bj) const {
    uint8_t c = cls(i) & 7;
    // 1. one ASCII punctuation character, then ASCII letters.
    if (ascii_punct_at(b) && i + 1 < end && ascii_letter_at(b + 1)) {
      *j = i + 1;
      *bj = b + 1;
      while (*j < end && ascii_letter_at(*bj)) step(j, bj);
      return true;
    }
    // 2. an optional lead that is not CR/LF/letter/punct/symbol, then letters and marks.
    bool lead_ok = c != cc_line_break && c != cc_letter && c != cc_punct && c != cc_symbol;
    if (is_letter_or_mark(c) || (lead_ok && i + 1 < end && is_letter_or_mark(cls(i + 1)))) {
      *j = i;
      *bj = b;
      step(j, bj);
      while (*j < end && is_letter_or_mark(cls(*j))) step(j, bj);
      return true;
    }
    // 3. an optional U+0020, punctuation and symbols, then CR/LF.
    bool space_lead = text_[b] == ' ' && i + 1 < end && is_punct_or_symbol(cls(i + 1));
    if (space_lead || is_punct_or_symbol(c)) {
      *j = i;
      *bj = b;
      if (space_lead) step(j, bj);
      while (*j < end && is_punct_or_symbol(cls(*j))) step(j, bj);
      while (*j < end && (cls(*j) & 7) == cc_line_break) step(j, bj);
      return true;
    }
    if (!is_white_space(c)) return false;
    // The whitespace run [I, M), and the end of its last CR/LF.
    size_t m = i, bm = b, after_break = kNone, b_after_break = 0;
    while (m < end && is_white_space(cls(m))) {
      bool is_break = (cls(m) & 7) == cc_line_break;
      step(&m, &bm);
      if (is_break) {
        after_break = m;
        b_after_break = bm;
      }
    }
    // 4. \s*[\r\n]+ : backtracking gives the run up to its last line break.
    if (after_break != kNone) {
      *j = after_break;
      *bj = b_after_break;
      return true;
    }
    // 5. \s+(?!\S) : the run when it ends the piece, else the run minus its last character.
    if (m == end) {
      *j = m;
      *bj = bm;
      return true;
    }
    if (m - 1 > i) {
      *j = m - 1;
      *bj = bm - len(m - 1);
      return true;
    }
    // 6. \s+ : a single whitespace character before a non-space.
    *j = m;
    *bj = bm;
    return true;
  }

  const unsigned char* text_;
  const uint8_t* info_;
  std::vector<size_t>* ends_;
};

}  // namespace

void pretokenize(std::string_view text, std::vector<uint8_t>* classes, std::vector<size_t>* ends) {
  auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t size = text.size();
  classes->resize(size);  // at most one code point per byte
  uint8_t* info = classes->data();
  size_t n = 0;
  for (size_t b = 0; b < size;) {
    if (p[b] < 0x80) {
      info[n++] = kAscii.info[p[b]];
      ++b;
    } else {
      int l;
      uint32_t cp = utf8::decode_valid(p + b, &l);
      info[n++] = static_cast<uint8_t>(class_bits(cp) | (l << kLengthShift));
      b += static_cast<size_t>(l);
    }
  }

  splitter split(p, info, ends);
  size_t i = 0, b = 0;
  while (i < n) {
    uint8_t c = info[i] & kClassMask;
    size_t j = i, bj = b;
    auto step = [&] {
      bj += info[j] >> kLengthShift;
      ++j;
    };
    if (c == cc_number) {
      // Split 1: numbers in groups of three from the left. Split 3 leaves a number-only piece whole (no
      // alternative matches a number), so the group is final.
      while (j < n && j - i < 3 && (info[j] & kClassMask) == cc_number) step();
      ends->push_back(bj);
    } else if (c & cjk_flag) {
      while (j < n && (info[j] & cjk_flag)) step();
      split.split_main(i, j, b);
    } else {
      while (j < n && (info[j] & kClassMask) != cc_number && !(info[j] & cjk_flag)) step();
      split.split_main(i, j, b);
    }
    i = j;
    b = bj;
  }
}

}  // namespace rampart::model
