#include "monitor/monitor_config.hpp"

#include <cmath>
#include <sstream>

namespace rampart::monitor {

namespace {
constexpr const char* names[detector_count] = {
    "syn_flood",     "udp_flood",         "icmp_flood",         "conn_flood",         "handshake_stall",
    "heavy_hitter",  "entropy_shift",     "registration_flood", "auth_failure_spike", "request_flood",
    "reflection",    "slow_readers",
};
}  // namespace

const char* detector_name(detector_id d) {
  const size_t i = static_cast<size_t>(d);
  return i < detector_count ? names[i] : "unknown";
}

bool detector_from_name(const std::string& name, detector_id* out) {
  for (size_t i = 0; i < detector_count; ++i) {
    if (name == names[i]) {
      *out = static_cast<detector_id>(i);
      return true;
    }
  }
  return false;
}

std::array<detector_config, detector_count> monitor_config::default_detectors() {
  std::array<detector_config, detector_count> d{};
  auto set = [&](detector_id id, double floor, double factor, int severity) {
    detector_config& c = d[static_cast<size_t>(id)];
    c.floor = floor;
    c.factor = factor;
    c.severity = severity;
  };
  // Floors sit well above what the benign loads measured in docs (security spec, section 10) produce:
  // 2,000 req/s from 8 persistent clients is ~4,000 packets/s from one address, no SYNs, no UDP.
  set(detector_id::syn_flood, 500, 5, 2);          // half-open SYNs or unsolicited SYN-ACKs per second
  set(detector_id::udp_flood, 1000, 5, 2);         // UDP packets per second
  set(detector_id::icmp_flood, 1000, 5, 3);        // ICMP packets per second
  set(detector_id::conn_flood, 200, 5, 2);         // new connections per second from one source or prefix
  set(detector_id::handshake_stall, 50, 5, 2);     // connections per second that never finish the greeting
  set(detector_id::heavy_hitter, 20000, 5, 2);     // packets per second from the top source or prefix
  set(detector_id::entropy_shift, 0.3, 1, 3);      // distance of normalised source entropy from baseline
  set(detector_id::registration_flood, 20, 5, 1);  // registrations per second
  set(detector_id::auth_failure_spike, 20, 5, 2);  // authentication failures per second
  set(detector_id::request_flood, 1000, 5, 2);     // requests per second from the busiest key
  // Reflected UDP (from amplifier ports) or IP fragments per second: a server that asks no DNS, NTP, ... server
  // anything and is sent no fragmented requests receives close to none, so the floor is low.
  set(detector_id::reflection, 100, 5, 2);
  // Connections dropped for not reading (the front end's send queue for one filled; the HTTP door's write
  // waited or its unsent bytes grew too large): ordinary clients read what they asked for, so a few a second
  // is already many. But one client that never reads and reconnects after each drop (a ZeroMQ DEALER does,
  // within 100 ms, and what it queued meanwhile fills the new connection's send queue at once) was dropped
  // twice in a second, which at a floor of 2 raised the level to orange for everyone and deny-listed its
  // address: the floor is 5, a slow-read attack's rate, not one faulty client's.
  set(detector_id::slow_readers, 5, 5, 2);
  d[static_cast<size_t>(detector_id::heavy_hitter)].min_share = 0.5;
  // What one source must do per second to be named a culprit: a tenth of its detector's floor, at least 5,
  // far above what one benign client does (it retries a SYN a few times a minute, reconnects about once a
  // second, and the per-source registration bucket allows a burst of 5).
  auto culprit_min = [&](detector_id id, double per_s) { d[static_cast<size_t>(id)].culprit_min = per_s; };
  culprit_min(detector_id::syn_flood, 50);           // half-open SYNs
  culprit_min(detector_id::udp_flood, 100);          // UDP packets
  culprit_min(detector_id::icmp_flood, 100);         // ICMP packets
  culprit_min(detector_id::conn_flood, 20);          // completed handshakes
  culprit_min(detector_id::handshake_stall, 5);      // stalled handshakes
  culprit_min(detector_id::heavy_hitter, 2000);      // packets
  culprit_min(detector_id::registration_flood, 5);   // registrations
  culprit_min(detector_id::auth_failure_spike, 5);   // authentication failures
  culprit_min(detector_id::request_flood, 100);      // requests
  culprit_min(detector_id::reflection, 10);          // reflected datagrams or fragments
  culprit_min(detector_id::slow_readers, 1);         // connections dropped for not reading
  // The relative rules: an inference API's ordinary client opens a session every few seconds and sends a
  // request every few seconds; one that does tens a second, ten times the busiest of the others, is worth
  // naming long before it reaches the absolute floors, but is one client, not an attack on the service: its
  // alerts (EVE severity 3) name no culprit and leave the threat level as it is.
  detector_config& cf = d[static_cast<size_t>(detector_id::conn_flood)];
  cf.outlier_floor = 30;  // completed handshakes a second from one address
  detector_config& rf = d[static_cast<size_t>(detector_id::request_flood)];
  rf.outlier_floor = 50;           // requests a second from one key
  rf.token_outlier_floor = 2000;   // generated tokens a second for one key
  detector_config& e = d[static_cast<size_t>(detector_id::entropy_shift)];
  e.min_pps = 500;
  e.min_sources = 1;
  e.initial_baseline = -1;  // learn it from the first window with enough traffic
  return d;
}

std::string monitor_config::validate() const {
  std::ostringstream err;
  if (interface.empty()) return "interface must not be empty";
  if (buffer_bytes < 65536) return "buffer_bytes must be at least 65536";
  if (snaplen < 64 || snaplen > 262144) return "snaplen must be in [64, 262144]";
  if (buffer_timeout_ms < 1 || buffer_timeout_ms > 1000) return "buffer_timeout_ms must be in [1, 1000]";
  for (uint16_t p : service_ports) {
    if (p == 0) return "service_ports must not contain port 0";
  }
  if (!(step_s >= 0.001 && step_s <= 60)) return "step_s must be in [0.001, 60]";
  if (!(window_s >= step_s && window_s <= 3600)) return "window_s must be in [step_s, 3600]";
  const double steps = window_s / step_s;
  if (std::fabs(steps - std::round(steps)) > 1e-6) return "window_s must be a whole multiple of step_s";
  if (std::round(steps) > 64) return "window_s / step_s must be at most 64";
  if (!(stats_interval_s >= 0 && stats_interval_s <= 86400)) return "stats_interval_s must be in [0, 86400]";
  if (!(handshake_timeout_s > 0 && handshake_timeout_s <= 3600)) {
    return "handshake_timeout_s must be in (0, 3600]";
  }
  if (flow_table_entries < 4 || flow_table_entries > (size_t{1} << 26)) {
    return "flow_table_entries must be in [4, 67108864]";
  }
  if (prefix_v4 < 1 || prefix_v4 > 32) return "prefix_v4 must be in [1, 32]";
  if (prefix_v6 < 1 || prefix_v6 > 128) return "prefix_v6 must be in [1, 128]";
  for (size_t i = 0; i < detector_count; ++i) {
    const detector_config& d = detectors[i];
    const std::string n = std::string("detectors.") + names[i] + ".";
    if (!(d.floor >= 0) || !std::isfinite(d.floor)) return n + "floor must be a finite number >= 0";
    if (!(d.factor >= 1) || !std::isfinite(d.factor)) return n + "factor must be a finite number >= 1";
    if (!(d.baseline_tau_s > 0) || !std::isfinite(d.baseline_tau_s)) return n + "baseline_tau_s must be > 0";
    if (!std::isfinite(d.initial_baseline)) return n + "initial_baseline must be finite";
    if (d.raise_after < 1) return n + "raise_after must be >= 1";
    if (d.clear_after < 1) return n + "clear_after must be >= 1";
    if (d.update_every < 1) return n + "update_every must be >= 1";
    if (d.severity < 1 || d.severity > 3) return n + "severity must be 1, 2 or 3";
    if (!(d.min_share >= 0 && d.min_share <= 1)) return n + "min_share must be in [0, 1]";
    if (!(d.min_pps >= 0) || !(d.min_sources >= 0)) return n + "min_pps and min_sources must be >= 0";
    if (!(d.culprit_min >= 0) || !std::isfinite(d.culprit_min)) {
      return n + "culprit_min must be a finite number >= 0";
    }
    // The relative rules: a floor of 0 turns one off; below 1 a second, two events would stand out.
    for (double f : {d.outlier_floor, d.token_outlier_floor}) {
      if (!(f == 0 || (f >= 1 && std::isfinite(f)))) return n + "outlier floors must be 0 (off) or at least 1";
    }
    if (!(d.outlier_factor >= 2) || !std::isfinite(d.outlier_factor)) {
      return n + "outlier_factor must be a finite number >= 2";
    }
    if (d.outlier_severity < 1 || d.outlier_severity > 3) return n + "outlier_severity must be 1, 2 or 3";
  }
  if (!(culprit_min_share >= 0 && culprit_min_share <= 1)) return "culprit_min_share must be in [0, 1]";
  const detector_config& e = detectors[static_cast<size_t>(detector_id::entropy_shift)];
  if (!(e.floor > 0 && e.floor <= 1)) return "detectors.entropy_shift.floor must be in (0, 1]";
  return "";
}

}  // namespace rampart::monitor
