#include "monitor/detectors.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace rampart::monitor {

namespace {

size_t idx(app_signal s) { return static_cast<size_t>(s); }

// Whether the top key is a source worth naming on its own (the alert's src_ip): it was seen at least twice and
// carried at least 1% of the TOTAL packets or signals it was counted among. A spread-out flood (spoofed sources,
// each seen once or twice) names none, so an unrelated client whose one SYN fell in the window is never named.
bool source_worth_naming(uint64_t top_count, uint64_t total) { return top_count >= 2 && top_count * 100 >= total; }

// Which top list names the culprits of each detector's metric.
enum class culprits { sources, prefixes, syn_sources, syn_prefixes, completed_sources, app_keys };

culprits culprits_of(detector_id d, const metric_reading& m) {
  const std::string name = m.name;
  switch (d) {
    case detector_id::syn_flood:
      return name == "half_open_syn_pps" ? culprits::syn_sources : culprits::sources;
    case detector_id::conn_flood:
      if (name == "outlier_sessions_ps") return culprits::completed_sources;
      return name == "conn_per_prefix_ps" ? culprits::syn_prefixes : culprits::syn_sources;
    case detector_id::heavy_hitter:
      return name == "top_prefix_pps" ? culprits::prefixes : culprits::sources;
    case detector_id::registration_flood:
    case detector_id::auth_failure_spike:
    case detector_id::request_flood:
    case detector_id::slow_readers:
      return culprits::app_keys;
    default:
      return culprits::sources;
  }
}

bool is_token_reading(const metric_reading& m) { return std::string(m.name) == "outlier_tokens_ps"; }

app_signal app_signal_of(detector_id d, const metric_reading& m) {
  if (d == detector_id::request_flood && is_token_reading(m)) return app_signal::generated_tokens;
  switch (d) {
    case detector_id::registration_flood: return app_signal::registration;
    case detector_id::auth_failure_spike: return app_signal::auth_failure;
    case detector_id::slow_readers: return app_signal::slow_reader;
    default: return app_signal::request;
  }
}

double lower_rate(const window_features& w, const std::array<counted_key<endpoint>, top_n>& top, size_t n) {
  return n == 0 ? 0 : w.rate(top[0].lower_bound());
}

std::string key_text(const endpoint& e, bool prefix, const monitor_config& cfg) {
  std::string key = e.addr.to_string();
  if (prefix) key += "/" + std::to_string(e.addr.family == 4 ? cfg.prefix_v4 : cfg.prefix_v6);
  return key;
}

// Collects the culprits of one alert: each candidate is kept when its evidence passes the three bars.
class culprit_filter {
 public:
  culprit_filter(const detector_config& dc, const monitor_config& cfg, const window_features& w,
                 uint64_t total)
      : total_(total) {
    const double per_window = std::ceil(dc.culprit_min * w.window_s - 1e-9);
    min_count_ = std::max<uint64_t>(2, per_window > 0 ? static_cast<uint64_t>(per_window) : 0);
    min_share_ = cfg.culprit_min_share;
  }
  void raise_min_share(double share) { min_share_ = std::max(min_share_, share); }

  // Keeps KEY when EVIDENCE passes; returns whether it did.
  bool consider(std::string key, uint64_t evidence, std::vector<culprit>* out) const {
    if (total_ == 0 || evidence < min_count_) return false;
    const double share = std::min(1.0, static_cast<double>(evidence) / static_cast<double>(total_));
    if (share < min_share_) return false;
    out->push_back(culprit{std::move(key), evidence, share});
    return true;
  }
  // Considers the first N entries of a top list, keyed as addresses or as prefixes; returns how many it kept.
  size_t consider_all(const std::array<counted_key<endpoint>, top_n>& list, size_t n, bool prefix,
                      const monitor_config& cfg, std::vector<culprit>* out) const {
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
      kept += consider(key_text(list[i].key, prefix, cfg), list[i].lower_bound(), out);
    }
    return kept;
  }

 private:
  uint64_t total_;
  uint64_t min_count_ = 2;
  double min_share_ = 0;
};

}  // namespace

