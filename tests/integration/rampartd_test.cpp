// rampartd as a real process: start-up, health, malformed input, reload and graceful shutdown.
#include <catch2/catch.hpp>

#include <signal.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>

#include "base/cpu_affinity.hpp"
#include "net/client.hpp"
#include "tests/support/http.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

using namespace rampart;
using namespace std::chrono_literals;

namespace {

struct running_server {
  int port = test::free_port();
  int metrics_port = test::free_port();
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  std::unique_ptr<test::child_process> proc;

  explicit running_server(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--endpoint", endpoint, "--metrics-listen",
                                     "127.0.0.1:" + std::to_string(metrics_port), "--alerts-publish",
                                     "tcp://127.0.0.1:" + std::to_string(test::free_port()), "--http-listen",
                                     "127.0.0.1:" + std::to_string(test::free_port())};
    args.insert(args.end(), extra.begin(), extra.end());
    proc = std::make_unique<test::child_process>(test::bin("rampartd"), args);
    bool ready = proc->wait_ready([&] {
      net::client c;
      c.connect(endpoint, nullptr);
      return c.ping(200ms);
    }, 20s);
    INFO(proc->log());
    REQUIRE(ready);
  }
};

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("rampartd answers a health check and stops cleanly on SIGINT", "[integration]") {
  running_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  nlohmann::json pong;
  REQUIRE(c.ping(2s, &pong));
  CHECK(pong["status"] == "ok");
  CHECK(pong["stages"]["gateway"]["up"] == true);
  server.proc->signal(SIGINT);
  auto status = server.proc->wait_exit(15s);
  REQUIRE(status);
  CHECK(*status == 0);
  CHECK(server.proc->log().find("stopped cleanly") != std::string::npos);
}

TEST_CASE("without a model rampartd is healthy but not ready, and /readyz, /healthz and pong say why",
          "[integration]") {
  running_server server;  // no --model
  const auto status_of = [](const std::string& response) { return response.substr(0, response.find("\r\n")); };
  const auto body_of = [](const std::string& response) {
    const size_t at = response.find("\r\n\r\n");
    return at == std::string::npos ? nlohmann::json() : nlohmann::json::parse(response.substr(at + 4), nullptr, false);
  };
  const std::string health = test::http_get(server.metrics_port, "/healthz");
  INFO(health);
  CHECK(status_of(health) == "HTTP/1.1 200 OK");
  CHECK(body_of(health)["status"] == "ok");
  CHECK(body_of(health)["stages"]["gateway"] == true);
  const std::string ready = test::http_get(server.metrics_port, "/readyz");
  INFO(ready);
  CHECK(status_of(ready) == "HTTP/1.1 503 Service Unavailable");
  CHECK(body_of(ready)["ready"] == false);
  CHECK(body_of(ready)["not_ready"] == nlohmann::json::array({"no model is loaded"}));
  CHECK(ready.find("Content-Type: application/json") != std::string::npos);

  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  nlohmann::json pong;
  REQUIRE(c.ping(2s, &pong));
  CHECK(pong["ready"] == false);
  CHECK(pong["not_ready"] == nlohmann::json::array({"no model is loaded"}));

  const std::string metrics = test::http_get(server.metrics_port, "/metrics");
  CHECK(status_of(metrics) == "HTTP/1.1 200 OK");
  CHECK(metrics.find("# TYPE rampart:num_requests_running gauge") != std::string::npos);
  CHECK(status_of(test::http_get(server.metrics_port, "/metrics/../etc/passwd")) == "HTTP/1.1 404 Not Found");
  CHECK(status_of(test::http_get(server.metrics_port, "/nothing-here")) == "HTTP/1.1 404 Not Found");
  // "/" is the web dashboard (on by default, on loopback).
  const std::string page = test::http_get(server.metrics_port, "/");
  CHECK(status_of(page) == "HTTP/1.1 200 OK");
  CHECK(page.find("Content-Type: text/html; charset=utf-8") != std::string::npos);
  // A request line and headers past 8 KiB are refused without reaching a route, and the listener keeps serving.
  const std::string huge = test::http_get(server.metrics_port, "/healthz?" + std::string(20000, 'a'));
  CHECK(huge.rfind("HTTP/1.1 200", 0) != 0);
  CHECK(status_of(test::http_get(server.metrics_port, "/healthz")) == "HTTP/1.1 200 OK");
}

