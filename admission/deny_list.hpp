// Source addresses refused at the gate: single IPv4/IPv6 addresses and CIDR prefixes, each with an expiry.
// A lookup masks the address once per distinct prefix length in the list and probes a hash set, so it costs
// O(number of distinct prefix lengths), at most 33 + 129, independent of the number of entries.
// An entry either refuses everyone from its addresses, or spares clients that present a valid tenant
// credential: every prefix does (it also covers addresses that did nothing), and so does a single address
// listed on evidence a forged source address can produce.
// Thread-safety: none inside; share it as std::shared_ptr<const deny_list> snapshots (copy, change, publish),
// which is how the ZAP gate reads it while other threads update it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/ip_address.hpp"

namespace rampart::admission {

using ::rampart::ip_address;  // base/ip_address.hpp: IPv4 kept in its IPv4-mapped IPv6 form

// Milliseconds on the steady clock: the time base of deny-list expiries shared by the ZAP gate and its callers.
int64_t monotonic_ms();

// Parses "ADDRESS" (a full-length prefix) or "ADDRESS/LENGTH" (0-32 for IPv4, 0-128 for IPv6); host bits
// below the length are cleared. *PREFIX_BITS is in IPv6 terms (IPv4 lengths + 96).
bool parse_prefix(std::string_view text, ip_address* network, int* prefix_bits);
std::string format_prefix(const ip_address& network, int prefix_bits);

// An address (a full-length prefix) or a CIDR prefix, host bits cleared; BITS in IPv6 terms as above.
struct ip_prefix {
  ip_address network;
  int bits = 128;
  bool contains(const ip_address& a) const;
  bool operator==(const ip_prefix& o) const { return bits == o.bits && network.bytes == o.network.bytes; }
};
bool parse_prefix(std::string_view text, ip_prefix* out);
std::string format_prefix(const ip_prefix& p);

// How a source address stands with a deny list.
enum class deny_match : uint8_t {
  none,            // no unexpired entry covers it
  tenants_spared,  // only entries that spare a client with a valid tenant credential cover it
  everyone,        // an entry that refuses every client from it covers it
};

class deny_list {
 public:
  struct entry {
    std::string prefix;  // canonical text, e.g. "10.0.0.0/8", "2001:db8::/32", "127.0.0.2/32"
    int64_t expires_at_ms = 0;
    bool spares_tenants = true;  // false: a single address that refuses every client, tenants included
  };

  // Denies PREFIX (see parse_prefix) until EXPIRES_AT_MS (same clock as the lookups). A prefix shorter than a
  // full address always spares clients with a valid tenant credential; a single address does when
  // SPARE_TENANTS. Adding an entry that is already listed keeps the later expiry and the stricter of the two
  // (an address refusing everyone stays so). False with *ERROR for text that is not an address or prefix.
  bool add(std::string_view prefix, int64_t expires_at_ms, std::string* error, bool spare_tenants = false);
  bool remove(std::string_view prefix);
  // Removes every entry, address or prefix, that covers ADDRESS; returns how many.
  size_t lift(const ip_address& address);

  // True when ADDRESS is covered by an entry that has not expired at NOW_MS. Unparsable text is not denied
  // (the caller decides what to do with it).
  bool denied(std::string_view address, int64_t now_ms) const;
  bool denied(const ip_address& address, int64_t now_ms) const;
  // Which kind of unexpired entry covers ADDRESS, the strictest first. Unparsable text: deny_match::none.
  deny_match match(std::string_view address, int64_t now_ms) const;
  deny_match match(const ip_address& address, int64_t now_ms) const;

  // Drops entries expired at NOW_MS; returns how many.
  size_t expire(int64_t now_ms);
  std::vector<entry> entries() const;
  size_t size() const { return count_; }

 private:
  struct key_hash {
    size_t operator()(const std::array<uint8_t, 16>& k) const;
  };
  struct listing {
    int64_t expires_at_ms = 0;
    bool spares_tenants = true;
  };
  // One table per prefix length, masked network -> listing; lengths_ lists the non-empty ones.
  std::array<std::unordered_map<std::array<uint8_t, 16>, listing, key_hash>, 129> by_length_;
  std::vector<int> lengths_;
  size_t count_ = 0;
};

}  // namespace rampart::admission