evidence_kind evidence_of(detector_id d, const metric_reading& m) {
  const std::string name = m.name;
  switch (d) {
    case detector_id::syn_flood:
      return name == "half_open_syn_pps" ? evidence_kind::half_open_syns : evidence_kind::none;
    case detector_id::udp_flood: return evidence_kind::udp_packets;
    case detector_id::icmp_flood: return evidence_kind::icmp_packets;
    case detector_id::conn_flood: return evidence_kind::completed_handshakes;
    case detector_id::handshake_stall: return evidence_kind::stalled_handshakes;
    case detector_id::heavy_hitter: return evidence_kind::packets;
    case detector_id::entropy_shift: return evidence_kind::none;
    case detector_id::reflection:
      return name == "fragment_pps" ? evidence_kind::fragments : evidence_kind::reflected_udp;
    case detector_id::registration_flood:
    case detector_id::auth_failure_spike:
    case detector_id::request_flood:
    case detector_id::slow_readers:
      return evidence_kind::app_signals;
    case detector_id::count_: break;
  }
  return evidence_kind::none;
}

std::vector<culprit> find_culprits(detector_id d, const monitor_config& cfg, const metric_reading& m,
                                   const window_features& w) {
  std::vector<culprit> out;
  // A client far busier than the rest is worth an operator's look, not proof of an attack (a NAT, a batch
  // job): a relative rule's reading names no culprit, so nobody is deny-listed on it.
  if (m.threshold >= 0) return out;
  const detector_config& dc = cfg.detector(d);
  const step_counters& c = w.sum;
  const std::string name = m.name;
  switch (evidence_of(d, m)) {
    case evidence_kind::none: return out;
    case evidence_kind::half_open_syns: {
      // The window's half-open SYNs, as the metric counts them; per address, its SYNs less (an upper bound
      // of) the handshakes it completed, so a client whose SYNs were answered and acknowledged carries none.
      const uint64_t done = std::min(c.handshakes_completed, c.handshakes_started);
      const culprit_filter f(dc, cfg, w, c.handshakes_started - done);
      for (size_t i = 0; i < w.n_syn_sources; ++i) {
        const uint64_t syns = w.top_syn_sources[i].lower_bound(), completed = w.syn_sources_completed[i];
        const uint64_t half_open = syns > completed ? syns - completed : 0;
        f.consider(key_text(w.top_syn_sources[i].key, false, cfg), half_open, &out);
      }
      break;
    }
    case evidence_kind::udp_packets: {
      const culprit_filter f(dc, cfg, w, c.packets[static_cast<size_t>(l4_proto::udp)]);
      f.consider_all(w.top_udp_sources, w.n_udp_sources, false, cfg, &out);
      break;
    }
    case evidence_kind::reflected_udp: {
      const culprit_filter f(dc, cfg, w, c.reflected);
      f.consider_all(w.top_reflector_sources, w.n_reflector_sources, false, cfg, &out);
      break;
    }
    case evidence_kind::fragments: {
      const culprit_filter f(dc, cfg, w, c.fragments);
      f.consider_all(w.top_fragment_sources, w.n_fragment_sources, false, cfg, &out);
      break;
    }
    case evidence_kind::icmp_packets: {
      const culprit_filter f(dc, cfg, w,
                             c.packets[static_cast<size_t>(l4_proto::icmp)] +
                                 c.packets[static_cast<size_t>(l4_proto::icmp6)]);
      f.consider_all(w.top_icmp_sources, w.n_icmp_sources, false, cfg, &out);
      break;
    }
    case evidence_kind::packets: {
      culprit_filter f(dc, cfg, w, w.inbound_packets);
      f.raise_min_share(dc.min_share);  // a heavy hitter carries at least min_share of the packets
      if (name == "top_prefix_pps") f.consider_all(w.top_prefixes, w.n_prefixes, true, cfg, &out);
      else f.consider_all(w.top_sources, w.n_sources, false, cfg, &out);
      break;
    }
    case evidence_kind::completed_handshakes: {
      const culprit_filter f(dc, cfg, w, c.handshakes_completed);
      if (name == "conn_per_prefix_ps") {
        f.consider_all(w.top_completed_prefixes, w.n_completed_prefixes, true, cfg, &out);
      } else {
        f.consider_all(w.top_completed_sources, w.n_completed_sources, false, cfg, &out);
      }
      break;
    }
    case evidence_kind::stalled_handshakes: {
      const culprit_filter f(dc, cfg, w, c.stalled);
      if (f.consider_all(w.top_stalled_sources, w.n_stalled_sources, false, cfg, &out) == 0) {
        f.consider_all(w.top_stalled_prefixes, w.n_stalled_prefixes, true, cfg, &out);
      }
      break;
    }
    case evidence_kind::app_signals: {
      // Keys that are addresses only: request keys may name a tenant, which is no source to deny.
      const size_t k = idx(app_signal_of(d, m));
      const culprit_filter f(dc, cfg, w, c.app[k]);
      for (size_t i = 0; i < w.n_app_keys[k]; ++i) {
        const auto& e = w.top_app_keys[k][i];
        ip_address a;
        if (!ip_address::parse(std::string(e.key.view()), &a)) continue;
        f.consider(a.to_string(), e.lower_bound(), &out);
      }
      break;
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const culprit& x, const culprit& y) { return x.evidence > y.evidence; });
  return out;
}

