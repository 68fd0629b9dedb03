// The story end to end: registered users keep their service while rampartd is attacked. rampartd runs with the
// monitor capturing on lo; registered clients load it throughout; then a SYN flood, a connection flood with
// stalled ZMTP handshakes, a registration flood, a UDP flood and an anonymous request flood, in turn. For each:
// the alert, registrations closing, the registered clients' throughput, failures and time to first token against
// the quiet windows on either side of it, deny-listing and its collateral (entries naming no attacker), the
// capture thread's CPU, and the return to green. Two of the registered clients use the OpenAI-compatible HTTP
// door; their service is measured on its own. Also runnable by hand: `make attack-demo`.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include <zmq.hpp>

#include "base/cpu_affinity.hpp"
#include "net/client.hpp"
#include "tests/support/alert_stream.hpp"
#include "tests/support/http.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t0, clock_type::time_point t) {
  return std::chrono::duration<double>(t - t0).count();
}

// One registered client's streamed completion over the HTTP door, on a keep-alive connection it reopens when
// needed: whether it ended with all its tokens, and when its first token came (zero time point: never).
class http_client {
 public:
  explicit http_client(int port) : port_(port) {}
  ~http_client() { reset(); }
  bool complete(const std::string& body, const std::string& key, clock_type::time_point* first) {
    if (fd_ < 0 && !open()) return false;
    const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            "Authorization: Bearer " + key + "\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body;
    if (send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return reset();
    std::string in;
    char buf[8192];
    size_t chunks = 0;
    while (in.size() < 5 || in.compare(in.size() - 5, 5, "0\r\n\r\n") != 0) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return reset();
      in.append(buf, static_cast<size_t>(n));
      if (in.rfind("HTTP/1.1 200", 0) != 0 && in.find("\r\n\r\n") != std::string::npos) {
        reset();  // an error answer: the request failed
        return false;
      }
      size_t seen = 0;
      for (size_t at = 0; (at = in.find("data: {", at)) != std::string::npos; ++at) ++seen;
      if (chunks < 2 && seen >= 2) *first = clock_type::now();  // the chunk after the one that accepts it
      chunks = seen;
    }
    return in.find("\"finish_reason\":\"length\"") != std::string::npos;
  }

 private:
  bool open() {
    fd_ = test::connect_loopback(port_, 30000);
    return fd_ >= 0;
  }
  bool reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return false;
  }
  int port_;
  int fd_ = -1;
};

