// The live monitor's timeline (monitor/timeline.hpp) on simulated clocks: a wall clock stepped back an hour or
// forward two keeps packet times within one read batch of the monotonic truth and in order, and a registration
// flood during a backward step is still detected within the detector's usual delay.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "monitor/monitor.hpp"
#include "monitor/timeline.hpp"

using namespace rampart::monitor;

namespace {

int64_t g_wall = 0, g_mono = 0;
int64_t fake_wall() { return g_wall; }
int64_t fake_mono() { return g_mono; }

constexpr int64_t kHour = int64_t{3600} * 1000000;

}  // namespace

TEST_CASE("a wall-clock step moves neither packet times nor the timeline", "[monitor][timeline]") {
  g_wall = int64_t{1700000000} * 1000000;
  g_mono = int64_t{5000} * 1000000;
  const int64_t wall0 = g_wall, mono0 = g_mono;
  live_timeline t(fake_wall, fake_mono);
  CHECK(t.now() == wall0);

  // 10 s of one packet per millisecond, read in batches every 10 ms; the wall clock steps back an hour at 3 s
  // and forward two hours at 6 s.
  std::vector<int64_t> stamped_wall, stamped_true;
  int64_t previous = 0, worst = 0;
  size_t read = 0;
  for (int ms = 1; ms <= 10000; ++ms) {
    g_mono += 1000;
    g_wall += 1000;
    if (ms == 3000) g_wall -= kHour;
    if (ms == 6000) g_wall += 2 * kHour;
    stamped_wall.push_back(g_wall);
    stamped_true.push_back(wall0 + (g_mono - mono0));
    if (ms % 10 != 0) continue;
    t.resync();
    for (; read < stamped_wall.size(); ++read) {
      const int64_t at = t.packet_time(stamped_wall[read]);
      CHECK(at >= previous);
      previous = at;
      worst = std::max(worst, std::abs(at - stamped_true[read]));
    }
  }
  CHECK(worst <= 10000);  // one batch
  CHECK(t.now() == wall0 + 10 * int64_t{1000000});
  // Shown as the wall clock shows it now (an hour ahead of the anchor, after the two steps).
  CHECK(t.to_wall(t.now()) == g_wall);
  CHECK(g_wall - t.now() == kHour);
}

TEST_CASE("detection keeps stepping through a backward wall-clock step", "[monitor][timeline]") {
  g_wall = int64_t{1700000000} * 1000000;
  g_mono = 0;
  live_timeline t(fake_wall, fake_mono);
  monitor m{monitor_config{}};
  constexpr int64_t step = 100000;  // the default step
  std::vector<event> all;
  m.advance(t.now());
  // 2 registrations/s for 20 s; the wall clock steps back an hour at 15 s; at 20 s a flood of 500/s for 3 s.
  for (int i = 0; i < 260; ++i) {
    if (i % 5 == 0) m.on_app_signal(app_signal::registration, "10.2.0." + std::to_string(i % 200));
    if (i >= 200 && i < 230) m.on_app_signal(app_signal::registration, "203.0.113.9", 50);
    g_mono += step;
    g_wall += step;
    if (i == 150) g_wall -= kHour;
    for (event& e : m.advance(t.now())) all.push_back(e);
  }
  int64_t started = 0;
  for (const event& e : all)
    if (e.type == event_type::alert && e.alert.detector == detector_id::registration_flood &&
        e.alert.phase == alert_phase::start)
      started = e.alert.started_us;
  REQUIRE(started != 0);
  const int64_t flood_at = int64_t{1700000000} * 1000000 + 200 * step;
  CHECK(started >= flood_at + step);
  CHECK(started <= flood_at + 6 * step);
  // The same alert as operators read it: wall-clock time, an hour earlier than the timeline after the step.
  CHECK(t.to_wall(started) == started - kHour);
}
