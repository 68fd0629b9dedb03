// The detectors: each reads one metric from a window's features and decides, with a floor, a learned EWMA
// baseline, hysteresis (raise after N evaluations over, clear after M under) and de-duplication, when an
// incident starts, how it is updated, and when it ends.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "monitor/event.hpp"
#include "monitor/features.hpp"
#include "monitor/monitor_config.hpp"

namespace rampart::monitor {

// One evaluation of a detector's metric.
struct metric_reading {
  metric_reading(const char* n = "", double v = 0, bool e = true) : name(n), value(v), eligible(e) {}
  const char* name = "";
  double value = 0;
  bool eligible = true;  // false: the window is too thin for a verdict (counts as under, learns nothing)
  // A relative rule's reading (conn_flood's and request_flood's outliers) brings its own threshold for this
  // window, the rate it was compared with (the key's own learned rate or the population's, whichever set the
  // bar), and the keys over their bars (busiest first; the alert's src when an address). It names no culprit.
  double threshold = -1;  // < 0: an absolute reading, judged against max(floor, factor x baseline)
  double reference = 0;
  std::vector<std::string> outliers;
};

// The metric each detector watches, from a window's features; exposed for tests and documentation.
metric_reading read_metric(detector_id d, const detector_config& cfg, const window_features& w);

// The relative rules compare a key with the population's busiest ordinary keys: among a window's top list
// (busiest first) of N keys, the rate of the fourth busiest (the last, when there are three), so with four or
// more keys up to three can each stand out (two of three). Below three keys there is no population: -1.
constexpr size_t outlier_min_keys = 3;
constexpr size_t outlier_reference_rank = 3;
template <typename Key>
double population_reference(const window_features& w, const std::array<counted_key<Key>, top_n>& list, size_t n) {
  if (n < outlier_min_keys) return -1;
  return w.rate(list[std::min(n - 1, outlier_reference_rank)].lower_bound());
}

// conn_flood's relative rule (stateless): the address completing the most handshakes a second in W against
// max(outlier_floor, outlier_factor x the population's reference). Not eligible when the rule is off or there
// is no population.
metric_reading read_session_outlier(const detector_config& cfg, const window_features& w);

// Learned rates per application key (request_flood's own-rate rule), bounded: past CAPACITY keys, the one
// seen longest ago makes room, so churning through keys costs no memory and only forgets old keys. A key's
// first WARMUP_STEPS windows teach its rate as their mean; from then on it moves as an EWMA.
class key_rates {
 public:
  key_rates(size_t capacity, uint32_t warmup_steps) : capacity_(capacity), warmup_steps_(warmup_steps) {}
  struct learned {
    double rate = -1;  // -1: unknown
    bool warm = false;  // seen in at least warmup_steps windows
  };
  learned get(const app_key& key, uint64_t hash) const;
  // Teaches KEY's rate one window's RATE (ALPHA: the EWMA's weight once warm).
  void learn(const app_key& key, uint64_t hash, double rate, double alpha, int64_t now_us);
  // Marks KEY seen at NOW_US without teaching it anything (a key over its bar).
  void touch(const app_key& key, uint64_t hash, int64_t now_us);
  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct entry {
    app_key key;
    uint64_t hash = 0;
    double rate = 0;
    uint32_t steps = 0;
    int64_t seen_us = 0;
  };
  size_t capacity_;
  uint32_t warmup_steps_;
  std::vector<entry> entries_;  // unordered; a linear scan over at most capacity_ keys, a few times a step
};

// What detector D counts per source while its metric reads M (evidence_kind::none: it names no culprit).
evidence_kind evidence_of(detector_id d, const metric_reading& m);

// The culprits of D's alert in W, strongest first: the addresses (or, where the metric is per prefix, the
// prefixes) whose own evidence in the window (evidence_of) is at least 2 events, at least the detector's
// culprit_min per second, and at least cfg.culprit_min_share of the window's total of that evidence
// (heavy_hitter: at least its min_share). handshake_stall names prefixes only when no single address
// qualifies. Never an address merely seen: a spoofed or spread-out flood, where each address carries a few
// events, names none.
std::vector<culprit> find_culprits(detector_id d, const monitor_config& cfg, const metric_reading& m,
                                   const window_features& w);

// How close a detector came to alerting: the evaluation whose metric stood highest against its threshold then
// (for entropy_shift, its distance from the baseline against the floor). RATIO < 0: never evaluated on an
// eligible window.
struct closest_approach {
  const char* metric = "";
  double value = 0;
  double threshold = 0;
  double ratio = -1;
  int64_t at_us = 0;  // the end of that window
};

class detector_bank {
 public:
  explicit detector_bank(const monitor_config& cfg);

  // Evaluates every enabled detector on W (one step) and appends alert events to OUT. Events carry
  // everything except `level`, which the caller sets after recomputing the threat level.
  void evaluate(const window_features& w, std::vector<event>* out);

  bool active(detector_id d) const { return state_[static_cast<size_t>(d)].active; }
  // The severity D's alert gives the threat level while active: its configured severity; 0 while inactive, or
  // while only a relative rule holds it up (one client busier than the rest is not an attack on the service:
  // such an alert, at outlier_severity, is for the operators and changes nothing for anyone else).
  int active_severity(detector_id d) const {
    const state& s = state_[static_cast<size_t>(d)];
    return s.active && !s.relative ? s.severity : 0;
  }
  const key_rates& request_rates() const { return request_rates_; }
  double baseline(detector_id d) const { return state_[static_cast<size_t>(d)].baseline; }
  uint64_t started(detector_id d) const { return state_[static_cast<size_t>(d)].starts; }
  const closest_approach& closest(detector_id d) const { return closest_[static_cast<size_t>(d)]; }

 private:
  struct state {
    bool active = false;
    bool baseline_set = false;
    double baseline = 0;
    int over = 0;           // consecutive evaluations over the threshold
    int under = 0;          // consecutive evaluations under, while active
    int since_update = 0;
    uint32_t update_seq = 0;
    uint64_t incident = 0;
    int64_t started_us = 0;
    double peak = 0;
    uint64_t starts = 0;
    int severity = 0;
    bool relative = false;       // held up by a relative rule's reading (the last one over)
    const char* peak_metric = "";  // the metric `peak` is in
  };

  // request_flood's relative rule over one application signal's top keys (requests or generated tokens): each
  // key against max(FLOOR, outlier_factor x its own learned rate once warm, and for a source address,
  // outlier_factor x the population's). A tenant is judged on its own rate only (its first windows teach it);
  // an address also against the others. Keys under their bars learn their rates into RATES. Not eligible when
  // FLOOR is 0.
  metric_reading key_outliers(const detector_config& dc, const window_features& w, app_signal sig, double floor,
                              key_rates* rates);
  metric_reading relative(detector_id d, const detector_config& dc, const window_features& w);

  double threshold(detector_id d, const state& s) const;
  void learn(detector_id d, state* s, double value);
  void fill(detector_id d, const window_features& w, const metric_reading& m, const state& s,
            alert_phase phase, double threshold, bool over, alert_event* a) const;

  monitor_config cfg_;
  double step_s_;
  std::array<state, detector_count> state_{};
  std::array<closest_approach, detector_count> closest_{};
  uint64_t next_incident_ = 1;
  key_rates request_rates_;
  key_rates token_rates_;
};

}  // namespace rampart::monitor
