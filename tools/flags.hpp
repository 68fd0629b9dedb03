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
  // value() as a whole number in [LO, HI].
  int64_t integer(int64_t lo, int64_t hi) {
    const std::string name = arg_, v = value();
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || errno || n < lo || n > hi)
      fail(name + " needs a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" +
           v + "'");
    return n;
  }
  // value() as a non-negative whole number in [LO, HI] (the full unsigned 64-bit range, for seeds).
  uint64_t uinteger(uint64_t lo, uint64_t hi) {
    const std::string name = arg_, v = value();
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] == '-' || *end || errno || n < lo || n > hi)
      fail(name + " needs a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" +
           v + "'");
    return n;
  }
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
