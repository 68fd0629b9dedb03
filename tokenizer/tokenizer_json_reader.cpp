#include "tokenizer/tokenizer_json_reader.hpp"

#include <cstring>
#include <limits>

#include "base/utf8.hpp"

namespace rampart::model {

bool json_reader::fail(std::string_view what) {
  if (!error_.empty()) return false;
  size_t line = 1, column = 1;
  for (const char* q = begin_; q < p_ && q < end_; ++q) {
    if (*q == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  error_ = "line " + std::to_string(line) + " column " + std::to_string(column) + ": " + std::string(what);
  return false;
}

bool json_reader::expect(char c) {
  skip_ws();
  if (p_ < end_ && *p_ == c) {
    ++p_;
    return true;
  }
  char msg[] = "expected 'x'";
  msg[10] = c;
  return fail(p_ == end_ ? std::string(msg) + " but the text ended" : msg);
}

bool json_reader::accept(char c) {
  skip_ws();
  if (p_ < end_ && *p_ == c) {
    ++p_;
    return true;
  }
  return false;
}

bool json_reader::at_end() {
  skip_ws();
  return p_ == end_;
}

bool json_reader::read_hex4(uint32_t* out) {
  if (end_ - p_ < 4) return fail("truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    char c = *p_++;
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return fail("bad hex digit in \\u escape");
    }
  }
  *out = v;
  return true;
}

bool json_reader::read_string(std::string* out) {
  out->clear();
  if (!expect('"')) return false;
  const char* run = p_;
  for (;;) {
    // Copy unescaped stretches in one go.
    while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) ++p_;
    out->append(run, static_cast<size_t>(p_ - run));
    if (p_ == end_) return fail("unterminated string");
    char c = *p_;
    if (c == '"') {
      ++p_;
      break;
    }
    if (c != '\\') return fail("control character inside a string");
    ++p_;
    if (p_ == end_) return fail("unterminated string");
    char e = *p_++;
    switch (e) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        uint32_t cp;
        if (!read_hex4(&cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail("lone high surrogate in \\u escape");
          p_ += 2;
          if (!read_hex4(&low)) return false;
          if (low < 0xDC00 || low > 0xDFFF) return fail("high surrogate not followed by a low surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        utf8::append_code_point(cp, out);
        break;
      }
      default: return fail("unknown escape in string");
    }
    run = p_;
  }
  if (!utf8::is_valid(*out)) return fail("string is not valid UTF-8");
  return true;
}

bool json_reader::read_int(int64_t* out) {
  skip_ws();
  const char* start = p_;
  bool negative = p_ < end_ && *p_ == '-';
  if (negative) ++p_;
  if (p_ == end_ || *p_ < '0' || *p_ > '9') return fail("expected an integer");
  if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') return fail("leading zero in number");
  uint64_t v = 0;
  while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
    if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - 9) / 10) {
      p_ = start;
      return fail("integer out of range");
    }
    v = v * 10 + static_cast<uint64_t>(*p_++ - '0');
  }
  if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return fail("expected an integer, found a fraction");
  *out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

bool json_reader::skip_value(std::string_view* span) {
  skip_ws();
  const char* start = p_;
  int depth = 0;
  do {
    if (p_ == end_) return fail("value ends early");
    char c = *p_;
    if (c == '"') {
      ++p_;
      while (p_ < end_ && *p_ != '"') p_ += (*p_ == '\\') ? 2 : 1;
      if (p_ >= end_) {
        p_ = end_;
        return fail("unterminated string");
      }
      ++p_;
    } else if (c == '{' || c == '[') {
      ++depth;
      ++p_;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return fail("unexpected closing bracket");
      --depth;
      ++p_;
    } else if (depth > 0) {
      ++p_;  // separators, whitespace, scalars inside a container
    } else {
      // A scalar at top level: up to the next structural character or whitespace.
      while (p_ < end_ && !std::strchr(",}] \n\r\t", *p_)) ++p_;
      if (p_ == start) return fail("expected a value");
    }
  } while (depth > 0);
  *span = std::string_view(start, static_cast<size_t>(p_ - start));
  return true;
}

bool json_reader::next_key(std::string* key) {
  bool first = first_in_container_;
  first_in_container_ = false;
  if (accept('}')) return false;
  if (!first && !expect(',')) return false;
  if (!read_string(key)) return false;
  return expect(':');
}

bool json_reader::next_element() {
  bool first = first_in_container_;
  first_in_container_ = false;
  if (accept(']')) return false;
  if (!first && !expect(',')) return false;
  return true;
}

}  // namespace rampart::model
