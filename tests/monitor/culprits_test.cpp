// Which sources an alert names as culprits (the only ones the server may deny-list): those whose own evidence
// for the detector passes its bars, never an address merely seen during the flood. Captures are synthesised
// with new, innocent clients connecting in the middle of each attack; expected counts are worked out by hand
// from the packet times in the comments (steps close every 100 ms, a packet at a step's end time counts into
// the next step, windows are 1 s, an incident starts at the third evaluation over its threshold).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "monitor/detectors.hpp"
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
constexpr int64_t step = 100000;

analysis run(synth::traffic& t, const std::string& name, const monitor_config& cfg = monitor_config{}) {
  const std::string dir = rampart::test::make_temp_dir("rampart-culprits-");
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

std::set<std::string> keys(const std::vector<culprit>& culprits) {
  std::set<std::string> out;
  for (const culprit& c : culprits) out.insert(c.key);
  return out;
}

// Every culprit any alert of the capture named, whatever the detector.
std::set<std::string> all_culprits(const analysis& a) {
  std::set<std::string> out;
  for (const event& e : a.events) {
    if (e.type != event_type::alert) continue;
    for (const culprit& c : e.alert.culprits) out.insert(c.key);
  }
  return out;
}

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const std::string& x : s) out += x + " ";
  return out;
}

counted_key<endpoint> counted(const ip_address& a, uint64_t count) {
  counted_key<endpoint> k;
  k.key = endpoint{a, 0};
  k.hash = k.key.hash();
  k.count = count;
  return k;
}

}  // namespace

TEST_CASE("a SYN flood from three addresses names exactly those three, not clients that connect during it",
          "[monitor][culprits]") {
  synth::traffic t(11);
  t.benign_clients(t0, 25, 20, 2000, server, port);  // 10.1.0.1-20, connected before the flood
  const std::vector<ip_address> attackers = {ip_address::v4(203, 0, 113, 1), ip_address::v4(203, 0, 113, 2),
                                             ip_address::v4(203, 0, 113, 3)};
  // 1,000 SYNs a second from each, never completed, from 10 s to 15 s: one every millisecond.
  for (const ip_address& a : attackers) t.syn_flood(t0 + 10 * sec, 5, 1000, a, false, server, port);
  // 20 new clients 198.51.100.1-20, one every 200 ms from 10.55 s, each completing its handshake in one step.
  t.new_clients(t0 + 10 * sec + 550000, 0.2, 20, ip_address::v4(198, 51, 100, 1), server, port);
  const analysis a = run(t, "culprits_syn");
  const std::vector<timed_alert> syn = alerts_of(a, detector_id::syn_flood);
  REQUIRE(syn.size() >= 3);
  const timed_alert& start = syn.front();
  REQUIRE(start.phase == alert_phase::start);
  // Windows ending 10.2, 10.3 and 10.4 s hold 600, 900 and 1,200 half-open SYNs (>= 500): the alert starts at
  // 10.4 s with 400 SYNs from each attacker in its window, each a third of the window's half-open SYNs.
  CHECK(start.ts_us == t0 + 10 * sec + 4 * step);
  CHECK(start.evidence == evidence_kind::half_open_syns);
  CHECK(evidence_spoofable(start.evidence));
  CHECK(keys(start.culprits) == std::set<std::string>{"203.0.113.1", "203.0.113.2", "203.0.113.3"});
  for (const culprit& c : start.culprits) {
    INFO(c.key);
    CHECK(c.evidence == 400);
    CHECK(c.share == Approx(1.0 / 3));
  }
  // The first update (10 evaluations later, window 10.4-11.4 s) still names the three, with 1,000 SYNs each,
  // while its top SYN sources also list the five new clients that connected in that window (one SYN each,
  // answered and acknowledged): seen, but no evidence against them.
  const timed_alert& update = syn[1];
  REQUIRE(update.phase == alert_phase::update);
  CHECK(update.ts_us == t0 + 11 * sec + 4 * step);
  CHECK(keys(update.culprits) == std::set<std::string>{"203.0.113.1", "203.0.113.2", "203.0.113.3"});
  for (const culprit& c : update.culprits) CHECK(c.evidence == 1000);
  size_t new_clients_seen = 0;
  for (const top_entry& e : update.top_sources) new_clients_seen += e.key.rfind("198.51.100.", 0) == 0;
  CHECK(new_clients_seen == 5);
  // No alert of any detector (conn_flood fires too: 1,000 SYNs a second from one address) names anyone else;
  // conn_flood names no one, since the attackers completed no handshake.
  const std::set<std::string> named = all_culprits(a);
  INFO("named: " << joined(named));
  CHECK(named == std::set<std::string>{"203.0.113.1", "203.0.113.2", "203.0.113.3"});
  const std::vector<timed_alert> conn = alerts_of(a, detector_id::conn_flood);
  REQUIRE_FALSE(conn.empty());
  for (const alert_event& c : conn) CHECK(c.culprits.empty());
}

