#include "actors/monitor_service.hpp"

#include <chrono>

#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include "monitor/capture.hpp"
#include "monitor/event_sink.hpp"
#include "monitor/monitor.hpp"
#include "net/alert_publisher.hpp"
#include "net/metrics.hpp"

namespace rampart::actors {

namespace {
uint16_t port_of(const std::string& endpoint) {
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) return 0;
  try {
    int p = std::stoi(endpoint.substr(colon + 1));
    return p > 0 && p < 65536 ? static_cast<uint16_t>(p) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}
}  // namespace

// Runs on the capture (or ticker) thread, in event order.
class monitor_service::fanout : public monitor::event_sink {
 public:
  fanout(monitor_service* owner) : owner_(owner) {}
  void write(const monitor::event& timeline_event) override {
    // The monitor runs on the monotonic timeline; readers get wall-clock timestamps.
    monitor::event e = timeline_event;
    e.ts_us = owner_->timeline_.to_wall(e.ts_us);
    if (e.type == monitor::event_type::alert) e.alert.started_us = owner_->timeline_.to_wall(e.alert.started_us);
    if (e.type == monitor::event_type::stats) {
      e.stats.first_ts_us = owner_->timeline_.to_wall(e.stats.first_ts_us);
      e.stats.last_ts_us = owner_->timeline_.to_wall(e.stats.last_ts_us);
    }
    const std::string json = monitor::to_eve_json(e, owner_->config_.monitor.sensor_name);
    std::string topic;
    switch (e.type) {
      case monitor::event_type::alert: {
        topic = "alert." + std::to_string(e.alert.severity);
        const char* name = monitor::detector_name(e.alert.detector);
        if (e.alert.phase == monitor::alert_phase::start) {
          spdlog::warn("alert: {} started (value {:.4g}, threshold {:.4g}), threat level {}", name, e.alert.value,
                       e.alert.threshold, monitor::threat_level_name(e.alert.level));
        } else if (e.alert.phase == monitor::alert_phase::end) {
          spdlog::info("alert: {} ended", name);
        }
        if (owner_->metrics_ && e.alert.phase == monitor::alert_phase::start) {
          owner_->metrics_->alerts(name).Increment();
        }
        break;
      }
      case monitor::event_type::threat_level:
        topic = "threat_level";
        spdlog::warn("threat level {} -> {}", monitor::threat_level_name(e.threat.from),
                     monitor::threat_level_name(e.threat.to));
        if (owner_->metrics_) owner_->metrics_->threat_level->Set(static_cast<double>(e.threat.to));
        break;
      case monitor::event_type::stats:
        topic = "stats";
        if (owner_->metrics_) {
          owner_->metrics_->capture_packets->Set(static_cast<double>(e.stats.packets));
          owner_->metrics_->capture_kernel_drops->Set(static_cast<double>(e.stats.kernel_drops));
        }
        break;
    }
    owner_->publish(topic, json);
    if (owner_->eve_) owner_->eve_->write(e);
    if (owner_->listener_) owner_->listener_(e);
  }

