// The OpenAI-compatible HTTP door (docs/http-api.md): a second way into the same server. One I/O thread runs
// every connection (Boost.Beast's parser over Asio, no thread per connection); decoded requests go to the same
// frontend_handler as the ZeroMQ door's, as `generate` messages from a peer named by http_peer_prefix, and the
// server's events for that peer come back through post() and are written as OpenAI JSON or server-sent events.
//
// Bounded before anything is copied: request line and headers (bytes and count), the body, the JSON inside it
// (net/openai.hpp, the protocol's limits), time to send headers and body, time idle between requests, time a
// write may wait for a client that does not read, bytes queued for one, connections in all and per address,
// bytes read per address and requests per connection (the ZeroMQ door's budgets, net/source_budget.hpp);
// addresses the deny list refuses outright are closed at accept.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "admission/deny_list.hpp"
#include "net/frontend.hpp"
#include "net/openai.hpp"
#include "net/protocol.hpp"

namespace rampart::net {

struct http_door_options {
  std::string listen = "127.0.0.1:8000";  // address:port; port 0 picks one (bound_port())
  std::string model_name;                 // the one model served: `model` must name it; GET /v1/models lists it
  size_t max_header_bytes = 8192;         // request line and headers together
  size_t max_headers = 64;
  std::chrono::milliseconds header_timeout{5000};  // from the first byte of a request to its last header
  std::chrono::milliseconds body_timeout{10000};   // from the headers to the body's last byte
  std::chrono::milliseconds idle_timeout{60000};   // a connection with no request under way
  std::chrono::milliseconds write_timeout{30000};  // a write the client does not take in this long ends it
  size_t max_pending_bytes = 1 << 20;  // bytes written but not yet taken by the client; past it, it is closed
  size_t max_connections = 4096;
  size_t max_connections_per_source = 256;
  // The ZeroMQ door's read budgets ([frontend]): bytes per address, requests per connection. A request past
  // either is answered 429 rate_limited without its body being read, and its connection ends.
  double source_bytes_per_s = 8 << 20;
  double source_burst_bytes = 16 << 20;
  double connection_requests_per_s = 500;
  double connection_request_burst = 1000;
  decode_limits limits;  // max_body_bytes bounds the body; the rest as on the ZeroMQ door
};

struct http_door_counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused_connections{0};  // over max_connections or max_connections_per_source
  std::atomic<uint64_t> denied{0};               // closed at accept: the address is deny-listed
  std::atomic<uint64_t> requests{0};             // generate requests handed to the server
  std::atomic<uint64_t> malformed{0};            // answered 4xx by the door itself
  std::atomic<uint64_t> timed_out{0};            // closed for a header, body or idle timeout
  std::atomic<uint64_t> slow_readers{0};         // closed for not taking what was written
  std::atomic<uint64_t> unroutable{0};           // events for connections that had gone
  std::atomic<uint64_t> rate_limited{0};         // requests refused for their address's or connection's budget
  std::atomic<int64_t> open{0};                  // connections open now
};

// The door's reading of one request without a socket (the fuzz target's entry, and the same functions the
// connections use): RAW is what a client sent. Either REQUEST is the generate the server would be handed, or
// RESPONSE is the door's whole answer (a refusal, or GET /v1/models); both empty: RAW is an incomplete request
// the door would wait for, within its timeouts.
struct http_reading {
  std::optional<openai::request> request;
  std::string response;
};
http_reading read_http_request(std::string_view raw, const http_door_options& options);

class http_door {
 public:
  http_door(http_door_options options, frontend_handler* handler);
  ~http_door();
  http_door(const http_door&) = delete;
  http_door& operator=(const http_door&) = delete;

  // Binds and starts the I/O thread. False with *error when the address cannot be bound.
  bool start(std::string* error);
  // Closes every connection (their peers reported gone) and stops the thread. Idempotent.
  void stop();

  // Queues an event for PEER (an http peer). Thread-safe, never blocks on the network.
  void post(const std::string& peer, std::string_view type, const nlohmann::json& body);
  // Connections from an address LIST refuses outright are closed at accept, and open ones at their next
  // request. Null: none. Thread-safe.
  void set_deny_list(std::shared_ptr<const admission::deny_list> list);

  uint16_t bound_port() const;
  const http_door_counters& counters() const { return counters_; }
  const http_door_options& options() const;

  struct impl;  // the I/O thread's state (net/http_door.cpp)

 private:
  std::unique_ptr<impl> impl_;
  http_door_counters counters_;
};

}  // namespace rampart::net
