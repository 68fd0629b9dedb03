// The web dashboard's routes on the operators' HTTP listener, over real sockets: its files with their content
// types and the page's security headers, who may read them (loopback Host names without a token; the token as a
// cookie or a bearer header with one), the deny-list route, and the live event stream (history, resuming,
// bounded streams, a prompt stop). Also net::event_feed, the ring the stream reads.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "admission/deny_list.hpp"
#include "net/event_feed.hpp"
#include "net/http_listener.hpp"
#include "net/metrics.hpp"
#include "tests/support/http.hpp"
#include "tests/support/process.hpp"

using namespace std::chrono_literals;

namespace rampart::test {
namespace {

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

std::string get(int port, const std::string& path, const std::string& headers = "Host: 127.0.0.1\r\n") {
  return http_exchange(port, "GET " + path + " HTTP/1.1\r\n" + headers + "\r\n");
}

// A connection kept open, read until a marker arrives (event streams never end by themselves).
class open_connection {
 public:
  open_connection(int port, const std::string& request) : fd_(connect_loopback(port, 100)) {
    ok_ = fd_ >= 0 && send(fd_, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  }
  ~open_connection() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }
  // Reads until MARKER is in what was received or TIMEOUT passes; returns everything received so far.
  const std::string& read_until(const std::string& marker, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (received_.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n > 0) received_.append(buf, static_cast<size_t>(n));
    }
    return received_;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string received_;
};

// An event stream; while every slot is still held by streams whose clients just left (a slot is freed by the
// write that fails, within about 2 s), it retries for up to 5 s.
std::unique_ptr<open_connection> open_stream(int port, const std::string& headers = "") {
  const std::string request = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n";
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    auto c = std::make_unique<open_connection>(port, request);
    if (status_line(c->read_until("\r\n", 2s)) != "HTTP/1.1 503 Service Unavailable" ||
        std::chrono::steady_clock::now() > deadline) {
      return c;
    }
    std::this_thread::sleep_for(100ms);
  }
}

struct dashboard_listener {
  int port = free_port();
  net::event_feed feed{8};
  std::mutex mu;
  std::vector<std::string> refused;  // addresses reported for a wrong token
  std::unique_ptr<net::http_listener> listener;
  explicit dashboard_listener(const std::string& token = "") {
    net::http_routes routes;
    routes.metrics = [] { return std::string("x 1\n"); };
    routes.dashboard.enabled = true;
    routes.dashboard.operator_token = token;
    routes.dashboard.feed = &feed;
    routes.dashboard.deny_list = [] { return std::string(R"({"entries":[],"total":0})"); };
    routes.dashboard.token_refused = [this](const std::string& address) {
      std::lock_guard<std::mutex> lock(mu);
      refused.push_back(address);
    };
    std::string err;
    listener = net::http_listener::start("127.0.0.1:" + std::to_string(port), routes, &err);
    INFO(err);
    REQUIRE(listener != nullptr);
  }
};

TEST_CASE("event_feed numbers events, keeps the last ones and says how many a slow reader missed", "[net][dashboard]") {
  net::event_feed feed(3);
  CHECK(feed.last_id() == 0);
  CHECK(feed.after(0, 10, 0ms).events.empty());
  for (int i = 1; i <= 5; ++i) feed.push("alert.2", "{\"n\":" + std::to_string(i) + "}");
  CHECK(feed.last_id() == 5);
  net::event_feed::batch b = feed.after(0, 10, 0ms);  // 1 and 2 left the ring of 3
  REQUIRE(b.events.size() == 3);
  CHECK(b.missed == 2);
  CHECK(b.events[0].id == 3);
  CHECK(b.events[0].json == "{\"n\":3}");
  CHECK(b.events[2].id == 5);
  b = feed.after(3, 1, 0ms);  // at most MAX, from just after AFTER
  REQUIRE(b.events.size() == 1);
  CHECK(b.events[0].id == 4);
  CHECK(b.missed == 0);
  CHECK(feed.after(5, 10, 0ms).events.empty());
  // Larger than the bound: replaced by a note, never stored whole.
  feed.push("alert.1", std::string(net::event_feed::max_event_bytes + 1, 'x'));
  b = feed.after(5, 10, 0ms);
  REQUIRE(b.events.size() == 1);
  CHECK(b.events[0].json.find("too large") != std::string::npos);
  CHECK(b.events[0].json.size() < 200);
  // A waiting reader wakes for a push from another thread, and at once on close.
  std::thread pusher([&] {
    std::this_thread::sleep_for(50ms);
    feed.push("threat_level", "{}");
  });
  auto t0 = std::chrono::steady_clock::now();
  b = feed.after(6, 10, 5000ms);
  pusher.join();
  CHECK(b.events.size() == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    feed.close();
  });
  t0 = std::chrono::steady_clock::now();
  CHECK(feed.after(7, 10, 5000ms).events.empty());
  closer.join();
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("the dashboard's files come with their types and a page policy that allows only its own origin",
          "[net][dashboard]") {
  dashboard_listener d;
  const std::string page = get(d.port, "/");
  CHECK(status_line(page) == "HTTP/1.1 200 OK");
  CHECK(page.find("Content-Type: text/html; charset=utf-8") != std::string::npos);
  CHECK(page.find("Content-Security-Policy: default-src 'none'; script-src 'self';") != std::string::npos);
  CHECK(page.find("frame-ancestors 'none'") != std::string::npos);
  CHECK(page.find("X-Frame-Options: DENY") != std::string::npos);
  CHECK(page.find("<script src=\"/dashboard.js\"") != std::string::npos);
  const std::string js = get(d.port, "/dashboard.js");
  CHECK(js.find("Content-Type: text/javascript; charset=utf-8") != std::string::npos);
  CHECK(js.find("new EventSource('/api/events')") != std::string::npos);
  const std::string chart = get(d.port, "/chart.min.js");
  CHECK(status_line(chart) == "HTTP/1.1 200 OK");
  CHECK(chart.find("Content-Length: 199560\r\n") != std::string::npos);  // Debian's Chart.js 3.9.1, as pinned
  CHECK(chart.find(" * Chart.js v3.9.1") != std::string::npos);
  CHECK(get(d.port, "/dashboard.css").find("Content-Type: text/css; charset=utf-8") != std::string::npos);
  CHECK(get(d.port, "/favicon.svg").find("Content-Type: image/svg+xml; charset=utf-8") != std::string::npos);
  CHECK(status_line(get(d.port, "/api/deny")) == "HTTP/1.1 200 OK");
  CHECK(get(d.port, "/api/deny").find(R"({"entries":[],"total":0})") != std::string::npos);
  CHECK(status_line(get(d.port, "/api/other")) == "HTTP/1.1 404 Not Found");
  CHECK(status_line(get(d.port, "/index.html")) == "HTTP/1.1 404 Not Found");
  const std::string post = http_exchange(d.port, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(status_line(post) == "HTTP/1.1 405 Method Not Allowed");
}

TEST_CASE("without a token the dashboard answers loopback Host names only", "[net][dashboard]") {
  dashboard_listener d;
  const std::string p = ":" + std::to_string(d.port);
  const std::vector<std::string> loopback = {"127.0.0.1", "127.0.0.1" + p, "localhost", "localhost" + p, "[::1]",
                                            "[::1]" + p};
  for (const std::string& host : loopback) {
    INFO(host);
    CHECK(status_line(get(d.port, "/", "Host: " + host + "\r\n")) == "HTTP/1.1 200 OK");
  }
  // A name rebound to 127.0.0.1 by someone else's page, look-alikes, and no Host at all.
  const std::vector<std::string> elsewhere = {"attacker.example", "attacker.example" + p, "127.0.0.1.attacker.example",
                                             "localhost.attacker.example", "[::1]x", "[::2]", "10.0.0.1" + p};
  for (const std::string& host : elsewhere) {
    INFO(host);
    CHECK(status_line(get(d.port, "/api/deny", "Host: " + host + "\r\n")) == "HTTP/1.1 403 Forbidden");
  }
  CHECK(status_line(http_exchange(d.port, "GET / HTTP/1.0\r\n\r\n")) == "HTTP/1.1 403 Forbidden");
  // The probes and the scrape are not the dashboard's: they answer any Host, as before.
  CHECK(status_line(get(d.port, "/metrics", "Host: attacker.example\r\n")) == "HTTP/1.1 200 OK");
}

TEST_CASE("with a token the dashboard needs it as the login cookie or a bearer header", "[net][dashboard]") {
  const std::string token = "s3cret-Operator.token_0123456789";
  dashboard_listener d(token);
  const std::string h = "Host: dashboard.example.net\r\n";  // exposed: any Host, the token decides
  CHECK(status_line(get(d.port, "/", h)) == "HTTP/1.1 401 Unauthorized");
  CHECK(get(d.port, "/", h).find(token) == std::string::npos);
  CHECK(status_line(get(d.port, "/api/events", h)) == "HTTP/1.1 401 Unauthorized");
  CHECK(status_line(get(d.port, "/api/deny", h + "Cookie: rampart_operator=wrong\r\n")) == "HTTP/1.1 401 Unauthorized");
  CHECK(status_line(get(d.port, "/api/deny", h + "Authorization: Bearer " + token + "x\r\n")) ==
        "HTTP/1.1 401 Unauthorized");
  CHECK(status_line(get(d.port, "/api/deny", h + "Authorization: Bearer " + token.substr(1) + "\r\n")) ==
        "HTTP/1.1 401 Unauthorized");
  CHECK(status_line(get(d.port, "/login?token=wrong", h)) == "HTTP/1.1 401 Unauthorized");
  CHECK(status_line(get(d.port, "/login", h)) == "HTTP/1.1 401 Unauthorized");
  const std::string login = get(d.port, "/login?token=" + token, h);
  CHECK(status_line(login) == "HTTP/1.1 303 See Other");
  CHECK(login.find("Location: /\r\n") != std::string::npos);
  CHECK(login.find("Set-Cookie: rampart_operator=" + token + "; Path=/; HttpOnly; SameSite=Strict\r\n") !=
        std::string::npos);
  CHECK(status_line(get(d.port, "/", h + "Cookie: theme=dark; rampart_operator=" + token + "\r\n")) ==
        "HTTP/1.1 200 OK");
  CHECK(status_line(get(d.port, "/api/deny", h + "Authorization: Bearer " + token + "\r\n")) == "HTTP/1.1 200 OK");
  // The page itself never carries the token.
  CHECK(get(d.port, "/", h + "Cookie: rampart_operator=" + token + "\r\n").find(token) == std::string::npos);
  CHECK(status_line(get(d.port, "/metrics", h)) == "HTTP/1.1 200 OK");
  // Each wrong token (two Bearer headers, two logins) was reported with the client's address, for the monitor;
  // a request with no credential (a browser before its login) and a wrong cookie were not.
  std::lock_guard<std::mutex> lock(d.mu);
  CHECK(d.refused == std::vector<std::string>(4, "127.0.0.1"));
}

TEST_CASE("the event stream sends the recent past, then each event as it comes, and resumes from Last-Event-ID",
          "[net][dashboard]") {
  dashboard_listener d;
  d.feed.push("alert.2", R"({"event_type":"alert","n":1})");
  d.feed.push("threat_level", R"({"event_type":"threat_level","n":2})");
  {
    open_connection c(d.port, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    REQUIRE(c.ok());
    const std::string& got = c.read_until("\"n\":2}\n\n", 3s);
    CHECK(status_line(got) == "HTTP/1.1 200 OK");
    CHECK(got.find("Content-Type: text/event-stream") != std::string::npos);
    CHECK(got.find("retry: 1000\n\n") != std::string::npos);
    CHECK(got.find("id: 1\ndata: {\"event_type\":\"alert\",\"n\":1}\n\n") != std::string::npos);
    CHECK(got.find("id: 2\ndata: {\"event_type\":\"threat_level\",\"n\":2}\n\n") != std::string::npos);
    const auto t0 = std::chrono::steady_clock::now();
    d.feed.push("policy", "{\"a\":1,\n\"b\":2}");  // a newline inside would end the data field: flattened
    CHECK(c.read_until("id: 3\n", 3s).find("id: 3\ndata: {\"a\":1, \"b\":2}\n\n") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  }
  {
    auto c = open_stream(d.port, "Last-Event-ID: 2\r\n");
    const std::string& got = c->read_until("id: 3\n", 3s);
    CHECK(got.find("id: 3\n") != std::string::npos);
    CHECK(got.find("id: 2\n") == std::string::npos);
  }
  // Behind the ring (8 events): told how many were missed, then the oldest still held.
  for (int i = 0; i < 10; ++i) d.feed.push("alert.1", "{}");
  {
    auto c = open_stream(d.port, "Last-Event-ID: 3\r\n");
    const std::string& got = c->read_until("id: 13\n", 3s);
    CHECK(got.find("event: missed\ndata: {\"missed\":2}\n\n") != std::string::npos);
    CHECK(got.find("id: 6\n") != std::string::npos);
  }
  // A Last-Event-ID that is not a number, or from the future: the recent past, as for a new stream.
  for (const std::string id : {"abc", "99999999999999999999999", "100"}) {
    auto c = open_stream(d.port, "Last-Event-ID: " + id + "\r\n");
    INFO(id);
    CHECK(c->read_until("id: 13\n", 3s).find("id: 13\n") != std::string::npos);
  }
}

TEST_CASE("event streams are bounded, leave the probes served, and end when the listener stops",
          "[net][dashboard]") {
  dashboard_listener d;
  std::vector<std::unique_ptr<open_connection>> streams;
  for (int i = 0; i < net::http_listener::max_event_streams; ++i) {
    streams.push_back(std::make_unique<open_connection>(d.port, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    CHECK(streams.back()->read_until("retry: 1000", 3s).find("retry: 1000") != std::string::npos);
  }
  const std::string refused = get(d.port, "/api/events");
  CHECK(status_line(refused) == "HTTP/1.1 503 Service Unavailable");
  CHECK(refused.find("too many event streams") != std::string::npos);
  CHECK(status_line(get(d.port, "/metrics")) == "HTTP/1.1 200 OK");
  CHECK(status_line(get(d.port, "/")) == "HTTP/1.1 200 OK");
  // One closes: the write that fails (at the latest the next second's comment) frees its place.
  streams.pop_back();
  const auto closed = std::chrono::steady_clock::now();
  auto again = open_stream(d.port);
  CHECK(status_line(again->read_until("\r\n", 2s)) == "HTTP/1.1 200 OK");
  CHECK(std::chrono::steady_clock::now() - closed < 4s);
  // Stopping with streams open: each ends (the server closes it), and a client that closes in turn, as a
  // browser does, lets the listener stop at once.
  streams.push_back(std::move(again));
  const auto t0 = std::chrono::steady_clock::now();
  std::thread stopper([&] { d.listener.reset(); });
  for (auto& s : streams) s->read_until("never sent", 3s);  // returns at the end of the stream
  streams.clear();
  stopper.join();
  const auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  INFO("stopped in " << stop_ms.count() << " ms");
  // civetweb's accepting thread notices a stop at its next poll of the listening socket (every 2 s), open
  // streams or not; the streams themselves end within a wait on the feed (250 ms).
  CHECK(stop_ms < 3s);
}

TEST_CASE("server_metrics will not serve the dashboard off loopback without an operator token", "[net][dashboard]") {
  net::server_metrics m;
  const std::string any = "0.0.0.0:" + std::to_string(free_port());
  std::string err;
  CHECK_FALSE(m.serve(any, nullptr, nullptr, true, "", &err));
  CHECK(err.find("off loopback: it needs an operator token") != std::string::npos);
  CHECK(m.serve(any, nullptr, nullptr, false, "", &err));  // no dashboard: the scrape alone, as before
  m.stop_serving();
  const int port = free_port();
  CHECK(m.serve("127.0.0.1:" + std::to_string(port), nullptr, nullptr, true, "", &err));
  CHECK(status_line(get(port, "/api/deny")) == "HTTP/1.1 200 OK");
  CHECK(get(port, "/api/deny").find(R"({"entries":[],"total":0})") != std::string::npos);
}

}  // namespace
}  // namespace rampart::test

namespace rampart::test {
namespace {

TEST_CASE("the dashboard's deny list leaves expired entries out, latest expiry first, at most 1,000 listed",
          "[net][dashboard]") {
  net::server_metrics m;
  CHECK(m.deny_list_json() == R"({"entries":[],"total":0})");  // none handed over yet
  auto list = std::make_shared<admission::deny_list>();
  const int64_t now = admission::monotonic_ms();
  std::string error;
  REQUIRE(list->add("10.0.0.0/8", now + 60000, &error));
  REQUIRE(list->add("192.0.2.7", now + 600000, &error));
  REQUIRE(list->add("198.51.100.1", now - 1, &error));  // expired, not yet swept
  m.set_deny_list(list);
  nlohmann::json j = nlohmann::json::parse(m.deny_list_json());
  CHECK(j["total"] == 2);
  REQUIRE(j["entries"].size() == 2);
  CHECK(j["entries"][0]["prefix"] == "192.0.2.7/32");
  CHECK(j["entries"][0]["expires_in_s"].get<double>() > 590);
  CHECK(j["entries"][0]["spares_tenants"] == false);
  CHECK(j["entries"][1]["prefix"] == "10.0.0.0/8");
  CHECK(j["entries"][1]["spares_tenants"] == true);  // a prefix always spares tenant credentials
  // A list longer than the page shows: the total says so, the entries stop at the bound.
  auto big = std::make_shared<admission::deny_list>();
  for (int i = 0; i < 1500; ++i) {
    REQUIRE(big->add("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250), now + 1000 + i, &error));
  }
  m.set_deny_list(big);
  j = nlohmann::json::parse(m.deny_list_json());
  CHECK(j["total"] == 1500);
  REQUIRE(j["entries"].size() == net::server_metrics::max_deny_listed);
  CHECK(j["entries"][0]["prefix"] == "10.1.5.249/32");  // the latest expiry (i = 1499)
  CHECK(j["entries"][999]["prefix"] == "10.1.2.0/32");   // i = 500: the 1,000th latest
}

}  // namespace
}  // namespace rampart::test
