// Parser tests over hand-built byte arrays: every link type, IPv6, ICMP, fragments, and malformed packets
// counted by kind. Expected values are read off the bytes written here, not from the parser.
#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "monitor/monitor.hpp"
#include "monitor/packet.hpp"

using namespace rampart::monitor;
using bytes = std::vector<uint8_t>;

namespace {

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const bytes eth_ipv4 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00};
const bytes eth_ipv6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd};
// IPv4, total length 40, id 1, DF, TTL 64, TCP, 192.168.1.2 -> 192.168.1.1
const bytes ipv4_tcp_hdr = {0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 168, 1, 2, 192, 168, 1, 1};
// TCP 12345 -> 5555, SYN, data offset 5
const bytes tcp_syn = {0x30, 0x39, 0x15, 0xb3, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0};
// IPv4 UDP 10.0.0.5 -> 10.0.0.1, total length 32 (UDP 8 + 4 payload)
const bytes ipv4_udp_hdr = {0x45, 0, 0, 32, 0, 2, 0, 0, 64, 17, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1};
const bytes udp_500_to_4500 = {0x01, 0xf4, 0x11, 0x94, 0, 12, 0, 0, 0xde, 0xad, 0xbe, 0xef};
// IPv4 ICMP echo request 10.9.8.7 -> 10.0.0.1, total length 28
const bytes ipv4_icmp = {0x45, 0, 0, 28, 0, 3, 0, 0, 64, 1, 0, 0, 10, 9, 8, 7, 10, 0, 0, 1,
                         8, 0, 0, 0, 0, 1, 0, 1};
// IPv6 header: payload 20, next header TCP, hop limit 64, 2001:db8::1 -> 2001:db8::2
bytes ipv6_hdr(uint16_t payload, uint8_t next) {
  bytes h = {0x60, 0, 0, 0, static_cast<uint8_t>(payload >> 8), static_cast<uint8_t>(payload), next, 64};
  const bytes a = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  bytes b = a;
  b[15] = 2;
  return cat({h, a, b});
}

packet_summary parse(link_type link, const bytes& b, size_t wire = 0) {
  packet_summary s;
  s.ts_us = 42;
  parse_packet(link, b.data(), b.size(), wire ? wire : b.size(), &s);
  return s;
}

}  // namespace

TEST_CASE("an Ethernet IPv4 TCP SYN yields addresses, ports and flags", "[monitor][parser]") {
  const packet_summary s = parse(link_type::ethernet, cat({eth_ipv4, ipv4_tcp_hdr, tcp_syn}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.ts_us == 42);
  CHECK(s.proto == l4_proto::tcp);
  CHECK(s.ip_version == 4);
  CHECK(s.src.to_string() == "192.168.1.2");
  CHECK(s.dst.to_string() == "192.168.1.1");
  CHECK(s.src_port == 12345);
  CHECK(s.dst_port == 5555);
  CHECK(s.tcp_flags == tcp_flag::syn);
  CHECK(s.payload_len == 0);
  CHECK(s.wire_len == 54);
  CHECK_FALSE(s.fragment);
}

TEST_CASE("VLAN tags are followed and the outer id kept, and a fifth tag is refused", "[monitor][parser]") {
  const bytes vlan_udp = cat({{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00},
                              ipv4_udp_hdr, udp_500_to_4500});
  packet_summary s = parse(link_type::ethernet, vlan_udp);
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.vlan_id == 100);
  CHECK(s.vlan_depth == 1);
  CHECK(s.proto == l4_proto::udp);
  CHECK(s.src_port == 500);
  CHECK(s.dst_port == 4500);
  CHECK(s.payload_len == 4);

  const bytes qinq = cat({{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14,
                           0x08, 0x00},
                          ipv4_udp_hdr, udp_500_to_4500});
  s = parse(link_type::ethernet, qinq);
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.vlan_id == 10);
  CHECK(s.vlan_depth == 2);

  bytes five = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00};
  for (int i = 0; i < 5; ++i) five.insert(five.end(), {0x00, 0x01, 0x81, 0x00});
  five.insert(five.end(), 20, 0);
  s = parse(link_type::ethernet, five);
  CHECK(s.malformed == malformed_kind::too_many_vlan_tags);
}

