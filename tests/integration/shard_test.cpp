// rampartd with its routed experts in two `rampartd --role shard` processes: a shard killed in the middle of 16
// streaming requests ends every request with exactly one terminal event within 2 seconds, pings are answered
// throughout, and requests succeed again once the shard is back.
#include <catch2/catch.hpp>

#include <signal.h>
#include <zmq.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "config/curve_keys.hpp"
#include "tests/integration/server_fixture.hpp"
#include "tests/support/http.hpp"
#include "tests/shards/shard_test_helpers.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

bool is_terminal(const std::string& type) { return type == "done" || type == "error" || type == "shed"; }

// Sends a greedy request and waits for its terminal event; returns its type ("" on timeout).
std::string run_one(const std::string& endpoint, const std::string& id, int max_tokens) {
  net::client c;
  c.connect(endpoint, nullptr);
  c.send("generate", {{"request_id", id}, {"ids", {1, 2, 3, 4}}, {"max_tokens", max_tokens}, {"temperature", 0}});
  const auto deadline = clock_type::now() + 30s;
  while (clock_type::now() < deadline) {
    auto ev = c.receive(200ms);
    if (ev && ev->body.value("request_id", "") == id && is_terminal(ev->type)) return ev->type;
  }
  return "";
}

}  // namespace

TEST_CASE("killing a shard process mid-stream ends every request once and the server keeps serving",
          "[integration][shards]") {
  test::shard_process s0(RAMPART_SERVER_MODEL_DIR, 0, 2), s1(RAMPART_SERVER_MODEL_DIR, 1, 2);
  test::model_server server("", "[engine]\nshard_endpoints = [\"" + s0.endpoint + "\", \"" + s1.endpoint +
                                    "\"]\nshard_deadline_ms = 500\n");
  REQUIRE(run_one(server.endpoint, "warm-up", 4) == "done");

  std::atomic<bool> pinging{true};
  std::atomic<int> pings{0}, missed{0};
  std::thread pinger([&] {
    net::client c;
    c.connect(server.endpoint, nullptr);
    while (pinging.load()) {
      if (c.ping(500ms)) ++pings;
      else ++missed;
      std::this_thread::sleep_for(50ms);
    }
  });

  const int n = 16;
  std::vector<std::unique_ptr<net::client>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<net::client>());
    clients.back()->connect(server.endpoint, nullptr);
    clients.back()->send("generate", {{"request_id", "r" + std::to_string(i)},
                                      {"ids", {1 + i, 2, 3 + i}},
                                      {"max_tokens", 4000},
                                      {"temperature", 0},
                                      {"ignore_eos", true}});
  }
  std::vector<int> tokens(n, 0), terminals(n, 0);
  std::vector<clock_type::time_point> ended(n);
  auto pump = [&](std::chrono::milliseconds for_how_long) {
    const auto until = clock_type::now() + for_how_long;
    while (clock_type::now() < until)
      for (int i = 0; i < n; ++i)
        while (auto ev = clients[static_cast<size_t>(i)]->receive(1ms)) {
          if (ev->type == "token") ++tokens[static_cast<size_t>(i)];
          if (is_terminal(ev->type)) {
            ++terminals[static_cast<size_t>(i)];
            ended[static_cast<size_t>(i)] = clock_type::now();
          }
        }
  };
  // Until every request is streaming.
  const auto start_deadline = clock_type::now() + 30s;
  while (std::count(tokens.begin(), tokens.end(), 0) > 0 && clock_type::now() < start_deadline) pump(20ms);
  REQUIRE(std::count(tokens.begin(), tokens.end(), 0) == 0);

  const auto killed_at = clock_type::now();
  s1.proc->signal(SIGKILL);
  pump(3s);  // 2 s for the terminal events, then a second in which none may repeat
  for (int i = 0; i < n; ++i) {
    INFO("request r" << i << " after " << tokens[static_cast<size_t>(i)] << " tokens");
    CHECK(terminals[static_cast<size_t>(i)] == 1);
    if (terminals[static_cast<size_t>(i)] == 1)
      CHECK(std::chrono::duration<double>(ended[static_cast<size_t>(i)] - killed_at).count() <= 2.0);
  }

  // While the shard is down requests end with an error instead of hanging, and /readyz says why.
  CHECK(run_one(server.endpoint, "while-down", 8) == "error");
  const std::string down = test::http_get(server.metrics_port, "/readyz");
  INFO(down);
  CHECK(down.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(down.find(R"("not_ready":["1 expert shard(s) failing"])") != std::string::npos);

  s1.start();
  std::this_thread::sleep_for(1500ms);  // the link reconnects by itself (reconnect interval at most 1 s)
  CHECK(run_one(server.endpoint, "after", 8) == "done");
  CHECK(run_one(server.endpoint, "after-2", 8) == "done");
  CHECK(test::http_get(server.metrics_port, "/readyz").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);

  pinging = false;
  pinger.join();
  CHECK(missed.load() == 0);
  CHECK(pings.load() > 20);

  // Load per shard is exported as metrics: both shards have served (token, layer) pairs.
  auto metrics = test::http_get(server.metrics_port, "/metrics");
  for (const char* shard : {"0", "1"}) {
    auto at = metrics.find(std::string("rampart:expert_shard_tokens{shard=\"") + shard + "\"} ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(metrics.substr(metrics.find("} ", at) + 2)) > 0);
  }
  CHECK(metrics.find("rampart:expert_shard_imbalance ") != std::string::npos);
}

