// Detectors on synthesised captures: benign client traffic raises nothing; each attack raises its detector
// once (start, updates, end) naming the attacker and the attacked endpoint.
#include <catch2/catch.hpp>

#include <cstdio>
#include <sstream>

#include "monitor/synth.hpp"
#include "tests/monitor/monitor_test_helpers.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::monitor;
using namespace rampart::monitor::testing;

namespace {

const ip_address server = ip_address::v4(10, 0, 0, 1);
constexpr uint16_t port = 5555;
constexpr int64_t t0 = 1700000000LL * 1000000;
constexpr int64_t sec = 1000000;

analysis run(synth::traffic& t, const std::string& name, const monitor_config& cfg = monitor_config{}) {
  const std::string dir = rampart::test::make_temp_dir("rampart-monitor-");
  const std::string path = dir + "/" + name + ".pcap";
  std::string err;
  REQUIRE(t.write_pcap(path, &err));
  analysis a = analyse_pcap(path, cfg);
  INFO(a.error);
  REQUIRE(a.ok);
  std::remove(path.c_str());
  std::remove(dir.c_str());
  return a;
}

std::string joined(const std::vector<std::string>& v) {
  std::ostringstream s;
  for (const std::string& x : v) s << x << " ";
  return s.str();
}

// One incident: start, at least one update, end, in time order; the start within the attack's first
// 2 s; the end after the attack stopped, once the 1 s window and the 10 clearing steps have passed.
void check_incident(const std::vector<timed_alert>& alerts, int64_t attack_start, int64_t attack_end) {
  REQUIRE(alerts.size() >= 3);
  CHECK(alerts.front().phase == alert_phase::start);
  CHECK(alerts.back().phase == alert_phase::end);
  for (size_t i = 1; i + 1 < alerts.size(); ++i) CHECK(alerts[i].phase == alert_phase::update);
  for (size_t i = 1; i < alerts.size(); ++i) CHECK(alerts[i].ts_us > alerts[i - 1].ts_us);
  for (const alert_event& a : alerts) CHECK(a.incident == alerts.front().incident);
  CHECK(alerts.front().ts_us >= attack_start);
  CHECK(alerts.front().ts_us <= attack_start + 2 * sec);
  CHECK(alerts.front().started_us == alerts.front().ts_us);
  CHECK(alerts.back().started_us == alerts.front().started_us);
  CHECK(alerts.back().update_seq == alerts.size() - 1);
  CHECK(alerts.back().ts_us >= attack_end + 1 * sec);
  CHECK(alerts.back().ts_us <= attack_end + 3 * sec);
}

}  // namespace

TEST_CASE("benign client traffic raises no alert", "[monitor][synthetic]") {
  synth::traffic t(7);
  t.benign_clients(t0, 30, 20, 2000, server, port);
  const analysis a = run(t, "benign");
  CHECK(a.counters.packets == 20 * 5 + 2 * 60000);
  CHECK(a.counters.malformed == 0);
  INFO("fired: " << joined(detectors_fired(a)));
  CHECK(detectors_fired(a).empty());
  CHECK(a.counters.level == threat_level::green);
  // And none came near: every detector's metric stayed under its threshold in every window it judged.
  for (size_t d = 0; d < detector_count; ++d) {
    INFO(detector_name(static_cast<detector_id>(d)) << ": " << a.closest[d].metric << " " << a.closest[d].value
                                                    << " against " << a.closest[d].threshold);
    CHECK(a.closest[d].ratio < 1.0);
  }
}

TEST_CASE("a single-source SYN flood raises syn_flood naming attacker and target", "[monitor][synthetic]") {
  synth::traffic t(1);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  const ip_address attacker = ip_address::v4(203, 0, 113, 7);
  t.syn_flood(t0 + 10 * sec, 5, 5000, attacker, false, server, port);
  const analysis a = run(t, "syn_single");
  const std::vector<timed_alert> syn = alerts_of(a, detector_id::syn_flood);
  INFO("phases: " << phases(syn));
  check_incident(syn, t0 + 10 * sec, t0 + 15 * sec);
  CHECK(syn.front().src == attacker);
  CHECK(syn.front().dst == server);
  CHECK(syn.front().dst_port == port);
  CHECK(syn.front().metric == "half_open_syn_pps");
  CHECK(syn.front().value >= 500);
  // At its peak the flood's 5,000 half-open SYNs a second stood about 10x over the 500/s floor.
  const closest_approach& near = a.closest[static_cast<size_t>(detector_id::syn_flood)];
  CHECK(std::string(near.metric) == "half_open_syn_pps");
  CHECK(near.threshold >= 500);
  CHECK(near.ratio >= 5.0);
  CHECK(near.at_us >= t0 + 10 * sec);
  CHECK(near.at_us <= t0 + 16 * sec);
  // one source opening 5,000 connections a second is also a connection flood
  const std::vector<timed_alert> conn = alerts_of(a, detector_id::conn_flood);
  check_incident(conn, t0 + 10 * sec, t0 + 15 * sec);
  CHECK(conn.front().src == attacker);
  for (const std::string& d : detectors_fired(a)) {
    INFO(d);
    CHECK((d == "syn_flood" || d == "conn_flood" || d == "entropy_shift"));
  }
}