metric_reading read_metric(detector_id d, const detector_config& cfg, const window_features& w) {
  const step_counters& c = w.sum;
  metric_reading m;
  switch (d) {
    case detector_id::syn_flood: {
      const uint64_t done = std::min(c.handshakes_completed, c.handshakes_started);
      const double half_open = w.rate(c.handshakes_started - done);
      const double unsolicited = w.rate(c.unsolicited_synack);
      if (unsolicited > half_open) m = {"unsolicited_synack_pps", unsolicited, true};
      else m = {"half_open_syn_pps", half_open, true};
      return m;
    }
    case detector_id::udp_flood:
      return {"udp_pps", w.rate(c.packets[static_cast<size_t>(l4_proto::udp)]), true};
    case detector_id::reflection: {
      const double reflected = w.rate(c.reflected), fragments = w.rate(c.fragments);
      if (fragments > reflected) return {"fragment_pps", fragments, true};
      return {"reflected_udp_pps", reflected, true};
    }
    case detector_id::icmp_flood:
      return {"icmp_pps",
              w.rate(c.packets[static_cast<size_t>(l4_proto::icmp)] + c.packets[static_cast<size_t>(l4_proto::icmp6)]),
              true};
    case detector_id::conn_flood: {
      const double per_source = lower_rate(w, w.top_syn_sources, w.n_syn_sources);
      const double per_prefix = lower_rate(w, w.top_syn_prefixes, w.n_syn_prefixes);
      // Name the prefix only when it gathers clearly more than its busiest source (several sources).
      if (per_prefix > 2 * per_source) return {"conn_per_prefix_ps", per_prefix, true};
      return {"conn_per_source_ps", per_source, true};
    }
    case detector_id::handshake_stall: {
      const double packets = w.rate(c.stalled);
      const uint64_t acc = c.app[idx(app_signal::zmtp_accepted)], ok = c.app[idx(app_signal::zmtp_succeeded)];
      const double app = w.rate(acc > ok ? acc - ok : 0);
      if (app > packets) return {"zmtp_unfinished_ps", app, true};
      return {"stalled_handshakes_ps", packets, true};
    }
    case detector_id::heavy_hitter: {
      const double total = static_cast<double>(w.inbound_packets);
      const double src = lower_rate(w, w.top_sources, w.n_sources);
      const double pre = lower_rate(w, w.top_prefixes, w.n_prefixes);
      const double src_share = total > 0 ? src * w.window_s / total : 0;
      const double pre_share = total > 0 ? pre * w.window_s / total : 0;
      if (src_share >= cfg.min_share) return {"top_source_pps", src, true};
      if (pre_share >= cfg.min_share) return {"top_prefix_pps", pre, true};
      return {"top_source_pps", src, src_share >= cfg.min_share};
    }
    case detector_id::entropy_shift: {
      const bool eligible = w.rate(w.inbound_packets) >= cfg.min_pps && w.distinct_sources >= cfg.min_sources;
      return {"src_entropy_norm", w.src_entropy_norm, eligible};
    }
    case detector_id::registration_flood:
      return {"registrations_ps", w.rate(c.app[idx(app_signal::registration)]), true};
    case detector_id::auth_failure_spike:
      return {"auth_failures_ps", w.rate(c.app[idx(app_signal::auth_failure)]), true};
    case detector_id::request_flood: {
      const size_t k = idx(app_signal::request);
      const double top = w.n_app_keys[k] == 0 ? 0 : w.rate(w.top_app_keys[k][0].lower_bound());
      return {"requests_per_key_ps", top, true};
    }
    case detector_id::slow_readers:
      return {"slow_readers_ps", w.rate(c.app[idx(app_signal::slow_reader)]), true};
    case detector_id::count_: break;
  }
  return m;
}

