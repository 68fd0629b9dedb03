// Window features from hand-made packet summaries: counts, handshakes, stalls, top lists and entropy,
// with expected values worked out by hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "monitor/features.hpp"

using namespace rampart::monitor;

namespace {

constexpr int64_t t0 = 1700000000LL * 1000000;

packet_summary tcp(const ip_address& src, uint16_t sport, const ip_address& dst, uint16_t dport, uint8_t flags,
                   uint32_t payload = 0, int64_t ts = t0) {
  packet_summary p;
  p.ts_us = ts;
  // Sequence numbers of one plain handshake: the server's SYN-ACK carries 7, so the client acknowledges 8.
  p.tcp_seq = (flags & tcp_flag::syn) && (flags & tcp_flag::ack) ? 7 : 1;
  p.tcp_ack = (flags & tcp_flag::ack) ? 8 : 0;
  p.ip_version = 4;
  p.proto = l4_proto::tcp;
  p.src = src;
  p.dst = dst;
  p.src_port = sport;
  p.dst_port = dport;
  p.tcp_flags = flags;
  p.payload_len = payload;
  p.wire_len = 54 + payload;
  return p;
}

const ip_address server = ip_address::v4(10, 0, 0, 1);

}  // namespace

TEST_CASE("source entropy and top sources of a known distribution", "[monitor][features]") {
  monitor_config cfg;
  feature_extractor fx(cfg);
  // 8, 4, 2, 2 packets from four sources: H = 8/16*1 + 4/16*2 + 2*(2/16*3) = 1.75 bits; normalised by
  // log2(4) = 2 -> 0.875.
  const int counts[4] = {8, 4, 2, 2};
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < counts[s]; ++i) {
      packet_summary p = tcp(ip_address::v4(192, 0, 2, static_cast<uint8_t>(s + 1)), 1000, server, 5555,
                             tcp_flag::ack);
      p.proto = l4_proto::udp;  // no handshake tracking involved
      fx.on_packet(p);
    }
  }
  window_features w;
  fx.close_step(t0 + 100000, &w);
  CHECK(w.inbound_packets == 16);
  CHECK(w.src_entropy_norm == Approx(0.875));
  CHECK(w.distinct_sources == Approx(4).epsilon(0.01));
  REQUIRE(w.n_sources == 4);
  CHECK(w.top_sources[0].key.addr == ip_address::v4(192, 0, 2, 1));
  CHECK(w.top_sources[0].lower_bound() == 8);
  CHECK(w.top_sources[1].lower_bound() == 4);
  REQUIRE(w.n_prefixes == 1);
  CHECK(w.top_prefixes[0].key.addr == ip_address::v4(192, 0, 2, 0));
  CHECK(w.top_prefixes[0].lower_bound() == 16);
  CHECK(w.rate(w.sum.packets[static_cast<size_t>(l4_proto::udp)]) == Approx(16.0));  // 1 s window
}

TEST_CASE("handshakes started, completed, unsolicited SYN-ACKs and stalled greetings", "[monitor][features]") {
  monitor_config cfg;
  cfg.service_ports = {5555};
  feature_extractor fx(cfg);
  const ip_address a = ip_address::v4(10, 1, 0, 1), b = ip_address::v4(10, 1, 0, 2), c = ip_address::v4(10, 1, 0, 3);
  // a: full handshake + 64-octet greeting (not stalled)
  fx.on_packet(tcp(a, 40001, server, 5555, tcp_flag::syn));
  fx.on_packet(tcp(server, 5555, a, 40001, tcp_flag::syn | tcp_flag::ack));
  fx.on_packet(tcp(a, 40001, server, 5555, tcp_flag::ack));
  fx.on_packet(tcp(a, 40001, server, 5555, tcp_flag::ack | tcp_flag::psh, 64));
  // b: handshake, 10 greeting octets, then the server closes: stalled
  fx.on_packet(tcp(b, 40002, server, 5555, tcp_flag::syn));
  fx.on_packet(tcp(server, 5555, b, 40002, tcp_flag::syn | tcp_flag::ack));
  fx.on_packet(tcp(b, 40002, server, 5555, tcp_flag::ack, 10));
  fx.on_packet(tcp(server, 5555, b, 40002, tcp_flag::fin | tcp_flag::ack));
  // c: SYN only (half-open); retransmitted once
  fx.on_packet(tcp(c, 40003, server, 5555, tcp_flag::syn));
  fx.on_packet(tcp(c, 40003, server, 5555, tcp_flag::syn));
  // a SYN-ACK nobody asked for
  fx.on_packet(tcp(ip_address::v4(203, 0, 113, 5), 80, server, 5555, tcp_flag::syn | tcp_flag::ack));
  window_features w;
  fx.close_step(t0 + 100000, &w);
  CHECK(w.sum.handshakes_started == 3);
  CHECK(w.sum.handshakes_completed == 2);
  CHECK(w.sum.stalled == 1);
  CHECK(w.sum.unsolicited_synack == 1);
  // inbound = towards port 5555: the server's replies are not counted
  CHECK(w.sum.syn == 4);
  CHECK(w.sum.synack == 1);
  CHECK(w.sum.ack == 3);  // a's ACK and PSH-ACK, b's ACK
  CHECK(w.sum.fin == 0);
  CHECK(w.inbound_packets == 8);  // a 3, b 2, c 2, the stray SYN-ACK 1
  REQUIRE(w.n_syn_sources == 3);
  CHECK(w.top_syn_sources[0].key.addr == c);  // two SYNs
  CHECK(w.top_syn_sources[0].lower_bound() == 2);
  REQUIRE(w.n_destinations == 1);
  CHECK(w.top_destinations[0].key.port == 5555);
}

TEST_CASE("a connection that never sends its greeting is stalled after the timeout", "[monitor][features]") {
  monitor_config cfg;
  cfg.handshake_timeout_s = 1;
  feature_extractor fx(cfg);
  const ip_address a = ip_address::v4(10, 1, 0, 1);
  fx.on_packet(tcp(a, 40001, server, 5555, tcp_flag::syn, 0, t0));
  fx.on_packet(tcp(a, 40001, server, 5555, tcp_flag::ack, 0, t0 + 10));
  window_features w;
  uint64_t most_stalled = 0;
  // The sweep covers the table once per window (10 steps), so the entry, 1 s old from step 11 on, is
  // found by step 20 and counted once; every window after that holds it at most once.
  for (int i = 1; i <= 25; ++i) {
    fx.close_step(t0 + i * 100000, &w);
    if (i <= 10) CHECK(w.sum.stalled == 0);
    most_stalled = std::max<uint64_t>(most_stalled, w.sum.stalled);
  }
  CHECK(most_stalled == 1);
  CHECK(fx.flows().occupied() == 0);
}

TEST_CASE("a window holds exactly its steps", "[monitor][features]") {
  monitor_config cfg;  // 1 s window of 10 steps
  feature_extractor fx(cfg);
  window_features w;
  for (int step = 0; step < 15; ++step) {
    packet_summary p = tcp(ip_address::v4(10, 9, 0, 1), 1, server, 5555, tcp_flag::ack);
    p.proto = l4_proto::udp;
    for (int i = 0; i <= step; ++i) fx.on_packet(p);  // step k carries k + 1 packets
    fx.close_step(t0 + (step + 1) * 100000, &w);
  }
  // after step 14 the window holds steps 5..14: 6 + 7 + ... + 15 = 105 packets
  CHECK(w.inbound_packets == 105);
  CHECK(w.top_sources[0].lower_bound() == 105);
}