TEST_CASE("a stalled connection flood from one /24 names that prefix, not the clients that connect during it",
          "[monitor][culprits]") {
  synth::traffic t(12);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  // 400 connections a second from 172.16.0.1-20 in turn (20 a second each), from 10 s to 15 s, one every
  // 2.5 ms; each completes its handshake, sends 10 greeting octets and is closed by the server 2 s later.
  t.stalled_connections(t0 + 10 * sec, 5, 400, 20, 2.0, server, port);
  t.new_clients(t0 + 10 * sec + 550000, 0.2, 20, ip_address::v4(198, 51, 100, 1), server, port);
  const analysis a = run(t, "culprits_stall");

  const std::vector<timed_alert> conn = alerts_of(a, detector_id::conn_flood);
  REQUIRE_FALSE(conn.empty());
  const timed_alert& cs = conn.front();
  // 40 connections a step: windows ending 10.5, 10.6 and 10.7 s hold 200, 240 and 280 from the /24 (>= 200),
  // so the alert starts at 10.7 s; its window also holds the first new client's handshake (10.55 s): 281 all.
  CHECK(cs.ts_us == t0 + 10 * sec + 7 * step);
  CHECK(cs.metric == "conn_per_prefix_ps");
  CHECK(cs.evidence == evidence_kind::completed_handshakes);
  CHECK_FALSE(evidence_spoofable(cs.evidence));
  REQUIRE(cs.culprits.size() == 1);
  CHECK(cs.culprits[0].key == "172.16.0.0/24");
  CHECK(cs.culprits[0].evidence == 280);
  CHECK(cs.culprits[0].share == Approx(280.0 / 281));

  const std::vector<timed_alert> stall = alerts_of(a, detector_id::handshake_stall);
  REQUIRE_FALSE(stall.empty());
  const timed_alert& ss = stall.front();
  // Stalls follow the server's closes from 12 s on, 40 a step: the alert starts at 12.4 s with 160 in its
  // window, 8 from each address (a twentieth of them: under the 10% share), 160 from the prefix.
  CHECK(ss.ts_us == t0 + 12 * sec + 4 * step);
  CHECK(ss.evidence == evidence_kind::stalled_handshakes);
  REQUIRE(ss.culprits.size() == 1);
  CHECK(ss.culprits[0].key == "172.16.0.0/24");
  CHECK(ss.culprits[0].evidence == 160);
  CHECK(ss.culprits[0].share == Approx(1.0));

  const std::set<std::string> named = all_culprits(a);
  INFO("named: " << joined(named));
  CHECK(named == std::set<std::string>{"172.16.0.0/24"});
}

TEST_CASE("a UDP flood names its source, not the low-rate UDP senders and new clients beside it",
          "[monitor][culprits]") {
  synth::traffic t(13);
  t.benign_clients(t0, 25, 20, 2000, server, port);
  const ip_address attacker = ip_address::v4(203, 0, 113, 9);
  t.udp_flood(t0 + 10 * sec, 5, 8000, attacker, server, port, 512);  // 800 a step
  for (int i = 1; i <= 5; ++i) {  // 20 datagrams a second each, from 10 s: one every 50 ms
    t.udp_flood(t0 + 10 * sec, 5, 20, ip_address::v4(192, 0, 2, static_cast<uint8_t>(i)), server, port, 64);
  }
  t.new_clients(t0 + 10 * sec + 550000, 0.2, 20, ip_address::v4(198, 51, 100, 1), server, port);
  const analysis a = run(t, "culprits_udp");
  const std::vector<timed_alert> udp = alerts_of(a, detector_id::udp_flood);
  REQUIRE_FALSE(udp.empty());
  const timed_alert& start = udp.front();
  // Windows ending 10.2, 10.3 and 10.4 s hold 1,620, 2,430 and 3,240 datagrams (>= 1,000): at 10.4 s the
  // attacker sent 3,200 of them, each low-rate sender 8 (under 100 a second).
  CHECK(start.ts_us == t0 + 10 * sec + 4 * step);
  CHECK(start.evidence == evidence_kind::udp_packets);
  CHECK(evidence_spoofable(start.evidence));
  REQUIRE(start.culprits.size() == 1);
  CHECK(start.culprits[0].key == "203.0.113.9");
  CHECK(start.culprits[0].evidence == 3200);
  CHECK(start.culprits[0].share == Approx(3200.0 / 3240));
  const std::set<std::string> named = all_culprits(a);
  INFO("named: " << joined(named));
  CHECK(named == std::set<std::string>{"203.0.113.9"});
}