TEST_CASE("a connection to the health listener that sends nothing is closed after 5 s and blocks no probe",
          "[integration]") {
  running_server server;
  const int idle = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(idle >= 0);
  timeval tv{10, 0};
  setsockopt(idle, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.metrics_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(test::http_get(server.metrics_port, "/healthz").rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  char byte;
  const ssize_t n = recv(idle, &byte, 1, 0);  // the server closes it (0) or answers an error, not never
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(idle);
  CHECK(n >= 0);
  CHECK(waited >= 4.0);
  CHECK(waited < 9.0);
}

TEST_CASE("rampartd exits 0 on SIGTERM", "[integration]") {
  running_server server;
  server.proc->signal(SIGTERM);
  auto status = server.proc->wait_exit(15s);
  REQUIRE(status);
  CHECK(*status == 0);
}

TEST_CASE("check-config reports file:line:column and exits 2 on a broken file", "[integration]") {
  auto dir = test::make_temp_dir("rampart-cfg");
  auto bad = write_file(dir, "bad.toml", "[frontend]\nendpoint = \"tcp://127.0.0.1:1\"\nbacklog = = 3\n");
  std::string out;
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", bad}, &out) == 2);
  CHECK(out.find(bad + ":3:11: ") != std::string::npos);
  auto unknown = write_file(dir, "unknown.toml", "[engine]\nthreds = 2\n");
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", unknown}, &out) == 2);
  CHECK(out.find(unknown + ":2:1: engine.threds: unknown key") != std::string::npos);
  auto good = write_file(dir, "good.toml", "[engine]\nthreads = 2\n");
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", good}, &out) == 0);
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", dir + "/missing.toml"}, &out) == 2);
  CHECK(out.find("missing.toml: cannot read file") != std::string::npos);
}

TEST_CASE("rampartd refuses to start on an invalid config with exit code 2", "[integration]") {
  auto dir = test::make_temp_dir("rampart-cfg");
  auto bad = write_file(dir, "bad.toml", "[log]\nlevel = 7\n");
  std::string out;
  CHECK(test::run_command(test::bin("rampartd"), {"--config", bad}, &out) == 2);
  CHECK(out.find(bad + ":2:9: log.level: expected a string, found an integer") != std::string::npos);
}

TEST_CASE("help, version and unknown options", "[integration]") {
  std::string out;
  CHECK(test::run_command(test::bin("rampartd"), {"--help"}, &out) == 0);
  CHECK(out.find("--check-config") != std::string::npos);
  CHECK(test::run_command(test::bin("rampartd"), {"--version"}, &out) == 0);
  CHECK(out.rfind("rampartd ", 0) == 0);
  CHECK(test::run_command(test::bin("rampartd"), {"--frobnicate"}, &out) == 2);
}

TEST_CASE("malformed frames get error events and the server keeps serving", "[integration]") {
  running_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  struct probe {
    std::vector<std::string> frames;
    const char* code;
  };
  std::vector<probe> probes = {
      {{"rampart/1"}, "bad_frame"},
      {{"nonsense", "ping", "{}"}, "unsupported_protocol"},
      {{"rampart/1", "teleport", "{}"}, "unknown_type"},
      {{"rampart/1", "generate", "{\"request_id\":\"x\",\"text\":\"\xc3\"}"}, "bad_utf8"},
      {{"rampart/1", "generate", "{{{"}, "bad_json"},
      {{"rampart/1", "generate", "{\"request_id\":\"x\",\"text\":\"a\",\"max_tokens\":-4}"}, "bad_parameter"},
  };
  for (const auto& p : probes) {
    REQUIRE(c.send_frames(p.frames));
    auto ev = c.receive(5s);
    REQUIRE(ev);
    CHECK(ev->type == "error");
    CHECK(ev->body["code"] == p.code);
  }
  CHECK(c.ping(2s));
  net::client other;
  REQUIRE(other.connect(server.endpoint, nullptr));
  CHECK(other.ping(2s));
}

TEST_CASE("an oversized message drops only that connection", "[integration]") {
  running_server server;
  net::client big;
  REQUIRE(big.connect(server.endpoint, nullptr));
  std::string huge(2 << 20, 'a');  // past the default 1 MiB ZMQ_MAXMSGSIZE
  big.send_frames({"rampart/1", "generate", huge});
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  CHECK(c.ping(2s));
}

TEST_CASE("SIGHUP with an invalid file keeps the old configuration and the server running", "[integration]") {
  auto dir = test::make_temp_dir("rampart-cfg");
  auto path = write_file(dir, "rampart.toml", "[log]\nlevel = \"info\"\n");
  running_server server({"--config", path});
  write_file(dir, "rampart.toml", "[log]\nlevel = \n");
  server.proc->signal(SIGHUP);
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  REQUIRE(server.proc->wait_ready([&] {
    return server.proc->log().find("configuration not reloaded") != std::string::npos;
  }, 5s));
  CHECK(c.ping(2s));
  write_file(dir, "rampart.toml", "[log]\nlevel = \"debug\"\n");
  server.proc->signal(SIGHUP);
  REQUIRE(server.proc->wait_ready([&] {
    return server.proc->log().find("configuration reloaded") != std::string::npos;
  }, 5s));
  CHECK(c.ping(2s));
}

TEST_CASE("JSON log lines are valid JSON objects", "[integration]") {
  running_server server({"--log-format", "json"});
  server.proc->signal(SIGTERM);
  REQUIRE(server.proc->wait_exit(15s));
  std::istringstream lines(server.proc->log());
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    INFO(line);
    REQUIRE(j.is_object());
    CHECK(j.contains("level"));
    CHECK(j.contains("msg"));
    ++parsed;
  }
  CHECK(parsed >= 2);
}

namespace {

// The named field of /proc/PID/status ("" when absent).
std::string proc_status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      auto v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return {};
}

}  // namespace

