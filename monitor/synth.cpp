#include "monitor/synth.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cmath>
#include <memory>

namespace rampart::monitor::synth {

namespace {

void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v & 0xffff);
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += uint32_t{p[i]} << 8 | p[i + 1];
  if (n & 1) acc += uint32_t{p[n - 1]} << 8;
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// Ethernet (zero MACs, as on Linux lo) + IPv4 header for an L4 length of L4_LEN; returns the frame with
// the L4 area zeroed, IP checksum set.
std::vector<uint8_t> frame(const ip_address& src, const ip_address& dst, uint8_t proto, size_t l4_len) {
  std::vector<uint8_t> f(14 + 20 + l4_len, 0);
  put16(&f[12], 0x0800);
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  put16(ip + 2, static_cast<uint32_t>(20 + l4_len));
  put16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;
  ip[9] = proto;
  std::copy(src.bytes.begin() + 12, src.bytes.end(), ip + 12);  // IPv4, kept mapped
  std::copy(dst.bytes.begin() + 12, dst.bytes.end(), ip + 16);
  put16(ip + 10, fold(sum16(ip, 20)));
  return f;
}

// L4 checksum over the IPv4 pseudo-header and the L4 bytes; CSUM_AT is its offset within the L4 header.
void l4_checksum(std::vector<uint8_t>* f, uint8_t proto, size_t csum_at) {
  uint8_t* ip = &(*f)[14];
  const size_t l4_len = f->size() - 34;
  uint32_t acc = sum16(ip + 12, 8);
  acc += proto;
  acc += static_cast<uint32_t>(l4_len);
  acc = sum16(ip + 20, l4_len, acc);
  uint16_t c = fold(acc);
  if (c == 0 && proto == 17) c = 0xffff;
  put16(ip + 20 + csum_at, c);
}

}  // namespace

std::vector<uint8_t> ethernet_ipv4_tcp(const tcp_segment& s) {
  std::vector<uint8_t> f = frame(s.src, s.dst, 6, 20 + s.payload);
  uint8_t* t = &f[34];
  put16(t, s.sport);
  put16(t + 2, s.dport);
  put32(t + 4, s.seq);
  put32(t + 8, s.ack);
  t[12] = 5 << 4;
  t[13] = s.flags;
  put16(t + 14, 65535);
  l4_checksum(&f, 6, 16);
  return f;
}

std::vector<uint8_t> ethernet_ipv4_udp(const ip_address& src, uint16_t sport, const ip_address& dst,
                                       uint16_t dport, uint32_t payload) {
  std::vector<uint8_t> f = frame(src, dst, 17, 8 + payload);
  uint8_t* u = &f[34];
  put16(u, sport);
  put16(u + 2, dport);
  put16(u + 4, 8 + payload);
  l4_checksum(&f, 17, 6);
  return f;
}

std::vector<uint8_t> ethernet_ipv4_udp_fragment(const ip_address& src, const ip_address& dst, uint16_t id,
                                                uint16_t offset_units, bool more, uint16_t sport, uint16_t dport,
                                                uint32_t payload) {
  const bool first = offset_units == 0;
  std::vector<uint8_t> f = frame(src, dst, 17, (first ? 8 : 0) + payload);
  uint8_t* ip = &f[14];
  put16(ip + 4, id);
  put16(ip + 6, static_cast<uint32_t>((more ? 0x2000 : 0) | (offset_units & 0x1fff)));
  put16(ip + 10, 0);
  put16(ip + 10, fold(sum16(ip, 20)));
  if (first) {  // the UDP header, with the length of the whole datagram (this and one more fragment of PAYLOAD)
    put16(&f[34], sport);
    put16(&f[36], dport);
    put16(&f[38], 8 + 2 * payload);
  }
  return f;
}

std::vector<uint8_t> ethernet_ipv4_icmp_echo(const ip_address& src, const ip_address& dst, uint32_t payload) {
  std::vector<uint8_t> f = frame(src, dst, 1, 8 + payload);
  uint8_t* c = &f[34];
  c[0] = 8;  // echo request
  put16(c + 2, fold(sum16(c, 8 + payload)));
  return f;
}