TEST_CASE("a spoofed SYN flood raises syn_flood, not per-source detectors", "[monitor][synthetic]") {
  synth::traffic t(2);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  t.syn_flood(t0 + 10 * sec, 5, 3000, ip_address{}, true, server, port);
  const analysis a = run(t, "syn_spoofed");
  const std::vector<timed_alert> syn = alerts_of(a, detector_id::syn_flood);
  INFO("phases: " << phases(syn));
  check_incident(syn, t0 + 10 * sec, t0 + 15 * sec);
  CHECK(syn.front().dst == server);
  CHECK(syn.front().dst_port == port);
  CHECK(syn.front().distinct_sources > 1000);
  // 3,000 spoofed sources a second, each seen about once, and 20 clients at 2,000 packets a second between them:
  // no single address carries 1% of the SYNs, so none is named as the source.
  CHECK(syn.front().src.family == 0);
  CHECK_FALSE(syn.front().top_sources.empty());
  CHECK(alerts_of(a, detector_id::conn_flood).empty());
  CHECK(alerts_of(a, detector_id::heavy_hitter).empty());
}

TEST_CASE("a spoofed flood against single-address traffic raises entropy_shift", "[monitor][synthetic]") {
  // Like the loopback deployment measured in the security spec: every benign packet from one address
  // (normalised entropy 0), replies excluded by service_ports.
  monitor_config cfg;
  cfg.service_ports = {port};
  synth::traffic t(9);
  t.benign_clients(t0, 25, 1, 2000, server, port);
  t.syn_flood(t0 + 10 * sec, 5, 3000, ip_address{}, true, server, port);
  const analysis a = run(t, "entropy", cfg);
  const std::vector<timed_alert> ent = alerts_of(a, detector_id::entropy_shift);
  INFO("phases: " << phases(ent));
  check_incident(ent, t0 + 10 * sec, t0 + 15 * sec);
  // The baseline learned 0 from the single client, plus a trace from the flood's first windows (which
  // were still under the threshold; alpha = 1 - e^(-0.1/60) per step).
  CHECK(ent.front().baseline == Approx(0).margin(0.01));
  CHECK(ent.front().threshold == Approx(ent.front().baseline + 0.3));
  // With a whole window of flood, 2,000 packets/s from one client + 3,000 singletons:
  // H = 0.4 log2(2.5) + 0.6 log2(5000) = 7.90 bits over log2(3001) = 11.55, i.e. 0.68 (hash collisions
  // in the histogram lower it slightly).
  REQUIRE(ent.size() >= 4);
  CHECK(ent[2].value > 0.6);
  CHECK(ent[2].value < 0.7);
}

TEST_CASE("a UDP flood raises udp_flood naming attacker and target", "[monitor][synthetic]") {
  synth::traffic t(3);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  const ip_address attacker = ip_address::v4(198, 51, 100, 9);
  t.udp_flood(t0 + 10 * sec, 5, 8000, attacker, server, port, 512);
  const analysis a = run(t, "udp");
  const std::vector<timed_alert> udp = alerts_of(a, detector_id::udp_flood);
  INFO("phases: " << phases(udp));
  check_incident(udp, t0 + 10 * sec, t0 + 15 * sec);
  CHECK(udp.front().src == attacker);
  CHECK(udp.front().dst == server);
  CHECK(udp.front().dst_port == port);
  CHECK(udp.front().proto == l4_proto::udp);
  CHECK(udp.front().value >= 1000);
  CHECK(a.counters.packets_by_proto[static_cast<size_t>(l4_proto::udp)] == 40000);
  for (const std::string& d : detectors_fired(a)) {
    INFO(d);
    CHECK((d == "udp_flood" || d == "entropy_shift"));
  }
}

