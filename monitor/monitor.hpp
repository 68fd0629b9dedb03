// The packet monitor: packet summaries and application signals in, alert / threat-level / stats events out.
//
// Threading contract:
//  - on_packet, on_capture_stats, due, advance and finish are called from one thread (the capture thread,
//    or the caller of an offline analysis). on_packet allocates nothing and takes no lock.
//  - on_app_signal may be called from any thread at any time; it takes a short lock shared only with the
//    step boundary (never held across packet processing).
//  - snapshot() and level() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "monitor/detectors.hpp"
#include "monitor/event.hpp"
#include "monitor/features.hpp"
#include "monitor/monitor_config.hpp"
#include "monitor/packet.hpp"

namespace rampart::monitor {

// Capture-side counters, as the capture thread last read them.
struct capture_stats {
  uint64_t packets = 0;          // packets the capture callback delivered (ps_recv double counts on lo)
  uint64_t kernel_drops = 0;     // pcap_stats ps_drop
  uint64_t interface_drops = 0;  // pcap_stats ps_ifdrop
  uint64_t errors = 0;           // read errors (e.g. a truncated pcap file)
};

// Threat level from the severities of the active alerts, 0 for a detector not active (see threat_level for
// the mapping).
threat_level threat_level_for(const std::array<int, detector_count>& active_severity);
// The same, each active detector at its configured severity.
threat_level threat_level_for(const std::array<bool, detector_count>& active, const monitor_config& cfg);

class monitor {
 public:
  // CFG must satisfy cfg.validate() == ""; otherwise throws std::invalid_argument with that sentence.
  explicit monitor(const monitor_config& cfg);

  // Counts one parsed packet (malformed ones are counted by kind and go no further). Packets whose
  // timestamp lies past the current step still count into it until advance() is called; earlier ones
  // (clock steps backwards) count into the current step.
  void on_packet(const packet_summary& p);

  // Adds COUNT application signals of KIND for KEY (truncated to 63 octets). Thread-safe.
  void on_app_signal(app_signal kind, std::string_view key, uint64_t count = 1);

  void on_capture_stats(const capture_stats& s);

  // True when NOW_US has reached the end of the current step (advance would evaluate something).
  bool due(int64_t now_us) const { return started_ && now_us >= next_close_us_; }

  // Closes every step that ended at or before NOW_US, evaluating the detectors after each, and returns the
  // events in time order: alerts, then a threat_level event when the level changed, and a stats event when
  // its interval elapsed. The first call (or first packet) starts the clock. Long idle gaps are bounded:
  // once every window has emptied and every alert has ended, the clock jumps to NOW_US.
  std::vector<event> advance(int64_t now_us);

  // For offline analysis at end of input: advances until every window has emptied and every active alert
  // has ended (at most the longest window + clear_after steps), then emits a final stats event.
  std::vector<event> finish();

  monitor_counters snapshot() const;
  threat_level level() const { return level_.load(std::memory_order_relaxed); }
  const monitor_config& config() const { return cfg_; }
  // The last window evaluated; for tests and tools on the monitor's thread.
  const window_features& last_window() const { return *window_; }
  // The detectors' state (closest approach to alerting, say); for tests and tools on the monitor's thread.
  const detector_bank& detectors() const { return detectors_; }

 private:
  void start_clock(int64_t ts_us);
  void close_step(int64_t end_us, std::vector<event>* out);
  bool any_active() const;

  monitor_config cfg_;
  int64_t step_us_;
  int64_t stats_us_;
  feature_extractor features_;
  detector_bank detectors_;
  std::unique_ptr<window_features> window_;
  bool started_ = false;
  int64_t next_close_us_ = 0;
  int64_t next_stats_us_ = 0;
  size_t quiet_steps_ = 0;  // consecutive steps with no packets and no app signals
  monitor_counters counters_;  // owned by the monitor thread; published at each step
  threat_level current_ = threat_level::green;
  std::atomic<threat_level> level_{threat_level::green};

  mutable std::mutex app_mu_;  // guards pending_app_
  app_step pending_app_;
  app_step taken_app_;

  mutable std::mutex snap_mu_;  // guards published_
  monitor_counters published_;
};

}  // namespace rampart::monitor