uint64_t traffic::next() {  // splitmix64
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {
int64_t span(double duration_s, double rate) { return static_cast<int64_t>(std::llround(duration_s * rate)); }
int64_t at(int64_t start_us, int64_t i, double rate) {
  return start_us + static_cast<int64_t>(static_cast<double>(i) * 1e6 / rate);
}
}  // namespace

void traffic::benign_clients(int64_t start_us, double duration_s, int n_clients, double req_per_s,
                             const ip_address& server, uint16_t port) {
  for (int c = 0; c < n_clients; ++c) {
    const ip_address cl = ip_address::v4(10, 1, static_cast<uint8_t>((c + 1) >> 8), static_cast<uint8_t>(c + 1));
    const uint16_t sp = static_cast<uint16_t>(40000 + c);
    const int64_t t = start_us + c * 1000;
    open_connection(t, cl, sp, server, port);
    add(t + 200, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::ack | tcp_flag::psh, 8, 66, 64}));
  }
  const int64_t n = span(duration_s, req_per_s);
  const int64_t begin = start_us + n_clients * 1000 + 1000;
  for (int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(next() % static_cast<uint64_t>(n_clients));
    const ip_address cl = ip_address::v4(10, 1, static_cast<uint8_t>((c + 1) >> 8), static_cast<uint8_t>(c + 1));
    const uint16_t sp = static_cast<uint16_t>(40000 + c);
    const int64_t t = at(begin, i, req_per_s);
    add(t, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::ack | tcp_flag::psh, 100, 100, 80}));
    add(t + 200, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::ack | tcp_flag::psh, 100, 180, 120}));
  }
}

void traffic::syn_flood(int64_t start_us, double duration_s, double pps, const ip_address& src, bool spoofed,
                        const ip_address& server, uint16_t port) {
  const int64_t n = span(duration_s, pps);
  for (int64_t i = 0; i < n; ++i) {
    ip_address s = src;
    uint16_t sp = static_cast<uint16_t>(1024 + i % 60000);
    if (spoofed) {
      const uint64_t r = next();
      s = ip_address::v4(static_cast<uint8_t>(100), static_cast<uint8_t>(64 | (r & 63)),
                         static_cast<uint8_t>(r >> 8), static_cast<uint8_t>(r >> 16));
      sp = static_cast<uint16_t>(1024 + (r >> 24) % 60000);
    }
    add(at(start_us, i, pps), ethernet_ipv4_tcp({s, server, sp, port, tcp_flag::syn, static_cast<uint32_t>(i), 0, 0}));
  }
}

void traffic::udp_flood(int64_t start_us, double duration_s, double pps, const ip_address& src,
                        const ip_address& server, uint16_t port, uint32_t payload) {
  const int64_t n = span(duration_s, pps);
  for (int64_t i = 0; i < n; ++i) {
    add(at(start_us, i, pps),
        ethernet_ipv4_udp(src, static_cast<uint16_t>(1024 + i % 60000), server, port, payload));
  }
}

void traffic::reflection(int64_t start_us, double duration_s, double pps, int n_reflectors, uint16_t sport,
                         const ip_address& server, uint32_t payload) {
  const int64_t n = span(duration_s, pps);
  for (int64_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % n_reflectors) + 1;
    const ip_address reflector = ip_address::v4(203, 0, static_cast<uint8_t>(113 + (k >> 8)), static_cast<uint8_t>(k));
    add(at(start_us, i, pps),
        ethernet_ipv4_udp(reflector, sport, server, static_cast<uint16_t>(1024 + next() % 60000), payload));
  }
}

void traffic::fragment_flood(int64_t start_us, double duration_s, double pps, const ip_address& src,
                             const ip_address& server, uint16_t port, uint32_t payload) {
  const int64_t n = span(duration_s, pps);
  const uint32_t body = payload & ~7u;  // fragment offsets count 8-octet units
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t id = static_cast<uint16_t>(i / 2);
    if (i % 2 == 0) {
      add(at(start_us, i, pps), ethernet_ipv4_udp_fragment(src, server, id, 0, true, 4000, port, body));
    } else {
      add(at(start_us, i, pps),
          ethernet_ipv4_udp_fragment(src, server, id, static_cast<uint16_t>((8 + body) / 8), false, 4000, port, body));
    }
  }
}

