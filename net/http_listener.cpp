#include "net/http_listener.hpp"

#include <civetweb.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>

#include "net/dashboard_access.hpp"
#include "net/dashboard_assets.hpp"
#include "net/event_feed.hpp"

namespace rampart::net {
namespace {

// The page's own origin only: no inline script, nothing fetched from elsewhere, never framed.
constexpr const char* page_headers =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
    "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n";

bool is_head(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  return info != nullptr && info->request_method != nullptr && std::strcmp(info->request_method, "HEAD") == 0;
}

int send(mg_connection* conn, int status, const char* reason, std::string_view type, std::string_view body,
         std::string_view extra_headers = {}) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: ";
  head.append(type);
  head += "\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  head.append(extra_headers);
  head += "Connection: close\r\n\r\n";
  mg_write(conn, head.data(), head.size());
  if (!is_head(conn)) mg_write(conn, body.data(), body.size());
  return status;
}

constexpr std::string_view token_cookie = "rampart_operator";

void report_refused(mg_connection* conn, const dashboard_routes& d) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (d.token_refused && info != nullptr) d.token_refused(info->remote_addr);
}

// The token as the login cookie or a Bearer header. A Bearer header with a wrong token is reported (a browser
// that has no cookie yet is not).
bool presents_token(mg_connection* conn, const dashboard_routes& d) {
  const char* cookies = mg_get_header(conn, "Cookie");
  if (cookies != nullptr && same_secret(cookie_value(cookies, token_cookie), d.operator_token)) return true;
  const char* auth = mg_get_header(conn, "Authorization");
  if (auth == nullptr || std::strncmp(auth, "Bearer ", 7) != 0) return false;
  if (same_secret(auth + 7, d.operator_token)) return true;
  report_refused(conn, d);
  return false;
}

// GET /login?token=T: a right token becomes an HttpOnly, same-site cookie and the page; a wrong one, 401.
int login(mg_connection* conn, const dashboard_routes& d) {
  const std::string& token = d.operator_token;
  const mg_request_info* info = mg_get_request_info(conn);
  char given[512] = {0};
  const char* query = info != nullptr ? info->query_string : nullptr;
  const int n = query != nullptr ? mg_get_var(query, std::strlen(query), "token", given, sizeof given) : -1;
  if (n < 0 || !same_secret(std::string_view(given, static_cast<size_t>(n)), token)) {
    report_refused(conn, d);
    return send(conn, 401, "Unauthorized", "application/json",
                R"({"error":"unauthorized","message":"wrong operator token"})");
  }
  const std::string headers = "Location: /\r\nSet-Cookie: " + std::string(token_cookie) + "=" + token +
                              "; Path=/; HttpOnly; SameSite=Strict\r\n";
  return send(conn, 303, "See Other", "text/plain", "", headers);
}

// Writes all of TEXT; false once the client is gone or stopped reading for the write timeout.
bool write_all(mg_connection* conn, const std::string& text) {
  return mg_write(conn, text.data(), text.size()) == static_cast<int>(text.size());
}

// GET /api/events: server-sent events, one per monitor or policy event (its EVE JSON as the data, its number as
// the id), from the recent past or from Last-Event-ID.
int stream_events(mg_connection* conn, http_listener& listener) {
  event_feed* feed = listener.routes().dashboard.feed;
  if (feed == nullptr) return send(conn, 404, "Not Found", "application/json", R"({"error":"not_found"})");
  std::atomic<int>& open = listener.open_streams();
  if (open.fetch_add(1) >= http_listener::max_event_streams) {
    open.fetch_sub(1);
    return send(conn, 503, "Service Unavailable", "application/json",
                R"({"error":"busy","message":"too many event streams open"})");
  }
  struct release {
    std::atomic<int>& n;
    ~release() { n.fetch_sub(1); }
  } held{open};
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n");
  if (is_head(conn)) return 200;
  const char* last_event = mg_get_header(conn, "Last-Event-ID");
  uint64_t after = last_event != nullptr ? parse_event_id(last_event) : 0;
  const uint64_t last = feed->last_id();
  if (after == 0 || after > last) {  // a new stream, or an id this feed never gave: the recent past
    after = last > http_listener::stream_history ? last - http_listener::stream_history : 0;
  }
  if (!write_all(conn, "retry: 1000\n\n")) return 200;
  auto quiet_since = std::chrono::steady_clock::now();
  while (!listener.stopping() && !feed->closed()) {
    const event_feed::batch b = feed->after(after, 64, std::chrono::milliseconds(250));
    std::string out;
    if (b.missed > 0) out += "event: missed\ndata: {\"missed\":" + std::to_string(b.missed) + "}\n\n";
    for (const event_feed::event& e : b.events) {
      // The JSON is one line (the monitor and the policy write it compact); a newline would end the field.
      std::string data = e.json;
      for (char& c : data) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      out += "id: " + std::to_string(e.id) + "\ndata: " + data + "\n\n";
      after = e.id;
    }
    // A comment after a quiet second: idle proxies keep the stream, and a client that went away is noticed
    // (its slot freed) by the write that fails, within about two seconds.
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - quiet_since >= std::chrono::seconds(1)) out = ":\n\n";
    if (out.empty()) continue;
    quiet_since = now;
    if (!write_all(conn, out)) break;
  }
  return 200;
}

