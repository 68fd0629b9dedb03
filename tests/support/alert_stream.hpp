// The operators' alert stream in tests: a SUB socket whose subscription is known to have reached the publisher
// (it has received a heartbeat), instead of a sleep that hopes so.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace rampart::test {

// Subscribes SUB to TOPICS and "heartbeat", connects it to ENDPOINT and waits up to TIMEOUT for a heartbeat.
// True once one arrived: from then on, every event on TOPICS that the server publishes reaches SUB.
inline bool subscribe_and_wait(zmq::socket_t& sub, const std::string& endpoint, const std::vector<std::string>& topics,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  for (const auto& t : topics) sub.set(zmq::sockopt::subscribe, t);
  sub.set(zmq::sockopt::subscribe, "heartbeat");
  sub.connect(endpoint);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(50));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t topic, body;
    (void)sub.recv(topic);
    if (topic.more()) (void)sub.recv(body);
    if (topic.to_string_view() == "heartbeat") return true;
  }
  return false;
}

}  // namespace rampart::test