metric_reading read_session_outlier(const detector_config& cfg, const window_features& w) {
  metric_reading m;
  m.name = "outlier_sessions_ps";
  const double ref = population_reference(w, w.top_completed_sources, w.n_completed_sources);
  m.eligible = cfg.outlier_floor > 0 && ref >= 0;
  if (!m.eligible) return m;
  m.value = w.rate(w.top_completed_sources[0].lower_bound());
  m.reference = ref;
  m.threshold = std::max(cfg.outlier_floor, cfg.outlier_factor * ref);
  for (size_t i = 0; i < w.n_completed_sources; ++i) {
    if (w.rate(w.top_completed_sources[i].lower_bound()) >= m.threshold) {
      m.outliers.push_back(w.top_completed_sources[i].key.addr.to_string());
    }
  }
  return m;
}

key_rates::learned key_rates::get(const app_key& key, uint64_t hash) const {
  for (const entry& e : entries_) {
    if (e.hash == hash && e.key == key) return {e.rate, e.steps >= warmup_steps_};
  }
  return {};
}

void key_rates::touch(const app_key& key, uint64_t hash, int64_t now_us) {
  for (entry& e : entries_) {
    if (e.hash == hash && e.key == key) {
      e.seen_us = now_us;
      return;
    }
  }
}

void key_rates::learn(const app_key& key, uint64_t hash, double rate, double alpha, int64_t now_us) {
  for (entry& e : entries_) {
    if (e.hash == hash && e.key == key) {
      ++e.steps;
      e.rate += (e.steps <= warmup_steps_ ? 1.0 / e.steps : alpha) * (rate - e.rate);
      e.seen_us = now_us;
      return;
    }
  }
  if (capacity_ == 0) return;
  const entry fresh{key, hash, rate, 1, now_us};
  if (entries_.size() < capacity_) {
    entries_.push_back(fresh);
    return;
  }
  auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                 [](const entry& a, const entry& b) { return a.seen_us < b.seen_us; });
  *oldest = fresh;
}

