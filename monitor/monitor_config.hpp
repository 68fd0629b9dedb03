// Every threshold and window of the packet monitor, with defaults that raise nothing on ordinary traffic.
// Plain data: config/monitor_config.hpp fills it from the TOML [monitor] table; tests build it in code.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rampart::monitor {

// The detectors. Their names (detector_name) are stable: alerts, config tables and dashboards use them.
enum class detector_id : uint8_t {
  syn_flood,
  udp_flood,
  icmp_flood,
  conn_flood,
  handshake_stall,
  heavy_hitter,
  entropy_shift,
  registration_flood,
  auth_failure_spike,
  request_flood,
  reflection,    // unsolicited UDP from amplifier ports, and IP fragments
  slow_readers,  // connections dropped for not reading what they were sent (an application signal)
  count_,
};
constexpr size_t detector_count = static_cast<size_t>(detector_id::count_);
const char* detector_name(detector_id d);
// Returns false when NAME is not a detector's name.
bool detector_from_name(const std::string& name, detector_id* out);

// One detector's decision rule. Each evaluation (one per step) compares the detector's metric with
//   threshold = max(floor, factor * baseline)
// where baseline is an EWMA of the metric with time constant baseline_tau_s, learned only while the detector
// is quiet and the metric is under its threshold. entropy_shift differs: it fires when the normalised source
// entropy moves at least `floor` away from its baseline (factor unused).
struct detector_config {
  bool enabled = true;
  double floor = 0;             // absolute minimum threshold, in the metric's unit (>= 0)
  double factor = 3;            // multiple of the baseline (>= 1)
  double baseline_tau_s = 60;   // EWMA time constant (> 0)
  double initial_baseline = 0;  // baseline before anything was learned
  int raise_after = 3;          // consecutive evaluations over the threshold before "start" (>= 1)
  int clear_after = 10;         // consecutive evaluations under before "end" (>= 1)
  int update_every = 10;        // evaluations between "update" events while active (>= 1)
  int severity = 2;             // EVE severity, 1 (highest) .. 3
  // heavy_hitter only: the top source (or prefix) must also carry at least this share of inbound packets.
  double min_share = 0;
  // entropy_shift only: no verdict on windows with fewer inbound packets per second or distinct sources.
  double min_pps = 0;
  double min_sources = 0;
  // The least of the detector's own evidence per second (in the metric's unit) one source must carry to be
  // named a culprit of its alert (see monitor_config::culprit_min_share for the other condition).
  double culprit_min = 0;
  // conn_flood and request_flood: the relative rule (0: off). One source's new sessions a second (conn_flood),
  // or one key's requests or generated tokens a second (request_flood), against the population: at least
  // outlier_floor (token_outlier_floor for tokens), at least outlier_factor times the busiest ordinary
  // key's rate (the fourth busiest, or the last of three or more), and for request_flood at least
  // outlier_factor times the key's own learned rate. Such an alert has outlier_severity.
  double outlier_floor = 0;
  double token_outlier_floor = 0;
  double outlier_factor = 10;
  int outlier_severity = 3;
};

struct monitor_config {
  // Live capture. An empty bpf_filter means: derived from service_ports, keeping only what the detectors read
  // (TCP and UDP to a service port; from it only SYN, FIN and RST segments; see derived_bpf_filter in
  // capture.hpp), or no filter when service_ports is empty too. A bpf_filter that is set is used as is.
  std::string interface = "lo";
  std::string bpf_filter;
  int64_t buffer_bytes = 8 << 20;  // kernel capture buffer
  // Bytes kept per packet. The detectors read headers only (lengths come from the IP and UDP headers). In
  // immediate mode every packet takes a ring slot of about snaplen bytes: 256 lets the 8 MiB buffer hold
  // ~25,000 packets where 262144 held ~120 and dropped under any flood; buffered, a packet takes its
  // captured bytes plus ~80 octets of header.
  int snaplen = 256;
  // Buffered (the default): the kernel collects packets in ring blocks and wakes the capture thread once per
  // full block, or buffer_timeout_ms (1..1000) after the block opened, so a flood costs tens of wake-ups a
  // second instead of one per packet. A packet reaches the monitor up to ~2 * buffer_timeout_ms late, and the
  // wall clock closes an idle step that much later. immediate_mode = true wakes the thread for nearly every
  // packet: the lowest latency, and most of the capture thread's CPU under a flood (docs/benchmarks.md).
  bool immediate_mode = false;
  int buffer_timeout_ms = 50;
  // TCP/UDP destination ports of the protected service. Empty: every packet counts as traffic to it (the
  // capture filter already selected the server's traffic, or an offline file holds one service's traffic).
  std::vector<uint16_t> service_ports;
  // UDP source ports of well-known amplifiers (QOTD, chargen, DNS, TFTP, portmap, NTP, NetBIOS, SNMP, CLDAP,
  // ISAKMP (500, and 4500 for NAT traversal), RIP, SSDP, ARMS, WS-Discovery, mDNS, CoAP, memcached, Steam,
  // BACnet): datagrams from them to any port of this host are reflection traffic, which a server that sends no
  // such queries never asks for (`reflection`). The derived capture filter keeps them, and IP fragments, beside
  // the service's traffic. At most 64.
  std::vector<uint16_t> amplifier_ports = {17,   19,   53,   69,   111,  123,   137,   161,  389,  500,
                                           520,  1900, 3283, 3702, 4500, 5353,  5683,  11211, 27015, 47808};

  double window_s = 1.0;          // features cover the last window_s seconds
  double step_s = 0.1;            // ... recomputed every step_s; window_s must be a multiple of step_s
  double stats_interval_s = 8;    // period of "stats" events (0 = none)
  double handshake_timeout_s = 3; // a TCP connection without a complete ZMTP greeting after this is stalled
  size_t flow_table_entries = 65536;  // handshake tracking table (rounded up to a power of two)
  int prefix_v4 = 24;             // prefix lengths for per-prefix heavy hitters and connection counts
  int prefix_v6 = 48;
  // A culprit must also carry at least this share of the window's total of the detector's evidence
  // (heavy_hitter: at least its min_share), besides its detector's culprit_min and 2 events in the window.
  double culprit_min_share = 0.1;
  std::string sensor_name = "rampart";  // EVE "host"
  std::string eve_log;            // eve.json path for the server's file sink; "" = none

  std::array<detector_config, detector_count> detectors = default_detectors();

  detector_config& detector(detector_id d) { return detectors[static_cast<size_t>(d)]; }
  const detector_config& detector(detector_id d) const { return detectors[static_cast<size_t>(d)]; }

  // Returns "" when the configuration is usable, else one sentence naming the bad field.
  std::string validate() const;

  static std::array<detector_config, detector_count> default_detectors();
};

}  // namespace rampart::monitor
