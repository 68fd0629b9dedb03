#include <arpa/inet.h>

#include <cstring>

#include "monitor/packet.hpp"

namespace rampart::monitor {

namespace {

// Largest capture length accepted; libpcap's own maximum snapshot length is 262144.
constexpr size_t max_cap_len = 262144;
constexpr int max_vlan_tags = 4;
constexpr int max_ipv6_extensions = 8;

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
inline uint32_t le32(const uint8_t* p) {
  return uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | uint32_t{p[0]};
}

bool fail(packet_summary* out, malformed_kind k) {
  out->malformed = k;
  return false;
}

// Parses the transport header. L4 points at CAP octets captured of an IP payload of IP_PAYLOAD octets
// (as announced by the IP header; may exceed CAP when the snapshot length cut the packet).
bool parse_l4(const uint8_t* l4, size_t cap, size_t ip_payload, packet_summary* out) {
  const size_t avail = cap < ip_payload ? cap : ip_payload;
  switch (out->ip_proto) {
    case 6: {
      out->proto = l4_proto::tcp;
      if (avail < 20) return fail(out, malformed_kind::truncated_l4);
      const size_t offset = static_cast<size_t>(l4[12] >> 4) * 4;
      if (offset < 20 || offset > ip_payload) return fail(out, malformed_kind::bad_tcp_offset);
      out->src_port = be16(l4);
      out->dst_port = be16(l4 + 2);
      out->tcp_seq = be32(l4 + 4);
      out->tcp_ack = be32(l4 + 8);
      out->tcp_flags = l4[13];
      out->payload_len = static_cast<uint32_t>(ip_payload - offset);
      return true;
    }
    case 17: {
      out->proto = l4_proto::udp;
      if (avail < 8) return fail(out, malformed_kind::truncated_l4);
      if (be16(l4 + 4) < 8) return fail(out, malformed_kind::bad_udp_length);
      out->src_port = be16(l4);
      out->dst_port = be16(l4 + 2);
      out->payload_len = static_cast<uint32_t>(ip_payload - 8);
      return true;
    }
    case 1:
    case 58: {
      out->proto = out->ip_proto == 1 ? l4_proto::icmp : l4_proto::icmp6;
      if (avail < 4) return fail(out, malformed_kind::truncated_l4);
      out->icmp_type = l4[0];
      out->icmp_code = l4[1];
      out->payload_len = static_cast<uint32_t>(ip_payload - 4);
      return true;
    }
    default:
      out->proto = l4_proto::other_ip;
      out->payload_len = static_cast<uint32_t>(ip_payload);
      return true;
  }
}

// WIRE_COMPLETE: the capture holds the whole packet, so IP lengths beyond the capture are lies, not snaplen.
bool parse_ipv4(const uint8_t* p, size_t cap, bool wire_complete, packet_summary* out) {
  if (cap < 20) return fail(out, malformed_kind::truncated_ip);
  if ((p[0] >> 4) != 4) return fail(out, malformed_kind::bad_ip_version);
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  if (ihl < 20) return fail(out, malformed_kind::bad_ip_header_length);
  if (cap < ihl) return fail(out, malformed_kind::truncated_ip);
  const size_t total = be16(p + 2);
  if (total < ihl || (wire_complete && total > cap)) return fail(out, malformed_kind::bad_ip_total_length);
  out->ip_version = 4;
  out->ip_proto = p[9];
  out->src = ip_address::from_v4(p + 12);
  out->dst = ip_address::from_v4(p + 16);
  const uint16_t frag = be16(p + 6);
  const bool more = (frag & 0x2000) != 0;
  const uint16_t offset = frag & 0x1fff;
  out->fragment = more || offset != 0;
  out->later_fragment = offset != 0;
  const size_t payload = total - ihl;
  if (out->later_fragment) {
    out->proto = p[9] == 6 ? l4_proto::tcp
               : p[9] == 17 ? l4_proto::udp
               : p[9] == 1  ? l4_proto::icmp
                            : l4_proto::other_ip;
    out->payload_len = static_cast<uint32_t>(payload);
    return true;
  }
  return parse_l4(p + ihl, cap - ihl, payload, out);
}

bool parse_ipv6(const uint8_t* p, size_t cap, bool wire_complete, packet_summary* out) {
  if (cap < 40) return fail(out, malformed_kind::truncated_ip);
  if ((p[0] >> 4) != 6) return fail(out, malformed_kind::bad_ip_version);
  size_t payload = be16(p + 4);
  // A zero payload length means a jumbogram (hop-by-hop option); take what the capture holds.
  if (payload == 0) payload = cap - 40;
  if (wire_complete && payload > cap - 40) return fail(out, malformed_kind::bad_ip_total_length);
  out->ip_version = 6;
  out->src = ip_address::from_v6(p + 8);
  out->dst = ip_address::from_v6(p + 24);
  uint8_t next = p[6];
  size_t off = 40;  // from the start of the IPv6 header
  const size_t end = 40 + payload;
  for (int n = 0;; ++n) {
    if (next != 0 && next != 43 && next != 44 && next != 51 && next != 60) break;
    if (n >= max_ipv6_extensions) return fail(out, malformed_kind::bad_ipv6_extension);
    if (off + 8 > end) return fail(out, malformed_kind::bad_ipv6_extension);
    if (off + 8 > cap) return fail(out, malformed_kind::truncated_ip);
    const uint8_t* h = p + off;
    size_t len;
    if (next == 44) {
      len = 8;
      const uint16_t fo = be16(h + 2);
      out->fragment = true;
      if ((fo >> 3) != 0) {
        out->later_fragment = true;
        out->ip_proto = h[0];
        out->proto = h[0] == 6 ? l4_proto::tcp
                   : h[0] == 17 ? l4_proto::udp
                   : h[0] == 58 ? l4_proto::icmp6
                                : l4_proto::other_ip;
        out->payload_len = static_cast<uint32_t>(end - off - 8);
        return true;
      }
    } else if (next == 51) {
      len = (static_cast<size_t>(h[1]) + 2) * 4;
    } else {
      len = (static_cast<size_t>(h[1]) + 1) * 8;
    }
    if (off + len > end) return fail(out, malformed_kind::bad_ipv6_extension);
    next = h[0];
    off += len;
  }
  out->ip_proto = next;
  if (off > cap) return fail(out, malformed_kind::truncated_ip);
  return parse_l4(p + off, cap - off, end - off, out);
}

// Dispatches on an EtherType (after any link header), following VLAN tags.
bool parse_ethertype(uint16_t type, const uint8_t* p, size_t cap, bool wire_complete, packet_summary* out) {
  while (type == 0x8100 || type == 0x88a8 || type == 0x9100) {
    if (out->vlan_depth >= max_vlan_tags) return fail(out, malformed_kind::too_many_vlan_tags);
    if (cap < 4) return fail(out, malformed_kind::truncated_link);
    if (out->vlan_depth == 0) out->vlan_id = be16(p) & 0x0fff;
    ++out->vlan_depth;
    type = be16(p + 2);
    p += 4;
    cap -= 4;
  }
  if (type == 0x0800) return parse_ipv4(p, cap, wire_complete, out);
  if (type == 0x86dd) return parse_ipv6(p, cap, wire_complete, out);
  out->proto = l4_proto::not_ip;
  return true;
}

bool parse_by_family(uint32_t family, bool either_order, const uint8_t* p, size_t cap, bool wire_complete,
                     packet_summary* out, uint32_t swapped) {
  auto is = [&](uint32_t v) { return family == v || (either_order && swapped == v); };
  if (is(2)) return parse_ipv4(p, cap, wire_complete, out);
  // AF_INET6 differs between systems: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
  if (is(10) || is(24) || is(28) || is(30)) return parse_ipv6(p, cap, wire_complete, out);
  out->proto = l4_proto::not_ip;
  return true;
}

}  // namespace

bool parse_packet(link_type link, const uint8_t* data, size_t cap_len, size_t wire_len, packet_summary* out) {
  const int64_t ts = out->ts_us;
  *out = packet_summary{};
  out->ts_us = ts;
  out->cap_len = static_cast<uint32_t>(cap_len > UINT32_MAX ? UINT32_MAX : cap_len);
  out->wire_len = static_cast<uint32_t>(wire_len > UINT32_MAX ? UINT32_MAX : wire_len);
  if (data == nullptr || cap_len == 0 || cap_len > wire_len || cap_len > max_cap_len) {
    return fail(out, malformed_kind::bad_capture_length);
  }
  const bool complete = cap_len == wire_len;
  switch (link) {
    case link_type::ethernet:
      if (cap_len < 14) return fail(out, malformed_kind::truncated_link);
      return parse_ethertype(be16(data + 12), data + 14, cap_len - 14, complete, out);
    case link_type::linux_sll:
      if (cap_len < 16) return fail(out, malformed_kind::truncated_link);
      return parse_ethertype(be16(data + 14), data + 16, cap_len - 16, complete, out);
    case link_type::linux_sll2:
      if (cap_len < 20) return fail(out, malformed_kind::truncated_link);
      return parse_ethertype(be16(data), data + 20, cap_len - 20, complete, out);
    case link_type::null_bsd:
    case link_type::loop: {
      if (cap_len < 4) return fail(out, malformed_kind::truncated_link);
      const bool either = link == link_type::null_bsd;
      return parse_by_family(be32(data), either, data + 4, cap_len - 4, complete, out, le32(data));
    }
    case link_type::raw_ip: {
      const int version = data[0] >> 4;
      if (version == 4) return parse_ipv4(data, cap_len, complete, out);
      if (version == 6) return parse_ipv6(data, cap_len, complete, out);
      return fail(out, malformed_kind::bad_ip_version);
    }
    case link_type::unsupported:
      break;
  }
  out->proto = l4_proto::not_ip;
  return true;
}

link_type link_type_from_dlt(int dlt) {
  switch (dlt) {
    case 1: return link_type::ethernet;
    case 113: return link_type::linux_sll;
    case 276: return link_type::linux_sll2;
    case 0: return link_type::null_bsd;
    case 108: return link_type::loop;
    case 12:   // DLT_RAW on most systems
    case 14:   // DLT_RAW on OpenBSD
    case 101:  // LINKTYPE_RAW as stored in files
    case 228:  // DLT_IPV4
    case 229:  // DLT_IPV6
      return link_type::raw_ip;
    default: return link_type::unsupported;
  }
}

const char* link_type_name(link_type t) {
  switch (t) {
    case link_type::ethernet: return "ethernet";
    case link_type::linux_sll: return "linux_sll";
    case link_type::linux_sll2: return "linux_sll2";
    case link_type::null_bsd: return "null";
    case link_type::loop: return "loop";
    case link_type::raw_ip: return "raw_ip";
    case link_type::unsupported: break;
  }
  return "unsupported";
}

const char* malformed_kind_name(malformed_kind k) {
  switch (k) {
    case malformed_kind::none: return "none";
    case malformed_kind::truncated_link: return "truncated_link";
    case malformed_kind::too_many_vlan_tags: return "too_many_vlan_tags";
    case malformed_kind::truncated_ip: return "truncated_ip";
    case malformed_kind::bad_ip_version: return "bad_ip_version";
    case malformed_kind::bad_ip_header_length: return "bad_ip_header_length";
    case malformed_kind::bad_ip_total_length: return "bad_ip_total_length";
    case malformed_kind::bad_ipv6_extension: return "bad_ipv6_extension";
    case malformed_kind::truncated_l4: return "truncated_l4";
    case malformed_kind::bad_tcp_offset: return "bad_tcp_offset";
    case malformed_kind::bad_udp_length: return "bad_udp_length";
    case malformed_kind::bad_capture_length: return "bad_capture_length";
    case malformed_kind::count_: break;
  }
  return "unknown";
}

const char* l4_proto_name(l4_proto p) {
  switch (p) {
    case l4_proto::tcp: return "TCP";
    case l4_proto::udp: return "UDP";
    case l4_proto::icmp: return "ICMP";
    case l4_proto::icmp6: return "IPv6-ICMP";
    case l4_proto::other_ip: return "IP";
    case l4_proto::not_ip: break;
  }
  return "non-IP";
}

}  // namespace rampart::monitor