TEST_CASE("a heavy hitter is the only culprit, not the server's replies or the clients in its top sources",
          "[monitor][culprits]") {
  synth::traffic t(14);
  t.benign_clients(t0, 25, 20, 2000, server, port);  // 2,000 requests and 2,000 replies a second
  const ip_address hitter = ip_address::v4(192, 0, 2, 50);
  t.data_stream(t0 + 10 * sec, 5, 30000, hitter, 33333, server, port);
  // As rampartd runs it: with the service port known, the server's replies are not inbound traffic. (With no
  // service ports every packet counts, and once the hitter stops, the server's own 2,000 replies a second are
  // half of what is left: the server would name itself.)
  monitor_config cfg;
  cfg.service_ports = {port};
  const analysis a = run(t, "culprits_heavy", cfg);
  const std::vector<timed_alert> hh = alerts_of(a, detector_id::heavy_hitter);
  REQUIRE_FALSE(hh.empty());
  // The hitter carries 30,000 of about 34,000 packets a second (>= the 50% a heavy hitter needs); the
  // server's replies, 2,000 a second, are the next busiest source.
  CHECK(hh.front().top_sources.size() > 1);
  REQUIRE(hh.front().culprits.size() == 1);
  CHECK(hh.front().culprits[0].key == "192.0.2.50");
  CHECK(hh.front().culprits[0].share > 0.5);
  CHECK(all_culprits(a) == std::set<std::string>{"192.0.2.50"});
}

TEST_CASE("a registration flood names its source, not the addresses that register once during it",
          "[monitor][culprits]") {
  monitor m{monitor_config{}};
  std::vector<event> all;
  m.advance(t0);
  for (int i = 0; i < 300; ++i) {
    if (i >= 200 && i < 230) m.on_app_signal(app_signal::registration, "203.0.113.9", 40);  // 400 a second
    if (i >= 200 && i < 220) {  // one from each of 20 new addresses
      m.on_app_signal(app_signal::registration, "198.51.100." + std::to_string(i - 199));
    }
    std::vector<event> ev = m.advance(t0 + (i + 1) * step);
    all.insert(all.end(), ev.begin(), ev.end());
  }
  std::vector<alert_event> reg;
  for (const event& e : all) {
    if (e.type != event_type::alert || e.alert.detector != detector_id::registration_flood) continue;
    reg.push_back(e.alert);
  }
  REQUIRE_FALSE(reg.empty());
  // Steps 200-202 hold 41 registrations each (>= 20 a second): the alert starts with 120 from the flood's
  // source and one from each of three new addresses (under 5 a second) in its window.
  const alert_event& start = reg.front();
  CHECK(start.evidence == evidence_kind::app_signals);
  REQUIRE(start.culprits.size() == 1);
  CHECK(start.culprits[0].key == "203.0.113.9");
  CHECK(start.culprits[0].evidence == 120);
  CHECK(start.culprits[0].share == Approx(120.0 / 123));
  for (const alert_event& e : reg) {
    for (const culprit& c : e.culprits) CHECK(c.key == "203.0.113.9");
  }
}