// Registered tenants generating in a closed loop; every completion is recorded with its time to first token.
// The last HTTP_CLIENTS of them go through the HTTP door on HTTP_PORT, the others through ZeroMQ.
class benign_load {
 public:
  enum class door { any, zeromq, http };
  benign_load(const std::string& endpoint, const std::vector<std::string>& keys, int http_port, size_t http_clients) {
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i + http_clients >= keys.size()) {
        threads_.emplace_back([this, http_port, key = keys[i], i] { run_http(http_port, key, i); });
      } else {
        threads_.emplace_back([this, endpoint, key = keys[i], i] { run(endpoint, key, i); });
      }
    }
  }
  ~benign_load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  struct window {
    double requests_per_s = 0;
    double ttft_p99_ms = 0;
    // The same, as the server measured it (from the gateway's receipt of the request to its first token), for
    // the ZeroMQ clients: what is left of the client's TTFT is the way in (sockets, front end, mailboxes).
    double server_ttft_p99_ms = 0;
    // Mean time from sending a request to its `done`, as the client saw it and as the server did (from the
    // gateway's receipt of it); ZeroMQ clients only for the server's view.
    double client_total_ms = 0, server_total_ms = 0;
    int failed = 0;
  };
  window measure(clock_type::time_point from, clock_type::time_point to, door which = door::any) const {
    std::lock_guard<std::mutex> lock(mutex_);
    window w;
    std::vector<double> ttft, server_ttft;
    double client_total = 0, server_total = 0;
    size_t server_totals = 0;
    for (const auto& c : completions_) {
      if (c.at < from || c.at > to) continue;
      if ((which == door::zeromq && c.http) || (which == door::http && !c.http)) continue;
      if (c.ok) {
        ttft.push_back(c.ttft_ms);
        client_total += c.total_ms;
      } else {
        ++w.failed;
      }
      if (c.ok && c.server_ttft_ms >= 0) server_ttft.push_back(c.server_ttft_ms);
      if (c.ok && c.server_total_ms >= 0) {
        server_total += c.server_total_ms;
        ++server_totals;
      }
    }
    if (!ttft.empty()) w.client_total_ms = client_total / static_cast<double>(ttft.size());
    if (server_totals > 0) w.server_total_ms = server_total / static_cast<double>(server_totals);
    w.server_ttft_p99_ms = p99(&server_ttft);
    w.requests_per_s = static_cast<double>(ttft.size()) / std::chrono::duration<double>(to - from).count();
    w.ttft_p99_ms = p99(&ttft);
    return w;
  }

 private:
  struct completion {
    clock_type::time_point at;
    double ttft_ms;
    bool ok;
    bool http = false;
    double server_ttft_ms = -1;  // from the `done` event's timing; -1: not known (HTTP)
    double total_ms = 0;          // sent to ended, as the client saw it
    double server_total_ms = -1;  // the `done` event's total_ms; -1: not known (HTTP)
    double queue_ms = -1;         // the `done` event's queue_ms; -1: not known (HTTP)
    clock_type::time_point sent{};
  };

 public:
  // The three slowest first tokens of the ZeroMQ clients completed in [FROM, TO], with the server's view of
  // each: a slow one the server did not see was held up on the way in or out (the clients' machine, sockets).
  void print_slowest(clock_type::time_point from, clock_type::time_point to) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<const completion*> v;
    for (const auto& c : completions_) {
      if (c.at >= from && c.at <= to && !c.http && c.ok) v.push_back(&c);
    }
    std::sort(v.begin(), v.end(), [](const completion* a, const completion* b) { return a->ttft_ms > b->ttft_ms; });
    std::printf("  slowest ZeroMQ first tokens:");
    for (size_t i = 0; i < v.size() && i < 3; ++i) {
      std::printf(" %.1f ms (server %.1f, queued %.0f; sent at %+.2f s)", v[i]->ttft_ms, v[i]->server_ttft_ms,
                  v[i]->queue_ms, std::chrono::duration<double>(v[i]->sent - from).count());
    }
    std::printf("\n");
  }

 private:
  static double p99(std::vector<double>* v) {
    if (v->empty()) return 0;
    std::sort(v->begin(), v->end());
    return (*v)[std::min(v->size() - 1, static_cast<size_t>(0.99 * static_cast<double>(v->size())))];
  }
  // As run, through the HTTP door: the same prompt and settings as a streamed completion.
  void run_http(int port, const std::string& key, size_t index) {
    http_client c(port);
    json ids = json::array();
    for (int t = 0; t < 16; ++t) ids.push_back(1000 + static_cast<int>(index) * 100 + t);
    const std::string body = json({{"model", "server-v3"}, {"prompt", ids}, {"max_tokens", 8}, {"temperature", 0},
                                   {"ignore_eos", true}, {"priority", "high"}, {"stream", true}}).dump();
    while (!stop_) {
      const auto sent = clock_type::now();
      clock_type::time_point first{};
      const bool ok = c.complete(body, key, &first);
      if (stop_) break;
      std::lock_guard<std::mutex> lock(mutex_);
      const auto now = clock_type::now();
      completions_.push_back({now, std::chrono::duration<double, std::milli>(first - sent).count(),
                              ok && first != clock_type::time_point{}, true, -1,
                              std::chrono::duration<double, std::milli>(now - sent).count()});
    }
  }
  void run(const std::string& endpoint, const std::string& key, size_t index) {
    net::client c;
    c.connect(endpoint, nullptr);
    for (int n = 0; !stop_; ++n) {
      const std::string id = "b" + std::to_string(index) + "-" + std::to_string(n);
      json ids = json::array();
      for (int t = 0; t < 16; ++t) ids.push_back(1000 + static_cast<int>(index) * 100 + t);
      const auto sent = clock_type::now();
      c.send("generate", {{"request_id", id}, {"ids", ids}, {"max_tokens", 8}, {"temperature", 0},
                          {"ignore_eos", true}, {"api_key", key}, {"priority", "high"}});
      clock_type::time_point first{};
      bool ok = false, finished = false;
      double server_ttft = -1, server_total = -1, queue = -1;
      // A request that has not ended 30 s after it was sent never will: it counts as failed, not as absent.
      const auto give_up = sent + 30s;
      while (!finished && !stop_) {
        if (clock_type::now() > give_up) {
          finished = true;
          break;
        }
        auto ev = c.receive(200ms);
        if (!ev || ev->body.value("request_id", "") != id) continue;
        if (ev->type == "token" && first == clock_type::time_point{}) first = clock_type::now();
        if (ev->type == "done" || ev->type == "error" || ev->type == "shed") {
          ok = ev->type == "done";
          finished = true;
          if (ok) {
            server_ttft = ev->body["timing"].value("time_to_first_token_ms", -1.0);
            server_total = ev->body["timing"].value("total_ms", -1.0);
            queue = ev->body["timing"].value("queue_ms", -1.0);
          }
        }
      }
      if (!finished) break;
      std::lock_guard<std::mutex> lock(mutex_);
      const auto now = clock_type::now();
      completions_.push_back({now, std::chrono::duration<double, std::milli>(first - sent).count(), ok, false,
                              server_ttft, std::chrono::duration<double, std::milli>(now - sent).count(),
                              server_total, queue, sent});
    }
  }
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::vector<completion> completions_;
};

