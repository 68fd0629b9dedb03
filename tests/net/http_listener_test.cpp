// net::http_listener: the routes answer with their status codes, anything else is refused by method or path,
// oversized requests never reach a route, and a listener that cannot bind says so.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>

#include "net/http_listener.hpp"
#include "tests/support/http.hpp"
#include "tests/support/process.hpp"

namespace rampart::test {
namespace {

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

TEST_CASE("the HTTP listener serves its three routes and refuses the rest", "[net][http]") {
  std::atomic<bool> healthy{true}, ready{false};
  std::atomic<int> calls{0};
  net::http_routes routes;
  routes.metrics = [&] {
    ++calls;
    return std::string("# TYPE x gauge\nx 1\n");
  };
  routes.health = [&] {
    ++calls;
    return net::probe_answer{healthy.load(), R"({"status":"ok"})"};
  };
  routes.ready = [&] {
    ++calls;
    return net::probe_answer{ready.load(), R"({"ready":false})"};
  };
  const int port = free_port();
  std::string err;
  auto listener = net::http_listener::start("127.0.0.1:" + std::to_string(port), routes, &err);
  INFO(err);
  REQUIRE(listener != nullptr);

  const std::string metrics = http_get(port, "/metrics");
  CHECK(status_line(metrics) == "HTTP/1.1 200 OK");
  CHECK(metrics.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(metrics.substr(metrics.size() - 4) == "x 1\n");
  CHECK(status_line(http_get(port, "/healthz")) == "HTTP/1.1 200 OK");
  CHECK(status_line(http_get(port, "/readyz")) == "HTTP/1.1 503 Service Unavailable");
  CHECK(http_get(port, "/readyz").find(R"({"ready":false})") != std::string::npos);
  ready = true;
  healthy = false;
  CHECK(status_line(http_get(port, "/readyz")) == "HTTP/1.1 200 OK");
  CHECK(status_line(http_get(port, "/healthz")) == "HTTP/1.1 503 Service Unavailable");
  const int answered = calls.load();

  CHECK(status_line(http_get(port, "/metricsx")) == "HTTP/1.1 404 Not Found");
  CHECK(status_line(http_get(port, "/")) == "HTTP/1.1 404 Not Found");
  const std::string post = http_exchange(port, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(status_line(post) == "HTTP/1.1 405 Method Not Allowed");
  CHECK(post.find("Allow: GET, HEAD") != std::string::npos);
  const std::string head = http_exchange(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_line(head) == "HTTP/1.1 200 OK");
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");  // headers only
  // Past 8 KiB of headers, garbage, a request line without a version: refused before any route runs.
  CHECK(status_line(http_exchange(port, "GET /healthz HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n")) !=
        "HTTP/1.1 200 OK");
  CHECK(status_line(http_exchange(port, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n")) !=
        "HTTP/1.1 200 OK");
  CHECK(status_line(http_exchange(port, "GET /healthz\r\n\r\n")) != "HTTP/1.1 200 OK");
  CHECK(calls.load() == answered + 1);  // only HEAD /metrics reached a route
  CHECK(status_line(http_get(port, "/healthz")) == "HTTP/1.1 503 Service Unavailable");  // still serving

  std::string busy;
  CHECK(net::http_listener::start("127.0.0.1:" + std::to_string(port), routes, &busy) == nullptr);
  CHECK_THAT(busy, Catch::StartsWith("cannot serve metrics on 127.0.0.1:" + std::to_string(port) + ": "));
}

}  // namespace
}  // namespace rampart::test
