#include "net/event_feed.hpp"

namespace rampart::net {

void event_feed::push(std::string topic, std::string json) {
  if (json.size() > max_event_bytes) {
    json = R"({"event_type":"notice","notice":"an event of )" + std::to_string(json.size()) +
           R"( bytes was too large for the dashboard feed"})";
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ring_.push_back({next_id_++, std::move(topic), std::move(json)});
    while (ring_.size() > capacity_) ring_.pop_front();
  }
  pushed_.notify_all();
}

event_feed::batch event_feed::after(uint64_t after, size_t max, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  pushed_.wait_for(lock, wait, [&] { return closed_.load() || next_id_ - 1 > after; });
  batch b;
  if (ring_.empty() || ring_.back().id <= after) return b;
  const uint64_t first = ring_.front().id;
  if (after + 1 < first) b.missed = first - (after + 1);
  for (size_t i = after < first ? 0 : static_cast<size_t>(after + 1 - first); i < ring_.size() && b.events.size() < max;
       ++i) {
    b.events.push_back(ring_[i]);
  }
  return b;
}

uint64_t event_feed::last_id() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_id_ - 1;
}

void event_feed::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  pushed_.notify_all();
}

}  // namespace rampart::net
