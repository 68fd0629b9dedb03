// The operators' HTTP listener ([metrics] listen): GET /metrics (Prometheus text), GET /healthz and /readyz
// (JSON, 200 when the answer is yes, 503 when it is no), and, when enabled, the web dashboard: its page and files
// (/, /dashboard.js, /dashboard.css, /chart.min.js), the deny list (/api/deny) and a live stream of the monitor's
// and the policy's events (/api/events, server-sent events). On civetweb with eight threads, at most four of them
// held by event streams. Anything else is 404, any method but GET and HEAD 405. Requests are bounded: 8 KiB of
// request line and headers, 5 s to send them; a write that waits 5 s on a client ends its connection.
//
// The dashboard's paths: with an operator token, only a client that presents it (the cookie /login?token=T sets,
// or "Authorization: Bearer T") is served; without one, only requests whose Host names a loopback address, so a
// page elsewhere cannot reach the dashboard through a name rebound to 127.0.0.1. The page holds no secret.
#pragma once

#include <atomic>
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

class event_feed;

struct dashboard_routes {
  bool enabled = false;
  std::string operator_token;              // empty: loopback Host headers only (see above)
  event_feed* feed = nullptr;              // /api/events; outlives the listener
  std::function<std::string()> deny_list;  // /api/deny: JSON
  // Called with the client's address for each wrong operator token (at /login or as a Bearer header), so the
  // monitor counts guessing as authentication failures. May be empty.
  std::function<void(const std::string& address)> token_refused;
};

struct http_routes {
  std::function<std::string()> metrics;  // the text exposition
  std::function<probe_answer()> health;  // /healthz: the process and its stages are up
  std::function<probe_answer()> ready;   // /readyz: it serves requests now
  dashboard_routes dashboard;
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

  static constexpr int max_event_streams = 4;
  // Events a new stream starts with (the recent past), unless it resumes with Last-Event-ID.
  static constexpr size_t stream_history = 64;

  // For the handlers (civetweb's threads).
  bool stopping() const { return stopping_.load(); }
  std::atomic<int>& open_streams() { return streams_; }

 private:
  explicit http_listener(http_routes routes) : routes_(std::move(routes)) {}
  http_routes routes_;
  mg_context* ctx_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<int> streams_{0};
};

}  // namespace rampart::net
