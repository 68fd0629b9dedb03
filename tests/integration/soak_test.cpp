// The soak: many streams against rampartd with its experts in two shard processes, with everything that goes
// wrong in production happening meanwhile: random cancels, clients that vanish mid-stream, malformed messages
// between requests, a shard process killed and restarted, a policy reload, and (as root) a packet flood at the
// monitor. Checked at the end: every request a client could still hear got exactly one terminal event and none
// got two; the scheduler is idle with every KV block free; the server's counters agree with the clients'; resident
// memory and open file descriptors are flat after warm-up.
//
// CI size by default (200 streams over about a minute); tools/soak.sh runs the benchmark size through
// RAMPART_SOAK_STREAMS, RAMPART_SOAK_SECONDS and RAMPART_SOAK_CLIENTS, and records the figures this prints;
// RAMPART_SOAK_FLOOD=0 leaves the packet flood out.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/integration/server_fixture.hpp"
#include "tests/shards/shard_test_helpers.hpp"
#include "tests/support/http.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

bool is_terminal(const std::string& type) { return type == "done" || type == "error" || type == "shed"; }

// Resident memory of PID in KiB: FIELD is RssAnon (the heap, stacks: what a leak grows) or RssFile (pages of
// mapped files: the checkpoint's weights and embedding rows, paged in as tokens and experts are first used,
// bounded by the checkpoint's size and reclaimable by the kernel).
int64_t rss_kib(pid_t pid, const std::string& field = "RssAnon") {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
  return -1;
}

int open_fds(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// What the clients saw of one request.
struct seen {
  int accepted = 0, tokens = 0, terminals = 0;
  std::string terminal;  // the last terminal event's type
  bool vanished = false;  // its client went away before the end: it can hear nothing more
};

struct tally {
  std::mutex mutex;
  std::map<std::string, seen> requests;
  int malformed_sent = 0, malformed_answered = 0, cancels = 0, vanished = 0, lost = 0;

  void record(const net::client_event& ev) {
    std::lock_guard<std::mutex> lock(mutex);
    const std::string id = ev.body.value("request_id", "");
    if (id.empty()) {
      if (ev.type == "error") ++malformed_answered;
      return;
    }
    seen& s = requests[id];
    if (ev.type == "accepted") ++s.accepted;
    if (ev.type == "token") ++s.tokens;
    if (is_terminal(ev.type)) {
      ++s.terminals;
      s.terminal = ev.type;
    }
  }
  seen get(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex);
    return requests[id];
  }
};

// A malformed message of kind K: not JSON, nested past the depth limit, an unknown type, a field of the wrong
// type. Each is answered with an error that names no request.
std::vector<std::string> malformed(int k) {
  switch (k % 4) {
    case 0: return {"generate", "{\"request_id\": \"x\", \"ids\": [1, 2"};
    case 1: return {"generate", std::string(5000, '[') + std::string(5000, ']')};
    case 2: return {"teleport", "{}"};
    default: return {"generate", "{\"request_id\": 7, \"ids\": [1]}"};
  }
}