TEST_CASE("started as root with server.user set, rampartd captures and then runs with no capabilities",
          "[integration][privileges]") {
  if (geteuid() != 0) {
    WARN("not root: the privilege drop is checked only when the tests run as root (as CI does)");
    return;
  }
  auto dir = test::make_temp_dir("rampart-user");
  auto cfg = write_file(dir, "rampart.toml", "[server]\nuser = \"nobody\"\n[monitor]\ninterface = \"lo\"\n");
  running_server server({"--config", cfg});
  const pid_t pid = server.proc->pid();
  // Every thread of the process: its real, effective, saved and file-system uids are nobody's (65534 in
  // Debian's base-passwd), and no capability is left in the permitted, effective or ambient sets.
  DIR* tasks = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  REQUIRE(tasks);
  int threads = 0;
  while (dirent* d = readdir(tasks)) {
    if (d->d_name[0] == '.') continue;
    const std::string status = "/proc/" + std::to_string(pid) + "/task/" + d->d_name + "/status";
    std::ifstream in(status);
    std::string line;
    std::map<std::string, std::string> f;
    while (std::getline(in, line)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      auto v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      f[line.substr(0, colon)] = v;
    }
    INFO(status);
    CHECK(f["Uid"] == "65534\t65534\t65534\t65534");
    CHECK(f["CapPrm"] == "0000000000000000");
    CHECK(f["CapEff"] == "0000000000000000");
    CHECK(f["CapAmb"] == "0000000000000000");
    ++threads;
  }
  closedir(tasks);
  CHECK(threads > 1);
  const std::string log = server.proc->log();
  INFO(log);
  CHECK(log.find("monitor: capturing on lo") != std::string::npos);  // the capture opened before the drop
  CHECK(log.find("running as user nobody with no capabilities") != std::string::npos);
  CHECK(proc_status_field(pid, "NoNewPrivs") == "1");
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  CHECK(c.ping(2s));
}

