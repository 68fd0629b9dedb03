// The live monitor's time: the wall clock at the moment the process first asked, advanced from then on by the
// monotonic clock only, so that an NTP step or an operator's `date -s` can neither freeze the detectors' steps
// (a step back) nor close hours of empty steps at once (a step forward). Packets arrive stamped by the kernel's
// wall clock; they are moved onto this timeline by the gap between the two clocks, measured once per read batch,
// and kept in order. Events are shown with wall-clock timestamps again (to_wall) when they are written.
#pragma once

#include <cstdint>

namespace rampart::monitor {

class live_timeline {
 public:
  using clock_fn = int64_t (*)();  // microseconds

  // The process's timeline: every live_timeline made this way shares one anchor, so a capture reopened later
  // continues the same time.
  live_timeline();
  // A timeline of its own over the given clocks, anchored now (for tests).
  live_timeline(clock_fn wall, clock_fn monotonic);

  // Now on the timeline.
  int64_t now() const { return anchor_wall_ + (monotonic_() - anchor_monotonic_); }
  // Measures the gap between the wall clock and the timeline; packet_time() uses it until the next call.
  void resync();
  // A packet stamped WALL_US by the wall clock, on the timeline: never before the previous packet, never after
  // the last resync() (a packet cannot be read before it arrived).
  int64_t packet_time(int64_t wall_us);
  // A timeline stamp as the wall clock shows it now, for display.
  int64_t to_wall(int64_t t) const { return t + (wall_() - now()); }

 private:
  clock_fn wall_, monotonic_;
  int64_t anchor_wall_ = 0, anchor_monotonic_ = 0;
  int64_t offset_ = 0;   // timeline - wall, at the last resync()
  int64_t ceiling_ = 0;  // the timeline at the last resync()
  int64_t last_ = 0;     // the last packet's time
};

}  // namespace rampart::monitor
