// Packet parsing: a pure function from captured bytes to a fixed-size summary, or a counted reason why not.
// No allocation, no global state, safe on any input (it is fuzzed); the rest of the monitor sees only summaries.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/ip_address.hpp"

namespace rampart::monitor {

// Link-layer framings the parser understands. Map a libpcap DLT value with link_type_from_dlt().
enum class link_type : uint8_t {
  ethernet,    // DLT_EN10MB, with up to four 802.1Q / 802.1ad tags
  linux_sll,   // DLT_LINUX_SLL, 16-octet cooked header
  linux_sll2,  // DLT_LINUX_SLL2, 20-octet cooked header
  null_bsd,    // DLT_NULL, 4-octet address family in the capturing host's byte order (either order accepted)
  loop,        // DLT_LOOP, 4-octet address family in network byte order
  raw_ip,      // DLT_RAW / DLT_IPV4 / DLT_IPV6: the packet starts at the IP header
  unsupported,
};

// DLT value (as returned by pcap_datalink) -> link_type; link_type::unsupported for anything else.
link_type link_type_from_dlt(int dlt);
const char* link_type_name(link_type t);

// Why a packet gave no usable summary, or what made it only partly usable. Stable names (malformed_kind_name)
// appear in stats events and in rampart-inspect's summary.
enum class malformed_kind : uint8_t {
  none = 0,
  truncated_link,        // capture shorter than the link header
  too_many_vlan_tags,    // more than four stacked VLAN tags
  truncated_ip,          // capture shorter than the IP header it announces
  bad_ip_version,        // version nibble disagrees with the link layer, or is neither 4 nor 6
  bad_ip_header_length,  // IPv4 IHL < 5
  bad_ip_total_length,   // IPv4 total length < IHL, or shorter than the link payload needs
  bad_ipv6_extension,    // IPv6 extension chain too long or running past the packet
  truncated_l4,          // TCP/UDP/ICMP header cut off by the capture length or the IP length
  bad_tcp_offset,        // TCP data offset < 5 or past the IP payload
  bad_udp_length,        // UDP length field < 8
  bad_capture_length,    // captured length 0, larger than the wire length, or absurdly large
  count_,
};
constexpr size_t malformed_kind_count = static_cast<size_t>(malformed_kind::count_);
const char* malformed_kind_name(malformed_kind k);

// What the packet carried above IP. not_ip covers ARP, LLDP and other non-IP link payloads (not malformed).
enum class l4_proto : uint8_t { tcp, udp, icmp, icmp6, other_ip, not_ip };
constexpr size_t l4_proto_count = 6;
const char* l4_proto_name(l4_proto p);

using ::rampart::ip_address;  // base/ip_address.hpp

// TCP flag bits as on the wire.
enum tcp_flag : uint8_t { fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10, urg = 0x20 };

// One parsed packet. Fields past what the packet carried keep their zero defaults.
struct packet_summary {
  int64_t ts_us = 0;          // capture timestamp, microseconds since the epoch
  uint32_t wire_len = 0;      // length on the wire
  uint32_t cap_len = 0;       // octets captured
  malformed_kind malformed = malformed_kind::none;
  l4_proto proto = l4_proto::not_ip;
  uint8_t ip_version = 0;     // 4, 6 or 0 (not IP)
  uint8_t ip_proto = 0;       // IPv4 protocol / IPv6 final next-header
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint8_t vlan_depth = 0;
  bool fragment = false;      // any IP fragment (first or later)
  bool later_fragment = false;  // offset > 0: carries no L4 header, ports are zero
  uint16_t vlan_id = 0;       // outermost tag
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t tcp_seq = 0;       // TCP sequence and acknowledgement numbers
  uint32_t tcp_ack = 0;
  uint32_t payload_len = 0;   // L4 payload length from the IP/UDP length fields (not limited by snaplen)
  ip_address src;
  ip_address dst;
};

// Parses one captured packet. DATA holds CAP_LEN octets; WIRE_LEN is the original length. Always fills
// out->cap_len, wire_len and malformed; returns true when the packet reached a usable summary (possibly a
// non-IP one, proto == not_ip), false when out->malformed says why not. Pure: no state, no allocation.
bool parse_packet(link_type link, const uint8_t* data, size_t cap_len, size_t wire_len, packet_summary* out);

}  // namespace rampart::monitor
