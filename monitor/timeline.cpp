#include "monitor/timeline.hpp"

#include <algorithm>
#include <chrono>

namespace rampart::monitor {
namespace {

int64_t system_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct anchor {
  int64_t wall = system_us();
  int64_t monotonic = steady_us();
};

const anchor& process_anchor() {
  static const anchor a;  // the first caller's moment, for the whole process
  return a;
}

}  // namespace

live_timeline::live_timeline() : wall_(system_us), monotonic_(steady_us) {
  anchor_wall_ = process_anchor().wall;
  anchor_monotonic_ = process_anchor().monotonic;
  resync();
  last_ = ceiling_;
}

live_timeline::live_timeline(clock_fn wall, clock_fn monotonic) : wall_(wall), monotonic_(monotonic) {
  anchor_wall_ = wall_();
  anchor_monotonic_ = monotonic_();
  resync();
  last_ = ceiling_;
}

void live_timeline::resync() {
  ceiling_ = now();
  offset_ = ceiling_ - wall_();
}

int64_t live_timeline::packet_time(int64_t wall_us) {
  last_ = std::clamp(wall_us + offset_, last_, std::max(last_, ceiling_));
  return last_;
}

}  // namespace rampart::monitor