// The operators' stream, read on its own thread; events are kept with their arrival time.
class alert_watch {
 public:
  explicit alert_watch(const std::string& endpoint) : sub_(ctx_, zmq::socket_type::sub) {
    REQUIRE(test::subscribe_and_wait(sub_, endpoint, {""}));
    thread_ = std::thread([this] { run(); });
  }
  ~alert_watch() {
    stop_ = true;
    thread_.join();
  }
  // The first event at or after SINCE that satisfies PRED, waiting up to TIMEOUT.
  std::optional<std::pair<clock_type::time_point, json>> wait(const std::function<bool(const json&)>& pred,
                                                              clock_type::time_point since,
                                                              std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [t, e] : events_) {
          if (t >= since && pred(e)) return std::make_pair(t, e);
        }
      }
      if (clock_type::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(20ms);
    }
  }
  // Every event received at or after SINCE.
  std::vector<std::pair<clock_type::time_point, json>> events_since(clock_type::time_point since) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::pair<clock_type::time_point, json>> out;
    for (const auto& e : events_) {
      if (e.first >= since) out.push_back(e);
    }
    return out;
  }

 private:
  void run() {
    while (!stop_) {
      zmq::pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 50ms);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t topic, body;
      (void)sub_.recv(topic);
      (void)sub_.recv(body);
      auto e = json::parse(body.to_string_view(), nullptr, false);
      if (e.is_discarded()) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      events_.emplace_back(clock_type::now(), std::move(e));
    }
  }
  zmq::context_t ctx_{1};
  zmq::socket_t sub_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::pair<clock_type::time_point, json>> events_;
};

bool is_alert_start(const json& e, const std::string& detector) {
  return e.value("event_type", "") == "alert" && e["rampart"]["detector"] == detector &&
         e["rampart"]["phase"] == "start";
}

bool is_policy_level(const json& e, const std::string& level) {
  return e.value("event_type", "") == "policy" && e["policy"].value("level", "") == level;
}

