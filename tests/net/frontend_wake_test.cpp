// frontend::held_wakes: a step's events posted under a hold reach the client whole and in order once the hold
// ends (nested holds included), and a hold on one front end does not hold back another's events.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "net/client.hpp"
#include "net/frontend.hpp"

namespace rampart::test {
namespace {

using namespace std::chrono_literals;

// Remembers the peer of the last message (a ping).
struct peer_recorder : net::frontend_handler {
  std::mutex mutex;
  std::string peer;
  void on_message(const std::string& p, const std::string&, const std::string&, net::client_message) override {
    std::lock_guard<std::mutex> lock(mutex);
    peer = p;
  }
  void on_peer_gone(const std::string&) override {}
  std::string get() {
    std::lock_guard<std::mutex> lock(mutex);
    return peer;
  }
};

// A front end on a free loopback port, with one connected client whose peer id it knows.
struct served_client {
  peer_recorder handler;
  std::unique_ptr<net::frontend> fe;
  net::client client;
  std::string peer;

  served_client() {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 20 && !fe; ++attempt) {
      net::frontend_options o;
      o.endpoint = "tcp://127.0.0.1:" + std::to_string(20000 + rng() % 30000);
      auto f = std::make_unique<net::frontend>(o, &handler);
      std::string err;
      if (f->start(&err)) {
        fe = std::move(f);
        REQUIRE(client.connect(o.endpoint, &err));
      }
    }
    REQUIRE(fe != nullptr);
    REQUIRE(client.send("ping", nlohmann::json::object()));
    for (int i = 0; i < 200 && peer.empty(); ++i) {
      std::this_thread::sleep_for(10ms);
      peer = handler.get();
    }
    REQUIRE_FALSE(peer.empty());
  }
  ~served_client() { fe->stop(); }

  // The indices of the "token" events that arrive within TIMEOUT of each other.
  std::vector<int> received(std::chrono::milliseconds timeout) {
    std::vector<int> got;
    while (auto ev = client.receive(timeout)) {
      if (ev->type == "token") got.push_back(ev->body.value("index", -1));
    }
    return got;
  }
};

std::vector<int> count_to(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}

TEST_CASE("events posted under held wakes all arrive in order once the hold ends", "[frontend]") {
  served_client a;
  {
    net::frontend::held_wakes outer(*a.fe);
    for (int i = 0; i < 50; ++i) a.fe->post(a.peer, "token", {{"index", i}});
    {
      net::frontend::held_wakes inner(*a.fe);  // nested: the outer hold still owes the wake
      for (int i = 50; i < 100; ++i) a.fe->post(a.peer, "token", {{"index", i}});
    }
    for (int i = 100; i < 150; ++i) a.fe->post(a.peer, "token", {{"index", i}});
  }
  CHECK(a.received(1000ms) == count_to(150));
  // Without a hold, posts go out as before.
  for (int i = 0; i < 3; ++i) a.fe->post(a.peer, "token", {{"index", i}});
  CHECK(a.received(1000ms) == count_to(3));
}

TEST_CASE("the end of a hold wakes the front end at once, not at its next poll timeout", "[frontend]") {
  served_client a;
  // The I/O thread also drains its outbox every 100 ms by itself: without the wake, a round would wait 50 ms
  // on average. The median of 11 rounds, at different phases of that period, tells the two apart.
  std::vector<double> waits;
  for (int round = 0; round < 11; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(9 * round));
    const auto t0 = std::chrono::steady_clock::now();
    {
      net::frontend::held_wakes hold(*a.fe);
      a.fe->post(a.peer, "token", {{"index", round}});
    }
    auto ev = a.client.receive(1000ms);
    REQUIRE(ev.has_value());
    waits.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(waits.begin(), waits.end());
  INFO("median wait " << waits[5] << " ms");
  CHECK(waits[5] < 20.0);
}

TEST_CASE("a hold on one front end does not hold back another's events", "[frontend]") {
  served_client a, b;
  std::vector<int> b_got;
  {
    net::frontend::held_wakes hold(*a.fe);
    a.fe->post(a.peer, "token", {{"index", 0}});
    b.fe->post(b.peer, "token", {{"index", 0}});  // b is not held: its wake goes out now
    b_got = b.received(1000ms);
    {
      net::frontend::held_wakes other(*b.fe);  // switching holds settles a's owed wake first
      b.fe->post(b.peer, "token", {{"index", 1}});
    }
    a.fe->post(a.peer, "token", {{"index", 1}});
  }
  CHECK(b_got == count_to(1));
  CHECK(b.received(1000ms) == std::vector<int>{1});
  CHECK(a.received(1000ms) == count_to(2));
}

}  // namespace
}  // namespace rampart::test