TEST_CASE("a request flood keyed by a tenant names no address to deny-list", "[monitor][culprits]") {
  monitor m{monitor_config{}};
  std::vector<event> all;
  m.advance(t0);
  for (int i = 0; i < 100; ++i) {
    if (i >= 50) m.on_app_signal(app_signal::request, "tenant-x", 500);  // 5,000 a second
    std::vector<event> ev = m.advance(t0 + (i + 1) * step);
    all.insert(all.end(), ev.begin(), ev.end());
  }
  size_t request_alerts = 0;
  for (const event& e : all) {
    if (e.type != event_type::alert || e.alert.detector != detector_id::request_flood) continue;
    ++request_alerts;
    CHECK(e.alert.culprits.empty());
  }
  CHECK(request_alerts > 0);
}

TEST_CASE("half-open evidence is each address's SYNs less its completed handshakes, over both bars",
          "[monitor][culprits]") {
  monitor_config cfg;  // syn_flood culprit_min 50 a second, culprit_min_share 0.1
  window_features w;
  w.window_s = 1;
  // 1,080 SYNs started, 140 handshakes completed: 940 half-open in the window.
  w.sum.handshakes_started = 1080;
  w.sum.handshakes_completed = 140;
  const ip_address a = ip_address::v4(203, 0, 113, 1), b = ip_address::v4(203, 0, 113, 2),
                   c = ip_address::v4(10, 1, 0, 7), d = ip_address::v4(203, 0, 113, 4);
  w.top_syn_sources[0] = counted(a, 600);  // none completed: 600, 64% of 940
  w.top_syn_sources[1] = counted(b, 300);  // 40 completed: 260, 28%
  w.top_syn_sources[2] = counted(c, 120);  // 100 completed: 20 (< 50)
  w.top_syn_sources[3] = counted(d, 60);   // none completed: 60, but 6.4% (< 10%)
  w.n_syn_sources = 4;
  w.syn_sources_completed = {0, 40, 100, 0};
  const metric_reading m{"half_open_syn_pps", 940, true};
  const std::vector<culprit> found = find_culprits(detector_id::syn_flood, cfg, m, w);
  REQUIRE(found.size() == 2);
  CHECK(found[0].key == "203.0.113.1");
  CHECK(found[0].evidence == 600);
  CHECK(found[0].share == Approx(600.0 / 940));
  CHECK(found[1].key == "203.0.113.2");
  CHECK(found[1].evidence == 260);
  CHECK(found[1].share == Approx(260.0 / 940));
  // Unsolicited SYN-ACKs come from reflectors or forged sources: no culprit.
  const metric_reading reflected{"unsolicited_synack_pps", 940, true};
  CHECK(evidence_of(detector_id::syn_flood, reflected) == evidence_kind::none);
  CHECK(find_culprits(detector_id::syn_flood, cfg, reflected, w).empty());
}

TEST_CASE("stalled handshakes name addresses when one qualifies, the prefix only when none does",
          "[monitor][culprits]") {
  monitor_config cfg;  // handshake_stall culprit_min 5 a second, culprit_min_share 0.1, prefixes /24
  const metric_reading m{"stalled_handshakes_ps", 100, true};
  window_features w;
  w.window_s = 1;
  w.sum.stalled = 100;
  w.top_stalled_prefixes[0] = counted(ip_address::v4(172, 16, 0, 0), 90);
  w.top_stalled_prefixes[1] = counted(ip_address::v4(10, 1, 0, 0), 4);  // under 5 a second
  w.n_stalled_prefixes = 2;
  // The /24's 90 stalls are spread over its addresses; the busiest two carry 9 and 8 (under 10% each).
  w.top_stalled_sources[0] = counted(ip_address::v4(172, 16, 0, 1), 9);
  w.top_stalled_sources[1] = counted(ip_address::v4(172, 16, 0, 2), 8);
  w.n_stalled_sources = 2;
  std::vector<culprit> found = find_culprits(detector_id::handshake_stall, cfg, m, w);
  REQUIRE(found.size() == 1);
  CHECK(found[0].key == "172.16.0.0/24");
  CHECK(found[0].evidence == 90);
  CHECK(found[0].share == Approx(0.9));
  // One address with 40 of the 100: it is named, and no prefix is.
  w.top_stalled_sources[0] = counted(ip_address::v4(172, 16, 0, 1), 40);
  found = find_culprits(detector_id::handshake_stall, cfg, m, w);
  REQUIRE(found.size() == 1);
  CHECK(found[0].key == "172.16.0.1");
  CHECK(found[0].evidence == 40);
  // With a share bar of 95%, not even the prefix qualifies.
  w.top_stalled_sources[0] = counted(ip_address::v4(172, 16, 0, 1), 9);
  cfg.culprit_min_share = 0.95;
  CHECK(find_culprits(detector_id::handshake_stall, cfg, m, w).empty());
}