 private:
  monitor_service* owner_;
};

monitor_service::monitor_service(const config::server_config& config, net::server_metrics* metrics)
    : config_(config), metrics_(metrics) {
  auto& m = config_.monitor;
  if (m.service_ports.empty()) {
    if (uint16_t p = port_of(config_.frontend.endpoint)) m.service_ports.push_back(p);
    if (config_.http.enabled) {
      if (uint16_t p = port_of(config_.http.listen)) m.service_ports.push_back(p);
    }
  }
}

monitor_service::~monitor_service() { stop(); }

bool monitor_service::start(std::string* error) {
  const std::string invalid = config_.monitor.validate();
  if (!invalid.empty()) {
    *error = "[monitor]: " + invalid;
    return false;
  }
  monitor_ = std::make_unique<monitor::monitor>(config_.monitor);
  if (!config_.alerts.publish.empty()) {
    publisher_ = std::make_unique<net::alert_publisher>();
    if (!publisher_->start(config_.alerts.publish, error)) return false;
  }
  if (!config_.monitor.eve_log.empty()) {
    eve_ = monitor::eve_file_sink::open(config_.monitor.eve_log, config_.monitor.sensor_name, error);
    if (!eve_) return false;
  }
  sink_ = std::make_unique<fanout>(this);
  std::string capture_error;
  monitor::capture::open_status status;
  capture_ = monitor::capture::open_live(config_.monitor, &capture_error, &status);
  if (capture_) {
    live_ = true;
    capture_->start(*monitor_, *sink_);
    capture_up_ = true;
    if (metrics_) metrics_->monitor_capture_up->Set(1);
    spdlog::info("monitor: capturing on {} with filter \"{}\"", config_.monitor.interface,
                 monitor::effective_bpf_filter(config_.monitor));
    watcher_ = std::thread([this] { watch_loop(); });
  } else if (status == monitor::capture::open_status::permission_denied) {
    spdlog::warn("monitor: no live capture ({}); detecting from application signals only", capture_error);
    ticker_ = std::thread([this] { tick_loop(); });
  } else {
    // The interface may come later (a link still being set up): down until then, retried with back-off.
    spdlog::error("monitor: cannot open the capture on {} ({}); detecting from application signals, retrying",
                  config_.monitor.interface, capture_error);
    live_ = true;
    if (metrics_) metrics_->monitor_capture_up->Set(0);
    publish_capture_state(true, capture_error);
    watcher_ = std::thread([this] { watch_loop(); });
  }
  started_ = true;
  return true;
}

void monitor_service::tick_loop() {
  const auto step = std::chrono::duration<double>(config_.monitor.step_s);
  while (!stop_.load()) {
    for (auto& e : monitor_->advance(timeline_.now())) sink_->write(e);
    std::this_thread::sleep_for(step / 2);
  }
}

void monitor_service::watch_loop() {
  using clock_type = std::chrono::steady_clock;
  const auto step = std::chrono::duration_cast<clock_type::duration>(
      std::chrono::duration<double>(config_.monitor.step_s) / 2);
  auto backoff = std::chrono::seconds(1);
  auto next_try = clock_type::now();
  auto last_tick = clock_type::now();
  while (!stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (capture_ && capture_->running()) continue;  // the capture thread drives the monitor
    if (capture_up_.exchange(false)) {
      const std::string error = capture_->error().empty() ? "the capture stopped" : capture_->error();
      spdlog::error("monitor: the capture on {} failed ({}); detecting from application signals, reopening it",
                    config_.monitor.interface, error);
      if (metrics_) metrics_->monitor_capture_up->Set(0);
      publish_capture_state(true, error);
      backoff = std::chrono::seconds(1);
      next_try = clock_type::now() + backoff;
    }
    // Meanwhile this thread steps the detectors, so application signals still raise alerts.
    const auto now = clock_type::now();
    if (now - last_tick >= step) {
      last_tick = now;
      for (auto& e : monitor_->advance(timeline_.now())) sink_->write(e);
    }
    if (now < next_try) continue;
    std::string error;
    monitor::capture::open_status status = monitor::capture::open_status::ok;
    auto reopened = monitor::capture::open_live(config_.monitor, &error, &status);
    if (!reopened && status == monitor::capture::open_status::permission_denied) {
      // Privileges were dropped after start ([server].user): no retry can succeed; say so once and stop trying.
      spdlog::error("monitor: cannot reopen the capture on {} ({}); the process no longer has the privilege to "
                    "capture, so the capture stays down until rampartd restarts",
                    config_.monitor.interface, error);
      next_try = clock_type::time_point::max();
      continue;
    }
    if (!reopened) {
      backoff = std::min<std::chrono::seconds>(backoff * 2, std::chrono::seconds(30));
      next_try = now + backoff;
      spdlog::warn("monitor: cannot reopen the capture on {} ({}); next try in {} s", config_.monitor.interface,
                   error, backoff.count());
      continue;
    }
    if (capture_) capture_->stop();  // joins the finished thread
    capture_ = std::move(reopened);
    capture_->start(*monitor_, *sink_);
    capture_up_ = true;
    if (metrics_) {
      metrics_->monitor_capture_up->Set(1);
      metrics_->monitor_capture_reopens->Increment();
    }
    spdlog::info("monitor: the capture on {} is back", config_.monitor.interface);
    publish_capture_state(false, "");
  }
}

void monitor_service::publish(const std::string& topic, const std::string& json) {
  // The dashboard's stream shows what an operator acts on: alerts, levels and policy actions, not statistics.
  if (metrics_ && topic != "stats") metrics_->feed().push(topic, json);
  if (publisher_) publisher_->publish(topic, json);
}

void monitor_service::publish_capture_state(bool down, const std::string& error) {
  // Shaped like the detectors' alerts (docs/operations.md), so rampart-alerts and EVE readers show it as one.
  nlohmann::json body = {
      {"event_type", "alert"},
      {"timestamp", monitor::eve_timestamp(timeline_.to_wall(timeline_.now()))},
      {"alert", {{"severity", 1}, {"signature", "Rampart packet capture down"}, {"category", "Monitor"}}},
      {"rampart",
       {{"detector", "monitor_down"},
        {"phase", down ? "start" : "end"},
        {"interface", config_.monitor.interface},
        {"metric", "capture_up"},
        {"value", down ? 0 : 1},
        {"threat_level", monitor::threat_level_name(monitor_->level())}}}};
  if (down) body["rampart"]["error"] = error;
  publish("alert.1", body.dump());
}

void monitor_service::stop() {
  if (!started_) return;
  started_ = false;
  stop_ = true;
  if (watcher_.joinable()) watcher_.join();  // before the capture it may be replacing
  if (capture_) capture_->stop();
  if (ticker_.joinable()) ticker_.join();
  if (publisher_) publisher_->stop();
}

void monitor_service::signal(monitor::app_signal kind, std::string_view key, uint64_t count) {
  if (monitor_) monitor_->on_app_signal(kind, key, count);
}

void monitor_service::publish_notice(const std::string& topic, const nlohmann::json& body) {
  publish(topic, body.dump());
}

void monitor_service::reopen_logs() {
  if (!eve_) return;
  std::string error;
  if (!eve_->reopen(&error)) spdlog::error("monitor: cannot reopen {}: {}", config_.monitor.eve_log, error);
}

monitor::threat_level monitor_service::level() const {
  return monitor_ ? monitor_->level() : monitor::threat_level::green;
}

std::string monitor_service::alerts_endpoint() const {
  return publisher_ ? publisher_->bound_endpoint() : std::string();
}

}  // namespace rampart::actors