TEST_CASE("an ICMP flood raises icmp_flood", "[monitor][synthetic]") {
  synth::traffic t(4);
  t.benign_clients(t0, 20, 20, 2000, server, port);
  const ip_address attacker = ip_address::v4(192, 0, 2, 66);
  t.icmp_flood(t0 + 8 * sec, 4, 6000, attacker, server);
  const analysis a = run(t, "icmp");
  const std::vector<timed_alert> icmp = alerts_of(a, detector_id::icmp_flood);
  INFO("phases: " << phases(icmp));
  check_incident(icmp, t0 + 8 * sec, t0 + 12 * sec);
  CHECK(icmp.front().src == attacker);
  CHECK(icmp.front().proto == l4_proto::icmp);
}

TEST_CASE("a connection flood with stalled handshakes raises conn_flood and handshake_stall",
          "[monitor][synthetic]") {
  synth::traffic t(5);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  // 400 connections/s from 172.16.0.1-10 (one /24), each sending 10 greeting octets, closed after 2 s
  t.stalled_connections(t0 + 10 * sec, 5, 400, 10, 2.0, server, port);
  const analysis a = run(t, "conn_stall");
  const std::vector<timed_alert> conn = alerts_of(a, detector_id::conn_flood);
  INFO("conn phases: " << phases(conn));
  check_incident(conn, t0 + 10 * sec, t0 + 15 * sec);
  CHECK(conn.front().metric == "conn_per_prefix_ps");
  REQUIRE_FALSE(conn.front().top_sources.empty());
  CHECK(conn.front().top_sources.front().key == "172.16.0.0/24");
  CHECK(conn.front().dst == server);
  CHECK(conn.front().dst_port == port);
  const std::vector<timed_alert> stall = alerts_of(a, detector_id::handshake_stall);
  INFO("stall phases: " << phases(stall));
  // stalls become visible when the server closes the connections, 2 s after they opened
  check_incident(stall, t0 + 12 * sec, t0 + 17 * sec);
  CHECK(stall.front().metric == "stalled_handshakes_ps");
  CHECK(stall.front().value >= 50);
  CHECK(alerts_of(a, detector_id::syn_flood).empty());
}

TEST_CASE("a heavy hitter hidden in benign traffic is named", "[monitor][synthetic]") {
  synth::traffic t(6);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  const ip_address hitter = ip_address::v4(192, 0, 2, 50);
  t.data_stream(t0 + 10 * sec, 5, 30000, hitter, 33333, server, port);
  const analysis a = run(t, "heavy");
  const std::vector<timed_alert> hh = alerts_of(a, detector_id::heavy_hitter);
  INFO("phases: " << phases(hh));
  check_incident(hh, t0 + 10 * sec, t0 + 15 * sec);
  CHECK(hh.front().src == hitter);
  CHECK(hh.front().metric == "top_source_pps");
  CHECK(hh.front().dst == server);
  REQUIRE_FALSE(hh.front().top_sources.empty());
  CHECK(hh.front().top_sources.front().key == "192.0.2.50");
  CHECK(alerts_of(a, detector_id::syn_flood).empty());
  CHECK(alerts_of(a, detector_id::conn_flood).empty());
}

TEST_CASE("threat level events follow the active alerts", "[monitor][synthetic]") {
  synth::traffic t(8);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  t.udp_flood(t0 + 10 * sec, 5, 8000, ip_address::v4(198, 51, 100, 9), server, port, 64);
  const analysis a = run(t, "threat");
  std::vector<threat_event> changes;
  for (const event& e : a.events) {
    if (e.type == event_type::threat_level) changes.push_back(e.threat);
  }
  REQUIRE(changes.size() >= 2);
  CHECK(changes.front().from == threat_level::green);
  CHECK(changes.front().to == threat_level::orange);  // udp_flood has severity 2
  CHECK(changes.back().to == threat_level::green);
  CHECK(a.counters.level == threat_level::green);
}