namespace {

// Each thread of PID: its name and the CPUs it may run on (Cpus_allowed_list in /proc).
std::vector<std::pair<std::string, std::string>> thread_cpus(pid_t pid) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(dir + "/" + e->d_name + "/comm"), status(dir + "/" + e->d_name + "/status");
    std::string name, line, cpus;
    std::getline(comm, name);
    while (std::getline(status, line)) {
      if (line.rfind("Cpus_allowed_list:", 0) == 0) cpus = line.substr(line.find_first_not_of(" \t", 18));
    }
    out.emplace_back(name, cpus);
  }
  closedir(d);
  return out;
}

}  // namespace

TEST_CASE("with engine.cpus the engine computes on those CPUs and the server's other threads on the rest",
          "[integration]") {
  const std::vector<int> allowed = allowed_cpus();
  if (allowed.size() < 2) {
    std::cout << "SKIPPED: needs two CPUs, this process may use " << allowed.size() << "\n";
    return;
  }
  const int engine_cpu = allowed.back();
  std::vector<int> rest(allowed.begin(), allowed.end() - 1);
  const std::string dir = test::make_temp_dir("rampart-cpus");
  const std::string cfg = write_file(dir, "rampart.toml",
                                     "[model]\npath = \"" + std::string(RAMPART_SERVER_MODEL_DIR) + "\"\ntokenizer = \"" +
                                         test::tokenizer_dir() + "\"\n[engine]\ncpus = [" +
                                         std::to_string(engine_cpu) + "]\n");
  running_server s({"--config", cfg});
  net::client c;
  REQUIRE(c.connect(s.endpoint, nullptr));
  c.send("generate", {{"request_id", "pinned"}, {"ids", {1000, 1001, 1002}}, {"max_tokens", 4}, {"temperature", 0}});
  bool done = false;
  for (int i = 0; i < 100 && !done; ++i) {
    auto ev = c.receive(200ms);
    done = ev && ev->type == "done";
  }
  REQUIRE(done);
  CHECK(s.proc->log().find("the engine runs on CPUs " + std::to_string(engine_cpu) + ", the server's other threads on " +
                           cpu_list_text(rest)) != std::string::npos);
  const auto threads = thread_cpus(s.proc->pid());
  REQUIRE_FALSE(threads.empty());
  int on_engine_cpu = 0;
  for (const auto& [name, cpus] : threads) {
    INFO(name << " on " << cpus);
    if (cpus == std::to_string(engine_cpu)) {
      ++on_engine_cpu;  // the engine's thread (one: engine.threads defaults to one per CPU given)
    } else {
      CHECK(cpus == cpu_list_text(rest));  // the network, the actors, the capture: none on the engine's CPU
    }
  }
  CHECK(on_engine_cpu == 1);
}

TEST_CASE("engine.cpus naming a CPU this process may not run on stops rampartd at start, naming it",
          "[integration]") {
  const std::vector<int> allowed = allowed_cpus();
  REQUIRE_FALSE(allowed.empty());
  if (allowed.back() >= 1023) {
    std::cout << "SKIPPED: every CPU number up to 1023 is allowed here\n";
    return;
  }
  const std::string dir = test::make_temp_dir("rampart-cpus-bad");
  const std::string cfg = write_file(dir, "rampart.toml", "[engine]\ncpus = [1023]\n");
  std::string out;
  CHECK(test::run_command(test::bin("rampartd"), {"--config", cfg, "--metrics-listen", "off", "--alerts-publish",
                                                  "off"}, &out) == 1);
  CHECK(out.find("engine.cpus: CPU 1023 is not one this process may run on (" + cpu_list_text(allowed) + ")") !=
        std::string::npos);
}
