// Shared by the monitor tests: run a pcap through capture + monitor and look at the events.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "monitor/capture.hpp"
#include "monitor/monitor.hpp"

namespace rampart::monitor::testing {

struct analysis {
  std::vector<event> events;
  monitor_counters counters;
  std::array<closest_approach, detector_count> closest{};  // how near each detector came to alerting
  bool ok = false;
  std::string error;
};

inline analysis analyse_pcap(const std::string& path, const monitor_config& cfg = monitor_config{}) {
  analysis a;
  std::unique_ptr<capture> cap = capture::open_offline(path, "", &a.error);
  if (!cap) return a;
  monitor m(cfg);
  callback_sink sink([&](const event& e) { a.events.push_back(e); });
  a.ok = cap->run(m, sink);
  if (!a.ok) a.error = cap->error();
  a.counters = m.snapshot();
  for (size_t d = 0; d < detector_count; ++d) a.closest[d] = m.detectors().closest(static_cast<detector_id>(d));
  return a;
}

// An alert with the time of the event that carried it.
struct timed_alert : alert_event {
  int64_t ts_us = 0;
};

inline std::vector<timed_alert> alerts_of(const analysis& a, detector_id d) {
  std::vector<timed_alert> out;
  for (const event& e : a.events) {
    if (e.type != event_type::alert || e.alert.detector != d) continue;
    timed_alert t;
    static_cast<alert_event&>(t) = e.alert;
    t.ts_us = e.ts_us;
    out.push_back(std::move(t));
  }
  return out;
}

// "start,update,...,end" for the alerts given.
inline std::string phases(const std::vector<timed_alert>& alerts) {
  std::string s;
  for (const alert_event& a : alerts) s += std::string(s.empty() ? "" : ",") + alert_phase_name(a.phase);
  return s;
}

inline std::vector<std::string> detectors_fired(const analysis& a) {
  std::vector<std::string> out;
  for (size_t d = 0; d < detector_count; ++d) {
    if (!alerts_of(a, static_cast<detector_id>(d)).empty()) out.push_back(detector_name(static_cast<detector_id>(d)));
  }
  return out;
}

}  // namespace rampart::monitor::testing
