#include "monitor/monitor.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace rampart::monitor {

threat_level threat_level_for(const std::array<int, detector_count>& active_severity) {
  int n = 0, best = 4;
  for (int severity : active_severity) {
    if (severity <= 0) continue;
    ++n;
    best = std::min(best, severity);
  }
  if (n == 0) return threat_level::green;
  if (best <= 1) return threat_level::red;
  if (best == 2) return n >= 3 ? threat_level::red : threat_level::orange;
  return n >= 3 ? threat_level::orange : threat_level::yellow;
}

threat_level threat_level_for(const std::array<bool, detector_count>& active, const monitor_config& cfg) {
  std::array<int, detector_count> severity{};
  for (size_t i = 0; i < detector_count; ++i) severity[i] = active[i] ? cfg.detectors[i].severity : 0;
  return threat_level_for(severity);
}

namespace {
const monitor_config& checked(const monitor_config& cfg) {
  const std::string err = cfg.validate();
  if (!err.empty()) throw std::invalid_argument("monitor config: " + err);
  return cfg;
}
}  // namespace

monitor::monitor(const monitor_config& cfg)
    : cfg_(checked(cfg)),
      step_us_(static_cast<int64_t>(std::llround(cfg.step_s * 1e6))),
      stats_us_(static_cast<int64_t>(std::llround(cfg.stats_interval_s * 1e6))),
      features_(cfg_),
      detectors_(cfg_),
      window_(std::make_unique<window_features>()) {}

void monitor::start_clock(int64_t ts_us) {
  started_ = true;
  // Steps are aligned to multiples of step_us since the epoch, so two monitors fed the same capture agree.
  int64_t start = ts_us - ((ts_us % step_us_) + step_us_) % step_us_;
  next_close_us_ = start + step_us_;
  next_stats_us_ = start + stats_us_;
  counters_.first_ts_us = ts_us;
}

void monitor::on_packet(const packet_summary& p) {
  ++counters_.packets;
  counters_.bytes += p.wire_len;
  counters_.max_packet_len = std::max<uint64_t>(counters_.max_packet_len, p.wire_len);
  if (!started_) start_clock(p.ts_us);
  counters_.last_ts_us = std::max(counters_.last_ts_us, p.ts_us);
  quiet_steps_ = 0;
  if (p.malformed != malformed_kind::none) {
    ++counters_.malformed;
    ++counters_.malformed_by_kind[static_cast<size_t>(p.malformed)];
    return;
  }
  const size_t proto = static_cast<size_t>(p.proto);
  ++counters_.packets_by_proto[proto];
  counters_.bytes_by_proto[proto] += p.wire_len;
  counters_.ipv4 += p.ip_version == 4;
  counters_.ipv6 += p.ip_version == 6;
  counters_.fragments += p.fragment;
  if (p.proto == l4_proto::tcp && !p.later_fragment) {
    const uint8_t f = p.tcp_flags & (tcp_flag::syn | tcp_flag::ack);
    counters_.tcp_syn += f == tcp_flag::syn;
    counters_.tcp_synack += f == (tcp_flag::syn | tcp_flag::ack);
    counters_.tcp_rst += (p.tcp_flags & tcp_flag::rst) != 0;
    counters_.tcp_fin += (p.tcp_flags & tcp_flag::fin) != 0;
  }
  features_.on_packet(p);
}

void monitor::on_app_signal(app_signal kind, std::string_view key, uint64_t count) {
  const size_t k = static_cast<size_t>(kind);
  if (k >= app_signal_count || count == 0) return;
  const app_key ak = app_key::from(key);
  const uint64_t h = ak.hash();
  std::lock_guard<std::mutex> lock(app_mu_);
  pending_app_.counts[k] += count;
  pending_app_.keys[k].add(ak, h, count);
}

void monitor::on_capture_stats(const capture_stats& s) {
  counters_.capture_packets = s.packets;
  counters_.kernel_drops = s.kernel_drops;
  counters_.interface_drops = s.interface_drops;
  counters_.capture_errors = s.errors;
}

bool monitor::any_active() const {
  for (size_t i = 0; i < detector_count; ++i) {
    if (detectors_.active(static_cast<detector_id>(i))) return true;
  }
  return false;
}

