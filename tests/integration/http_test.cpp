// rampartd's OpenAI-compatible HTTP door with real clients: the official openai SDK (Node, pinned in
// tests/integration/openai), curl -N, and the ZeroMQ client for the same request; the policy's sheds as 429; a
// client that goes away freeing its KV blocks.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "tests/integration/server_fixture.hpp"
#include "tests/support/http.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string model_name = "server-v3";  // the served model's folder name (RAMPART_SERVER_MODEL_DIR)
const json castle = json::array({{{"role", "user"}, {"content", "Write one short sentence about castles."}}});

struct http_server {
  std::string dir = test::make_temp_dir("rampart-http");
  int http_port = test::free_port();
  std::unique_ptr<test::model_server> server;
  http_server() {
    std::ofstream(dir + "/policy.toml") << "[policy]\nhold_s = 0\ncool_down_s = 0\n";
    server = std::make_unique<test::model_server>(
        "", "[http]\nenabled = true\nlisten = \"127.0.0.1:" + std::to_string(http_port) +
                "\"\n[admission]\naccounts_db = \"" + dir + "/accounts.db\"\npolicy_file = \"" + dir +
                "/policy.toml\"\npolicy_poll_ms = 200\n");
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(http_port) + "/v1"; }
};

std::string openai_dir() { return test::source_dir() + "/tests/integration/openai"; }
bool have_openai_sdk() { return std::ifstream(openai_dir() + "/node_modules/openai/package.json").good(); }

// A request's text over ZeroMQ, every token event's text joined.
std::string zmq_text(const std::string& endpoint, const json& generate) {
  net::client c;
  REQUIRE(c.connect(endpoint, nullptr));
  c.send("generate", generate);
  std::string text;
  for (;;) {
    auto ev = c.receive(30s);
    REQUIRE(ev);
    if (ev->type == "token") text += ev->body["text"].get<std::string>();
    if (ev->type == "done") return text;
    REQUIRE((ev->type == "accepted" || ev->type == "token"));
  }
}

json zmq_stats(const std::string& endpoint) {
  net::client c;
  REQUIRE(c.connect(endpoint, nullptr));
  c.send("stats", json::object());
  auto ev = c.receive(10s);
  REQUIRE(ev);
  REQUIRE(ev->type == "stats");
  return ev->body;
}

// The delta texts of a chat completion event stream, joined.
std::string sse_text(const std::string& stream) {
  std::string text;
  size_t at = 0;
  while ((at = stream.find("data: {", at)) != std::string::npos) {
    const size_t end = stream.find('\n', at);
    const json chunk = json::parse(stream.substr(at + 6, end - at - 6));
    for (const auto& choice : chunk["choices"]) text += choice["delta"].value("content", "");
    at = end;
  }
  return text;
}

}  // namespace

TEST_CASE("the official openai SDK streams from rampartd anonymously and with a tenant's key, and gets 429 with "
          "Retry-After when the level sheds anonymous clients",
          "[http]") {
  if (!have_openai_sdk()) {
    WARN("SKIPPED: the openai SDK is not installed (tools/setup.sh installs it into tests/integration/openai)");
    return;
  }
  http_server s;
  net::client c;
  REQUIRE(c.connect(s.server->endpoint, nullptr));
  c.send("register", {{"name", "httpuser"}});
  auto reg = c.receive(10s);
  REQUIRE(reg);
  REQUIRE(reg->type == "registered");
  const std::string key = reg->body["api_key"];

  // The monitor captures the HTTP port too (service ports derived from the config), when it can capture at all.
  if (geteuid() == 0) {
    REQUIRE(s.server->proc->wait_ready(
        [&] { return s.server->proc->log().find("monitor: capturing") != std::string::npos; }, 5s));
    CHECK(s.server->proc->log().find("tcp dst port " + std::to_string(s.http_port)) != std::string::npos);
  }
  std::string out;
  int rc = test::run_command("/usr/bin/env", {"node", openai_dir() + "/client_test.mjs", "serve", s.base_url(),
                                              model_name, key},
                             &out);
  INFO(out);
  INFO(s.server->proc->log());
  REQUIRE(rc == 0);
  const json seen = json::parse(out.substr(out.rfind("{\"text\"")));
  // The SDK's greedy text is the ZeroMQ door's for the same request.
  CHECK(seen["text"] == zmq_text(s.server->endpoint, {{"request_id", "z"}, {"messages", castle}, {"max_tokens", 12},
                                                      {"temperature", 0}}));
  CHECK(seen["usage"]["completion_tokens"] == 12);

  std::ofstream(s.dir + "/policy.toml") << "[policy]\nhold_s = 0\ncool_down_s = 0\noverride = \"red\"\n"
                                        << "[policy.levels.red]\nretry_after_ms = 4321\nanonymous = { admitted = false }\n";
  REQUIRE(s.server->proc->wait_ready(
      [&] { return s.server->proc->log().find("threat level in force green -> red") != std::string::npos; }, 10s));
  rc = test::run_command("/usr/bin/env", {"node", openai_dir() + "/client_test.mjs", "shed", s.base_url(), model_name},
                         &out);
  INFO(out);
  REQUIRE(rc == 0);
  const json shed = json::parse(out.substr(out.rfind("{\"status\"")));
  CHECK(shed["status"] == 429);
  CHECK(shed["retry_after"] == 5);  // 4321 ms, rounded up to whole seconds
  CHECK(shed["code"] == "anonymous_closed");
}

