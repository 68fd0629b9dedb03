// The operators' recent events (alerts, threat-level changes, policy actions) kept for the web dashboard's live
// stream: a ring of the last `capacity` events, each numbered, that any number of readers follow at their own
// pace. Writers never block on readers: a reader that falls more than `capacity` events behind resumes from the
// oldest event still held (and is told how many it missed).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace rampart::net {

class event_feed {
 public:
  struct event {
    uint64_t id = 0;  // 1, 2, ... in the order pushed
    std::string topic;
    std::string json;
  };
  struct batch {
    std::vector<event> events;
    uint64_t missed = 0;  // events after AFTER that had already left the ring
  };

  static constexpr size_t default_capacity = 256;
  // An event larger than this is replaced by a note saying so (the monitor's events are a few KiB).
  static constexpr size_t max_event_bytes = 64 * 1024;

  explicit event_feed(size_t capacity = default_capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Thread-safe; wakes every waiting reader.
  void push(std::string topic, std::string json);
  // The events numbered after AFTER, at most MAX of them, oldest first. When there are none it waits up to WAIT
  // for one (returning early, empty, once close() was called).
  batch after(uint64_t after, size_t max, std::chrono::milliseconds wait);
  // The number of the newest event (0 before the first).
  uint64_t last_id() const;
  // Wakes every reader; after() no longer waits.
  void close();
  bool closed() const { return closed_.load(); }

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable pushed_;
  std::deque<event> ring_;
  uint64_t next_id_ = 1;
  std::atomic<bool> closed_{false};
};

}  // namespace rampart::net