metric_reading detector_bank::key_outliers(const detector_config& dc, const window_features& w, app_signal sig,
                                           double floor, key_rates* rates) {
  metric_reading m{sig == app_signal::generated_tokens ? "outlier_tokens_ps" : "outlier_requests_ps", 0, false};
  if (floor <= 0) return m;
  const size_t k = idx(sig);
  const auto& list = w.top_app_keys[k];
  const size_t n = w.n_app_keys[k];
  const double population = population_reference(w, list, n);
  const double alpha = 1.0 - std::exp(-step_s_ / dc.baseline_tau_s);
  double best_ratio = -1;
  for (size_t i = 0; i < n; ++i) {
    const double rate = w.rate(list[i].lower_bound());
    const key_rates::learned own = rates->get(list[i].key, list[i].hash);
    ip_address address;
    const bool is_address = ip_address::parse(std::string(list[i].key.view()), &address);
    const double reference = std::max(own.warm ? own.rate : -1.0, is_address ? population : -1.0);
    if (reference < 0) {
      // Nothing to judge it by yet (a tenant, or a lone address, warming up): its windows teach its rate, but
      // never more than the floor, so a key that floods from its first request cannot learn the flood as its
      // normal (its bar is then at most outlier_factor x the floor).
      rates->learn(list[i].key, list[i].hash, std::min(rate, floor), alpha, w.end_us);
      continue;
    }
    const double bar = std::max(floor, dc.outlier_factor * reference);
    if (rate >= bar) {
      m.outliers.emplace_back(list[i].key.view());
      rates->touch(list[i].key, list[i].hash, w.end_us);  // an active outlier is not the one evicted for room
    } else {
      rates->learn(list[i].key, list[i].hash, rate, alpha, w.end_us);
    }
    if (rate / bar > best_ratio) {
      best_ratio = rate / bar;
      m.eligible = true;
      m.value = rate;
      m.threshold = bar;
      m.reference = reference;
    }
  }
  return m;
}

metric_reading detector_bank::relative(detector_id d, const detector_config& dc, const window_features& w) {
  if (d == detector_id::conn_flood) return read_session_outlier(dc, w);
  if (d != detector_id::request_flood) {
    metric_reading none;
    none.eligible = false;
    return none;
  }
  metric_reading req = key_outliers(dc, w, app_signal::request, dc.outlier_floor, &request_rates_);
  metric_reading tok = key_outliers(dc, w, app_signal::generated_tokens, dc.token_outlier_floor, &token_rates_);
  if (!tok.eligible) return req;
  if (!req.eligible) return tok;
  return tok.value / tok.threshold > req.value / req.threshold ? tok : req;
}

namespace {
// A key's first ten seconds of windows teach its rate before its own rate judges it.
constexpr double key_warmup_s = 10;
uint32_t warmup_steps(const monitor_config& cfg) {
  return static_cast<uint32_t>(std::ceil(key_warmup_s / cfg.step_s - 1e-9));
}
}  // namespace

detector_bank::detector_bank(const monitor_config& cfg)
    : cfg_(cfg), step_s_(cfg.step_s), request_rates_(4096, warmup_steps(cfg)), token_rates_(4096, warmup_steps(cfg)) {
  for (size_t i = 0; i < detector_count; ++i) {
    const detector_config& dc = cfg_.detectors[i];
    state_[i].baseline = dc.initial_baseline >= 0 ? dc.initial_baseline : 0;
    state_[i].baseline_set = dc.initial_baseline >= 0;
  }
}

double detector_bank::threshold(detector_id d, const state& s) const {
  const detector_config& dc = cfg_.detector(d);
  if (d == detector_id::entropy_shift) return dc.floor;  // a distance from the baseline
  return std::max(dc.floor, dc.factor * s.baseline);
}

void detector_bank::learn(detector_id d, state* s, double value) {
  const double alpha = 1.0 - std::exp(-step_s_ / cfg_.detector(d).baseline_tau_s);
  s->baseline += alpha * (value - s->baseline);
}