TEST_CASE("a server with in-process shards and a rebalance window rebalances by itself while serving",
          "[shards][integration]") {
  test::model_server server("", "[engine]\nshards = 2\nrebalance_window_steps = 8\nrebalance_replicas = 2\n");
  for (int i = 0; i < 4; ++i) CHECK(run_one(server.endpoint, "rb" + std::to_string(i), 24) == "done");
  auto metrics = test::http_get(server.metrics_port, "/metrics");
  auto at = metrics.find("\nrampart:expert_rebalances ");
  REQUIRE(at != std::string::npos);
  INFO(metrics.substr(at, 40));
  CHECK(std::stod(metrics.substr(at + 27)) >= 1);
}

TEST_CASE("rampartd reaches its shard processes over CURVE with the keys its configuration names",
          "[shards][integration][curve]") {
  const std::string dir = test::make_temp_dir("rampart-shard-curve");
  auto keypair = [&](const std::string& name) {
    char pub[41], sec[41];
    REQUIRE(zmq_curve_keypair(pub, sec) == 0);
    std::ofstream(dir + "/" + name + ".key") << config::format_curve_keypair({pub, sec});
    return std::string(pub);
  };
  const std::string rank = keypair("rank"), k0 = keypair("s0"), k1 = keypair("s1");
  for (const char* s : {"s0", "s1"})
    std::ofstream(dir + "/" + s + ".toml") << "[shard]\ncurve_key_file = \"" << s << ".key\"\nclient_keys = [\""
                                           << rank << "\"]\n";
  test::shard_process s0(RAMPART_SERVER_MODEL_DIR, 0, 2, dir + "/s0.toml"), s1(RAMPART_SERVER_MODEL_DIR, 1, 2,
                                                                                 dir + "/s1.toml");
  test::model_server server("", "[engine]\nshard_endpoints = [\"" + s0.endpoint + "\", \"" + s1.endpoint +
                                    "\"]\nshard_curve_key_file = \"" + dir + "/rank.key\"\nshard_server_keys = [\"" +
                                    k0 + "\", \"" + k1 + "\"]\n");
  CHECK(run_one(server.endpoint, "curve-1", 8) == "done");
  CHECK(run_one(server.endpoint, "curve-2", 8) == "done");
  INFO(server.proc->log());
  CHECK(server.proc->log().find("shard link is plain") == std::string::npos);
}