// One client thread: requests one after another on its connection, each with a behaviour drawn at random,
// started at its slot of the schedule (request I at START + I x SPACING).
void client_loop(const std::string& endpoint, int worker, std::atomic<int>* next, int total,
                 clock_type::time_point start, std::chrono::microseconds spacing, tally* t) {
  std::mt19937 rng(static_cast<uint32_t>(1000 + worker));
  auto c = std::make_unique<net::client>();
  c->connect(endpoint, nullptr);
  for (int i; (i = next->fetch_add(1)) < total;) {
    std::this_thread::sleep_until(start + i * spacing);
    const std::string id = "soak-" + std::to_string(i);
    const int behaviour = static_cast<int>(rng() % 100);
    if (behaviour < 15) {  // a malformed message first, on the same connection
      c->send_frames(malformed(static_cast<int>(rng())));
      std::lock_guard<std::mutex> lock(t->mutex);
      ++t->malformed_sent;
    }
    const bool sampled = rng() % 2 == 0;
    c->send("generate", {{"request_id", id},
                         {"ids", {1 + i % 50, 2 + i % 7, 3}},
                         {"max_tokens", 4 + static_cast<int>(rng() % 44)},
                         {"temperature", sampled ? 0.8 : 0.0},
                         {"ignore_eos", true}});
    const bool cancel = behaviour >= 15 && behaviour < 30;
    const bool vanish = behaviour >= 30 && behaviour < 40;
    const auto deadline = clock_type::now() + 60s;
    bool acted = false;
    for (;;) {
      if (clock_type::now() > deadline) {
        std::lock_guard<std::mutex> lock(t->mutex);
        ++t->lost;
        break;
      }
      auto ev = c->receive(20ms);
      if (!ev) continue;
      t->record(*ev);
      if (ev->body.value("request_id", "") != id) continue;
      if (is_terminal(ev->type)) break;
      if (ev->type == "token" && !acted && (cancel || vanish)) {
        acted = true;
        if (cancel) {
          c->send("cancel", {{"request_id", id}});
          std::lock_guard<std::mutex> lock(t->mutex);
          ++t->cancels;
        } else {
          {
            std::lock_guard<std::mutex> lock(t->mutex);
            t->requests[id].vanished = true;
            ++t->vanished;
          }
          c = std::make_unique<net::client>();  // the old socket closes unread
          c->connect(endpoint, nullptr);
          break;
        }
      }
    }
  }
  // Anything more that arrives (a second terminal event, say) is counted too.
  const auto until = clock_type::now() + 1500ms;
  while (clock_type::now() < until)
    if (auto ev = c->receive(20ms)) t->record(*ev);
}

double metric_sum(const std::string& text, const std::string& name) {
  double sum = 0;
  for (size_t at = text.find("\n" + name); at != std::string::npos; at = text.find("\n" + name, at + 1)) {
    const size_t eol = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, eol - at - 1);
    if (line.size() > name.size() && (line[name.size()] == '{' || line[name.size()] == ' '))
      sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

}  // namespace