TEST_CASE("a heavy hitter inside the clients' own prefix is named as a source, not the prefix",
          "[monitor][synthetic]") {
  synth::traffic t(10);
  t.benign_clients(t0, 25, 20, 2000, server, port);  // clients 10.1.0.1-20
  const ip_address hitter = ip_address::v4(10, 1, 0, 200);
  t.data_stream(t0 + 10 * sec, 5, 30000, hitter, 33333, server, port);
  const analysis a = run(t, "heavy_same_prefix");
  const std::vector<timed_alert> hh = alerts_of(a, detector_id::heavy_hitter);
  INFO("phases: " << phases(hh));
  check_incident(hh, t0 + 10 * sec, t0 + 15 * sec);
  CHECK(hh.front().metric == "top_source_pps");
  CHECK(hh.front().src == hitter);
}

TEST_CASE("reflected DNS answers to random ports raise reflection naming the reflectors", "[monitor][synthetic]") {
  monitor_config cfg;
  cfg.service_ports = {port};
  synth::traffic t(21);
  t.benign_clients(t0, 20, 20, 2000, server, port);
  // 600 answers a second from 6 resolvers, 1,200 octets each: under udp_flood's floor (1,000/s) even if it
  // counted them, and aimed at no service port.
  t.reflection(t0 + 8 * sec, 5, 600, 6, 53, server, 1200);
  const analysis a = run(t, "reflection", cfg);
  const std::vector<timed_alert> r = alerts_of(a, detector_id::reflection);
  INFO("phases: " << phases(r));
  check_incident(r, t0 + 8 * sec, t0 + 13 * sec);
  CHECK(r.front().metric == "reflected_udp_pps");
  CHECK(r.front().value >= 100);
  CHECK(r.front().proto == l4_proto::udp);
  CHECK(r.front().evidence == evidence_kind::reflected_udp);
  CHECK(r.front().src.to_string().rfind("203.0.113.", 0) == 0);
  // Each resolver carries a sixth of the answers: all six are named, no client.
  std::vector<std::string> named;
  for (const culprit& c : r[1].culprits) named.push_back(c.key);
  INFO(joined(named));
  CHECK(named.size() == 6);
  for (const std::string& k : named) CHECK(k.rfind("203.0.113.", 0) == 0);
  CHECK(detectors_fired(a) == std::vector<std::string>{"reflection"});  // and no other
}

TEST_CASE("a flood of IP fragments raises reflection on its fragment rate", "[monitor][synthetic]") {
  monitor_config cfg;
  cfg.service_ports = {port};
  synth::traffic t(22);
  t.benign_clients(t0, 20, 20, 2000, server, port);
  const ip_address attacker = ip_address::v4(198, 51, 100, 77);
  t.fragment_flood(t0 + 8 * sec, 5, 800, attacker, server, port, 512);
  const analysis a = run(t, "fragments", cfg);
  const std::vector<timed_alert> r = alerts_of(a, detector_id::reflection);
  INFO("phases: " << phases(r));
  check_incident(r, t0 + 8 * sec, t0 + 13 * sec);
  CHECK(r.front().metric == "fragment_pps");
  CHECK(r.front().evidence == evidence_kind::fragments);
  CHECK(r.front().src == attacker);
  REQUIRE_FALSE(r[1].culprits.empty());
  CHECK(r[1].culprits[0].key == "198.51.100.77");
  CHECK(detectors_fired(a) == std::vector<std::string>{"reflection"});  // and no other
}

TEST_CASE("near misses: a resolver's answers and a few fragments a second raise nothing", "[monitor][synthetic]") {
  monitor_config cfg;
  cfg.service_ports = {port};
  synth::traffic t(23);
  t.benign_clients(t0, 20, 20, 2000, server, port);
  t.reflection(t0 + 5 * sec, 10, 40, 2, 53, server, 300);    // the host's own lookups: 40 answers a second
  t.reflection(t0 + 5 * sec, 10, 20, 1, 123, server, 48);    // and NTP
  t.fragment_flood(t0 + 5 * sec, 10, 30, ip_address::v4(192, 0, 2, 5), server, port, 1400);  // large requests
  // From a port outside the amplifier list (5000), at 2,000 a second: not reflection (udp_flood's business
  // only if it were aimed at the service).
  const ip_address other = ip_address::v4(192, 0, 2, 9);
  for (int i = 0; i < 10000; ++i) {
    const auto dst_port = static_cast<uint16_t>(2000 + i % 100);
    t.packets().push_back({t0 + 5 * sec + i * 500, synth::ethernet_ipv4_udp(other, 5000, server, dst_port, 100)});
  }
  const analysis a = run(t, "near_miss", cfg);
  CHECK(detectors_fired(a).empty());
}
