// The capture filter derived from the service ports: its exact text, what libpcap makes of it packet by packet,
// and that a capture analysed through it raises exactly the alerts of the whole capture.
#include <catch2/catch.hpp>

#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "monitor/capture.hpp"
#include "monitor/synth.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::monitor;

namespace {

constexpr uint16_t port = 5555;
const ip_address server = ip_address::v4(10, 0, 0, 1);
const ip_address client = ip_address::v4(10, 1, 0, 1);

// What `reflection` reads, after the service's part: UDP from the default amplifier ports (the list in
// monitor_config.hpp, from the amplification vectors CISA's TA14-017A and the fixtures name), IPv4 packets with
// more-fragments or an offset (the low 14 bits of octets 6-7), IPv6 packets whose next header is a fragment
// header (44).
const std::string reflection_part =
    " or udp src port 17 or udp src port 19 or udp src port 53 or udp src port 69 or udp src port 111 or "
    "udp src port 123 or udp src port 137 or udp src port 161 or udp src port 389 or udp src port 500 or "
    "udp src port 520 or udp src port 1900 or udp src port 3283 or udp src port 3702 or udp src port 4500 or "
    "udp src port 5353 or udp src port 5683 or udp src port 11211 or udp src port 27015 or udp src port 47808 or "
    "(ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] == 44)";

// The filter for port 5555, written out from the rule: TCP and UDP to the port; from the port only TCP
// segments with SYN, FIN or RST (IPv4 flags through tcp[tcpflags]; IPv6 flags at octet 40 + 13).
const std::string one_port =
    "tcp dst port 5555 or udp dst port 5555 or (tcp src port 5555 and "
    "(tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or ip6[53] & 7 != 0))" + reflection_part;

monitor_config with_ports(std::vector<uint16_t> ports) {
  monitor_config c;
  c.service_ports = std::move(ports);
  return c;
}

// A filter compiled by libpcap for Ethernet frames, applied in user space.
class compiled_filter {
 public:
  explicit compiled_filter(const std::string& text) : dead_(pcap_open_dead(DLT_EN10MB, 256)) {
    ok_ = dead_ != nullptr && pcap_compile(dead_, &prog_, text.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
    if (!ok_ && dead_ != nullptr) error_ = pcap_geterr(dead_);
  }
  ~compiled_filter() {
    if (ok_) pcap_freecode(&prog_);
    if (dead_ != nullptr) pcap_close(dead_);
  }
  compiled_filter(const compiled_filter&) = delete;
  compiled_filter& operator=(const compiled_filter&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  bool passes(const std::vector<uint8_t>& frame) const {
    pcap_pkthdr h{};
    h.caplen = h.len = static_cast<bpf_u_int32>(frame.size());
    return pcap_offline_filter(&prog_, &h, frame.data()) != 0;
  }

 private:
  pcap_t* dead_;
  bpf_program prog_{};
  bool ok_ = false;
  std::string error_;
};

std::vector<uint8_t> tcp4(const ip_address& src, uint16_t sport, const ip_address& dst, uint16_t dport,
                          uint8_t flags, uint32_t payload = 0) {
  return synth::ethernet_ipv4_tcp({src, dst, sport, dport, flags, 1, 1, payload});
}

// The same L4 header and payload as V4_FRAME (Ethernet + 20-octet IPv4), behind an IPv6 header from ::1 to
// ::1 with no extension headers.
std::vector<uint8_t> as_ipv6(const std::vector<uint8_t>& v4_frame) {
  const size_t l4 = v4_frame.size() - 34;
  std::vector<uint8_t> f;
  f.reserve(14 + 40 + l4);
  f.resize(14 + 40, 0);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[14] = 0x60;                               // version 6
  f[18] = static_cast<uint8_t>(l4 >> 8);      // payload length
  f[19] = static_cast<uint8_t>(l4 & 0xff);
  f[20] = v4_frame[14 + 9];                   // next header: the IPv4 frame's protocol
  f[21] = 64;                                 // hop limit
  f[14 + 8 + 15] = 1;                         // source ::1
  f[14 + 24 + 15] = 1;                        // destination ::1
  for (size_t i = 34; i < v4_frame.size(); ++i) f.push_back(v4_frame[i]);
  return f;
}

struct filtered_run {
  bool ok = false;
  std::string error;
  uint64_t packets = 0;
  std::vector<std::string> events;  // alerts and threat-level changes, one line each
  std::vector<std::string> fired;   // detectors with at least one alert
};

std::string describe(const event& e) {
  char head[200];
  if (e.type == event_type::threat_level) {
    std::snprintf(head, sizeof head, "%lld threat %s -> %s", static_cast<long long>(e.ts_us),
                  threat_level_name(e.threat.from), threat_level_name(e.threat.to));
    return head;
  }
  const alert_event& a = e.alert;
  std::snprintf(head, sizeof head, "%lld %s %s %s %.9g src %s dst %s:%u", static_cast<long long>(e.ts_us),
                detector_name(a.detector), alert_phase_name(a.phase), a.metric.c_str(), a.value,
                a.src.to_string().c_str(), a.dst.to_string().c_str(), static_cast<unsigned>(a.dst_port));
  std::string s = head;
  for (const top_entry& t : a.top_sources) s += " " + t.key + "=" + std::to_string(t.count);
  for (const culprit& c : a.culprits) s += " culprit " + c.key + "=" + std::to_string(c.evidence);
  return s;
}

filtered_run analyse(const std::string& path, const monitor_config& cfg, const std::string& filter) {
  filtered_run r;
  std::unique_ptr<capture> cap = capture::open_offline(path, filter, &r.error);
  if (!cap) return r;
  monitor m(cfg);
  callback_sink sink([&](const event& e) {
    if (e.type == event_type::stats) return;
    r.events.push_back(describe(e));
    const std::string name = detector_name(e.alert.detector);
    if (e.type == event_type::alert && std::find(r.fired.begin(), r.fired.end(), name) == r.fired.end()) {
      r.fired.push_back(name);
    }
  });
  r.ok = cap->run(m, sink);
  if (!r.ok) r.error = cap->error();
  r.packets = m.snapshot().packets;
  return r;
}

}  // namespace

TEST_CASE("the derived capture filter names the service ports and, from them, only handshake answers and closes",
          "[monitor][capture]") {
  CHECK(derived_bpf_filter(with_ports({5555})) == one_port);
  CHECK(derived_bpf_filter(with_ports({5555, 5556})) ==
        "tcp dst port 5555 or udp dst port 5555 or tcp dst port 5556 or udp dst port 5556 or "
        "((tcp src port 5555 or tcp src port 5556) and "
        "(tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or ip6[53] & 7 != 0))" + reflection_part);
  CHECK(derived_bpf_filter(monitor_config{}).empty());

  monitor_config own = with_ports({5555});
  own.bpf_filter = "tcp port 80";  // an operator's filter is used as is
  CHECK(derived_bpf_filter(own) == "tcp port 80");
  CHECK(effective_bpf_filter(own) == "tcp port 80");
}

TEST_CASE("libpcap passes exactly the packets the derived filter names", "[monitor][capture]") {
  const compiled_filter f(derived_bpf_filter(with_ports({port})));
  INFO(f.error());
  REQUIRE(f.ok());
  const uint16_t cport = 40000;
  // Towards the service: everything TCP and UDP.
  CHECK(f.passes(tcp4(client, cport, server, port, tcp_flag::syn)));
  CHECK(f.passes(tcp4(client, cport, server, port, tcp_flag::ack)));
  CHECK(f.passes(tcp4(client, cport, server, port, tcp_flag::ack | tcp_flag::psh, 64)));
  CHECK(f.passes(tcp4(client, cport, server, port, tcp_flag::rst)));
  CHECK(f.passes(synth::ethernet_ipv4_udp(client, 500, server, port, 18)));
  // From the service: handshake answers and closes only.
  CHECK(f.passes(tcp4(server, port, client, cport, tcp_flag::syn | tcp_flag::ack)));
  CHECK(f.passes(tcp4(server, port, client, cport, tcp_flag::fin | tcp_flag::ack)));
  CHECK(f.passes(tcp4(server, port, client, cport, tcp_flag::rst)));
  CHECK_FALSE(f.passes(tcp4(server, port, client, cport, tcp_flag::ack | tcp_flag::psh, 64)));
  CHECK_FALSE(f.passes(tcp4(server, port, client, cport, tcp_flag::ack)));
  CHECK_FALSE(f.passes(synth::ethernet_ipv4_udp(server, port, client, 500, 18)));
  // Neither: another port, ICMP, UDP from a port that is no amplifier's.
  CHECK_FALSE(f.passes(tcp4(client, cport, server, 80, tcp_flag::syn)));
  CHECK_FALSE(f.passes(synth::ethernet_ipv4_icmp_echo(client, server, 56)));
  CHECK_FALSE(f.passes(synth::ethernet_ipv4_udp(client, 5000, server, 40000, 100)));
  // Reflection: UDP from an amplifier port to any port, and fragments (first and later) to any port.
  CHECK(f.passes(synth::ethernet_ipv4_udp(client, 53, server, 40000, 512)));
  CHECK(f.passes(synth::ethernet_ipv4_udp(client, 11211, server, 1234, 1400)));
  CHECK(f.passes(synth::ethernet_ipv4_udp_fragment(client, server, 7, 0, true, 4000, 80, 512)));
  CHECK(f.passes(synth::ethernet_ipv4_udp_fragment(client, server, 7, 65, false, 4000, 80, 512)));
  // IPv6 the same way.
  CHECK(f.passes(as_ipv6(tcp4(client, cport, server, port, tcp_flag::syn))));
  CHECK(f.passes(as_ipv6(tcp4(client, cport, server, port, tcp_flag::ack | tcp_flag::psh, 64))));
  CHECK(f.passes(as_ipv6(synth::ethernet_ipv4_udp(client, 500, server, port, 18))));
  CHECK(f.passes(as_ipv6(tcp4(server, port, client, cport, tcp_flag::syn | tcp_flag::ack))));
  CHECK(f.passes(as_ipv6(tcp4(server, port, client, cport, tcp_flag::fin | tcp_flag::ack))));
  CHECK_FALSE(f.passes(as_ipv6(tcp4(server, port, client, cport, tcp_flag::ack | tcp_flag::psh, 64))));

  const compiled_filter two(derived_bpf_filter(with_ports({port, 5556})));
  INFO(two.error());
  REQUIRE(two.ok());
  CHECK(two.passes(tcp4(client, cport, server, 5556, tcp_flag::syn)));
  CHECK(two.passes(synth::ethernet_ipv4_udp(client, 500, server, 5556, 18)));
  CHECK(two.passes(tcp4(server, 5556, client, cport, tcp_flag::fin | tcp_flag::ack)));
  CHECK_FALSE(two.passes(tcp4(server, 5556, client, cport, tcp_flag::ack | tcp_flag::psh, 64)));

}

TEST_CASE("a capture analysed through the derived filter raises exactly the alerts of the whole capture",
          "[monitor][capture]") {
  constexpr int64_t t0 = 1700000000LL * 1000000;
  constexpr int64_t sec = 1000000;
  synth::traffic t(11);
  t.benign_clients(t0, 20, 20, 2000, server, port);                 // 20 x 5 + 40,000 request/response pairs
  t.stalled_connections(t0 + 3 * sec, 4, 400, 10, 2.0, server, port);  // 1,600 connections x 6 packets
  t.syn_flood(t0 + 9 * sec, 3, 3000, ip_address{}, true, server, port);  // 9,000 spoofed SYNs
  t.udp_flood(t0 + 14 * sec, 3, 8000, ip_address::v4(198, 51, 100, 9), server, port, 64);  // 24,000
  const std::string dir = rampart::test::make_temp_dir("rampart-filter-");
  const std::string path = dir + "/mixed.pcap";
  std::string err;
  REQUIRE(t.write_pcap(path, &err));
  const monitor_config cfg = with_ports({port});
  const filtered_run whole = analyse(path, cfg, "");
  const filtered_run cut = analyse(path, cfg, derived_bpf_filter(cfg));
  std::remove(path.c_str());
  std::remove(dir.c_str());
  INFO(whole.error << cut.error);
  REQUIRE(whole.ok);
  REQUIRE(cut.ok);

  CHECK(whole.packets == 20 * 5 + 2 * 40000 + 1600 * 6 + 9000 + 24000);
  // Left out: the server's data answer to each client's greeting (20) and its 40,000 responses. Its SYN-ACKs
  // and FINs stay.
  CHECK(cut.packets == whole.packets - 20 - 40000);
  for (const char* d : {"syn_flood", "udp_flood", "conn_flood", "handshake_stall"}) {
    INFO(d);
    CHECK(std::find(whole.fired.begin(), whole.fired.end(), d) != whole.fired.end());
  }
  CHECK(cut.events == whole.events);
}