TEST_CASE("a soak under cancels, vanishing clients, malformed input, a shard crash, a policy reload and a flood "
          "loses and doubles nothing and leaks nothing",
          "[integration][soak]") {
  const int total = env_int("RAMPART_SOAK_STREAMS", 200);
  const int seconds = env_int("RAMPART_SOAK_SECONDS", 60);
  const int clients = env_int("RAMPART_SOAK_CLIENTS", 10);
  const bool root = ::geteuid() == 0 && env_int("RAMPART_SOAK_FLOOD", 1) != 0;
  const std::string dir = test::make_temp_dir("rampart-soak");
  const std::string policy = dir + "/policy.toml";
  std::ofstream(policy) << "[policy]\nhold_s = 2\ncool_down_s = 2\n";

  test::shard_process s0(RAMPART_SERVER_MODEL_DIR, 0, 2), s1(RAMPART_SERVER_MODEL_DIR, 1, 2);
  test::model_server server(
      "", "[engine]\nshard_endpoints = [\"" + s0.endpoint + "\", \"" + s1.endpoint +
              "\"]\nshard_deadline_ms = 500\n[admission]\npolicy_file = \"" + policy + "\"\npolicy_poll_ms = 200\n" +
              (root ? "[monitor]\ninterface = \"lo\"\n" : ""));
  const pid_t pid = server.proc->pid();

  tally t;
  std::atomic<int> next{0};
  const auto start = clock_type::now() + 200ms;
  const auto spacing = std::chrono::microseconds(int64_t{seconds} * 1000000 / total);
  std::vector<std::thread> workers;
  for (int w = 0; w < clients; ++w)
    workers.emplace_back(client_loop, server.endpoint, w, &next, total, start, spacing, &t);

  // The things that go wrong, twice each at fixed points of the run: the first round belongs to the warm-up (the
  // memory it takes once, a flow table filled by the flood, say, is taken by then), the second must not grow it.
  auto at = [&](double fraction) { std::this_thread::sleep_until(start + fraction * std::chrono::seconds(seconds)); };
  std::string flood_out;
  int reload = 0;
  auto go_wrong = [&](double from) {
    at(from);
    s1.proc->signal(SIGKILL);
    std::this_thread::sleep_for(1s);
    s1.start();
    at(from + 0.05);
    std::ofstream(policy) << "[policy]\nhold_s = 2\ncool_down_s = " << 3 + reload++ << "\n";
    if (root) {
      at(from + 0.1);
      test::run_command(test::bin("rampart-flood"), {"--kind", "udp", "--target",
                                                     "127.0.0.1:" + std::to_string(server.port), "--rate", "2000",
                                                     "--duration", "2", "--sources", "127.77.0.0/16"},
                        &flood_out);
    }
  };
  go_wrong(0.1);
  at(0.35);
  const int64_t rss_warm = rss_kib(pid);
  const int fds_warm = open_fds(pid);
  go_wrong(0.45);
  at(0.75);
  const int64_t rss_late = rss_kib(pid);
  for (auto& w : workers) w.join();

  // Idle: the scheduler holds nothing and every KV block is free again.
  nlohmann::json stats, pong;
  const auto idle_deadline = clock_type::now() + 15s;
  for (;;) {
    net::client c;
    c.connect(server.endpoint, nullptr);
    c.send("stats", nlohmann::json::object());
    for (auto ev = c.receive(2s); ev; ev = c.receive(2s))
      if (ev->type == "stats") {
        stats = ev->body;
        break;
      }
    c.ping(2s, &pong);
    const bool idle = stats.contains("scheduler") && stats["scheduler"]["running"] == 0 &&
                      stats["scheduler"]["waiting"] == 0 && pong["requests"]["in_flight"] == 0;
    if (idle || clock_type::now() > idle_deadline) break;
    std::this_thread::sleep_for(200ms);
  }
  const int64_t rss_end = rss_kib(pid);
  const int fds_end = open_fds(pid);
  const std::string metrics = test::http_get(server.metrics_port, "/metrics");

  std::map<std::string, int> by_terminal;
  int doubled = 0, silent = 0, accepted = 0;
  for (const auto& [id, s] : t.requests) {
    if (s.terminals > 1) ++doubled;
    if (s.terminals == 0 && !s.vanished) ++silent;
    if (s.terminals == 1) ++by_terminal[s.terminal];
    accepted += s.accepted;
  }
  const double ledger_total = metric_sum(metrics, "rampart:request_success_total") +
                              metric_sum(metrics, "rampart:request_error_total") +
                              metric_sum(metrics, "rampart:request_shed_total");
  std::cout << "soak: " << total << " streams over " << seconds << " s from " << clients << " clients: "
            << by_terminal["done"] << " done, " << by_terminal["error"] << " error, " << by_terminal["shed"]
            << " shed; " << t.cancels << " cancelled, " << t.vanished << " vanished, " << t.malformed_sent
            << " malformed messages; " << doubled << " answered twice, " << silent << " silent, " << t.lost
            << " lost\n"
            << "soak: rampartd anonymous RSS " << rss_warm / 1024 << " MiB after warm-up, " << rss_late / 1024
            << " MiB at three quarters, " << rss_end / 1024 << " MiB at the end (mapped checkpoint pages "
            << rss_kib(pid, "RssFile") / 1024 << " MiB); open descriptors " << fds_warm << " -> " << fds_end << "; " << accepted
            << " accepted; terminal events counted " << ledger_total << "\n";
  INFO(stats.dump());
  INFO(flood_out);
  CHECK(t.requests.size() == static_cast<size_t>(total));
  CHECK(doubled == 0);
  CHECK(silent == 0);
  CHECK(t.lost == 0);
  CHECK(t.malformed_answered == t.malformed_sent);
  CHECK(stats["scheduler"]["running"] == 0);
  CHECK(stats["scheduler"]["waiting"] == 0);
  CHECK(stats["scheduler"]["kv"]["free_blocks"] == stats["scheduler"]["kv"]["total_blocks"]);
  CHECK(pong["requests"]["in_flight"] == 0);
  CHECK(pong["requests"]["accepted"] == accepted);
  // The server ended every request exactly once too (the vanished included), and counted what the clients saw.
  CHECK(ledger_total == total);
  CHECK(metric_sum(metrics, "rampart:malformed_messages_total") >= t.malformed_sent);
  CHECK(by_terminal["done"] <= metric_sum(metrics, "rampart:request_success_total"));
  CHECK(by_terminal["error"] <= metric_sum(metrics, "rampart:request_error_total"));
  CHECK(server.proc->log().find("policy reloaded") != std::string::npos);
  // Flat after warm-up: within 5% of anonymous memory, and no descriptor kept per request.
  CHECK(rss_end <= rss_warm * 105 / 100);
  CHECK(fds_end <= fds_warm + 4);
  CHECK(server.proc->running());
}
