// What the monitor reports: alerts (start / update / end of one incident), threat-level changes, and
// periodic stats. Structured values for the server's policy code; to_eve_json() renders the Suricata-EVE
// compatible line for operators (see docs in monitor/README.md for the field list).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "monitor/monitor_config.hpp"
#include "monitor/packet.hpp"

namespace rampart::monitor {

// green: no active alert. yellow: only severity-3 alerts. orange: a severity-2 alert, or three or more
// detectors active at once. red: a severity-1 alert, or three or more active with one of severity 2.
enum class threat_level : uint8_t { green = 0, yellow = 1, orange = 2, red = 3 };
const char* threat_level_name(threat_level l);

enum class alert_phase : uint8_t { start, update, end };
const char* alert_phase_name(alert_phase p);

// EVE identifiers: gid 9999 for every Rampart alert, one signature id per detector (9999000 + index + 1).
constexpr int rampart_gid = 9999;
uint32_t signature_id(detector_id d);
const char* signature_text(detector_id d);

struct top_entry {
  std::string key;     // address, prefix ("10.0.0.0/24"), endpoint or application key
  uint64_t count = 0;  // lower bound of the key's count in the window
  double rate = 0;     // count per second over the window
};

// What a detector counts per source to name the culprits of its alert.
enum class evidence_kind : uint8_t {
  none,                  // the detector names no culprit (entropy_shift; unsolicited SYN-ACKs, which come
                         // from reflectors or forged sources)
  half_open_syns,        // syn_flood: SYNs from the address minus the handshakes it completed
  udp_packets,           // udp_flood
  icmp_packets,          // icmp_flood
  packets,               // heavy_hitter: every inbound packet
  completed_handshakes,  // conn_flood: handshakes whose SYN-ACK the address acknowledged
  stalled_handshakes,    // handshake_stall: completed handshakes that never sent a full ZMTP greeting
  app_signals,           // registration_flood, auth_failure_spike, request_flood: messages over a connection
  reflected_udp,         // reflection: datagrams from amplifier ports
  fragments,             // reflection: IP fragments
};
const char* evidence_kind_name(evidence_kind k);
// True when a sender that forges its source address produces the evidence without receiving anything back
// (SYNs, datagrams, raw packets), so the address it names may be a bystander's.
bool evidence_spoofable(evidence_kind k);

// A source the detector's own evidence points at: the only addresses and prefixes an alert names as culprits.
struct culprit {
  std::string key;        // address, or prefix ("10.0.0.0/24")
  uint64_t evidence = 0;  // lower bound of the detector's evidence from KEY in the window
  double share = 0;       // evidence / the window's total of that evidence, in [0, 1]
};

struct alert_event {
  detector_id detector = detector_id::syn_flood;
  alert_phase phase = alert_phase::start;
  uint64_t incident = 0;      // same for the start, updates and end of one incident; unique per monitor
  uint32_t update_seq = 0;    // 0 for start, 1.. for updates, then the end's number
  int severity = 2;
  std::string metric;         // e.g. "half_open_syn_pps"
  double value = 0;           // the metric in this window
  double threshold = 0;       // what it was compared with
  double baseline = 0;        // learned baseline at the time
  double peak = 0;            // largest value of this incident so far
  double window_s = 0;
  int64_t started_us = 0;     // time of the start event
  // Who attacks whom, when known (family 0 = unknown): top source and the most targeted endpoint.
  ip_address src;
  ip_address dst;
  uint16_t dst_port = 0;
  l4_proto proto = l4_proto::tcp;
  std::vector<top_entry> top_sources;  // addresses, prefixes or application keys: who the traffic came from
  // Who the detector's evidence names (detectors.hpp, find_culprits), strongest first; the only sources the
  // server's policy may deny-list. Empty when no source carried enough of it (a spoofed or spread-out flood).
  evidence_kind evidence = evidence_kind::none;
  std::vector<culprit> culprits;
  double distinct_sources = 0;
  double src_entropy_norm = 0;
  threat_level level = threat_level::green;  // threat level after this event
  bool blocked = false;                       // EVE alert.action "blocked" instead of "allowed"
  std::vector<std::string> policy_actions;    // filled in by the server's policy; empty here
};

struct threat_event {
  threat_level from = threat_level::green;
  threat_level to = threat_level::green;
  std::vector<detector_id> active;  // detectors active after the change
};

// Cumulative counters since the monitor started. Safe to copy; monitor::snapshot() returns one.
struct monitor_counters {
  uint64_t packets = 0;  // every packet handed to the monitor, malformed included
  uint64_t bytes = 0;
  std::array<uint64_t, l4_proto_count> packets_by_proto{};
  std::array<uint64_t, l4_proto_count> bytes_by_proto{};
  uint64_t ipv4 = 0, ipv6 = 0, fragments = 0;
  uint64_t tcp_syn = 0, tcp_synack = 0, tcp_rst = 0, tcp_fin = 0;  // syn = SYN without ACK
  uint64_t malformed = 0;
  std::array<uint64_t, malformed_kind_count> malformed_by_kind{};
  uint64_t max_packet_len = 0;
  // Capture side (monitor::on_capture_stats): packets the capture callback saw, kernel and interface drops
  // from pcap_stats, read errors.
  uint64_t capture_packets = 0, kernel_drops = 0, interface_drops = 0, capture_errors = 0;
  uint64_t flow_evictions = 0, half_open_expired = 0;
  std::array<uint64_t, 7> app_signals{};  // by app_signal (eve_json.cpp checks the size)
  std::array<uint64_t, detector_count> alerts_started{};
  std::array<bool, detector_count> active{};
  threat_level level = threat_level::green;
  int64_t first_ts_us = 0, last_ts_us = 0;
};

enum class event_type : uint8_t { alert, threat_level, stats };

struct event {
  event_type type = event_type::alert;
  int64_t ts_us = 0;
  alert_event alert;      // type == alert
  threat_event threat;    // type == threat_level
  monitor_counters stats; // type == stats
};

// One EVE JSON object (no trailing newline). SENSOR fills "host"; PCAP_FILENAME, when non-empty, is added
// as "pcap_filename" like Suricata's offline mode.
std::string to_eve_json(const event& e, const std::string& sensor, const std::string& pcap_filename = "");
// ISO 8601 with microseconds and "+0000", as EVE writes timestamps.
std::string eve_timestamp(int64_t ts_us);

}  // namespace rampart::monitor