void detector_bank::evaluate(const window_features& w, std::vector<event>* out) {
  for (size_t i = 0; i < detector_count; ++i) {
    const detector_id d = static_cast<detector_id>(i);
    const detector_config& dc = cfg_.detectors[i];
    state& s = state_[i];
    if (!dc.enabled) continue;
    metric_reading m = read_metric(d, dc, w);
    bool over = false;
    double thr = threshold(d, s);
    const double learn_value = m.value;  // the baseline learns the absolute metric only
    const bool learn_ok = m.eligible;
    if (m.eligible) {
      if (d == detector_id::entropy_shift) {
        if (!s.baseline_set) {
          // No prior: the first eligible window becomes the baseline, judged from the next one on.
          s.baseline = m.value;
          s.baseline_set = true;
        }
        over = std::fabs(m.value - s.baseline) >= dc.floor;
        thr = m.value >= s.baseline ? s.baseline + dc.floor : s.baseline - dc.floor;
      } else {
        over = m.value >= thr;
      }
      const double ratio = d == detector_id::entropy_shift ? (dc.floor > 0 ? std::fabs(m.value - s.baseline) / dc.floor : 0.0)
                           : thr > 0                      ? m.value / thr
                                                          : 0.0;
      if (ratio > closest_[i].ratio) closest_[i] = {m.name, m.value, thr, ratio, w.end_us};
    }
    metric_reading rel = relative(d, dc, w);
    if (rel.eligible && rel.threshold > 0) {
      // The relative rule stands in for the absolute one when it is over and the absolute one is not (or
      // neither is and it came closer): an alert held up by the absolute rule keeps that rule's severity.
      const bool rel_over = rel.value >= rel.threshold;
      const double rel_ratio = rel.value / rel.threshold;
      const double abs_ratio = m.eligible && thr > 0 ? m.value / thr : 0;
      if (rel_ratio > closest_[i].ratio) closest_[i] = {rel.name, rel.value, rel.threshold, rel_ratio, w.end_us};
      if ((rel_over && !over) || (!rel_over && !over && rel_ratio > abs_ratio)) {
        m = std::move(rel);
        thr = m.threshold;
        over = rel_over;
      }
    }
    const bool relative_reading = m.threshold >= 0;
    const int severity = relative_reading ? dc.outlier_severity : dc.severity;
    if (!s.active) {
      if (!over) {
        s.over = 0;
        if (learn_ok) learn(d, &s, learn_value);
        continue;
      }
      if (++s.over < dc.raise_after) continue;
      s.active = true;
      s.severity = severity;
      s.relative = relative_reading;
      s.peak_metric = m.name;
      s.under = 0;
      s.since_update = 0;
      s.update_seq = 0;
      s.incident = next_incident_++;
      s.started_us = w.end_us;
      s.peak = m.value;
      ++s.starts;
      event e;
      e.type = event_type::alert;
      e.ts_us = w.end_us;
      fill(d, w, m, s, alert_phase::start, thr, true, &e.alert);
      out->push_back(std::move(e));
      continue;
    }
    if (std::string(s.peak_metric) != m.name) {  // another rule holds the alert now: a peak in its own unit
      s.peak_metric = m.name;
      s.peak = m.value;
    }
    s.peak = std::max(s.peak, m.value);
    s.under = over ? 0 : s.under + 1;
    if (over) {  // whichever rule holds the alert up now sets its severity and whether it counts for the level
      s.severity = severity;
      s.relative = relative_reading;
    }
    if (s.under >= dc.clear_after) {
      s.active = false;
      s.over = 0;
      ++s.update_seq;
      event e;
      e.type = event_type::alert;
      e.ts_us = w.end_us;
      fill(d, w, m, s, alert_phase::end, thr, false, &e.alert);
      out->push_back(std::move(e));
      continue;
    }
    if (++s.since_update >= dc.update_every) {
      s.since_update = 0;
      ++s.update_seq;
      event e;
      e.type = event_type::alert;
      e.ts_us = w.end_us;
      fill(d, w, m, s, alert_phase::update, thr, over, &e.alert);
      out->push_back(std::move(e));
    }
  }
}

