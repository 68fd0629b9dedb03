// The operators' alert stream: a ZeroMQ PUB socket, owned by its own thread, that publishes monitor events.
// Each message is two frames: a topic and the event's EVE JSON. Topics: "alert.<severity>" (1 = highest, as in
// Suricata), "threat_level", "policy", "stats", and "heartbeat" once a second while nothing else is published
// ({"event_type": "heartbeat", "time_ms": ..., "published": N, "dropped": N}): a subscriber that receives one
// knows its subscription has reached the publisher, and a silent stream means a dead server, not a calm one.
// Subscribers filter by topic prefix.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace rampart::net {

class alert_publisher {
 public:
  alert_publisher() = default;
  ~alert_publisher();
  alert_publisher(const alert_publisher&) = delete;
  alert_publisher& operator=(const alert_publisher&) = delete;

  // Binds ENDPOINT and starts the thread. False with *error when binding fails.
  bool start(const std::string& endpoint, std::string* error);
  // Sends what is queued, then closes the socket. Idempotent.
  void stop();

  // Queues one event; never blocks. Thread-safe. When more than MAX_QUEUE events wait (a stuck thread), the
  // oldest are dropped and counted, so the monitor is never held up by the stream.
  void publish(std::string topic, std::string json);

  std::string bound_endpoint() const { return bound_; }
  uint64_t published() const { return published_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

  static constexpr size_t max_queue = 10000;
  static constexpr std::chrono::milliseconds heartbeat_interval{1000};

 private:
  void run();
  struct impl;
  std::shared_ptr<impl> impl_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::string, std::string>> queue_;
  bool stopping_ = false;
  bool started_ = false;
  std::string bound_;
  std::atomic<uint64_t> published_{0}, dropped_{0};
};

}  // namespace rampart::net
