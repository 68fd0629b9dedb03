// Source addresses refused at the gate: single IPv4/IPv6 addresses and CIDR prefixes, each with an expiry.
// A lookup masks the address once per distinct prefix length in the list and probes a hash set, so it costs
// O(number of distinct prefix lengths), at most 33 + 129, independent of the number of entries.
// Thread-safety: none inside; share it as std::shared_ptr<const deny_list> snapshots (copy, change, publish),
// which is how the ZAP gate reads it while other threads update it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rampart::admission {

// An IPv4 address is kept as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so "127.0.0.2" and
// "::ffff:127.0.0.2" are the same source.
struct ip_address {
  std::array<uint8_t, 16> bytes{};
  bool is_v4() const;
};

// Milliseconds on the steady clock: the time base of deny-list expiries shared by the ZAP gate and its callers.
int64_t monotonic_ms();

// Parses dotted IPv4 or IPv6 text (no port, no brackets). False for anything else.
bool parse_ip(std::string_view text, ip_address* out);
// Parses "ADDRESS" (a full-length prefix) or "ADDRESS/LENGTH" (0-32 for IPv4, 0-128 for IPv6); host bits
// below the length are cleared. *PREFIX_BITS is in IPv6 terms (IPv4 lengths + 96).
bool parse_prefix(std::string_view text, ip_address* network, int* prefix_bits);
std::string format_prefix(const ip_address& network, int prefix_bits);

class deny_list {
 public:
  struct entry {
    std::string prefix;  // canonical text, e.g. "10.0.0.0/8", "2001:db8::/32", "127.0.0.2/32"
    int64_t expires_at_ms = 0;
  };

  // Denies PREFIX (see parse_prefix) until EXPIRES_AT_MS (same clock as the lookups). Adding a prefix that is
  // already listed keeps the later expiry. False with *ERROR for text that is not an address or prefix.
  bool add(std::string_view prefix, int64_t expires_at_ms, std::string* error);
  bool remove(std::string_view prefix);

  // True when ADDRESS is covered by an entry that has not expired at NOW_MS. Unparsable text is not denied
  // (the caller decides what to do with it).
  bool denied(std::string_view address, int64_t now_ms) const;
  bool denied(const ip_address& address, int64_t now_ms) const;

  // Drops entries expired at NOW_MS; returns how many.
  size_t expire(int64_t now_ms);
  std::vector<entry> entries() const;
  size_t size() const { return count_; }

 private:
  struct key_hash {
    size_t operator()(const std::array<uint8_t, 16>& k) const;
  };
  // One table per prefix length, masked network -> expiry; lengths_ lists the non-empty ones.
  std::array<std::unordered_map<std::array<uint8_t, 16>, int64_t, key_hash>, 129> by_length_;
  std::vector<int> lengths_;
  size_t count_ = 0;
};

}  // namespace rampart::admission
