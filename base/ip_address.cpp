#include "base/ip_address.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace rampart {
namespace {

constexpr std::array<uint8_t, 12> kV4Mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

ip_address ip_address::prefix(int prefix_bits) const {
  ip_address r = *this;
  const int width = family == 4 ? 32 : 128;
  const int bits = key_bits(std::clamp(prefix_bits, 0, width));
  for (int i = 0; i < 16; ++i) {
    const int keep = bits - i * 8;
    if (keep >= 8) continue;
    r.bytes[static_cast<size_t>(i)] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
  return r;
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == 4) inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  else if (family == 6) inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

ip_address ip_address::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  const uint8_t four[4] = {a, b, c, d};
  return from_v4(four);
}

ip_address ip_address::from_v4(const uint8_t* four_bytes) {
  ip_address r;
  r.family = 4;
  std::copy(kV4Mapped.begin(), kV4Mapped.end(), r.bytes.begin());
  std::memcpy(r.bytes.data() + 12, four_bytes, 4);
  return r;
}

ip_address ip_address::from_v6(const uint8_t* sixteen_bytes) {
  ip_address r;
  std::memcpy(r.bytes.data(), sixteen_bytes, 16);
  r.family = std::equal(kV4Mapped.begin(), kV4Mapped.end(), r.bytes.begin()) ? 4 : 6;
  return r;
}

bool ip_address::parse(std::string_view text, ip_address* out) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  uint8_t raw[16];
  if (inet_pton(AF_INET, buf, raw) == 1) {
    *out = from_v4(raw);
    return true;
  }
  if (inet_pton(AF_INET6, buf, raw) == 1) {
    *out = from_v6(raw);
    return true;
  }
  return false;
}

}  // namespace rampart
