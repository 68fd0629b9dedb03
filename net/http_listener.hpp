// The operators' HTTP listener ([metrics] listen): GET /metrics (Prometheus text), GET /healthz and /readyz
// (JSON, 200 when the answer is yes, 503 when it is no), on civetweb with four threads. Anything else is 404, any
// method but GET and HEAD 405. Requests are bounded: 8 KiB of request line and headers, 5 s to send them.
#pragma once

#include <functional>
#include <memory>
#include <string>

struct mg_context;

namespace rampart::net {

// A health or readiness answer: OK picks 200 or 503, BODY is the JSON sent with it.
struct probe_answer {
  bool ok = false;
  std::string body;
};

struct http_routes {
  std::function<std::string()> metrics;  // the text exposition
  std::function<probe_answer()> health;  // /healthz: the process and its stages are up
  std::function<probe_answer()> ready;   // /readyz: it serves requests now
};

class http_listener {
 public:
  // Serves ROUTES on LISTEN ("127.0.0.1:9464"); the routes are called on the listener's threads and must be
  // safe there. Null with *error when the address cannot be bound.
  static std::unique_ptr<http_listener> start(const std::string& listen, http_routes routes, std::string* error);
  ~http_listener();  // stops serving; no route is called after it returns
  http_listener(const http_listener&) = delete;
  http_listener& operator=(const http_listener&) = delete;

  const http_routes& routes() const { return routes_; }

 private:
  explicit http_listener(http_routes routes) : routes_(std::move(routes)) {}
  http_routes routes_;
  mg_context* ctx_ = nullptr;
};

}  // namespace rampart::net
