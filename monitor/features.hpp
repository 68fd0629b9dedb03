// Per-window traffic features: packets and bytes per protocol, TCP flag counts, handshakes, stalled
// handshakes, top sources / prefixes / destinations (Space-Saving), normalised source entropy, and the
// application signals of the same window. A window is the last `window_s` seconds, recomputed every step.
// Beside the totals, each detector's evidence is also counted per source (SYNs, completed and stalled
// handshakes, UDP and ICMP packets), so an alert can name only the sources its own evidence points at.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "monitor/flow_table.hpp"
#include "monitor/monitor_config.hpp"
#include "monitor/packet.hpp"
#include "monitor/space_saving.hpp"

namespace rampart::monitor {

// Application signals reported by the front end (monitor::on_app_signal).
enum class app_signal : uint8_t {
  registration,      // a registration attempt; key = source address
  auth_failure,      // a failed authentication (ZAP 400, bad key); key = source address
  request,           // one request; key = its tenant ("tenant:<id>") when authenticated, else source address
  zmtp_accepted,     // a connection accepted by the front-end socket; key = source address if known
  zmtp_succeeded,    // a ZMTP handshake completed; key as above
  slow_reader,       // a connection dropped for not reading what it was sent; key = source address
  generated_tokens,  // tokens streamed to a request's client; key as for request, count = tokens
  count_,
};
constexpr size_t app_signal_count = static_cast<size_t>(app_signal::count_);
const char* app_signal_name(app_signal s);

// An address (port 0) or address + port.
struct endpoint {
  ip_address addr;
  uint16_t port = 0;
  bool operator==(const endpoint& o) const { return port == o.port && addr == o.addr; }
  uint64_t hash() const { return hash_with(addr.hash()); }
  // hash() given ADDR_HASH == addr.hash(), to reuse a hash already computed.
  uint64_t hash_with(uint64_t addr_hash) const { return addr_hash ^ (uint64_t{port} + 1) * 0x94d049bb133111ebULL; }
};

// An application key, truncated to 63 octets.
struct app_key {
  std::array<char, 64> text{};
  uint8_t len = 0;
  bool operator==(const app_key& o) const { return len == o.len && text == o.text; }
  std::string_view view() const { return {text.data(), len}; }
  static app_key from(std::string_view s);
  uint64_t hash() const;
};

constexpr size_t top_n = 8;  // entries kept per top list in window_features

// Counters of one step; summed over the steps of a window.
struct step_counters {
  std::array<uint64_t, l4_proto_count> packets{};  // inbound (towards the service) by protocol
  std::array<uint64_t, l4_proto_count> bytes{};
  uint64_t syn = 0, synack = 0, ack = 0, rst = 0, fin = 0;  // inbound TCP; syn = SYN without ACK
  uint64_t handshakes_started = 0, handshakes_completed = 0;
  uint64_t unsolicited_synack = 0, stalled = 0, fragments = 0;
  uint64_t reflected = 0;  // UDP from an amplifier port (any destination port), not from a service port
  std::array<uint64_t, app_signal_count> app{};

  void add(const step_counters& o);
};

struct window_features {
  int64_t end_us = 0;      // the window is (end_us - window_s, end_us]
  double window_s = 0;
  step_counters sum;       // totals over the window
  uint64_t inbound_packets = 0;
  double src_entropy_norm = 0;   // normalised entropy of the inbound sources' hashed histogram, in [0, 1]
  double distinct_sources = 0;   // linear-counting estimate over the same histogram

  std::array<counted_key<endpoint>, top_n> top_sources{};
  std::array<counted_key<endpoint>, top_n> top_prefixes{};
  std::array<counted_key<endpoint>, top_n> top_syn_sources{};
  std::array<counted_key<endpoint>, top_n> top_syn_prefixes{};
  std::array<counted_key<endpoint>, top_n> top_destinations{};
  std::array<std::array<counted_key<app_key>, top_n>, app_signal_count> top_app_keys{};
  size_t n_sources = 0, n_prefixes = 0, n_syn_sources = 0, n_syn_prefixes = 0, n_destinations = 0;
  std::array<size_t, app_signal_count> n_app_keys{};