void traffic::icmp_flood(int64_t start_us, double duration_s, double pps, const ip_address& src,
                         const ip_address& server) {
  const int64_t n = span(duration_s, pps);
  for (int64_t i = 0; i < n; ++i) add(at(start_us, i, pps), ethernet_ipv4_icmp_echo(src, server, 56));
}

void traffic::stalled_connections(int64_t start_us, double duration_s, double conn_per_s, int n_sources,
                                  double hold_s, const ip_address& server, uint16_t port) {
  const int64_t n = span(duration_s, conn_per_s);
  const int64_t hold = static_cast<int64_t>(hold_s * 1e6);
  for (int64_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % n_sources);
    const ip_address cl = ip_address::v4(172, 16, static_cast<uint8_t>((k + 1) >> 8), static_cast<uint8_t>(k + 1));
    const uint16_t sp = static_cast<uint16_t>(20000 + (i / n_sources) % 40000);
    const int64_t t = at(start_us, i, conn_per_s);
    add(t, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::syn, 1, 0, 0}));
    add(t + 30, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::syn | tcp_flag::ack, 7, 2, 0}));
    add(t + 60, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::ack, 2, 8, 0}));
    add(t + 90, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::ack | tcp_flag::psh, 2, 8, 10}));
    add(t + hold, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::fin | tcp_flag::ack, 8, 12, 0}));
    add(t + hold + 30, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::rst, 12, 0, 0}));
  }
}

void traffic::open_connection(int64_t t, const ip_address& cl, uint16_t sp, const ip_address& server,
                              uint16_t port) {
  add(t, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::syn, 1, 0, 0}));
  add(t + 50, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::syn | tcp_flag::ack, 7, 2, 0}));
  add(t + 100, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::ack, 2, 8, 0}));
  add(t + 150, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::ack | tcp_flag::psh, 2, 8, 64}));
}

void traffic::new_clients(int64_t start_us, double interval_s, int n_clients, const ip_address& first,
                          const ip_address& server, uint16_t port) {
  for (int c = 0; c < n_clients; ++c) {
    ip_address cl = first;
    cl.bytes[15] = static_cast<uint8_t>(first.bytes[15] + c);
    const uint16_t sp = static_cast<uint16_t>(50000 + c);
    const int64_t t = start_us + static_cast<int64_t>(std::llround(c * interval_s * 1e6));
    open_connection(t, cl, sp, server, port);
    add(t + 200, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::ack | tcp_flag::psh, 8, 66, 64}));
    add(t + 300, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::ack | tcp_flag::psh, 66, 72, 80}));
    add(t + 500, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::ack | tcp_flag::psh, 72, 146, 120}));
  }
}

void traffic::short_sessions(int64_t start_us, double duration_s, int n_clients, double sessions_per_s,
                             const ip_address& first, const ip_address& server, uint16_t port) {
  const int64_t n = span(duration_s, sessions_per_s);
  for (int c = 0; c < n_clients; ++c) {
    ip_address cl = first;
    cl.bytes[15] = static_cast<uint8_t>(first.bytes[15] + c);
    // Clients start a little apart, so their sessions do not all fall on the same instants.
    const int64_t begin = start_us + static_cast<int64_t>(next() % 1000000 / std::max(1.0, sessions_per_s));
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t sp = static_cast<uint16_t>(20000 + i % 40000);
      const int64_t t = at(begin, i, sessions_per_s);
      open_connection(t, cl, sp, server, port);
      add(t + 200, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::ack | tcp_flag::psh, 66, 8, 80}));
      add(t + 400, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::ack | tcp_flag::psh, 8, 146, 120}));
      add(t + 450, ethernet_ipv4_tcp({cl, server, sp, port, tcp_flag::fin | tcp_flag::ack, 146, 128, 0}));
      add(t + 500, ethernet_ipv4_tcp({server, cl, port, sp, tcp_flag::fin | tcp_flag::ack, 128, 147, 0}));
    }
  }
}

