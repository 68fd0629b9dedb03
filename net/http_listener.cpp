#include "net/http_listener.hpp"

#include <civetweb.h>

#include <cstring>
#include <mutex>
#include <string_view>

namespace rampart::net {
namespace {

int send(mg_connection* conn, int status, const char* reason, const char* type, const std::string& body) {
  const mg_request_info* info = mg_get_request_info(conn);
  const bool head = info != nullptr && info->request_method != nullptr && std::strcmp(info->request_method, "HEAD") == 0;
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
            status, reason, type, body.size());
  if (!head) mg_write(conn, body.data(), body.size());
  return status;
}

// Every request: the method, then the path, then the route.
int handle(mg_connection* conn, void* data) {
  const auto& routes = static_cast<const http_listener*>(data)->routes();
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
                           "num_threads", "4",
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
  if (ctx_ != nullptr) mg_stop(ctx_);
}

}  // namespace rampart::net