TEST_CASE("Linux cooked SLL carries an ICMP echo request", "[monitor][parser]") {
  const bytes sll = {0x00, 0x00, 0x03, 0x04, 0x00, 0x06, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00};
  const packet_summary s = parse(link_type::linux_sll, cat({sll, ipv4_icmp}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.proto == l4_proto::icmp);
  CHECK(s.icmp_type == 8);
  CHECK(s.icmp_code == 0);
  CHECK(s.src.to_string() == "10.9.8.7");
}

TEST_CASE("Linux cooked SLL2 carries IPv6 TCP", "[monitor][parser]") {
  const bytes sll2 = {0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0x00, 0x01, 0x00, 0x06, 1, 2, 3, 4, 5, 6, 0, 0};
  const packet_summary s = parse(link_type::linux_sll2, cat({sll2, ipv6_hdr(20, 6), tcp_syn}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.ip_version == 6);
  CHECK(s.proto == l4_proto::tcp);
  CHECK(s.src.to_string() == "2001:db8::1");
  CHECK(s.dst.to_string() == "2001:db8::2");
  CHECK(s.dst_port == 5555);
}

TEST_CASE("NULL and LOOP headers select IPv4 or IPv6 by address family", "[monitor][parser]") {
  // DLT_NULL in little-endian host order: AF_INET = 2
  packet_summary s = parse(link_type::null_bsd, cat({{2, 0, 0, 0}, ipv4_udp_hdr, udp_500_to_4500}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.proto == l4_proto::udp);
  // DLT_NULL written by a big-endian host, Darwin's AF_INET6 = 30
  s = parse(link_type::null_bsd, cat({{0, 0, 0, 30}, ipv6_hdr(20, 6), tcp_syn}));
  CHECK(s.ip_version == 6);
  CHECK(s.proto == l4_proto::tcp);
  // DLT_LOOP: network byte order only
  s = parse(link_type::loop, cat({{0, 0, 0, 2}, ipv4_tcp_hdr, tcp_syn}));
  CHECK(s.proto == l4_proto::tcp);
  s = parse(link_type::loop, cat({{2, 0, 0, 0}, ipv4_tcp_hdr, tcp_syn}));
  CHECK(s.proto == l4_proto::not_ip);
  CHECK(s.malformed == malformed_kind::none);
}

TEST_CASE("raw IP links start at the IP header, IPv4 or IPv6 (ICMPv6)", "[monitor][parser]") {
  packet_summary s = parse(link_type::raw_ip, cat({ipv4_tcp_hdr, tcp_syn}));
  CHECK(s.proto == l4_proto::tcp);
  CHECK(s.dst_port == 5555);
  const bytes icmp6_echo = {128, 0, 0, 0, 0, 1, 0, 1};
  s = parse(link_type::raw_ip, cat({ipv6_hdr(8, 58), icmp6_echo}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.proto == l4_proto::icmp6);
  CHECK(s.icmp_type == 128);
  s = parse(link_type::raw_ip, bytes{0x50, 0, 0, 0});
  CHECK(s.malformed == malformed_kind::bad_ip_version);
}

TEST_CASE("IPv6 extension headers are walked to the transport header", "[monitor][parser]") {
  // hop-by-hop (8 octets, next = TCP) then TCP
  const bytes hbh = {6, 0, 1, 4, 0, 0, 0, 0};
  packet_summary s = parse(link_type::ethernet, cat({eth_ipv6, ipv6_hdr(28, 0), hbh, tcp_syn}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.proto == l4_proto::tcp);
  CHECK(s.ip_proto == 6);
  CHECK(s.src_port == 12345);
  // nine destination-options headers: chain too long
  bytes chain;
  for (int i = 0; i < 9; ++i) chain.insert(chain.end(), {60, 0, 0, 0, 0, 0, 0, 0});
  chain[8 * 8] = 6;
  s = parse(link_type::raw_ip, cat({ipv6_hdr(static_cast<uint16_t>(chain.size() + 20), 60), chain, tcp_syn}));
  CHECK(s.malformed == malformed_kind::bad_ipv6_extension);
  // an extension header claiming more octets than the payload holds
  s = parse(link_type::raw_ip, cat({ipv6_hdr(8, 0), {6, 5, 0, 0, 0, 0, 0, 0}}));
  CHECK(s.malformed == malformed_kind::bad_ipv6_extension);
}

TEST_CASE("IP fragments: the first has ports, later ones only a protocol", "[monitor][parser]") {
  bytes first = ipv4_udp_hdr;
  first[6] = 0x20;  // MF, offset 0
  packet_summary s = parse(link_type::raw_ip, cat({first, udp_500_to_4500}));
  CHECK(s.fragment);
  CHECK_FALSE(s.later_fragment);
  CHECK(s.src_port == 500);
  bytes later = ipv4_udp_hdr;
  later[6] = 0x00;
  later[7] = 185;  // offset 185 * 8 = 1480
  s = parse(link_type::raw_ip, cat({later, udp_500_to_4500}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.fragment);
  CHECK(s.later_fragment);
  CHECK(s.proto == l4_proto::udp);
  CHECK(s.src_port == 0);
  CHECK(s.payload_len == 12);
  // IPv6 fragment header, offset 1480 / 8 = 185 -> 0x05c8, next header UDP
  const bytes frag6 = {17, 0, 0x05, 0xc8, 0, 0, 0, 7};
  s = parse(link_type::raw_ip, cat({ipv6_hdr(16, 44), frag6, {1, 2, 3, 4, 5, 6, 7, 8}}));
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.later_fragment);
  CHECK(s.proto == l4_proto::udp);
}

TEST_CASE("a packet cut by the snapshot length is not malformed", "[monitor][parser]") {
  bytes ip = ipv4_tcp_hdr;
  ip[2] = 0x05;  // total length 1486
  ip[3] = 0xce;
  const packet_summary s = parse(link_type::ethernet, cat({eth_ipv4, ip, tcp_syn}), 1500);
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.payload_len == 1486 - 40);
  CHECK(s.cap_len == 54);
  CHECK(s.wire_len == 1500);
}

TEST_CASE("non-IP frames are summarised as not_ip without being malformed", "[monitor][parser]") {
  bytes arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3, 4, 5, 0x08, 0x06};
  arp.insert(arp.end(), 28, 0);
  const packet_summary s = parse(link_type::ethernet, arp);
  CHECK(s.malformed == malformed_kind::none);
  CHECK(s.proto == l4_proto::not_ip);
  CHECK(s.ip_version == 0);
}

TEST_CASE("truncated and malformed packets are named by kind", "[monitor][parser]") {
  auto kind = [](link_type l, const bytes& b, size_t wire = 0) { return parse(l, b, wire).malformed; };
  CHECK(kind(link_type::ethernet, bytes(10, 0)) == malformed_kind::truncated_link);
  CHECK(kind(link_type::linux_sll, bytes(15, 0)) == malformed_kind::truncated_link);
  CHECK(kind(link_type::linux_sll2, bytes(19, 0)) == malformed_kind::truncated_link);
  CHECK(kind(link_type::null_bsd, bytes{2, 0}) == malformed_kind::truncated_link);
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, bytes(ipv4_tcp_hdr.begin(), ipv4_tcp_hdr.begin() + 10)})) ==
        malformed_kind::truncated_ip);
  bytes ihl4 = ipv4_tcp_hdr;
  ihl4[0] = 0x44;
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, ihl4, tcp_syn})) == malformed_kind::bad_ip_header_length);
  bytes v6_in_v4 = ipv4_tcp_hdr;
  v6_in_v4[0] = 0x65;
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, v6_in_v4, tcp_syn})) == malformed_kind::bad_ip_version);
  bytes short_total = ipv4_tcp_hdr;
  short_total[3] = 10;
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, short_total, tcp_syn})) == malformed_kind::bad_ip_total_length);
  bytes long_total = ipv4_tcp_hdr;
  long_total[3] = 200;  // claims 200 octets, the whole packet on the wire holds 40
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, long_total, tcp_syn})) == malformed_kind::bad_ip_total_length);
  bytes short_tcp = ipv4_tcp_hdr;
  short_tcp[3] = 30;
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, short_tcp, bytes(tcp_syn.begin(), tcp_syn.begin() + 10)})) ==
        malformed_kind::truncated_l4);
  bytes doff2 = tcp_syn;
  doff2[12] = 0x20;
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, ipv4_tcp_hdr, doff2})) == malformed_kind::bad_tcp_offset);
  bytes doff15 = tcp_syn;
  doff15[12] = 0xf0;  // 60 octets of header in a 20-octet IP payload
  CHECK(kind(link_type::ethernet, cat({eth_ipv4, ipv4_tcp_hdr, doff15})) == malformed_kind::bad_tcp_offset);
  bytes udp_len4 = udp_500_to_4500;
  udp_len4[5] = 4;
  CHECK(kind(link_type::raw_ip, cat({ipv4_udp_hdr, udp_len4})) == malformed_kind::bad_udp_length);
  CHECK(kind(link_type::raw_ip, cat({ipv4_icmp}), 10) == malformed_kind::bad_capture_length);
  CHECK(kind(link_type::raw_ip, bytes{}) == malformed_kind::bad_capture_length);
  CHECK(kind(link_type::raw_ip, cat({ipv6_hdr(20, 6)})) == malformed_kind::bad_ip_total_length);
  CHECK(kind(link_type::raw_ip, bytes(30, 0x60)) == malformed_kind::truncated_ip);
}