// conn_flood's relative rule (defaults: outlier_floor 30 completed handshakes a second, outlier_factor 10,
// severity 3): twelve addresses (10.2.0.1-12) that reconnect for every request, and one that opens sessions
// far faster, at a few hundred packets a second, a hundredth of heavy_hitter's floor.
namespace {

analysis session_capture(double population_rate, double heavy_rate, const std::string& name) {
  synth::traffic t(11);
  t.short_sessions(t0, 12, 12, population_rate, ip_address::v4(10, 2, 0, 1), server, port);
  if (heavy_rate > 0) t.short_sessions(t0 + 4 * sec, 4, 1, heavy_rate, ip_address::v4(198, 51, 100, 20), server, port);
  return run(t, name);
}

}  // namespace

TEST_CASE("one address opening sessions at many times the others' rate raises conn_flood, naming it as src",
          "[monitor][culprits][outlier]") {
  const analysis a = session_capture(1, 60, "session-outlier");
  CHECK(detectors_fired(a) == std::vector<std::string>{"conn_flood"});
  const auto cf = alerts_of(a, detector_id::conn_flood);
  CHECK(phases(cf).rfind("start,", 0) == 0);
  CHECK(cf.back().phase == alert_phase::end);
  const timed_alert& start = cf.front();
  CHECK(start.metric == "outlier_sessions_ps");
  CHECK(start.threshold == Approx(30));  // max(30, 10 x the fourth busiest address's 1 a second)
  CHECK(start.baseline == Approx(1));
  CHECK(start.value >= 30);
  CHECK(start.severity == 3);
  // One client busier than the rest is for the operators: the level stays green and nobody is a culprit (so
  // nobody is deny-listed on it); the alert names it as its source.
  CHECK(start.level == threat_level::green);
  CHECK(start.src == ip_address::v4(198, 51, 100, 20));
  CHECK(start.culprits.empty());
  CHECK(all_culprits(a).empty());
  for (const event& e : a.events) CHECK(e.type != event_type::threat_level);
  // Within a second of the first session; over by the end of the sessions plus the clearing (10 steps).
  CHECK(start.ts_us > t0 + 4 * sec);
  CHECK(start.ts_us < t0 + 5 * sec);
  CHECK(cf.back().ts_us < t0 + 10 * sec);
}

TEST_CASE("near misses of the relative session rule raise nothing", "[monitor][culprits][outlier]") {
  SECTION("25 sessions a second: under the 30 a second floor") {
    const analysis a = session_capture(1, 25, "session-under-floor");
    CHECK(detectors_fired(a).empty());
    const closest_approach& c = a.closest[static_cast<size_t>(detector_id::conn_flood)];
    CHECK(std::string(c.metric) == "outlier_sessions_ps");
    CHECK(c.ratio < 1);
    CHECK(c.ratio > 0.7);
  }
  SECTION("40 a second beside addresses that open 5 a second each (bar 50)") {
    CHECK(detectors_fired(session_capture(5, 40, "session-busy-population")).empty());
  }
  SECTION("100 a second beside one other address: two are no population to stand out from") {
    synth::traffic t(12);
    t.short_sessions(t0, 8, 1, 1, ip_address::v4(10, 2, 0, 1), server, port);
    t.short_sessions(t0, 8, 1, 100, ip_address::v4(198, 51, 100, 20), server, port);
    CHECK(detectors_fired(run(t, "session-pair")).empty());
  }
}

TEST_CASE("the relative session rule is the population's: 80 a second beside addresses at 5 raises it",
          "[monitor][culprits][outlier]") {
  const analysis a = session_capture(5, 80, "session-over-busy-population");
  const auto cf = alerts_of(a, detector_id::conn_flood);
  REQUIRE_FALSE(cf.empty());
  CHECK(cf.front().threshold >= 50);  // 10 x the fourth busiest address's 5 (or 6) a second
  CHECK(cf.front().src == ip_address::v4(198, 51, 100, 20));
}