TEST_CASE("curl -N streams the same greedy tokens over HTTP as the ZeroMQ door sends for the same request",
          "[http]") {
  http_server s;
  const json body = {{"model", model_name}, {"messages", castle}, {"max_tokens", 16}, {"temperature", 0},
                     {"stream", true}};
  std::string out;
  const int rc = test::run_command("/usr/bin/env", {"curl", "-sN", "--max-time", "60", s.base_url() + "/chat/completions",
                                                    "-H", "Content-Type: application/json", "-d", body.dump()},
                                   &out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("data: [DONE]") != std::string::npos);
  const std::string over_zmq = zmq_text(s.server->endpoint, {{"request_id", "z"}, {"messages", castle},
                                                             {"max_tokens", 16}, {"temperature", 0}});
  CHECK(!over_zmq.empty());
  CHECK(sse_text(out) == over_zmq);
  // A completions prompt of token ids, too.
  const std::string ids = test::http_exchange(
      s.http_port, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                       std::to_string(json({{"model", model_name}, {"prompt", {1, 2, 3}}, {"max_tokens", 4},
                                            {"temperature", 0}}).dump().size()) +
                       "\r\n\r\n" + json({{"model", model_name}, {"prompt", {1, 2, 3}}, {"max_tokens", 4},
                                          {"temperature", 0}}).dump());
  CHECK(ids.rfind("HTTP/1.1 200 OK", 0) == 0);
  const json answer = json::parse(ids.substr(ids.find("\r\n\r\n") + 4));
  CHECK(answer["choices"][0]["text"] == zmq_text(s.server->endpoint, {{"request_id", "i"}, {"ids", {1, 2, 3}},
                                                                      {"max_tokens", 4}, {"temperature", 0}}));
  CHECK(answer["usage"]["prompt_tokens"] == 3);
}

TEST_CASE("an HTTP client that goes away mid-stream cancels its generation and its KV blocks are freed", "[http]") {
  http_server s;
  const json before = zmq_stats(s.server->endpoint);
  const int64_t total = before["scheduler"]["kv"]["total_blocks"];
  REQUIRE(before["scheduler"]["kv"]["free_blocks"] == total);
  const std::string body = json({{"model", model_name}, {"messages", castle}, {"max_tokens", 2000},
                                 {"ignore_eos", true}, {"stream", true}}).dump();
  {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(s.http_port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    REQUIRE(send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    std::string got;
    char buf[4096];
    while (std::count(got.begin(), got.end(), '\n') < 12) {  // a few chunks in
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      REQUIRE(n > 0);
      got.append(buf, static_cast<size_t>(n));
    }
    CHECK(got.rfind("HTTP/1.1 200 OK", 0) == 0);
    close(fd);
  }
  json after;
  for (int i = 0; i < 100; ++i) {
    after = zmq_stats(s.server->endpoint);
    if (after["requests"]["in_flight"] == 0 && after["scheduler"]["kv"]["free_blocks"] == total) break;
    std::this_thread::sleep_for(50ms);
  }
  INFO(after.dump());
  CHECK(after["requests"]["in_flight"] == 0);
  CHECK(after["scheduler"]["kv"]["free_blocks"] == total);
  CHECK(after["requests"]["finished"] == 1);  // ended as cancelled, once
}