TEST_CASE("the monitor counts malformed packets by kind and keeps going", "[monitor][parser]") {
  monitor m{monitor_config{}};
  const bytes good = cat({eth_ipv4, ipv4_tcp_hdr, tcp_syn});
  const bytes truncated(10, 0);
  bytes doff2 = cat({eth_ipv4, ipv4_tcp_hdr, tcp_syn});
  doff2[14 + 20 + 12] = 0x20;
  packet_summary s;
  for (int i = 0; i < 3; ++i) {
    s.ts_us = 1000000 + i;
    parse_packet(link_type::ethernet, truncated.data(), truncated.size(), truncated.size(), &s);
    m.on_packet(s);
  }
  s.ts_us = 1000010;
  parse_packet(link_type::ethernet, doff2.data(), doff2.size(), doff2.size(), &s);
  m.on_packet(s);
  s.ts_us = 1000020;
  parse_packet(link_type::ethernet, good.data(), good.size(), good.size(), &s);
  m.on_packet(s);
  m.advance(3000000);
  const monitor_counters c = m.snapshot();
  CHECK(c.packets == 5);
  CHECK(c.malformed == 4);
  CHECK(c.malformed_by_kind[static_cast<size_t>(malformed_kind::truncated_link)] == 3);
  CHECK(c.malformed_by_kind[static_cast<size_t>(malformed_kind::bad_tcp_offset)] == 1);
  CHECK(c.packets_by_proto[static_cast<size_t>(l4_proto::tcp)] == 1);
}

TEST_CASE("DLT values map to link types", "[monitor][parser]") {
  CHECK(link_type_from_dlt(1) == link_type::ethernet);
  CHECK(link_type_from_dlt(113) == link_type::linux_sll);
  CHECK(link_type_from_dlt(276) == link_type::linux_sll2);
  CHECK(link_type_from_dlt(0) == link_type::null_bsd);
  CHECK(link_type_from_dlt(108) == link_type::loop);
  CHECK(link_type_from_dlt(12) == link_type::raw_ip);
  CHECK(link_type_from_dlt(101) == link_type::raw_ip);
  CHECK(link_type_from_dlt(147) == link_type::unsupported);
}
