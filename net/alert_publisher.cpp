#include "net/alert_publisher.hpp"

#include <zmq.hpp>

namespace rampart::net {

struct alert_publisher::impl {
  zmq::context_t ctx{1};
  zmq::socket_t pub{ctx, zmq::socket_type::pub};
};

alert_publisher::~alert_publisher() { stop(); }

bool alert_publisher::start(const std::string& endpoint, std::string* error) {
  impl_ = std::make_shared<impl>();
  try {
    impl_->pub.set(zmq::sockopt::sndhwm, 100000);
    impl_->pub.set(zmq::sockopt::linger, 500);
    impl_->pub.bind(endpoint);
    bound_ = impl_->pub.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    *error = "cannot bind the alert stream on " + endpoint + ": " + e.what();
    impl_.reset();
    return false;
  }
  started_ = true;
  thread_ = std::thread([this] { run(); });
  return true;
}

void alert_publisher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  impl_.reset();
}

void alert_publisher::publish(std::string topic, std::string json) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_ || stopping_) return;
    if (queue_.size() >= max_queue) {
      queue_.pop_front();
      dropped_++;
    }
    queue_.emplace_back(std::move(topic), std::move(json));
  }
  wake_.notify_one();
}

void alert_publisher::run() {
  std::deque<std::pair<std::string, std::string>> batch;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!wake_.wait_for(lock, heartbeat_interval, [&] { return stopping_ || !queue_.empty(); })) {
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        queue_.emplace_back("heartbeat", "{\"event_type\":\"heartbeat\",\"time_ms\":" +
                                             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) +
                                             ",\"published\":" + std::to_string(published_.load()) +
                                             ",\"dropped\":" + std::to_string(dropped_.load()) + "}");
      }
      batch.swap(queue_);
      stopping = stopping_;
    }
    for (auto& [topic, json] : batch) {
      try {
        impl_->pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
        impl_->pub.send(zmq::buffer(json), zmq::send_flags::none);
        published_++;
      } catch (const zmq::error_t&) {
        dropped_++;
      }
    }
    batch.clear();
    if (stopping) return;
  }
}

}  // namespace rampart::net
