#include <ctime>

#include <nlohmann/json.hpp>

#include "monitor/event.hpp"
#include "monitor/features.hpp"

namespace rampart::monitor {

static_assert(app_signal_count == std::tuple_size<decltype(monitor_counters::app_signals)>::value,
              "monitor_counters::app_signals must have one slot per app_signal");

namespace {

const char* signatures[detector_count] = {
    "RAMPART SYN flood: half-open or unsolicited SYN-ACK rate",
    "RAMPART UDP flood: UDP packet rate",
    "RAMPART ICMP flood: ICMP packet rate",
    "RAMPART connection flood: new connections per source",
    "RAMPART handshake stall: connections that never finish the ZMTP handshake",
    "RAMPART heavy hitter: one source or prefix takes a disproportionate share",
    "RAMPART source entropy shift",
    "RAMPART registration flood",
    "RAMPART authentication failure spike",
    "RAMPART request flood from one key",
    "RAMPART reflection: unsolicited UDP from amplifier ports, or IP fragments",
    "RAMPART slow readers: connections that do not read what they are sent",
};

}  // namespace

const char* threat_level_name(threat_level l) {
  switch (l) {
    case threat_level::green: return "green";
    case threat_level::yellow: return "yellow";
    case threat_level::orange: return "orange";
    case threat_level::red: return "red";
  }
  return "unknown";
}

const char* alert_phase_name(alert_phase p) {
  switch (p) {
    case alert_phase::start: return "start";
    case alert_phase::update: return "update";
    case alert_phase::end: return "end";
  }
  return "unknown";
}

const char* evidence_kind_name(evidence_kind k) {
  switch (k) {
    case evidence_kind::none: return "none";
    case evidence_kind::half_open_syns: return "half_open_syns";
    case evidence_kind::udp_packets: return "udp_packets";
    case evidence_kind::icmp_packets: return "icmp_packets";
    case evidence_kind::packets: return "packets";
    case evidence_kind::completed_handshakes: return "completed_handshakes";
    case evidence_kind::stalled_handshakes: return "stalled_handshakes";
    case evidence_kind::app_signals: return "app_signals";
    case evidence_kind::reflected_udp: return "reflected_udp";
    case evidence_kind::fragments: return "fragments";
  }
  return "unknown";
}

bool evidence_spoofable(evidence_kind k) {
  switch (k) {
    case evidence_kind::half_open_syns:
    case evidence_kind::udp_packets:
    case evidence_kind::icmp_packets:
    case evidence_kind::packets:
    case evidence_kind::reflected_udp:  // a forged source port and address make anyone a "reflector"
    case evidence_kind::fragments:
      return true;
    case evidence_kind::none:
    case evidence_kind::completed_handshakes:
    case evidence_kind::stalled_handshakes:
    case evidence_kind::app_signals:
      return false;
  }
  return true;
}

uint32_t signature_id(detector_id d) { return 9999000u + static_cast<uint32_t>(d) + 1u; }

const char* signature_text(detector_id d) {
  const size_t i = static_cast<size_t>(d);
  return i < detector_count ? signatures[i] : "RAMPART unknown";
}

std::string eve_timestamp(int64_t ts_us) {
  int64_t secs = ts_us / 1000000;
  int64_t micros = ts_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --secs;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lld+0000", static_cast<long long>(micros));
  return buf;
}

namespace {

nlohmann::json counters_json(const monitor_counters& c, int64_t ts_us) {
  using nlohmann::json;
  json decoder = {{"pkts", c.packets},
                  {"bytes", c.bytes},
                  {"ipv4", c.ipv4},
                  {"ipv6", c.ipv6},
                  {"tcp", c.packets_by_proto[static_cast<size_t>(l4_proto::tcp)]},
                  {"udp", c.packets_by_proto[static_cast<size_t>(l4_proto::udp)]},
                  {"icmpv4", c.packets_by_proto[static_cast<size_t>(l4_proto::icmp)]},
                  {"icmpv6", c.packets_by_proto[static_cast<size_t>(l4_proto::icmp6)]},
                  {"other_ip", c.packets_by_proto[static_cast<size_t>(l4_proto::other_ip)]},
                  {"not_ip", c.packets_by_proto[static_cast<size_t>(l4_proto::not_ip)]},
                  {"fragments", c.fragments},
                  {"invalid", c.malformed},
                  {"max_pkt_size", c.max_packet_len},
                  {"avg_pkt_size", c.packets ? c.bytes / c.packets : 0}};
  json malformed = json::object();
  for (size_t k = 1; k < malformed_kind_count; ++k) {
    malformed[malformed_kind_name(static_cast<malformed_kind>(k))] = c.malformed_by_kind[k];
  }
  decoder["malformed"] = std::move(malformed);
  json app = json::object();
  for (size_t k = 0; k < app_signal_count; ++k) {
    app[app_signal_name(static_cast<app_signal>(k))] = c.app_signals[k];
  }
  json alerts = json::object();
  json active = json::array();
  for (size_t d = 0; d < detector_count; ++d) {
    alerts[detector_name(static_cast<detector_id>(d))] = c.alerts_started[d];
    if (c.active[d]) active.push_back(detector_name(static_cast<detector_id>(d)));
  }
  const double uptime = c.first_ts_us ? static_cast<double>(ts_us - c.first_ts_us) / 1e6 : 0;
  return {{"uptime", static_cast<int64_t>(uptime)},
          {"capture",
           {{"kernel_packets", c.capture_packets},
            {"kernel_drops", c.kernel_drops},
            {"kernel_ifdrops", c.interface_drops},
            {"errors", c.capture_errors}}},
          {"decoder", std::move(decoder)},
          {"tcp", {{"syn", c.tcp_syn}, {"synack", c.tcp_synack}, {"rst", c.tcp_rst}, {"fin", c.tcp_fin}}},
          {"flow", {{"evictions", c.flow_evictions}, {"half_open_expired", c.half_open_expired}}},
          {"rampart",
           {{"app_signals", std::move(app)},
            {"alerts_started", std::move(alerts)},
            {"active", std::move(active)},
            {"threat_level", threat_level_name(c.level)}}}};
}

}  // namespace

std::string to_eve_json(const event& e, const std::string& sensor, const std::string& pcap_filename) {
  using nlohmann::json;
  json j;
  j["timestamp"] = eve_timestamp(e.ts_us);
  j["host"] = sensor;
  if (!pcap_filename.empty()) j["pcap_filename"] = pcap_filename;
  switch (e.type) {
    case event_type::alert: {
      const alert_event& a = e.alert;
      j["event_type"] = "alert";
      j["flow_id"] = a.incident;
      if (a.src.family) j["src_ip"] = a.src.to_string();
      j["src_port"] = 0;
      if (a.dst.family) j["dest_ip"] = a.dst.to_string();
      j["dest_port"] = a.dst_port;
      j["proto"] = l4_proto_name(a.proto);
      j["alert"] = {{"action", a.blocked ? "blocked" : "allowed"},
                    {"gid", rampart_gid},
                    {"signature_id", signature_id(a.detector)},
                    {"rev", 1},
                    {"signature", signature_text(a.detector)},
                    {"category", "Attempted Denial of Service"},
                    {"severity", a.severity}};
      json top = json::array();
      for (const top_entry& t : a.top_sources) {
        top.push_back({{"key", t.key}, {"count", t.count}, {"rate", t.rate}});
      }
      json culprits = json::array();
      for (const culprit& c : a.culprits) {
        culprits.push_back({{"key", c.key}, {"evidence", c.evidence}, {"share", c.share}});
      }
      j["rampart"] = {{"detector", detector_name(a.detector)},
                      {"phase", alert_phase_name(a.phase)},
                      {"incident", a.incident},
                      {"update", a.update_seq},
                      {"metric", a.metric},
                      {"value", a.value},
                      {"threshold", a.threshold},
                      {"baseline", a.baseline},
                      {"peak", a.peak},
                      {"window_s", a.window_s},
                      {"started", eve_timestamp(a.started_us)},
                      {"top_sources", std::move(top)},
                      {"evidence", evidence_kind_name(a.evidence)},
                      {"spoofable", evidence_spoofable(a.evidence)},
                      {"culprits", std::move(culprits)},
                      {"distinct_sources", static_cast<uint64_t>(a.distinct_sources + 0.5)},
                      {"src_entropy_norm", a.src_entropy_norm},
                      {"threat_level", threat_level_name(a.level)},
                      {"policy_actions", a.policy_actions}};
      break;
    }
    case event_type::threat_level: {
      j["event_type"] = "threat_level";
      json active = json::array();
      for (detector_id d : e.threat.active) active.push_back(detector_name(d));
      j["threat_level"] = {{"from", threat_level_name(e.threat.from)},
                           {"to", threat_level_name(e.threat.to)},
                           {"level", static_cast<int>(e.threat.to)},
                           {"active", std::move(active)}};
      break;
    }
    case event_type::stats:
      j["event_type"] = "stats";
      j["stats"] = counters_json(e.stats, e.ts_us);
      break;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace rampart::monitor