void traffic::data_stream(int64_t start_us, double duration_s, double pps, const ip_address& src, uint16_t sport,
                          const ip_address& server, uint16_t port) {
  const int64_t n = span(duration_s, pps);
  for (int64_t i = 0; i < n; ++i) {
    add(at(start_us, i, pps),
        ethernet_ipv4_tcp({src, server, sport, port, tcp_flag::ack | tcp_flag::psh, static_cast<uint32_t>(i), 1, 200}));
  }
}

namespace {
struct dumper {
  pcap_t* dead = nullptr;
  pcap_dumper_t* dump = nullptr;
  ~dumper() {
    if (dump) pcap_dump_close(dump);
    if (dead) pcap_close(dead);
  }
  bool open(const std::string& path, std::string* error) {
    dead = pcap_open_dead(DLT_EN10MB, 262144);
    dump = dead ? pcap_dump_open(dead, path.c_str()) : nullptr;
    if (!dump) {
      *error = "cannot write " + path + (dead ? std::string(": ") + pcap_geterr(dead) : "");
      return false;
    }
    return true;
  }
  void write(int64_t ts_us, const std::vector<uint8_t>& b) {
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(ts_us / 1000000);
    h.ts.tv_usec = static_cast<suseconds_t>(ts_us % 1000000);
    h.caplen = h.len = static_cast<bpf_u_int32>(b.size());
    pcap_dump(reinterpret_cast<u_char*>(dump), &h, b.data());
  }
};
}  // namespace

bool traffic::write_pcap(const std::string& path, std::string* error) {
  std::stable_sort(packets_.begin(), packets_.end(),
                   [](const timed_packet& a, const timed_packet& b) { return a.ts_us < b.ts_us; });
  dumper d;
  if (!d.open(path, error)) return false;
  for (const timed_packet& p : packets_) d.write(p.ts_us, p.bytes);
  return true;
}

bool write_benchmark_pcap(const std::string& path, uint64_t n_packets, double pps, std::string* error) {
  dumper d;
  if (!d.open(path, error)) return false;
  const ip_address server = ip_address::v4(10, 0, 0, 1);
  const int64_t start = 1700000000LL * 1000000;
  uint64_t r = 42;
  for (uint64_t i = 0; i < n_packets; ++i) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    const uint32_t x = static_cast<uint32_t>(r >> 33);
    const int64_t ts = start + static_cast<int64_t>(static_cast<double>(i) * 1e6 / pps);
    const unsigned kind = i % 20;
    if (kind < 14) {  // benign request/response traffic from 1,000 clients
      const uint32_t c = x % 1000;
      const ip_address cl = ip_address::v4(10, 1, static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c));
      const uint16_t sp = static_cast<uint16_t>(40000 + c);
      if (kind & 1) d.write(ts, ethernet_ipv4_tcp({server, cl, 5555, sp, tcp_flag::ack | tcp_flag::psh, 1, 1, 120}));
      else d.write(ts, ethernet_ipv4_tcp({cl, server, sp, 5555, tcp_flag::ack | tcp_flag::psh, 1, 1, 80}));
    } else if (kind < 18) {  // spoofed SYN flood
      const ip_address s = ip_address::v4(100, static_cast<uint8_t>(64 | (x & 63)), static_cast<uint8_t>(x >> 8),
                                          static_cast<uint8_t>(x >> 16));
      d.write(ts, ethernet_ipv4_tcp({s, server, static_cast<uint16_t>(1024 + (x >> 20)), 5555, tcp_flag::syn, x, 0, 0}));
    } else if (kind == 18) {
      d.write(ts, ethernet_ipv4_udp(ip_address::v4(198, 51, 100, static_cast<uint8_t>(x)), 500, server, 5555, 64));
    } else {
      d.write(ts, ethernet_ipv4_icmp_echo(ip_address::v4(203, 0, 113, static_cast<uint8_t>(x)), server, 56));
    }
  }
  return true;
}

}  // namespace rampart::monitor::synth
