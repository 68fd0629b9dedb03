// The detectors: each reads one metric from a window's features and decides, with a floor, a learned EWMA
// baseline, hysteresis (raise after N evaluations over, clear after M under) and de-duplication, when an
// incident starts, how it is updated, and when it ends.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "monitor/event.hpp"
#include "monitor/features.hpp"
#include "monitor/monitor_config.hpp"

namespace rampart::monitor {

// One evaluation of a detector's metric.
struct metric_reading {
  const char* name = "";
  double value = 0;
  bool eligible = true;  // false: the window is too thin for a verdict (counts as under, learns nothing)
};

// The metric each detector watches, from a window's features; exposed for tests and documentation.
metric_reading read_metric(detector_id d, const detector_config& cfg, const window_features& w);

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
  };

  double threshold(detector_id d, const state& s) const;
  void learn(detector_id d, state* s, double value);
  void fill(detector_id d, const window_features& w, const metric_reading& m, const state& s,
            alert_phase phase, double threshold, bool over, alert_event* a) const;

  monitor_config cfg_;
  double step_s_;
  std::array<state, detector_count> state_{};
  std::array<closest_approach, detector_count> closest_{};
  uint64_t next_incident_ = 1;
};

}  // namespace rampart::monitor
