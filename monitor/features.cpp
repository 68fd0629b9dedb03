#include "monitor/features.hpp"

#include <cmath>
#include <cstring>

namespace rampart::monitor {

const char* app_signal_name(app_signal s) {
  switch (s) {
    case app_signal::registration: return "registration";
    case app_signal::auth_failure: return "auth_failure";
    case app_signal::request: return "request";
    case app_signal::zmtp_accepted: return "zmtp_accepted";
    case app_signal::zmtp_succeeded: return "zmtp_succeeded";
    case app_signal::slow_reader: return "slow_reader";
    case app_signal::generated_tokens: return "generated_tokens";
    case app_signal::count_: break;
  }
  return "unknown";
}

app_key app_key::from(std::string_view s) {
  app_key k;
  k.len = static_cast<uint8_t>(s.size() < k.text.size() - 1 ? s.size() : k.text.size() - 1);
  std::memcpy(k.text.data(), s.data(), k.len);
  return k;
}

uint64_t app_key::hash() const {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (uint8_t i = 0; i < len; ++i) h = (h ^ static_cast<uint8_t>(text[i])) * 0x100000001b3ULL;
  return h ^ (h >> 29);
}

void step_counters::add(const step_counters& o) {
  for (size_t i = 0; i < l4_proto_count; ++i) {
    packets[i] += o.packets[i];
    bytes[i] += o.bytes[i];
  }
  syn += o.syn;
  synack += o.synack;
  ack += o.ack;
  rst += o.rst;
  fin += o.fin;
  handshakes_started += o.handshakes_started;
  handshakes_completed += o.handshakes_completed;
  unsolicited_synack += o.unsolicited_synack;
  stalled += o.stalled;
  fragments += o.fragments;
  reflected += o.reflected;
  for (size_t i = 0; i < app_signal_count; ++i) app[i] += o.app[i];
}

void app_step::clear() {
  counts.fill(0);
  for (auto& k : keys) k.clear();
}

feature_extractor::feature_extractor(const monitor_config& cfg)
    : steps_(static_cast<size_t>(std::llround(cfg.window_s / cfg.step_s))),
      window_s_(static_cast<double>(steps_ < 1 ? 1 : steps_) * cfg.step_s),
      prefix_v4_(cfg.prefix_v4),
      prefix_v6_(cfg.prefix_v6),
      all_ports_(cfg.service_ports.empty()),
      ring_(steps_ < 1 ? 1 : steps_),
      window_hist_(histogram_buckets, 0),
      flows_(cfg.flow_table_entries, static_cast<int64_t>(cfg.handshake_timeout_s * 1e6)) {
  if (steps_ < 1) steps_ = 1;
  for (uint16_t p : cfg.service_ports) service_port_[p] = true;
  for (uint16_t p : cfg.amplifier_ports) amplifier_port_[p] = true;
  for (step_slot& s : ring_) s.hist.assign(histogram_buckets, 0);
  scratch_.reserve(steps_ * 32 * 2);
  app_scratch_.reserve(steps_ * 32);
  stalled_scratch_.reserve(1024);
}

bool feature_extractor::inbound(const packet_summary& p) const {
  if (all_ports_) return true;
  if (p.proto == l4_proto::tcp || p.proto == l4_proto::udp) {
    // Later fragments carry no ports; they belong to whatever their first fragment was sent to.
    return p.later_fragment || service_port_[p.dst_port];
  }
  return true;
}

void feature_extractor::count_client(const ip_address& client, space_saving<endpoint, 32>* by_source,
                                     space_saving<endpoint, 32>* by_prefix) const {
  if (client.family == 0) return;
  const endpoint src{client, 0};
  by_source->add(src, src.hash());
  const endpoint pre{client.prefix(client.family == 4 ? prefix_v4_ : prefix_v6_), 0};
  by_prefix->add(pre, pre.hash());
}

void feature_extractor::on_packet(const packet_summary& p) {
  step_slot& s = ring_[cur_];
  const uint64_t src_hash = p.src.hash(), dst_hash = p.dst.hash();
  if (p.proto == l4_proto::tcp && !p.later_fragment) {
    const flow_outcome f = flows_.on_tcp(p, src_hash, dst_hash);
    s.c.handshakes_started += f.started;
    s.c.handshakes_completed += f.completed;
    s.c.unsolicited_synack += f.unsolicited_synack;
    s.c.stalled += f.stalled;
    if (f.completed) count_client(p.src, &s.completed_sources, &s.completed_prefixes);
    if (f.stalled > 0) count_client(f.stalled_client, &s.stalled_sources, &s.stalled_prefixes);
  }
  // Reflection reaches any port of this host (the spoofed queries named it, not the service), so it is counted
  // before the service-port test; a datagram from one of the service's own ports is its own traffic.
  const bool reflected = p.proto == l4_proto::udp && !p.later_fragment && amplifier_port_[p.src_port] &&
                         !service_port_[p.src_port] && p.ip_version != 0;
  if (reflected) {
    ++s.c.reflected;
    const endpoint src{p.src, 0};
    s.reflector_sources.add(src, src.hash_with(src_hash));
  }
  s.c.fragments += p.fragment;  // every fragment, whichever port its first one named
  if (p.fragment && p.ip_version != 0) {
    const endpoint src{p.src, 0};
    s.fragment_sources.add(src, src.hash_with(src_hash));
  }
  if (!inbound(p)) return;
  const size_t proto = static_cast<size_t>(p.proto);
  ++s.c.packets[proto];
  s.c.bytes[proto] += p.wire_len;
  bool syn_only = false;
  if (p.proto == l4_proto::tcp && !p.later_fragment) {
    const uint8_t f = p.tcp_flags;
    syn_only = (f & (tcp_flag::syn | tcp_flag::ack)) == tcp_flag::syn;
    s.c.syn += syn_only;
    s.c.synack += (f & (tcp_flag::syn | tcp_flag::ack)) == (tcp_flag::syn | tcp_flag::ack);
    s.c.ack += (f & (tcp_flag::syn | tcp_flag::ack)) == tcp_flag::ack;
    s.c.rst += (f & tcp_flag::rst) != 0;
    s.c.fin += (f & tcp_flag::fin) != 0;
  }
  if (p.ip_version == 0) return;
  const endpoint src{p.src, 0};
  const uint64_t h = src.hash_with(src_hash);
  ++s.hist[h & (histogram_buckets - 1)];
  ++window_hist_[h & (histogram_buckets - 1)];
  s.sources.add(src, h);
  const endpoint pre{p.src.prefix(p.ip_version == 4 ? prefix_v4_ : prefix_v6_), 0};
  const uint64_t ph = pre.hash();
  s.prefixes.add(pre, ph);
  if (syn_only) {
    s.syn_sources.add(src, h);
    s.syn_prefixes.add(pre, ph);
  }
  if (p.proto == l4_proto::udp) s.udp_sources.add(src, h);
  if (p.proto == l4_proto::icmp || p.proto == l4_proto::icmp6) s.icmp_sources.add(src, h);
  const endpoint dst{p.dst, p.dst_port};
  s.destinations.add(dst, dst.hash_with(dst_hash));
}

void feature_extractor::add_app_step(const app_step& a) {
  app_step& mine = ring_[cur_].app;
  for (size_t k = 0; k < app_signal_count; ++k) {
    mine.counts[k] += a.counts[k];
    for (size_t i = 0; i < a.keys[k].size(); ++i) {
      const auto& slot = a.keys[k].slot(i);
      mine.keys[k].add(slot.key, slot.hash, slot.count);
    }
  }
}

void feature_extractor::compute_entropy(window_features* out) const {
  // Entropy of the bucket histogram, normalised by log2 of the occupied buckets: uniform traffic over any
  // number of sources gives 1, a single source 0. Hash collisions merge sources, which matters only when
  // the distinct count nears the bucket count.
  double n = 0, sum_clogc = 0;
  size_t occupied = 0;
  for (uint32_t c : window_hist_) {
    if (c == 0) continue;
    ++occupied;
    const double dc = c;
    n += dc;
    sum_clogc += dc * std::log2(dc);
  }
  if (occupied <= 1 || n <= 0) {
    out->src_entropy_norm = 0;
  } else {
    const double h = std::log2(n) - sum_clogc / n;
    const double norm = h / std::log2(static_cast<double>(occupied));
    out->src_entropy_norm = norm < 0 ? 0 : norm > 1 ? 1 : norm;
  }
  const double buckets = histogram_buckets;
  const double empty = buckets - static_cast<double>(occupied);
  out->distinct_sources = empty > 0 ? -buckets * std::log(empty / buckets) : buckets * std::log(buckets);
}

void feature_extractor::close_step(int64_t end_us, window_features* out) {
  out->end_us = end_us;
  out->window_s = window_s_;
  out->sum = step_counters{};
  // The window is the current step and the steps_ - 1 before it, i.e. the whole ring.
  const space_saving<endpoint, 32>* src[64];
  const space_saving<endpoint, 32>* pre[64];
  const space_saving<endpoint, 32>* ssrc[64];
  const space_saving<endpoint, 32>* spre[64];
  const space_saving<endpoint, 32>* csrc[64];
  const space_saving<endpoint, 32>* cpre[64];
  const space_saving<endpoint, 32>* stsrc[64];
  const space_saving<endpoint, 32>* stpre[64];
  const space_saving<endpoint, 32>* usrc[64];
  const space_saving<endpoint, 32>* isrc[64];
  const space_saving<endpoint, 32>* rsrc[64];
  const space_saving<endpoint, 32>* fsrc[64];
  const space_saving<endpoint, 16>* dst[64];
  const size_t n = ring_.size() < 64 ? ring_.size() : 64;
  for (size_t i = 0; i < n; ++i) {
    step_slot& s = ring_[i];
    for (size_t k = 0; k < app_signal_count; ++k) s.c.app[k] = s.app.counts[k];
    out->sum.add(s.c);
    src[i] = &s.sources;
    pre[i] = &s.prefixes;
    ssrc[i] = &s.syn_sources;
    spre[i] = &s.syn_prefixes;
    csrc[i] = &s.completed_sources;
    cpre[i] = &s.completed_prefixes;
    stsrc[i] = &s.stalled_sources;
    stpre[i] = &s.stalled_prefixes;
    usrc[i] = &s.udp_sources;
    isrc[i] = &s.icmp_sources;
    rsrc[i] = &s.reflector_sources;
    fsrc[i] = &s.fragment_sources;
    dst[i] = &s.destinations;
  }
  out->inbound_packets = 0;
  for (uint64_t c : out->sum.packets) out->inbound_packets += c;
  out->n_sources = merge_top(src, n, &scratch_, &out->top_sources);
  out->n_prefixes = merge_top(pre, n, &scratch_, &out->top_prefixes);
  out->n_syn_sources = merge_top(ssrc, n, &scratch_, &out->top_syn_sources);
  out->n_syn_prefixes = merge_top(spre, n, &scratch_, &out->top_syn_prefixes);
  out->n_destinations = merge_top(dst, n, &scratch_, &out->top_destinations);
  out->n_completed_sources = merge_top(csrc, n, &scratch_, &out->top_completed_sources);
  out->n_completed_prefixes = merge_top(cpre, n, &scratch_, &out->top_completed_prefixes);
  out->n_stalled_sources = merge_top(stsrc, n, &scratch_, &out->top_stalled_sources);
  out->n_stalled_prefixes = merge_top(stpre, n, &scratch_, &out->top_stalled_prefixes);
  out->n_udp_sources = merge_top(usrc, n, &scratch_, &out->top_udp_sources);
  out->n_icmp_sources = merge_top(isrc, n, &scratch_, &out->top_icmp_sources);
  out->n_reflector_sources = merge_top(rsrc, n, &scratch_, &out->top_reflector_sources);
  out->n_fragment_sources = merge_top(fsrc, n, &scratch_, &out->top_fragment_sources);
  // Half-open evidence needs each SYN sender's completed handshakes from above: summed per step, where a
  // summary either holds the address or bounds every address it dropped by its smallest count.
  out->syn_sources_completed.fill(0);
  for (size_t t = 0; t < out->n_syn_sources; ++t) {
    const counted_key<endpoint>& e = out->top_syn_sources[t];
    for (size_t i = 0; i < n; ++i) out->syn_sources_completed[t] += csrc[i]->upper_bound(e.key, e.hash);
  }
  for (size_t k = 0; k < app_signal_count; ++k) {
    const space_saving<app_key, 32>* parts[64];
    for (size_t i = 0; i < n; ++i) parts[i] = &ring_[i].app.keys[k];
    out->n_app_keys[k] = merge_top(parts, n, &app_scratch_, &out->top_app_keys[k]);
  }
  compute_entropy(out);

  // Start the next step in the oldest slot, taking its counts out of the window histogram.
  cur_ = (cur_ + 1) % ring_.size();
  step_slot& next = ring_[cur_];
  for (size_t b = 0; b < histogram_buckets; ++b) window_hist_[b] -= next.hist[b];
  std::fill(next.hist.begin(), next.hist.end(), 0);
  next.c = step_counters{};
  next.sources.clear();
  next.prefixes.clear();
  next.syn_sources.clear();
  next.syn_prefixes.clear();
  next.completed_sources.clear();
  next.completed_prefixes.clear();
  next.stalled_sources.clear();
  next.stalled_prefixes.clear();
  next.udp_sources.clear();
  next.icmp_sources.clear();
  next.reflector_sources.clear();
  next.fragment_sources.clear();
  next.destinations.clear();
  next.app.clear();
  stalled_scratch_.clear();
  next.c.stalled += flows_.sweep(end_us, ring_.size(), &stalled_scratch_);
  for (const ip_address& client : stalled_scratch_) {
    count_client(client, &next.stalled_sources, &next.stalled_prefixes);
  }
}

}  // namespace rampart::monitor
