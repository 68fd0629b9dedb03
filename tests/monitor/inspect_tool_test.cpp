// rampart-inspect as a user runs it: EVE lines on stdout, a summary on stderr, exit codes 0 / 1 / 2.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/paths.hpp"

namespace {

struct result {
  int exit_code = -1;
  std::vector<std::string> out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

result inspect(const std::string& args) {
  static const std::string dir = rampart::test::make_temp_dir("rampart-inspect-");
  const std::string cmd =
      rampart::test::bin("rampart-inspect") + " " + args + " > " + dir + "/out 2> " + dir + "/err";
  result r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::istringstream out(slurp(dir + "/out"));
  for (std::string l; std::getline(out, l);) r.out.push_back(l);
  r.err = slurp(dir + "/err");
  return r;
}

const std::string pcaps = rampart::test::source_dir() + "/tests/fixtures/pcaps/";

}  // namespace

TEST_CASE("rampart-inspect prints EVE alerts on stdout and a summary on stderr", "[monitor][tool]") {
  const result r = inspect("-r " + pcaps + "stopddos_amp.UDP.isakmp.pcap");
  REQUIRE(r.exit_code == 0);
  INFO(r.err);
  std::vector<std::string> phases;
  size_t reflection = 0;
  for (const std::string& line : r.out) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j["event_type"] == "alert") {
      CHECK(j["proto"] == "UDP");
      if (j["rampart"]["detector"] == "reflection") {  // every datagram is from source port 4500 (IKE)
        ++reflection;
        continue;
      }
      CHECK(j["rampart"]["detector"] == "udp_flood");
      phases.push_back(j["rampart"]["phase"]);
    } else {
      CHECK(j["event_type"] == "threat_level");
    }
  }
  CHECK(phases == std::vector<std::string>{"start", "update", "end"});
  CHECK(reflection >= 2);  // at least its start and its end
  CHECK(r.err.find("packets: 3984,") != std::string::npos);
  CHECK(r.err.find("udp_flood 1/1/1") != std::string::npos);
  CHECK(r.err.find("malformed: 0") != std::string::npos);
  // How close each detector came: the capture's 3,984 UDP packets fall within one second, against the udp_flood
  // floor of 1,000 packets/s; it holds no ICMP.
  CHECK(r.err.find("closest to alerting") != std::string::npos);
  CHECK(r.err.find("  udp_flood          udp_pps 3984 against 1000 (3.98x) over\n") != std::string::npos);
  CHECK(r.err.find("  icmp_flood         icmp_pps 0 against 1000 (0.00x)\n") != std::string::npos);
  // All 3,984 are reflected (source port 4500) within one second, against reflection's floor of 100/s.
  CHECK(r.err.find("  reflection         reflected_udp_pps 3984 against 100 (39.84x) over\n") != std::string::npos);
}

TEST_CASE("rampart-inspect refuses bad arguments, unreadable files and bad configs with exit 2",
          "[monitor][tool]") {
  for (const std::string& args : std::vector<std::string>{"", "-r", "--bogus", "-r /nonexistent.pcap", "--synth /tmp/x 0",
                                  "-r " + pcaps + "stopddos_amp.UDP.isakmp.pcap --config /nonexistent.toml",
                                  "-r " + pcaps + "stopddos_amp.UDP.isakmp.pcap --filter 'no such filter'"}) {
    INFO(args);
    const result r = inspect(args);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.rfind("rampart-inspect: ", 0) == 0);
  }
}

TEST_CASE("rampart-inspect --bench reports a packet rate and the same alerts", "[monitor][tool]") {
  const result r = inspect("-r " + pcaps + "stopddos_amp.TCP.reflection.SYNACK.pcap --bench");
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("bench: 8000 packets in ") != std::string::npos);
  CHECK(r.err.find("packets/s (parse + features + detectors, one core)") != std::string::npos);
  CHECK(r.err.find("syn_flood 1/1/1") != std::string::npos);
}
