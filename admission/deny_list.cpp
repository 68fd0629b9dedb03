#include "admission/deny_list.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace rampart::admission {
namespace {

constexpr std::array<uint8_t, 12> kV4Mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::array<uint8_t, 16> mask(const std::array<uint8_t, 16>& a, int bits) {
  std::array<uint8_t, 16> out{};
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(bits - 8 * i, 0, 8);
    out[i] = keep == 0 ? 0 : static_cast<uint8_t>(a[i] & static_cast<uint8_t>(0xff << (8 - keep)));
  }
  return out;
}

}  // namespace

int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool parse_prefix(std::string_view text, ip_address* network, int* prefix_bits) {
  auto slash = text.find('/');
  ip_address a;
  if (!ip_address::parse(text.substr(0, slash), &a)) return false;
  const bool v4_text = text.substr(0, slash).find(':') == std::string_view::npos;
  int bits = v4_text ? 32 : 128;
  if (slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3) return false;
    int v = 0;
    for (char c : len) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    if (v > bits) return false;
    bits = v;
  }
  *prefix_bits = v4_text ? bits + 96 : bits;
  network->family = a.family;
  network->bytes = mask(a.bytes, *prefix_bits);
  return true;
}

std::string format_prefix(const ip_address& network, int prefix_bits) {
  char buf[INET6_ADDRSTRLEN];
  const bool mapped = std::equal(kV4Mapped.begin(), kV4Mapped.end(), network.bytes.begin());
  if (mapped && prefix_bits >= 96) {
    inet_ntop(AF_INET, network.bytes.data() + 12, buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(prefix_bits - 96);
  }
  inet_ntop(AF_INET6, network.bytes.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_bits);
}

bool ip_prefix::contains(const ip_address& a) const { return mask(a.bytes, bits) == network.bytes; }

bool parse_prefix(std::string_view text, ip_prefix* out) { return parse_prefix(text, &out->network, &out->bits); }

std::string format_prefix(const ip_prefix& p) { return format_prefix(p.network, p.bits); }

size_t deny_list::key_hash::operator()(const std::array<uint8_t, 16>& k) const {
  uint64_t hi, lo;
  std::memcpy(&hi, k.data(), 8);
  std::memcpy(&lo, k.data() + 8, 8);
  uint64_t h = hi * 0x9e3779b97f4a7c15ULL ^ (lo + 0x632be59bd9b4e019ULL + (hi << 6) + (hi >> 2));
  return static_cast<size_t>(h ^ (h >> 29));
}

bool deny_list::add(std::string_view prefix, int64_t expires_at_ms, std::string* error, bool spare_tenants) {
  ip_address network;
  int bits;
  if (!parse_prefix(prefix, &network, &bits)) {
    if (error) *error = "\"" + std::string(prefix) + "\" is not an IP address or CIDR prefix";
    return false;
  }
  const bool spares = bits < 128 || spare_tenants;
  auto& table = by_length_[bits];
  auto [it, inserted] = table.emplace(network.bytes, listing{expires_at_ms, spares});
  if (!inserted) {
    it->second.expires_at_ms = std::max(it->second.expires_at_ms, expires_at_ms);
    it->second.spares_tenants = it->second.spares_tenants && spares;
    return true;
  }
  ++count_;
  if (std::find(lengths_.begin(), lengths_.end(), bits) == lengths_.end()) {
    lengths_.push_back(bits);
    // Longest first: specific entries are the common case (single heavy hitters).
    std::sort(lengths_.rbegin(), lengths_.rend());
  }
  return true;
}

bool deny_list::remove(std::string_view prefix) {
  ip_address network;
  int bits;
  if (!parse_prefix(prefix, &network, &bits)) return false;
  if (by_length_[bits].erase(network.bytes) == 0) return false;
  --count_;
  if (by_length_[bits].empty()) lengths_.erase(std::find(lengths_.begin(), lengths_.end(), bits));
  return true;
}

size_t deny_list::lift(const ip_address& address) {
  size_t lifted = 0;
  for (int bits : std::vector<int>(lengths_)) {
    auto& table = by_length_[bits];
    if (table.erase(mask(address.bytes, bits)) == 0) continue;
    ++lifted;
    if (table.empty()) lengths_.erase(std::find(lengths_.begin(), lengths_.end(), bits));
  }
  count_ -= lifted;
  return lifted;
}

bool deny_list::denied(std::string_view address, int64_t now_ms) const {
  ip_address a;
  return ip_address::parse(address, &a) && denied(a, now_ms);
}

bool deny_list::denied(const ip_address& address, int64_t now_ms) const {
  return match(address, now_ms) != deny_match::none;
}

deny_match deny_list::match(std::string_view address, int64_t now_ms) const {
  ip_address a;
  return ip_address::parse(address, &a) ? match(a, now_ms) : deny_match::none;
}

deny_match deny_list::match(const ip_address& address, int64_t now_ms) const {
  deny_match found = deny_match::none;
  for (int bits : lengths_) {
    const auto& table = by_length_[bits];
    auto it = table.find(mask(address.bytes, bits));
    if (it == table.end() || it->second.expires_at_ms <= now_ms) continue;
    if (!it->second.spares_tenants) return deny_match::everyone;
    found = deny_match::tenants_spared;
  }
  return found;
}

size_t deny_list::expire(int64_t now_ms) {
  size_t dropped = 0;
  for (int bits : std::vector<int>(lengths_)) {
    auto& table = by_length_[bits];
    for (auto it = table.begin(); it != table.end();) {
      if (it->second.expires_at_ms <= now_ms) {
        it = table.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    if (table.empty()) lengths_.erase(std::find(lengths_.begin(), lengths_.end(), bits));
  }
  count_ -= dropped;
  return dropped;
}

std::vector<deny_list::entry> deny_list::entries() const {
  std::vector<entry> out;
  for (int bits : lengths_) {
    for (const auto& [net, l] : by_length_[bits]) {
      const ip_address a = ip_address::from_v6(net.data());
      out.push_back({format_prefix(a, bits), l.expires_at_ms, l.spares_tenants});
    }
  }
  std::sort(out.begin(), out.end(), [](const entry& x, const entry& y) { return x.prefix < y.prefix; });
  return out;
}

}  // namespace rampart::admission