void monitor::close_step(int64_t end_us, std::vector<event>* out) {
  {
    std::lock_guard<std::mutex> lock(app_mu_);
    std::swap(pending_app_, taken_app_);
  }
  bool app_quiet = true;
  for (size_t k = 0; k < app_signal_count; ++k) {
    counters_.app_signals[k] += taken_app_.counts[k];
    app_quiet = app_quiet && taken_app_.counts[k] == 0;
  }
  if (!app_quiet) quiet_steps_ = 0;
  features_.add_app_step(taken_app_);
  taken_app_.clear();

  features_.close_step(end_us, window_.get());
  const size_t first_alert = out->size();
  detectors_.evaluate(*window_, out);

  std::array<bool, detector_count> active{};
  std::array<int, detector_count> severity{};
  for (size_t i = 0; i < detector_count; ++i) {
    active[i] = detectors_.active(static_cast<detector_id>(i));
    severity[i] = detectors_.active_severity(static_cast<detector_id>(i));
    counters_.alerts_started[i] = detectors_.started(static_cast<detector_id>(i));
  }
  const threat_level now = threat_level_for(severity);
  for (size_t i = first_alert; i < out->size(); ++i) (*out)[i].alert.level = now;
  if (now != current_) {
    event e;
    e.type = event_type::threat_level;
    e.ts_us = end_us;
    e.threat.from = current_;
    e.threat.to = now;
    for (size_t i = 0; i < detector_count; ++i) {
      if (active[i]) e.threat.active.push_back(static_cast<detector_id>(i));
    }
    out->push_back(std::move(e));
    current_ = now;
    level_.store(now, std::memory_order_relaxed);
  }
  counters_.active = active;
  counters_.level = now;
  counters_.flow_evictions = features_.flows().evictions();
  counters_.half_open_expired = features_.flows().expired_half_open();
  if (stats_us_ > 0 && end_us >= next_stats_us_) {
    event e;
    e.type = event_type::stats;
    e.ts_us = end_us;
    e.stats = counters_;
    out->push_back(std::move(e));
    while (next_stats_us_ <= end_us) next_stats_us_ += stats_us_;
  }
  std::lock_guard<std::mutex> lock(snap_mu_);
  published_ = counters_;
}

std::vector<event> monitor::advance(int64_t now_us) {
  std::vector<event> out;
  if (!started_) {
    start_clock(now_us);
    return out;
  }
  const size_t idle_limit = features_.steps_per_window() + 1;
  while (now_us >= next_close_us_) {
    if (quiet_steps_ > idle_limit && !any_active() && now_us - next_close_us_ > step_us_) {
      // Nothing left in any window and nothing active: skip the idle stretch instead of stepping through it.
      const int64_t skip = (now_us - next_close_us_) / step_us_;
      next_close_us_ += skip * step_us_;
      if (stats_us_ > 0 && next_stats_us_ < next_close_us_) {
        next_stats_us_ += (next_close_us_ - next_stats_us_) / stats_us_ * stats_us_;
      }
    }
    close_step(next_close_us_, &out);
    ++quiet_steps_;
    next_close_us_ += step_us_;
  }
  return out;
}

std::vector<event> monitor::finish() {
  std::vector<event> out;
  if (!started_) return out;
  int max_clear = 0;
  for (const detector_config& d : cfg_.detectors) max_clear = std::max(max_clear, d.clear_after);
  const size_t limit = features_.steps_per_window() + static_cast<size_t>(max_clear) + 2;
  for (size_t i = 0; i < limit && (any_active() || quiet_steps_ <= features_.steps_per_window()); ++i) {
    close_step(next_close_us_, &out);
    ++quiet_steps_;
    next_close_us_ += step_us_;
  }
  event e;
  e.type = event_type::stats;
  e.ts_us = next_close_us_ - step_us_;
  e.stats = counters_;
  out.push_back(std::move(e));
  return out;
}

monitor_counters monitor::snapshot() const {
  std::lock_guard<std::mutex> lock(snap_mu_);
  return published_;
}

}  // namespace rampart::monitor
