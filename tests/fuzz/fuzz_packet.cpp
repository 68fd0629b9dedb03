// libFuzzer target for the packet parser over every link type, and for the monitor that consumes its
// summaries. The first input octet picks the link type and the timestamp step; the rest is the packet.
// The parser must never read past the buffer, and its summary must stay within what the bytes allow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "monitor/monitor.hpp"
#include "monitor/packet.hpp"

using namespace rampart::monitor;

namespace {
constexpr link_type links[] = {link_type::ethernet, link_type::linux_sll, link_type::linux_sll2,
                               link_type::null_bsd, link_type::loop,      link_type::raw_ip,
                               link_type::unsupported};

monitor& shared_monitor() {
  static monitor m{monitor_config{}};
  return m;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const link_type link = links[data[0] % (sizeof links / sizeof links[0])];
  const size_t n = size - 1;
  // Copy into an exactly-sized heap buffer so AddressSanitizer catches any read past the packet.
  uint8_t* buf = n ? static_cast<uint8_t*>(std::malloc(n)) : nullptr;
  for (size_t i = 0; i < n; ++i) buf[i] = data[i + 1];
  static int64_t ts = 1700000000LL * 1000000;
  ts += (data[0] >> 3) * 1000;  // up to 31 ms per input, so steps advance over a run
  packet_summary s;
  s.ts_us = ts;
  const size_t wire = (data[0] & 0x80) ? n + 100 : n;  // sometimes a snaplen-cut packet
  const bool ok = parse_packet(link, buf, n, wire, &s);
  if (ok != (s.malformed == malformed_kind::none)) std::abort();
  if (s.cap_len != n || s.ts_us != ts) std::abort();
  // A packet captured whole cannot announce more payload than it holds.
  if (ok && wire == n && s.ip_version != 0 && s.payload_len > n) std::abort();
  if (ok && s.ip_version == 0 && s.proto != l4_proto::not_ip) std::abort();
  monitor& m = shared_monitor();
  if (m.due(ts)) m.advance(ts);
  m.on_packet(s);
  std::free(buf);
  return 0;
}