  // Per-source evidence. Completed and stalled handshakes are counted by client address (and prefix) on any
  // port, like their totals in `sum`; UDP and ICMP (v4 and v6) packets by inbound source.
  std::array<counted_key<endpoint>, top_n> top_completed_sources{};
  std::array<counted_key<endpoint>, top_n> top_completed_prefixes{};
  std::array<counted_key<endpoint>, top_n> top_stalled_sources{};
  std::array<counted_key<endpoint>, top_n> top_stalled_prefixes{};
  std::array<counted_key<endpoint>, top_n> top_udp_sources{};
  std::array<counted_key<endpoint>, top_n> top_icmp_sources{};
  std::array<counted_key<endpoint>, top_n> top_reflector_sources{};  // senders of reflected UDP
  std::array<counted_key<endpoint>, top_n> top_fragment_sources{};   // senders of IP fragments
  size_t n_completed_sources = 0, n_completed_prefixes = 0, n_stalled_sources = 0, n_stalled_prefixes = 0;
  size_t n_udp_sources = 0, n_icmp_sources = 0, n_reflector_sources = 0, n_fragment_sources = 0;
  // For entry i of top_syn_sources: an upper bound of the handshakes that address completed in the window, so
  // top_syn_sources[i].lower_bound() - syn_sources_completed[i] bounds its half-open SYNs from below.
  std::array<uint64_t, top_n> syn_sources_completed{};

  double rate(uint64_t count) const { return window_s > 0 ? static_cast<double>(count) / window_s : 0; }
};

// Application-signal counts of one step, with a top-key summary per signal.
struct app_step {
  std::array<uint64_t, app_signal_count> counts{};
  std::array<space_saving<app_key, 32>, app_signal_count> keys;
  void clear();
};

// Not thread-safe: one thread calls on_packet / add_app_step / close_step.
class feature_extractor {
 public:
  explicit feature_extractor(const monitor_config& cfg);

  // Counts one well-formed packet into the current step. No allocation.
  void on_packet(const packet_summary& p);
  // Adds application signals collected during the current step.
  void add_app_step(const app_step& a);
  // Ends the current step at END_US, computes the window ending there into *out and starts a new step.
  void close_step(int64_t end_us, window_features* out);

  size_t steps_per_window() const { return steps_; }
  const flow_table& flows() const { return flows_; }

  static constexpr size_t histogram_buckets = 16384;
  static constexpr size_t max_steps_per_window = 64;

 private:
  struct step_slot {
    step_counters c;
    std::vector<uint32_t> hist;  // inbound sources, hashed into histogram_buckets
    space_saving<endpoint, 32> sources, prefixes, syn_sources, syn_prefixes;
    space_saving<endpoint, 32> completed_sources, completed_prefixes, stalled_sources, stalled_prefixes;
    space_saving<endpoint, 32> udp_sources, icmp_sources, reflector_sources, fragment_sources;
    space_saving<endpoint, 16> destinations;
    app_step app;
  };

  bool inbound(const packet_summary& p) const;
  void compute_entropy(window_features* out) const;
  // Counts one event of a client address into BY_SOURCE and its prefix into BY_PREFIX.
  void count_client(const ip_address& client, space_saving<endpoint, 32>* by_source,
                    space_saving<endpoint, 32>* by_prefix) const;

  size_t steps_;
  double window_s_;
  int prefix_v4_, prefix_v6_;
  std::bitset<65536> service_port_;
  std::bitset<65536> amplifier_port_;
  bool all_ports_;
  std::vector<step_slot> ring_;
  size_t cur_ = 0;
  std::vector<uint32_t> window_hist_;
  flow_table flows_;
  std::vector<counted_key<endpoint>> scratch_;
  std::vector<counted_key<app_key>> app_scratch_;
  std::vector<ip_address> stalled_scratch_;  // clients of the connections a sweep found stalled
};

}  // namespace rampart::monitor
