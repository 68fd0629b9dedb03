// The defence flow inside rampartd: the packet monitor on its own capture thread (live on [monitor].interface,
// or driven by a wall-clock ticker when live capture is not permitted, so application signals still count),
// fanning its events out to the operators' alert stream, the eve.json file, the log and the threat level the
// load-shedding policy reads. Never blocked by inference and never blocks it. A live capture that fails (the
// interface went away, a read error) cannot die silently: a watchdog logs it, raises a `monitor_down` alert and
// the rampart:monitor_capture_up metric, keeps the detectors stepping on application signals, and reopens the
// capture with back-off (1 s, doubling, at most 30 s), ending the alert when it is back.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "config/server_config.hpp"
#include "monitor/event.hpp"
#include "monitor/features.hpp"
#include "monitor/timeline.hpp"

namespace rampart::monitor {
class monitor;
class capture;
class eve_file_sink;
}  // namespace rampart::monitor

namespace rampart::net {
class alert_publisher;
class server_metrics;
}  // namespace rampart::net

namespace rampart::actors {

class monitor_service {
 public:
  monitor_service(const config::server_config& config, net::server_metrics* metrics);
  ~monitor_service();

  // Starts capture (or the ticker) and the alert stream. False with *error when the configuration cannot be
  // served (alert endpoint in use, eve.json not writable). A live capture without permission is not an error:
  // it is logged and the monitor runs on application signals alone.
  bool start(std::string* error);
  void stop();

  // Thread-safe: a signal from the front end (registrations, auth failures, requests, handshakes).
  void signal(monitor::app_signal kind, std::string_view key, uint64_t count = 1);
  // Publishes an event that does not come from the detectors (e.g. a refused policy reload). Thread-safe.
  void publish_notice(const std::string& topic, const nlohmann::json& body);
  // Reopens eve.json (log rotation, on SIGHUP).
  void reopen_logs();

  // Called on the capture thread for every event after the built-in outputs (the server hands threat levels
  // and alert sources to the load-shedding policy here). Set before start().
  void set_listener(std::function<void(const monitor::event&)> listener) { listener_ = std::move(listener); }

  monitor::threat_level level() const;
  bool live() const { return live_; }
  // Whether the live capture is running now (false while the watchdog waits to reopen it).
  bool capture_up() const { return capture_up_.load(); }
  std::string alerts_endpoint() const;

 private:
  class fanout;
  void tick_loop();
  void watch_loop();
  // An event to the alert stream and the dashboard's feed.
  void publish(const std::string& topic, const std::string& json);
  // The monitor_down alert on the alert stream, its start (DOWN) or end.
  void publish_capture_state(bool down, const std::string& error);

  config::server_config config_;
  net::server_metrics* metrics_;
  std::unique_ptr<monitor::monitor> monitor_;
  std::unique_ptr<monitor::capture> capture_;
  std::unique_ptr<net::alert_publisher> publisher_;
  std::unique_ptr<monitor::eve_file_sink> eve_;
  std::unique_ptr<fanout> sink_;
  std::function<void(const monitor::event&)> listener_;
  monitor::live_timeline timeline_;  // the detectors' time: monotonic, shared with the capture (monitor/timeline.hpp)
  std::thread ticker_;
  std::thread watcher_;
  std::atomic<bool> capture_up_{false};
  std::atomic<bool> stop_{false};
  bool live_ = false;
  bool started_ = false;
};

}  // namespace rampart::actors
