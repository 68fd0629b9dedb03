// The C++ client library: a DEALER socket speaking docs/protocol.md. One client per thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace rampart::net {

struct client_event {
  std::string type;  // accepted, token, done, error, shed, pong, stats, registered
  nlohmann::json body;
};

struct client_options {
  int heartbeat_ivl_ms = 1000;
  int heartbeat_timeout_ms = 3000;
  int linger_ms = 0;
  std::string source_address;  // non-empty: connect from this local address (e.g. "127.0.0.2")
  // CURVE (all three Z85, or all empty for NULL security): the server's public key and this client's keypair.
  std::string curve_server_key;
  std::string curve_public_key;
  std::string curve_secret_key;
};

// A ZeroMQ context (its I/O thread) shared by many clients of one process, a load generator's streams say:
// one I/O thread for all of them instead of one each. It must outlive the clients made with it.
class client_context {
 public:
  client_context();
  ~client_context();
  client_context(const client_context&) = delete;
  client_context& operator=(const client_context&) = delete;

 private:
  friend class client;
  struct impl;
  std::unique_ptr<impl> impl_;
};

class client {
 public:
  // A client with its own context, or one sharing CONTEXT (non-null: outlives the client).
  explicit client(client_options options = {}, client_context* context = nullptr);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Connects to ENDPOINT (e.g. tcp://127.0.0.1:5555). ZeroMQ connects in the background; returns false with
  // *error only when the endpoint is malformed or the CURVE keys are not Z85. A server that refuses the
  // CURVE key (or the source address) never answers: receive() and ping() time out.
  bool connect(const std::string& endpoint, std::string* error);
  // Sends one message of TYPE with BODY. Returns false when the socket cannot queue it.
  bool send(std::string_view type, const nlohmann::json& body);
  // Sends raw frames as given (for tests of malformed input).
  bool send_frames(const std::vector<std::string>& frames);
  // Waits up to TIMEOUT for the next event. Events whose frames are malformed are returned with type
  // "malformed" and the raw text in body["raw"].
  std::optional<client_event> receive(std::chrono::milliseconds timeout);

  // Sends ping and waits for pong: true when the server answered within TIMEOUT.
  bool ping(std::chrono::milliseconds timeout, nlohmann::json* pong = nullptr);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace rampart::net
