// EVE JSON shape (Suricata field names and types) and the eve.json file sink, including reopen() for log
// rotation.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "monitor/event_sink.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::monitor;
using nlohmann::json;

namespace {

mode_t current_umask() {
  const mode_t m = umask(0);
  umask(m);
  return m;
}

event sample_alert() {
  event e;
  e.type = event_type::alert;
  e.ts_us = 1737999185123456LL;  // 2025-01-27T17:33:05.123456Z
  alert_event& a = e.alert;
  a.detector = detector_id::syn_flood;
  a.phase = alert_phase::update;
  a.incident = 7;
  a.update_seq = 2;
  a.severity = 2;
  a.metric = "half_open_syn_pps";
  a.value = 20000;
  a.threshold = 500;
  a.baseline = 40;
  a.window_s = 1;
  a.started_us = 1737999180000000LL;
  a.src = ip_address::v4(203, 0, 113, 7);
  a.dst = ip_address::v4(10, 0, 0, 1);
  a.dst_port = 5555;
  a.proto = l4_proto::tcp;
  a.top_sources = {{"203.0.113.7", 19000, 19000}};
  a.level = threat_level::orange;
  a.policy_actions = {"deny_source"};
  return e;
}

// YYYY-MM-DDTHH:MM:SS.ffffff+0000, the pattern of Suricata's EVE schema.
bool matches_eve_time(const std::string& t) {
  const std::string shape = "dddd-dd-ddTdd:dd:dd.dddddd+0000";
  if (t.size() != shape.size()) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(t[i])) : t[i] != shape[i]) return false;
  }
  return true;
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("an alert renders as a Suricata EVE alert with a rampart object", "[monitor][eve]") {
  const json j = json::parse(to_eve_json(sample_alert(), "sensor-1", "x.pcap"));
  CHECK(j["timestamp"] == "2025-01-27T17:33:05.123456+0000");
  CHECK(matches_eve_time(j["timestamp"].get<std::string>()));
  CHECK(j["event_type"] == "alert");
  CHECK(j["host"] == "sensor-1");
  CHECK(j["pcap_filename"] == "x.pcap");
  CHECK(j["src_ip"] == "203.0.113.7");
  CHECK(j["src_port"].is_number_integer());
  CHECK(j["dest_ip"] == "10.0.0.1");
  CHECK(j["dest_port"] == 5555);
  CHECK(j["proto"] == "TCP");
  const json& al = j["alert"];
  CHECK(al["action"] == "allowed");
  CHECK(al["gid"] == 9999);
  CHECK(al["signature_id"] == 9999001);
  CHECK(al["rev"] == 1);
  CHECK(al["signature"].is_string());
  CHECK(al["category"] == "Attempted Denial of Service");
  CHECK(al["severity"] == 2);
  const json& r = j["rampart"];
  CHECK(r["detector"] == "syn_flood");
  CHECK(r["phase"] == "update");
  CHECK(r["metric"] == "half_open_syn_pps");
  CHECK(r["value"] == 20000.0);
  CHECK(r["threshold"] == 500.0);
  CHECK(r["baseline"] == 40.0);
  CHECK(r["window_s"] == 1.0);
  CHECK(r["threat_level"] == "orange");
  CHECK(r["top_sources"][0]["key"] == "203.0.113.7");
  CHECK(r["policy_actions"] == json::array({"deny_source"}));
  CHECK(r["started"] == "2025-01-27T17:33:00.000000+0000");
}

TEST_CASE("threat level and stats events carry their own objects", "[monitor][eve]") {
  event t;
  t.type = event_type::threat_level;
  t.ts_us = 0;
  t.threat.from = threat_level::green;
  t.threat.to = threat_level::red;
  t.threat.active = {detector_id::registration_flood};
  json j = json::parse(to_eve_json(t, "s"));
  CHECK(j["timestamp"] == "1970-01-01T00:00:00.000000+0000");
  CHECK(j["event_type"] == "threat_level");
  CHECK(j["threat_level"]["from"] == "green");
  CHECK(j["threat_level"]["to"] == "red");
  CHECK(j["threat_level"]["level"] == 3);
  CHECK(j["threat_level"]["active"] == json::array({"registration_flood"}));

  event s;
  s.type = event_type::stats;
  s.ts_us = 9000000;
  s.stats.first_ts_us = 1000000;
  s.stats.packets = 10;
  s.stats.capture_packets = 12;
  s.stats.kernel_drops = 2;
  s.stats.malformed = 1;
  s.stats.malformed_by_kind[static_cast<size_t>(malformed_kind::truncated_ip)] = 1;
  j = json::parse(to_eve_json(s, "s"));
  CHECK(j["event_type"] == "stats");
  CHECK(j["stats"]["uptime"] == 8);
  CHECK(j["stats"]["capture"]["kernel_packets"] == 12);
  CHECK(j["stats"]["capture"]["kernel_drops"] == 2);
  CHECK(j["stats"]["decoder"]["pkts"] == 10);
  CHECK(j["stats"]["decoder"]["invalid"] == 1);
  CHECK(j["stats"]["decoder"]["malformed"]["truncated_ip"] == 1);
}

TEST_CASE("the eve.json sink appends lines and reopens after rotation", "[monitor][eve]") {
  const std::string dir = rampart::test::make_temp_dir("rampart-eve-");
  const std::string path = dir + "/eve.json";
  {
    std::ofstream pre(path);
    pre << "{\"existing\":1}\n";
  }
  std::string err;
  std::unique_ptr<eve_file_sink> sink = eve_file_sink::open(path, "s", &err);
  REQUIRE(sink);
  sink->write(sample_alert());
  sink->write(sample_alert());
  REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
  sink->write(sample_alert());  // still goes to the renamed file until reopen
  REQUIRE(sink->reopen(&err));
  sink->write(sample_alert());
  const auto old_lines = lines(path + ".1");
  const auto new_lines = lines(path);
  CHECK(old_lines.size() == 4);
  CHECK(new_lines.size() == 1);
  CHECK(json::parse(new_lines[0])["event_type"] == "alert");
  CHECK(sink->write_errors() == 0);
  struct stat sb {};
  REQUIRE(stat(path.c_str(), &sb) == 0);  // created by reopen(), under the test's own umask
  CHECK((sb.st_mode & 0077) == (0640 & ~current_umask() & 0077));

  CHECK_FALSE(eve_file_sink::open(dir + "/no/such/dir/eve.json", "s", &err));
  CHECK(err.find("cannot open") != std::string::npos);
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
  std::remove(dir.c_str());
}
