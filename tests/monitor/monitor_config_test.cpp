// The [monitor] TOML table: the shipped example equals the built-in defaults; values are read; bad input
// of each kind is an error naming file:line:column and the key path.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "config/monitor_config.hpp"
#include "tests/support/paths.hpp"

using namespace rampart;
using namespace std::string_view_literals;

namespace {

// Parses TEXT as a whole file named "m.toml" and reads its [monitor] table.
bool parse(std::string_view text, monitor::monitor_config* out, config::config_error* err) {
  const toml::table root = toml::parse(text, "m.toml"sv);
  const toml::table* m = root["monitor"].as_table();
  REQUIRE(m);
  return config::parse_monitor_config(*m, "m.toml", out, err);
}

config::config_error error_of(std::string_view text) {
  monitor::monitor_config c;
  config::config_error err;
  CHECK_FALSE(parse(text, &c, &err));
  return err;
}

}  // namespace

TEST_CASE("the shipped monitor.example.toml holds exactly the built-in defaults", "[monitor][config]") {
  monitor::monitor_config c;
  c.interface = "changed";
  c.detector(monitor::detector_id::syn_flood).floor = 1;
  config::config_error err;
  REQUIRE(config::load_monitor_config(test::source_dir() + "/config/monitor.example.toml", &c, &err));
  const monitor::monitor_config d;
  CHECK(c.interface == d.interface);
  CHECK(c.bpf_filter == d.bpf_filter);
  CHECK(c.buffer_bytes == d.buffer_bytes);
  CHECK(c.snaplen == d.snaplen);
  CHECK(c.immediate_mode == d.immediate_mode);
  CHECK(c.buffer_timeout_ms == d.buffer_timeout_ms);
  CHECK(c.service_ports == d.service_ports);
  CHECK(c.amplifier_ports == d.amplifier_ports);
  CHECK(c.window_s == d.window_s);
  CHECK(c.step_s == d.step_s);
  CHECK(c.stats_interval_s == d.stats_interval_s);
  CHECK(c.handshake_timeout_s == d.handshake_timeout_s);
  CHECK(c.flow_table_entries == d.flow_table_entries);
  CHECK(c.prefix_v4 == d.prefix_v4);
  CHECK(c.prefix_v6 == d.prefix_v6);
  CHECK(c.sensor_name == d.sensor_name);
  CHECK(c.eve_log == d.eve_log);
  CHECK(c.culprit_min_share == d.culprit_min_share);
  for (size_t i = 0; i < monitor::detector_count; ++i) {
    INFO(monitor::detector_name(static_cast<monitor::detector_id>(i)));
    const auto& a = c.detectors[i];
    const auto& b = d.detectors[i];
    CHECK(a.enabled == b.enabled);
    CHECK(a.floor == b.floor);
    CHECK(a.factor == b.factor);
    CHECK(a.baseline_tau_s == b.baseline_tau_s);
    CHECK(a.initial_baseline == b.initial_baseline);
    CHECK(a.raise_after == b.raise_after);
    CHECK(a.clear_after == b.clear_after);
    CHECK(a.update_every == b.update_every);
    CHECK(a.severity == b.severity);
    CHECK(a.min_share == b.min_share);
    CHECK(a.culprit_min == b.culprit_min);
    CHECK(a.min_pps == b.min_pps);
    CHECK(a.min_sources == b.min_sources);
    CHECK(a.outlier_floor == b.outlier_floor);
    CHECK(a.token_outlier_floor == b.token_outlier_floor);
    CHECK(a.outlier_factor == b.outlier_factor);
    CHECK(a.outlier_severity == b.outlier_severity);
  }
}