void detector_bank::fill(detector_id d, const window_features& w, const metric_reading& m, const state& s,
                         alert_phase phase, double thr, bool over, alert_event* a) const {
  const detector_config& dc = cfg_.detector(d);
  a->detector = d;
  a->phase = phase;
  a->incident = s.incident;
  a->update_seq = s.update_seq;
  a->severity = s.severity > 0 ? s.severity : dc.severity;
  a->metric = m.name;
  a->value = m.value;
  a->threshold = thr;
  a->baseline = m.threshold >= 0 ? m.reference : s.baseline;
  a->peak = s.peak;
  a->window_s = w.window_s;
  a->started_us = s.started_us;
  a->distinct_sources = w.distinct_sources;
  a->src_entropy_norm = w.src_entropy_norm;
  if (w.n_destinations > 0) {
    a->dst = w.top_destinations[0].key.addr;
    a->dst_port = w.top_destinations[0].key.port;
  }
  switch (d) {
    case detector_id::udp_flood: a->proto = l4_proto::udp; break;
    case detector_id::reflection:
      if (a->metric == "reflected_udp_pps") a->proto = l4_proto::udp;
      break;
    case detector_id::icmp_flood:
      a->proto = w.sum.packets[static_cast<size_t>(l4_proto::icmp6)] > w.sum.packets[static_cast<size_t>(l4_proto::icmp)]
                     ? l4_proto::icmp6 : l4_proto::icmp;
      break;
    case detector_id::heavy_hitter:
    case detector_id::entropy_shift: {
      size_t best = 0;
      for (size_t p = 1; p < l4_proto_count; ++p) {
        if (w.sum.packets[p] > w.sum.packets[best]) best = p;
      }
      a->proto = static_cast<l4_proto>(best);
      break;
    }
    default: a->proto = l4_proto::tcp; break;
  }
  a->evidence = evidence_of(d, m);
  // Culprits only from a window whose metric is over its threshold: once the attack fades (an end, or an update
  // while the alert waits to clear), whoever is left on top is ordinary traffic.
  if (over) a->culprits = find_culprits(d, cfg_, m, w);
  else a->culprits.clear();
  a->top_sources.clear();
  const culprits which = culprits_of(d, m);
  if (which == culprits::app_keys) {
    const size_t k = idx(app_signal_of(d, m));
    for (size_t i = 0; i < w.n_app_keys[k]; ++i) {
      const auto& e = w.top_app_keys[k][i];
      a->top_sources.push_back({std::string(e.key.view()), e.lower_bound(), w.rate(e.lower_bound())});
    }
    if (m.threshold >= 0) {  // a relative reading names its outlier, when that is an address
      if (!m.outliers.empty()) ip_address::parse(m.outliers.front(), &a->src);
    } else if (source_worth_naming(w.n_app_keys[k] > 0 ? w.top_app_keys[k][0].lower_bound() : 0, w.sum.app[k])) {
      ip_address::parse(a->top_sources[0].key, &a->src);
    }
    return;
  }
  const std::array<counted_key<endpoint>, top_n>* list = &w.top_sources;
  size_t n = w.n_sources;
  bool prefix = false;
  if (which == culprits::prefixes) { list = &w.top_prefixes; n = w.n_prefixes; prefix = true; }
  if (which == culprits::syn_sources) { list = &w.top_syn_sources; n = w.n_syn_sources; }
  if (which == culprits::syn_prefixes) { list = &w.top_syn_prefixes; n = w.n_syn_prefixes; prefix = true; }
  uint64_t total = w.inbound_packets;
  if (which == culprits::completed_sources) {
    list = &w.top_completed_sources;
    n = w.n_completed_sources;
    total = w.sum.handshakes_completed;
  }
  if (d == detector_id::reflection) {  // its own senders: reflected traffic reaches ports outside the service's
    const bool fragments = std::string(m.name) == "fragment_pps";
    list = fragments ? &w.top_fragment_sources : &w.top_reflector_sources;
    n = fragments ? w.n_fragment_sources : w.n_reflector_sources;
    total = fragments ? w.sum.fragments : w.sum.reflected;
  }
  for (size_t i = 0; i < n; ++i) {
    const auto& e = (*list)[i];
    std::string key = e.key.addr.to_string();
    if (prefix) {
      key += "/" + std::to_string(e.key.addr.family == 4 ? cfg_.prefix_v4 : cfg_.prefix_v6);
    }
    a->top_sources.push_back({std::move(key), e.lower_bound(), w.rate(e.lower_bound())});
  }
  const bool syn = which == culprits::syn_sources || which == culprits::syn_prefixes;
  if (m.threshold >= 0) {
    if (!m.outliers.empty()) ip_address::parse(m.outliers.front(), &a->src);
  } else if (n > 0 && source_worth_naming((*list)[0].lower_bound(), syn ? w.sum.syn : total)) {
    a->src = (*list)[0].key.addr;
  }
}

}  // namespace rampart::monitor
