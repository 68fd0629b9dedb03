// A strict, allocation-light JSON cursor for the large parts of tokenizer.json (the 128k-entry vocab and the
// merges list), which a DOM parser would take several hundred milliseconds to build. Everything else in the file
// is small and is handed to nlohmann::json as a raw span. Private to model/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rampart::model {

class json_reader {
 public:
  explicit json_reader(std::string_view text) : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  // Each reading call returns false on malformed input and records the first error (see error()).

  // Consumes C (after whitespace).
  bool expect(char c);
  // Consumes C if it is next (after whitespace); returns whether it did. Never an error.
  bool accept(char c);
  // True if only whitespace is left.
  bool at_end();
  // Reads a string; *OUT gets its decoded UTF-8 (escapes resolved, surrogate pairs joined; lone surrogates and
  // invalid UTF-8 are errors).
  bool read_string(std::string* out);
  // Reads an integer that fits in int64_t.
  bool read_int(int64_t* out);
  // Skips one value of any kind and returns its raw text in *SPAN; only its extent is checked here, so the span
  // is meant for a full parser.
  bool skip_value(std::string_view* span);

  // Iterates an object: call begin_object once, then next_key until it returns false (end of object or error;
  // tell them apart with failed()). NEXT_KEY consumes the key and the colon.
  bool begin_object() { return first_in_container_ = expect('{'); }
  bool next_key(std::string* key);
  // Iterates an array the same way: next_element returns true when another element follows.
  bool begin_array() { return first_in_container_ = expect('['); }
  bool next_element();

  bool failed() const { return !error_.empty(); }
  // "line L column C: what", or empty.
  const std::string& error() const { return error_; }
  // Records an error at the current position (only the first one is kept); returns false.
  bool fail(std::string_view what);

 private:
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool read_hex4(uint32_t* out);

  const char* begin_;
  const char* p_;
  const char* end_;
  bool first_in_container_ = false;
  std::string error_;
};

}  // namespace rampart::model