TEST_CASE("monitor settings and nested detector tables are read", "[monitor][config]") {
  monitor::monitor_config c;
  config::config_error err;
  REQUIRE(parse(R"([monitor]
interface = "eth0"
immediate_mode = true
buffer_timeout_ms = 20
service_ports = [5555, 5556]
amplifier_ports = [53, 27015]
window_s = 2
step_s = 0.25
culprit_min_share = 0.2
[monitor.detectors.syn_flood]
floor = 1000
raise_after = 5
culprit_min = 80
enabled = false
[monitor.detectors.heavy_hitter]
min_share = 0.3
)", &c, &err));
  CHECK(c.interface == "eth0");
  CHECK(c.immediate_mode);
  CHECK(c.buffer_timeout_ms == 20);
  CHECK(c.service_ports == std::vector<uint16_t>{5555, 5556});
  CHECK(c.amplifier_ports == std::vector<uint16_t>{53, 27015});
  CHECK(c.window_s == 2.0);
  CHECK(c.step_s == 0.25);
  CHECK(c.detector(monitor::detector_id::syn_flood).floor == 1000.0);
  CHECK(c.detector(monitor::detector_id::syn_flood).raise_after == 5);
  CHECK_FALSE(c.detector(monitor::detector_id::syn_flood).enabled);
  CHECK(c.detector(monitor::detector_id::heavy_hitter).min_share == 0.3);
  CHECK(c.culprit_min_share == 0.2);
  CHECK(c.detector(monitor::detector_id::syn_flood).culprit_min == 80.0);
  CHECK(c.detector(monitor::detector_id::udp_flood).floor == 1000.0);  // untouched default
  CHECK(c.detector(monitor::detector_id::udp_flood).culprit_min == 100.0);  // the documented default
}

TEST_CASE("bad monitor settings are errors with file:line:column and key path", "[monitor][config]") {
  auto e = error_of("[monitor]\nintrface = \"lo\"\n");
  CHECK(e.to_string() == "m.toml:2:1: monitor.intrface: unknown key");

  e = error_of("[monitor]\nsnaplen = true\n");
  CHECK(e.key == "monitor.snaplen");
  CHECK(e.line == 2);
  CHECK(e.message.find("expected an integer") != std::string::npos);

  e = error_of("[monitor]\nbuffer_timeout_ms = 0\n");
  CHECK(e.key == "monitor.buffer_timeout_ms");
  CHECK(e.message.find("out of range") != std::string::npos);

  e = error_of("[monitor]\nimmediate_mode = 1\n");
  CHECK(e.key == "monitor.immediate_mode");

  e = error_of("[monitor]\nservice_ports = [80, 70000]\n");
  CHECK(e.key == "monitor.service_ports");
  CHECK(e.line == 2);

  e = error_of("[monitor]\namplifier_ports = [53, 0]\n");
  CHECK(e.key == "monitor.amplifier_ports");
  {
    std::string ports = "[monitor]\namplifier_ports = [1";  // 65 ports: one more than the filter may name
    for (int p = 2; p <= 65; ++p) ports += ", " + std::to_string(p);
    e = error_of(ports + "]\n");
    CHECK(e.key == "monitor.amplifier_ports");
    CHECK(e.message.find("at most 64") != std::string::npos);
  }
  e = error_of("[monitor]\nservice_ports = 80\n");
  CHECK(e.key == "monitor.service_ports");

  e = error_of("[monitor.detectors.syn_flood]\nclear_after = 0\n");
  CHECK(e.key == "monitor.detectors.syn_flood.clear_after");
  CHECK(e.line == 2);
  CHECK(e.column > 0);
  CHECK(e.message.find("out of range") != std::string::npos);

  e = error_of("[monitor.detectors.udp_flood]\nfloor = -5.0\n");
  CHECK(e.key == "monitor.detectors.udp_flood.floor");

  e = error_of("[monitor.detectors.udp_flood]\nmin_share = 0.5\n");
  CHECK(e.to_string() == "m.toml:2:1: monitor.detectors.udp_flood.min_share: unknown key");
  e = error_of("[monitor]\nculprit_min_share = 1.5\n");
  CHECK(e.key == "monitor.culprit_min_share");
  CHECK(e.message.find("out of range") != std::string::npos);
  // Zero bars would name every address of a spoofed flood a culprit (and deny-list them).
  e = error_of("[monitor]\nculprit_min_share = 0\n");
  CHECK(e.key == "monitor.culprit_min_share");
  CHECK(e.message.find("out of range") != std::string::npos);
  e = error_of("[monitor.detectors.syn_flood]\nculprit_min = 0\n");
  CHECK(e.key == "monitor.detectors.syn_flood.culprit_min");
  CHECK(e.message.find("out of range") != std::string::npos);
  e = error_of("[monitor.detectors.entropy_shift]\nculprit_min = 5\n");
  CHECK(e.to_string() == "m.toml:2:1: monitor.detectors.entropy_shift.culprit_min: unknown key");
  // The relative rules: a floor is 0 (off) or at least 1 a second, the factor at least 2, only where they apply.
  e = error_of("[monitor.detectors.conn_flood]\noutlier_floor = 0.5\n");
  CHECK(e.to_string() == "m.toml:2:17: monitor.detectors.conn_flood.outlier_floor: must be 0 (off) or at least 1");
  e = error_of("[monitor.detectors.request_flood]\ntoken_outlier_floor = 0.001\n");
  CHECK(e.key == "monitor.detectors.request_flood.token_outlier_floor");
  e = error_of("[monitor.detectors.request_flood]\noutlier_factor = 1.5\n");
  CHECK(e.key == "monitor.detectors.request_flood.outlier_factor");
  CHECK(e.message.find("out of range") != std::string::npos);
  e = error_of("[monitor.detectors.conn_flood]\ntoken_outlier_floor = 10\n");
  CHECK(e.to_string() == "m.toml:2:1: monitor.detectors.conn_flood.token_outlier_floor: unknown key");
  e = error_of("[monitor.detectors.udp_flood]\noutlier_floor = 10\n");
  CHECK(e.to_string() == "m.toml:2:1: monitor.detectors.udp_flood.outlier_floor: unknown key");
  {
    monitor::monitor_config bad;
    bad.detectors[static_cast<size_t>(monitor::detector_id::conn_flood)].outlier_severity = 7;
    CHECK(bad.validate() == "detectors.conn_flood.outlier_severity must be 1, 2 or 3");
    bad.detectors[static_cast<size_t>(monitor::detector_id::conn_flood)].outlier_severity = 3;
    bad.detectors[static_cast<size_t>(monitor::detector_id::conn_flood)].outlier_floor = 0.2;
    CHECK(bad.validate() == "detectors.conn_flood.outlier floors must be 0 (off) or at least 1");
  }

  e = error_of("[monitor.detectors.syn_fluod]\nfloor = 1.0\n");
  CHECK(e.key == "monitor.detectors.syn_fluod");
  CHECK(e.message == "unknown detector");

  e = error_of("[monitor.detectors.entropy_shift]\nfloor = 0.0\n");
  CHECK(e.key == "monitor.detectors.entropy_shift.floor");

  e = error_of("[monitor]\nwindow_s = 1.0\nstep_s = 0.3\n");
  CHECK(e.message.find("multiple of step_s") != std::string::npos);
  CHECK(e.file == "m.toml");

  e = error_of("[monitor]\nstep_s = \"fast\"\n");
  CHECK(e.key == "monitor.step_s");
  CHECK(e.message.find("expected a number") != std::string::npos);
}

TEST_CASE("an unreadable or unparsable config file is an error, a missing [monitor] means defaults",
          "[monitor][config]") {
  monitor::monitor_config c;
  config::config_error err;
  CHECK_FALSE(config::load_monitor_config("/nonexistent/rampart.toml", &c, &err));
  CHECK(err.file == "/nonexistent/rampart.toml");
  const std::string dir = test::make_temp_dir("rampart-moncfg-");
  const std::string path = dir + "/bad.toml";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("[monitor]\nwindow_s = = 1\n", f);
    std::fclose(f);
  }
  CHECK_FALSE(config::load_monitor_config(path, &c, &err));
  CHECK(err.line == 2);
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("[server]\nport = 5555\n", f);
    std::fclose(f);
  }
  CHECK(config::load_monitor_config(path, &c, &err));
  CHECK(c.interface == "lo");
  std::remove(path.c_str());
  std::remove(dir.c_str());
}
