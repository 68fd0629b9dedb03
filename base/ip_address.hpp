// One IP address type for every room: the packet monitor's sources, the deny list's entries, the front end's
// peers. IPv4 is kept in its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so "127.0.0.2" and "::ffff:127.0.0.2" are
// the same source and one 16-byte key holds both families.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace rampart {

struct ip_address {
  uint8_t family = 0;  // 4 (IPv4, mapped) or 6; 0 = unset
  std::array<uint8_t, 16> bytes{};

  bool is_v4() const { return family == 4; }
  bool operator==(const ip_address& o) const { return family == o.family && bytes == o.bytes; }
  bool operator!=(const ip_address& o) const { return !(*this == o); }
  bool operator<(const ip_address& o) const { return family != o.family ? family < o.family : bytes < o.bytes; }
  // A 64-bit mix of family and bytes; equal addresses give equal keys. Used by the sketches.
  uint64_t hash() const {
    uint64_t a, b;
    std::memcpy(&a, bytes.data(), 8);
    std::memcpy(&b, bytes.data() + 8, 8);
    uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ (b + family) * 0xc2b2ae3d27d4eb4fULL;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
  }
  // The same address with every bit past PREFIX_BITS cleared; the length counts in the family's own bits
  // (0-32 for IPv4, 0-128 for IPv6) and is clamped to them.
  ip_address prefix(int prefix_bits) const;
  // The length in the 128-bit key's terms (IPv4 lengths + 96).
  int key_bits(int prefix_bits) const { return family == 4 ? prefix_bits + 96 : prefix_bits; }
  std::string to_string() const;  // dotted quad, or RFC 5952 IPv6 text; "" when unset

  static ip_address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
  static ip_address from_v4(const uint8_t* four_bytes);
  // Sixteen bytes of an IPv6 header; an IPv4-mapped address becomes IPv4.
  static ip_address from_v6(const uint8_t* sixteen_bytes);
  // Parses dotted-quad or IPv6 text (no port, no brackets); false, leaving *OUT alone, for anything else.
  static bool parse(std::string_view text, ip_address* out);
};

}  // namespace rampart
