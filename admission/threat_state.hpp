// The threat level in force: follows the monitor's level upward at once and downward only after a hold and a
// cool-down, so levels do not flap; an operator's override replaces the monitor while it is set.
// Rules (docs/policy.md): a monitor level above the level in force takes effect immediately. The level is
// lowered when the monitor has stayed below it for cool_down_ms without a break and the level has been in force
// for at least hold_ms; it then drops to the highest monitor level seen during that cool-down. Clearing an
// override puts the monitor's latest level in force.
// Time is a parameter (milliseconds on any monotonic clock), so the rules are testable without sleeping.
// Thread-safety: one thread drives it (observe / tick / set_override / set_timing); level() may be read from
// any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "config/policy.hpp"

namespace rampart::admission {

using config::threat_level;

struct level_change {
  threat_level from = threat_level::green;
  threat_level to = threat_level::green;
  int64_t at_ms = 0;
  enum class cause { monitor, cool_down, override_set, override_cleared } why = cause::monitor;
};
const char* cause_name(level_change::cause c);

class threat_state {
 public:
  threat_state(int64_t hold_ms, int64_t cool_down_ms, int64_t now_ms);

  // The monitor reports LEVEL at NOW_MS. Returns the change of the level in force, if any.
  std::optional<level_change> observe(threat_level level, int64_t now_ms);
  // Re-evaluates the cool-down with the monitor's latest level (call periodically).
  std::optional<level_change> tick(int64_t now_ms);
  // Sets (a level) or clears (nullopt) the operator override.
  std::optional<level_change> set_override(std::optional<threat_level> level, int64_t now_ms);
  // New hold / cool-down times (a policy reload); they apply from the next evaluation.
  void set_timing(int64_t hold_ms, int64_t cool_down_ms);

  threat_level level() const { return level_.load(std::memory_order_relaxed); }
  threat_level monitor_level() const { return monitor_; }
  std::optional<threat_level> override_level() const { return override_; }

 private:
  std::optional<level_change> change_to(threat_level to, int64_t now_ms, level_change::cause why);

  int64_t hold_ms_;
  int64_t cool_down_ms_;
  std::atomic<threat_level> level_{threat_level::green};
  threat_level monitor_ = threat_level::green;
  std::optional<threat_level> override_;
  int64_t entered_at_ms_;                  // when the level in force was entered
  std::optional<int64_t> cooling_since_ms_;  // since when the monitor has been below the level in force
  threat_level cooling_max_ = threat_level::green;  // highest monitor level during the cool-down
};

}  // namespace rampart::admission