// Polls `register` until a refusal (closing) or a success (reopening) is seen; returns when it happened.
std::optional<clock_type::time_point> wait_registration(const std::string& endpoint, bool want_open,
                                                        std::chrono::milliseconds timeout) {
  static std::atomic<int> counter{0};
  net::client c;
  c.connect(endpoint, nullptr);
  const auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    c.send("register", {{"name", "probe-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)}});
    auto ev = c.receive(2s);
    if (ev) {
      const bool open = ev->type == "registered";
      const bool closed = ev->type == "shed" && (ev->body["reason"] == "registration_closed" ||
                                                 ev->body["reason"] == "rate_limited");
      if ((want_open && open) || (!want_open && closed)) return clock_type::now();
    }
    std::this_thread::sleep_for(100ms);
  }
  return std::nullopt;
}

struct phase_result {
  std::string attack;
  double alert_s = -1, registration_closed_s = -1, green_again_s = -1;
  double rps_ratio = 0, ttft_ratio = 0;
  bool reopened = false, deny_listed = false;
  int failed = 0;      // registered requests that ended with error or shed during the attack
  int collateral = 0;  // deny-list entries naming no attacker, or covering the registered clients' address
  std::vector<std::string> collateral_entries;
  double capture_cpu = -1;  // cores the capture thread used during the attack
  double http_rps_ratio = 0, http_ttft_ratio = 0;  // the HTTP door's registered clients alone
  std::string detector;
  // The registered clients' windows: the 5 s before the attack, the attack, and the 5 s after it (once the
  // level is green again: the next attack's window before, or a last quiet window), all clients and by door.
  benign_load::window before, during, after, http_before, http_during, http_after;
  double after_ratio = 0;  // completed requests per second, after over before: what an attack leaves behind
};

// The attack's ratios against the mean of the quiet windows on either side of it: the machine's speed drifts
// by 10-15% over a run (both ways, with or without attacks), and a reference taken on one side only would
// count that drift as the attack's doing.
void compute_ratios(phase_result* r) {
  auto ratio = [](double during, double before, double after) {
    const double reference = (before + after) / 2;
    return reference > 0 ? during / reference : 0;
  };
  r->rps_ratio = ratio(r->during.requests_per_s, r->before.requests_per_s, r->after.requests_per_s);
  r->ttft_ratio = ratio(r->during.ttft_p99_ms, r->before.ttft_p99_ms, r->after.ttft_p99_ms);
  r->http_rps_ratio =
      ratio(r->http_during.requests_per_s, r->http_before.requests_per_s, r->http_after.requests_per_s);
  r->http_ttft_ratio = ratio(r->http_during.ttft_p99_ms, r->http_before.ttft_p99_ms, r->http_after.ttft_p99_ms);
  r->after_ratio = r->before.requests_per_s > 0 ? r->after.requests_per_s / r->before.requests_per_s : 0;
}

// An IPv4 address or prefix ("a.b.c.d" or "a.b.c.d/n") as (address, length); false for anything else.
bool parse_prefix(const std::string& text, uint32_t* addr, int* len) {
  const auto slash = text.find('/');
  unsigned a, b, c, d;
  char tail = 0;
  if (std::sscanf(text.substr(0, slash).c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4) return false;
  if (a > 255 || b > 255 || c > 255 || d > 255) return false;
  *addr = (a << 24) | (b << 16) | (c << 8) | d;
  *len = slash == std::string::npos ? 32 : std::atoi(text.c_str() + slash + 1);
  return *len >= 0 && *len <= 32;
}
uint32_t prefix_mask(int len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
// True when ENTRY (an address or prefix) lies inside PREFIX.
bool inside(const std::string& entry, const std::string& prefix) {
  uint32_t ea, pa;
  int el, pl;
  if (!parse_prefix(entry, &ea, &el) || !parse_prefix(prefix, &pa, &pl)) return false;
  return el >= pl && (ea & prefix_mask(pl)) == (pa & prefix_mask(pl));
}

// CPU seconds (user + system) the thread of process PID named NAME has used so far; -1 when there is none.
double thread_cpu_seconds(pid_t pid, const std::string& name) {
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(task_dir)) {
    std::ifstream comm(entry.path() / "comm");
    std::string n;
    std::getline(comm, n);
    if (n != name) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the parenthesised name: state is field 3, utime and stime are fields 14 and 15.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return -1;
}

}  // namespace

TEST_CASE("registered users keep their service through SYN, connection, registration, UDP and anonymous request floods",
          "[attack][live]") {
  if (geteuid() != 0) {
    std::cout << "SKIPPED: live capture and raw sockets need root\n";
    return;
  }
  const std::string dir = test::make_temp_dir("rampart-attack");
  const std::string db = dir + "/accounts.db";
  std::vector<std::string> keys;
  for (int i = 0; i < 6; ++i) {  // four ZeroMQ clients and two HTTP ones
    std::string out;
    REQUIRE(test::run_command(test::bin("rampart-admin"),
                              {"--db", db, "create", "user" + std::to_string(i), "--class", "registered"}, &out) == 0);
    const auto at = out.find("api_key: rk_");
    REQUIRE(at != std::string::npos);
    const auto begin = at + 9;
    keys.push_back(out.substr(begin, out.find_first_of(" \n", begin) - begin));
  }
  // The shipped policy with short hold and cool-down times, so the test sees the level come back.
  std::ifstream shipped(test::source_dir() + "/config/policy.toml");
  std::stringstream text;
  text << shipped.rdbuf();
  std::string policy = text.str();
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"hold_s = ", "2"}, {"cool_down_s = ", "3"}}) {
    const auto at = policy.find(key);
    REQUIRE(at != std::string::npos);
    const auto digits = policy.find_first_not_of("0123456789", at + key.size());
    policy.replace(at + key.size(), digits - at - key.size(), value);
  }
  std::ofstream(dir + "/policy.toml") << policy;
  const int port = test::free_port(), alerts_port = test::free_port(), http_port = test::free_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  // The engine gets one core: the attack traffic is generated on this machine, and the other core stands in for
  // the attackers' machines and the network (flood tools, the kernel's packet handling, the capture). With two
  // CPUs or more it is pinned there ([engine] cpus), and the server's other threads kept off it, as a
  // deployment would.
  const std::vector<int> allowed = allowed_cpus();
  const std::string engine_cpus = allowed.size() >= 2 ? "cpus = [" + std::to_string(allowed.back()) + "]\n" : "";
  std::ofstream(dir + "/rampart.toml")
      << "[frontend]\nendpoint = \"" << endpoint << "\"\n"
      << "[model]\npath = \"" << RAMPART_SERVER_MODEL_DIR << "\"\ntokenizer = \"" << test::tokenizer_dir() << "\"\n"
      << "[engine]\nthreads = 1\n" << engine_cpus
      << "[metrics]\nenabled = false\n"
      << "[alerts]\npublish = \"tcp://127.0.0.1:" << alerts_port << "\"\n"
      << "[http]\nenabled = true\nlisten = \"127.0.0.1:" << http_port << "\"\n"
      << "[admission]\naccounts_db = \"" << db << "\"\npolicy_file = \"" << dir << "/policy.toml\"\n";
  test::child_process server(test::bin("rampartd"), {"--config", dir + "/rampart.toml"});
  REQUIRE(server.wait_ready([&] {
    net::client c;
    c.connect(endpoint, nullptr);
    return c.ping(200ms);
  }, 30s));
  REQUIRE(server.wait_ready([&] { return server.log().find("monitor: capturing") != std::string::npos; }, 5s));
  // The clients and the attack tools stay off the engine's core too (this thread's affinity is inherited by the
  // threads and processes it starts from here on): they stand in for other machines, and on the engine's core
  // their CPU time would be charged to the server.
  if (allowed.size() >= 2) {
    std::string error;
    REQUIRE(pin_current_thread(std::vector<int>(allowed.begin(), allowed.end() - 1), &error));
  }
  alert_watch alerts("tcp://127.0.0.1:" + std::to_string(alerts_port));
  benign_load load(endpoint, keys, http_port, 2);
  std::this_thread::sleep_for(2s);  // warm up
  const auto base_from = clock_type::now();
  std::this_thread::sleep_for(6s);
  const auto baseline = load.measure(base_from, clock_type::now());
  INFO(server.log());
  REQUIRE(baseline.requests_per_s > 0);

  struct attack {
    std::string name, detector;
    std::vector<std::vector<std::string>> floods;  // rampart-flood runs started together
    std::vector<std::string> attackers;            // the prefixes the attack comes from
  };
  const std::string target = "127.0.0.1:" + std::to_string(port);
  std::vector<attack> attacks = {
      {"SYN flood (spoofed 127.66/16, 20000/s)", "syn_flood",
       {{"--kind", "syn", "--target", target, "--rate", "20000", "--duration", "6", "--sources", "127.66.0.0/16"}},
       {"127.66.0.0/16"}},
      {"connection flood, stalled handshakes (127.77.1/24)", "handshake_stall",
       {{"--kind", "connect", "--target", target, "--rate", "400", "--connections", "1500", "--duration", "2",
         "--sources", "127.77.1.0/24"}},
       {"127.77.1.0/24"}},
      {"registration flood (1700/s)", "registration_flood",
       {{"--kind", "register", "--target", target, "--rate", "1700", "--duration", "6"}},
       {}},  // from 127.0.0.1, where the registered clients are too: any deny entry is collateral
      {"UDP flood (spoofed 127.88/16, 70000/s)", "udp_flood",
       {{"--kind", "udp", "--target", target, "--rate", "70000", "--duration", "6", "--sources", "127.88.0.0/16",
         "--payload", "64"}},
       {"127.88.0.0/16"}},
      {"anonymous request flood (4 sources, 18000/s)", "request_flood",
       {{"--kind", "generate", "--target", target, "--rate", "4500", "--duration", "6", "--source", "127.99.0.1"},
        {"--kind", "generate", "--target", target, "--rate", "4500", "--duration", "6", "--source", "127.99.0.2"},
        {"--kind", "generate", "--target", target, "--rate", "4500", "--duration", "6", "--source", "127.99.0.3"},
        {"--kind", "generate", "--target", target, "--rate", "4500", "--duration", "6", "--source", "127.99.0.4"}},
       {"127.99.0.0/24"}},
  };
  // RAMPART_ATTACKS=name,...: only the attacks whose names contain one of these (for studying one of them).
  if (const char* only = std::getenv("RAMPART_ATTACKS")) {
    std::vector<std::string> wanted;
    std::stringstream list(only);
    for (std::string w; std::getline(list, w, ',');) wanted.push_back(w);
    attacks.erase(std::remove_if(attacks.begin(), attacks.end(),
                                 [&](const attack& a) {
                                   return std::none_of(wanted.begin(), wanted.end(), [&](const std::string& w) {
                                     return a.name.find(w) != std::string::npos;
                                   });
                                 }),
                  attacks.end());
  }
  std::vector<phase_result> results;
  std::printf("baseline measured: %.1f req/s\n", baseline.requests_per_s);
  std::fflush(stdout);
  for (const auto& a : attacks) {
    std::printf("attack: %s\n", a.name.c_str());
    std::fflush(stdout);
    phase_result r;
    r.attack = a.name;
    r.detector = a.detector;
    // Each attack is compared with the quiet 5 s before it and the quiet 5 s after it (compute_ratios).
    const auto before_from = clock_type::now();
    std::this_thread::sleep_for(5s);
    const auto start = clock_type::now();
    r.before = load.measure(before_from, start);
    r.http_before = load.measure(before_from, start, benign_load::door::http);
    if (!results.empty()) {
      results.back().after = r.before;
      results.back().http_after = r.http_before;
    }
    const double cpu_before = thread_cpu_seconds(server.pid(), "rampart-capture");
    std::vector<std::string> flood_outs(a.floods.size());
    // The attack tool runs at the lowest CPU priority: real attackers do not share the server's cores, and on
    // this machine its own CPU time would otherwise be charged to the registered clients. The server's work
    // for the flood (capture, decoding, admission, answers) and the kernel's packet handling still count.
    std::vector<std::thread> floods;
    for (size_t f = 0; f < a.floods.size(); ++f) {
      std::vector<std::string> nice_args = {"-n", "19", test::bin("rampart-flood")};
      nice_args.insert(nice_args.end(), a.floods[f].begin(), a.floods[f].end());
      floods.emplace_back([&, f, nice_args] { test::run_command("/usr/bin/nice", nice_args, &flood_outs[f]); });
    }
    auto alert = alerts.wait([&](const json& e) { return is_alert_start(e, a.detector); }, start, 8s);
    if (alert) r.alert_s = seconds_since(start, alert->first);
    auto closed = wait_registration(endpoint, false, 6s);
    if (closed && alert) r.registration_closed_s = seconds_since(alert->first, *closed);
    for (auto& t : floods) t.join();
    const auto end = clock_type::now();
    const double cpu_after = thread_cpu_seconds(server.pid(), "rampart-capture");
    if (cpu_before >= 0 && cpu_after >= 0) r.capture_cpu = (cpu_after - cpu_before) / seconds_since(start, end);
    std::string flood_out;
    for (const auto& o : flood_outs) flood_out += o;
    r.during = load.measure(start, end);
    r.http_during = load.measure(start, end, benign_load::door::http);
    r.failed = r.during.failed;
    {
      const auto zmq_before = load.measure(before_from, start, benign_load::door::zeromq);
      const auto zmq_during = load.measure(start, end, benign_load::door::zeromq);
      std::printf("  ZeroMQ clients' TTFT p99: %.1f ms before, %.1f ms during (server's view: %.1f, %.1f ms)\n",
                  zmq_before.ttft_p99_ms, zmq_during.ttft_p99_ms, zmq_before.server_ttft_p99_ms,
                  zmq_during.server_ttft_p99_ms);
      std::printf("  ZeroMQ clients: %.1f req/s before, %.1f during; mean request %.1f ms before, %.1f during "
                  "(server's view: %.1f, %.1f ms)\n",
                  zmq_before.requests_per_s, zmq_during.requests_per_s, zmq_before.client_total_ms,
                  zmq_during.client_total_ms, zmq_before.server_total_ms, zmq_during.server_total_ms);
    }
    auto is_deny = [](const json& e) {
      return e.value("event_type", "") == "policy" && e["policy"].value("action", "") == "deny";
    };
    r.deny_listed = alerts.wait(is_deny, start, 0ms).has_value();
    load.print_slowest(start, end);
    std::printf("  alert %.2f s, registration closed %.2f s after it, flood: %s\n", r.alert_s,
                r.registration_closed_s, flood_out.c_str());
    std::fflush(stdout);
    // Back to green after the level rose: searched from the alert on, since a flood that weakens (a niced tool on
    // a loaded machine) can let the level fall before the tool exits; that counts as 0 s after the end.
    auto green = alerts.wait([](const json& e) { return is_policy_level(e, "green"); },
                             alert ? alert->first : end, 60s);
    if (green) r.green_again_s = std::max(0.0, seconds_since(end, green->first));
    r.reopened = wait_registration(endpoint, true, 10s).has_value();
    // Collateral: every address or prefix deny-listed from the attack's start to now that is not inside one of
    // its attackers' prefixes, or that covers 127.0.0.1, where the registered clients connect from.
    for (const auto& [t, e] : alerts.events_since(start)) {
      if (!is_deny(e)) continue;
      for (const auto& s : e["policy"].value("sources", json::array())) {
        const std::string entry = s.is_string() ? s.get<std::string>() : s.value("source", "");
        const bool attacker = std::any_of(a.attackers.begin(), a.attackers.end(),
                                          [&](const std::string& p) { return inside(entry, p); });
        if (!attacker || inside("127.0.0.1", entry)) {
          ++r.collateral;
          r.collateral_entries.push_back(entry);
        }
      }
    }
    results.push_back(r);
    INFO(flood_out);
  }
  if (!results.empty()) {  // the last attack's quiet window after it
    const auto after_from = clock_type::now();
    std::this_thread::sleep_for(5s);
    results.back().after = load.measure(after_from, clock_type::now());
    results.back().http_after = load.measure(after_from, clock_type::now(), benign_load::door::http);
  }
  load.stop();
  for (auto& r : results) compute_ratios(&r);

  std::printf("\n%-50s %7s %10s %7s %8s %9s %9s %6s %5s %10s %8s %7s %8s %6s\n", "attack", "alert s",
              "reg.closed", "req/s", "TTFT p99", "HTTP rq/s", "HTTP TTFT", "failed", "deny", "collateral", "capt.CPU",
              "green s", "reopened", "after");
  std::printf("%-50s %7s %10s %7s %8s %9s %9s %6s %5s %10s %8s %7s %8s %6s\n", "(quiet windows either side)", "-",
              "-", "1.00", "1.00", "1.00", "1.00", "-", "-", "-", "-", "-", "-", "-");
  for (const auto& r : results) {
    std::printf("%-50s %7.2f %10.2f %7.2f %8.2f %9.2f %9.2f %6d %5s %10d %8.2f %7.1f %8s %6.2f\n",
                r.attack.c_str(), r.alert_s, r.registration_closed_s, r.rps_ratio, r.ttft_ratio, r.http_rps_ratio,
                r.http_ttft_ratio, r.failed, r.deny_listed ? "yes" : "no", r.collateral, r.capture_cpu,
                r.green_again_s, r.reopened ? "yes" : "no", r.after_ratio);
    for (const auto& c : r.collateral_entries) std::printf("  collateral deny-list entry: %s\n", c.c_str());
    std::printf("  (against %.1f requests/s, the mean of %.1f in the 5 s before it and %.1f in the 5 s after it)\n",
                (r.before.requests_per_s + r.after.requests_per_s) / 2, r.before.requests_per_s,
                r.after.requests_per_s);
  }
  std::printf("baseline: %.1f requests/s, time to first token p99 %.1f ms (6 registered clients: 4 on ZeroMQ, 2 on "
              "HTTP)\n\n",
              baseline.requests_per_s, baseline.ttft_p99_ms);
  std::fflush(stdout);

  for (const auto& r : results) {
    INFO(r.attack);
    CHECK(r.failed == 0);
    CHECK(r.alert_s >= 0);
    CHECK(r.alert_s <= 2.0);
    CHECK(r.registration_closed_s >= 0);
    CHECK(r.registration_closed_s <= 2.0);
    // Throughput and latency ratios are measurements of a shared 2-core machine that also runs the attack
    // traffic; they are printed above, held to the promised bounds when asked for (RAMPART_STRICT_TIMING=1, as
    // `make attack-demo` does) and to a loose floor always. What the server does is checked always.
    // A loose floor holds always, so a regression that halves registered goodput fails CI on any machine.
    CHECK(r.rps_ratio >= 0.5);
    CHECK(r.http_rps_ratio >= 0.5);  // registered users on the HTTP door keep their service like the others
    // (Before the engine had a CPU of its own, the anonymous request flood's TTFT p99 ranged 1.5-9x here, 19x
    // before budgets by class.)
    CHECK(r.ttft_ratio <= 5.0);
    CHECK(r.after_ratio >= 0.5);  // an attack leaves no lasting damage behind
    if (std::getenv("RAMPART_STRICT_TIMING") != nullptr) {
      CHECK(r.rps_ratio >= 0.9);
      CHECK(r.ttft_ratio <= 2.0);
      CHECK(r.http_rps_ratio >= 0.9);
      CHECK(r.http_ttft_ratio <= 2.0);
      CHECK(r.capture_cpu <= 0.15);
    }
    CHECK(r.capture_cpu >= 0);  // the capture thread exists and is named
    CHECK(r.collateral == 0);
    CHECK(r.green_again_s >= 0);
    CHECK(r.reopened);
  }
  // The connection flood's real sources are deny-listed at orange (when that attack ran: RAMPART_ATTACKS).
  const bool connection_flood_ran = std::any_of(attacks.begin(), attacks.end(), [](const attack& a) {
    return a.name.rfind("connection flood", 0) == 0;
  });
  if (connection_flood_ran) {
    auto r = std::find_if(results.begin(), results.end(),
                          [](const phase_result& p) { return p.attack.rfind("connection flood", 0) == 0; });
    REQUIRE(r != results.end());
    CHECK(r->deny_listed);
  }
}
