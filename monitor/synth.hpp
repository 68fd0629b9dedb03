// Synthetic traffic for tests and benchmarks: Ethernet/IPv4 packets with correct header checksums, a few
// traffic shapes (benign clients, SYN / UDP / ICMP floods, stalled connection floods) and a pcap writer.
// Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "monitor/packet.hpp"

namespace rampart::monitor::synth {

struct tcp_segment {
  ip_address src, dst;  // IPv4
  uint16_t sport = 0, dport = 0;
  uint8_t flags = 0;
  uint32_t seq = 0, ack = 0;
  uint32_t payload = 0;  // octets of zero payload
};

// Ethernet + IPv4 (+ TCP / UDP / ICMP echo) frames with valid IP and L4 checksums.
std::vector<uint8_t> ethernet_ipv4_tcp(const tcp_segment& s);
std::vector<uint8_t> ethernet_ipv4_udp(const ip_address& src, uint16_t sport, const ip_address& dst,
                                       uint16_t dport, uint32_t payload);
std::vector<uint8_t> ethernet_ipv4_icmp_echo(const ip_address& src, const ip_address& dst, uint32_t payload);
// One fragment of a UDP datagram: OFFSET_UNITS 0 is the first (it carries the UDP header; MORE set), any other
// offset a later one (payload only).
std::vector<uint8_t> ethernet_ipv4_udp_fragment(const ip_address& src, const ip_address& dst, uint16_t id,
                                                uint16_t offset_units, bool more, uint16_t sport, uint16_t dport,
                                                uint32_t payload);

struct timed_packet {
  int64_t ts_us;
  std::vector<uint8_t> bytes;
};

// Accumulates packets of several traffic shapes, then writes them sorted by time as an Ethernet pcap.
// Times are microseconds since the epoch; rates are per second; durations in seconds.
class traffic {
 public:
  explicit traffic(uint64_t seed = 1) : rng_(seed) {}

  // N_CLIENTS persistent clients (10.1.0.1, ...) connect at START (full handshake + 64-octet greeting),
  // then exchange request/response pairs at REQ_PER_S in total until START + DURATION.
  void benign_clients(int64_t start_us, double duration_s, int n_clients, double req_per_s,
                      const ip_address& server, uint16_t port);
  // SYNs at PPS to SERVER:PORT, never completed. SRC_FAMILY 0: all from SRC; else random sources in
  // 100.64.0.0/10 (one new address per packet, as a spoofed flood).
  void syn_flood(int64_t start_us, double duration_s, double pps, const ip_address& src, bool spoofed,
                 const ip_address& server, uint16_t port);
  void udp_flood(int64_t start_us, double duration_s, double pps, const ip_address& src,
                 const ip_address& server, uint16_t port, uint32_t payload);
  void icmp_flood(int64_t start_us, double duration_s, double pps, const ip_address& src,
                  const ip_address& server);
  // Reflected answers: UDP datagrams of PAYLOAD octets from SPORT (53 for DNS, ...) of N_REFLECTORS addresses
  // (203.0.113.1, ...) to random high ports of SERVER, at PPS in total.
  void reflection(int64_t start_us, double duration_s, double pps, int n_reflectors, uint16_t sport,
                  const ip_address& server, uint32_t payload);
  // Fragmented UDP datagrams from SRC to SERVER:PORT, each as a first and a later fragment, PPS fragments a
  // second.
  void fragment_flood(int64_t start_us, double duration_s, double pps, const ip_address& src,
                      const ip_address& server, uint16_t port, uint32_t payload);
  // Complete TCP handshakes from N_SOURCES addresses (172.16.0.1, ...) at CONN_PER_S, each sending only
  // the first 10 greeting octets; the server closes each after HOLD_S.
  void stalled_connections(int64_t start_us, double duration_s, double conn_per_s, int n_sources,
                           double hold_s, const ip_address& server, uint16_t port);
  // N_CLIENTS new clients (FIRST, then FIRST with its last octet + 1, ...) connect one after another from
  // START, one every INTERVAL_S: each completes a handshake, sends its 64-octet greeting and one request, and
  // gets its answer. Innocent addresses that appear during an attack.
  void new_clients(int64_t start_us, double interval_s, int n_clients, const ip_address& first,
                   const ip_address& server, uint16_t port);
  // N_CLIENTS addresses (FIRST, then FIRST with its last octet + 1, ...) each opening SESSIONS_PER_S short
  // sessions a second from START for DURATION: handshake, 64-octet greeting, one request and its answer, then
  // the client's FIN and the server's FIN-ACK (8 packets, 5 of them the client's). Clients that reconnect for
  // every request; with a high rate, one address opening sessions far faster than the others.
  void short_sessions(int64_t start_us, double duration_s, int n_clients, double sessions_per_s,
                      const ip_address& first, const ip_address& server, uint16_t port);
  // ACK-flagged data packets at PPS from one established client (a heavy hitter that looks legitimate).
  void data_stream(int64_t start_us, double duration_s, double pps, const ip_address& src, uint16_t sport,
                   const ip_address& server, uint16_t port);

  std::vector<timed_packet>& packets() { return packets_; }
  // Sorts by time (stable) and writes DLT_EN10MB pcap to PATH. Returns false with *error on failure.
  bool write_pcap(const std::string& path, std::string* error);

 private:
  uint64_t next();
  void add(int64_t ts, std::vector<uint8_t> bytes) { packets_.push_back({ts, std::move(bytes)}); }
  // A client's connection from port SP opened at T: SYN, SYN-ACK, ACK, then its 64-octet greeting at T + 150 us.
  void open_connection(int64_t t, const ip_address& client, uint16_t sp, const ip_address& server, uint16_t port);

  uint64_t rng_;
  std::vector<timed_packet> packets_;
};

// Streams N_PACKETS of a mixed capture at PPS (benign TCP from 1,000 clients, a spoofed SYN flood, UDP
// and ICMP) straight to PATH without holding them in memory. For throughput benchmarks.
bool write_benchmark_pcap(const std::string& path, uint64_t n_packets, double pps, std::string* error);

}  // namespace rampart::monitor::synth