// A dashboard path, after the access rule in the header.
int dashboard(mg_connection* conn, http_listener& listener, std::string_view path) {
  const dashboard_routes& d = listener.routes().dashboard;
  if (d.operator_token.empty()) {
    const char* host = mg_get_header(conn, "Host");
    if (host == nullptr || !loopback_host(host)) {
      return send(conn, 403, "Forbidden", "application/json",
                  R"({"error":"forbidden","message":"the dashboard answers loopback Host names only"})");
    }
  } else if (path == "/login") {
    return login(conn, d);
  } else if (!presents_token(conn, d)) {
    return send(conn, 401, "Unauthorized", "text/plain; charset=utf-8",
                "An operator token is needed: open /login?token=TOKEN (the token is in the file "
                "[metrics].operator_token_file names).\n");
  }
  if (path == "/api/events") return stream_events(conn, listener);
  if (path == "/api/deny" && d.deny_list) return send(conn, 200, "OK", "application/json", d.deny_list());
  for (const dashboard_asset& a : dashboard_assets()) {
    if (a.path != path) continue;
    const std::string type = std::string(a.content_type) + "; charset=utf-8";  // every asset is UTF-8 text
    return send(conn, 200, "OK", type, a.body, page_headers);
  }
  return send(conn, 404, "Not Found", "application/json", R"({"error":"not_found"})");
}

bool dashboard_path(std::string_view path) {
  if (path == "/login" || path.rfind("/api/", 0) == 0) return true;
  for (const dashboard_asset& a : dashboard_assets()) {
    if (a.path == path) return true;
  }
  return false;
}

// Every request: the method, then the path, then the route.
int handle(mg_connection* conn, void* data) {
  auto& listener = *static_cast<http_listener*>(data);
  const auto& routes = listener.routes();
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string_view method = info != nullptr && info->request_method != nullptr ? info->request_method : "";
  const std::string_view path = info != nullptr && info->local_uri != nullptr ? info->local_uri : "";
  if (method != "GET" && method != "HEAD") {
    mg_printf(conn, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n"
                    "Connection: close\r\n\r\n");
    return 405;
  }
  if (path == "/metrics" && routes.metrics)
    return send(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", routes.metrics());
  if ((path == "/healthz" && routes.health) || (path == "/readyz" && routes.ready)) {
    const probe_answer a = path == "/healthz" ? routes.health() : routes.ready();
    return a.ok ? send(conn, 200, "OK", "application/json", a.body)
                : send(conn, 503, "Service Unavailable", "application/json", a.body);
  }
  if (routes.dashboard.enabled && dashboard_path(path)) return dashboard(conn, listener, path);
  return send(conn, 404, "Not Found", "application/json", R"({"error":"not_found","paths":["/metrics","/healthz","/readyz"]})");
}

// civetweb's own messages (a port in use, say) are returned by mg_start_* as the error text; the rest are dropped.
int quiet(const mg_connection*, const char*) { return 1; }

}  // namespace

std::unique_ptr<http_listener> http_listener::start(const std::string& listen, http_routes routes,
                                                    std::string* error) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  std::unique_ptr<http_listener> l(new http_listener(std::move(routes)));
  const char* options[] = {"listening_ports", listen.c_str(),
                           "num_threads", "8",  // four for probes and scrapes beside max_event_streams
                           "request_timeout_ms", "5000",
                           "max_request_size", "8192",
                           "enable_keep_alive", "no",
                           nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = quiet;
  char text[256] = {0};
  mg_init_data init_data{};
  init_data.callbacks = &callbacks;
  init_data.user_data = nullptr;
  init_data.configuration_options = options;
  mg_error_data errors{};
  errors.text = text;
  errors.text_buffer_size = sizeof text;
  l->ctx_ = mg_start2(&init_data, &errors);
  if (l->ctx_ == nullptr) {
    *error = "cannot serve metrics on " + listen + ": " + (text[0] != 0 ? std::string(text) : "civetweb did not start");
    return nullptr;
  }
  mg_set_request_handler(l->ctx_, "/", handle, l.get());
  return l;
}

http_listener::~http_listener() {
  stopping_ = true;  // event streams notice within one wait on the feed
  if (ctx_ != nullptr) mg_stop(ctx_);
}

}  // namespace rampart::net
