#include "admission/threat_state.hpp"

namespace rampart::admission {

const char* cause_name(level_change::cause c) {
  switch (c) {
    case level_change::cause::monitor: return "monitor";
    case level_change::cause::cool_down: return "cool_down";
    case level_change::cause::override_set: return "override_set";
    case level_change::cause::override_cleared: return "override_cleared";
  }
  return "monitor";
}

threat_state::threat_state(int64_t hold_ms, int64_t cool_down_ms, int64_t now_ms)
    : hold_ms_(hold_ms), cool_down_ms_(cool_down_ms), entered_at_ms_(now_ms) {}

void threat_state::set_timing(int64_t hold_ms, int64_t cool_down_ms) {
  hold_ms_ = hold_ms;
  cool_down_ms_ = cool_down_ms;
}

std::optional<level_change> threat_state::change_to(threat_level to, int64_t now_ms, level_change::cause why) {
  cooling_since_ms_.reset();
  threat_level from = level();
  if (to == from) return std::nullopt;
  level_.store(to, std::memory_order_relaxed);
  entered_at_ms_ = now_ms;
  return level_change{from, to, now_ms, why};
}

std::optional<level_change> threat_state::observe(threat_level l, int64_t now_ms) {
  monitor_ = l;
  if (override_) return std::nullopt;
  if (l > level()) return change_to(l, now_ms, level_change::cause::monitor);
  if (l == level()) {
    cooling_since_ms_.reset();  // the cool-down needs an unbroken stretch below
    return std::nullopt;
  }
  if (!cooling_since_ms_) {
    cooling_since_ms_ = now_ms;
    cooling_max_ = l;
  } else if (l > cooling_max_) {
    cooling_max_ = l;
  }
  return tick(now_ms);
}

std::optional<level_change> threat_state::tick(int64_t now_ms) {
  if (override_ || !cooling_since_ms_) return std::nullopt;
  if (now_ms - *cooling_since_ms_ < cool_down_ms_ || now_ms - entered_at_ms_ < hold_ms_) return std::nullopt;
  auto change = change_to(cooling_max_, now_ms, level_change::cause::cool_down);
  // Still above the monitor: a new cool-down starts now, at the monitor's current level.
  if (monitor_ < level()) {
    cooling_since_ms_ = now_ms;
    cooling_max_ = monitor_;
  }
  return change;
}

std::optional<level_change> threat_state::set_override(std::optional<threat_level> l, int64_t now_ms) {
  if (l) {
    override_ = l;
    return change_to(*l, now_ms, level_change::cause::override_set);
  }
  if (!override_) return std::nullopt;
  override_.reset();
  return change_to(monitor_, now_ms, level_change::cause::override_cleared);
}

}  // namespace rampart::admission
