// Every command-line tool reads its flags the same way (tools/flags.hpp): --help prints its usage and exits 0,
// an unknown option or a bad value is named on one line that points at --help, and exits 2.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

namespace {

const std::vector<std::string> kTools = {
    "rampartd",      "rampart-client",  "rampart-bench",    "rampart-alerts",         "rampart-flood",
    "rampart-admin", "rampart-inspect", "rampart-tokenize", "rampart-mkmodel",        "rampart-generate",
    "rampart-kernels-bench"};

int run(const std::string& tool, const std::vector<std::string>& args, std::string* output) {
  return rampart::test::run_command(rampart::test::bin(tool), args, output);
}

}  // namespace

TEST_CASE("every tool answers --help and -h with its usage", "[tools]") {
  for (const std::string& tool : kTools) {
    INFO(tool);
    for (const char* flag : {"--help", "-h"}) {
      std::string out;
      CHECK(run(tool, {flag}, &out) == 0);
      CHECK(out.rfind("usage: " + tool, 0) == 0);
    }
  }
}

TEST_CASE("every tool names an unknown option and points at --help", "[tools]") {
  for (const std::string& tool : kTools) {
    INFO(tool);
    std::string out;
    // rampart-admin takes commands, not options, before its arguments: an unknown command is its mistake.
    const std::string bad = tool == "rampart-admin" ? "frobnicate" : "--frobnicate";
    CHECK(run(tool, tool == "rampart-admin" ? std::vector<std::string>{"--db", "/nonexistent/x.db", bad}
                                            : std::vector<std::string>{bad},
              &out) == 2);
    CHECK_THAT(out, Catch::Contains(bad));
    // rampart-admin answers a wrong command with its whole usage, the others with one line.
    CHECK_THAT(out, Catch::Contains(tool == "rampart-admin" ? "usage: " + tool : tool + " --help"));
  }
}

TEST_CASE("a numeric option out of range is refused with the range", "[tools]") {
  std::string out;
  CHECK(run("rampart-bench", {"--clients", "0"}, &out) == 2);
  CHECK_THAT(out, Catch::Contains("--clients needs a whole number in [1, 100000], not '0'"));
  CHECK(run("rampart-mkmodel", {"--out", "/tmp/x", "--layers", "12abc"}, &out) == 2);
  CHECK_THAT(out, Catch::Contains("--layers needs a whole number in [1, 4096], not '12abc'"));
  CHECK(run("rampart-inspect", {"--synth", "/tmp/x.pcap", "10", "--pps", "nan"}, &out) == 2);
  CHECK_THAT(out, Catch::Contains("--pps needs a number in [1, 1e+09], not 'nan'"));
  // Unsigned values: no sign, and nothing past 2^64 - 1 wrapping round.
  CHECK(run("rampart-mkmodel", {"--out", "/tmp/x", "--seed", "-1"}, &out) == 2);
  CHECK_THAT(out, Catch::Contains("--seed needs a whole number in [0, 18446744073709551615], not '-1'"));
  CHECK(run("rampart-mkmodel", {"--out", "/tmp/x", "--seed", "18446744073709551616"}, &out) == 2);
  CHECK(run("rampart-bench", {"--clients", "99999999999999999999"}, &out) == 2);
  CHECK(run("rampart-client", {"--prompt"}, &out) == 2);
  CHECK_THAT(out, Catch::Contains("--prompt needs a value"));
}
