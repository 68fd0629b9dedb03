// One way for every tool to read its command line: options in any order, each value checked where it is read,
// --help and -h print the usage to stdout and exit 0, and any mistake prints one line on stderr naming it (and
// pointing at --help) and exits 2.
//
//   rampart::tools::flags f(argc, argv, "rampart-thing", kUsage);
//   while (f.next()) {
//     if (f.is("--out")) out = f.value();
//     else if (f.is("--threads")) threads = static_cast<int>(f.integer(1, 256));
//     else f.unknown();
//   }
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>

namespace rampart::tools {

class flags {
 public:
  flags(int argc, char** argv, const char* program, const char* usage)
      : argc_(argc), argv_(argv), program_(program), usage_(usage) {}

  // Advances to the next argument; false when none is left. --help and -h print the usage and exit 0.
  bool next() {
    if (++i_ >= argc_) return false;
    arg_ = argv_[i_];
    if (arg_ == "--help" || arg_ == "-h") {
      std::fputs(usage_, stdout);
      std::exit(0);
    }
    return true;
  }
  const std::string& arg() const { return arg_; }
  bool is(std::string_view name) const { return arg_ == name; }
  // Whether the current argument is an operand rather than an option.
  bool operand() const { return arg_.empty() || arg_[0] != '-' || arg_ == "-"; }
  // Whether another argument follows the current one.
  bool has_value() const { return i_ + 1 < argc_; }

  // The argument after the current option; none is a usage error.
  std::string value() {
    if (i_ + 1 >= argc_) fail(arg_ + " needs a value");
    return argv_[++i_];
  }
  // value() as a whole number in [LO, HI]: int64_t, or uint64_t for the full unsigned range (seeds).
  template <class T>
  T whole(T lo, T hi) {
    static_assert(std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>);
    const std::string name = arg_, v = value();
    char* end = nullptr;
    errno = 0;
    const T n = std::is_signed_v<T> ? static_cast<T>(std::strtoll(v.c_str(), &end, 10))
                                    : static_cast<T>(std::strtoull(v.c_str(), &end, 10));
    const bool negative_unsigned = !std::is_signed_v<T> && !v.empty() && v[0] == '-';
    if (v.empty() || *end || errno || negative_unsigned || n < lo || n > hi)
      fail(name + " needs a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" +
           v + "'");
    return n;
  }
  int64_t integer(int64_t lo, int64_t hi) { return whole<int64_t>(lo, hi); }
  uint64_t uinteger(uint64_t lo, uint64_t hi) { return whole<uint64_t>(lo, hi); }
  // value() as a number in [LO, HI].
  double real(double lo, double hi) {
    const std::string name = arg_, v = value();
    char* end = nullptr;
    errno = 0;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || errno || !(x >= lo && x <= hi))
      fail(name + " needs a number in [" + number(lo) + ", " + number(hi) + "], not '" + v + "'");
    return x;
  }

  // One line on stderr, "program: WHY (program --help shows the usage)"; exit 2.
  [[noreturn]] void fail(const std::string& why) const {
    std::fprintf(stderr, "%s: %s (%s --help shows the usage)\n", program_, why.c_str(), program_);
    std::exit(2);
  }
  [[noreturn]] void unknown() const { fail((operand() ? "unexpected argument '" : "unknown option '") + arg_ + "'"); }

 private:
  static std::string number(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
  }

  int argc_;
  char** argv_;
  const char* program_;
  const char* usage_;
  int i_ = 0;
  std::string arg_;
};

}  // namespace rampart::tools
