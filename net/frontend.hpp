// The front end: one ROUTER socket, owned by one I/O thread, speaking the protocol of net/protocol.hpp.
// Decoded client messages go to a handler (called on the I/O thread: it must not block); events for clients
// are posted from any thread and sent by the I/O thread, so the socket is never touched from two threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "admission/deny_list.hpp"
#include "net/protocol.hpp"

namespace rampart::net {

struct frontend_options {
  std::string endpoint = "tcp://127.0.0.1:5555";
  int max_message_size = 1 << 20;
  int handshake_ivl_ms = 2000;
  int rcvhwm = 64;
  int sndhwm = 1000;
  int backlog = 256;
  bool router_mandatory = true;
  // ZMTP heartbeats (0: off). rampartd keeps them off: see config::frontend_config::heartbeat_ivl_ms.
  int heartbeat_ivl_ms = 0;
  int heartbeat_timeout_ms = 0;
  int heartbeat_ttl_ms = 0;
  int tcp_keepalive_idle_s = 10;  // TCP keepalive (always on): probes after this much silence,
  int tcp_keepalive_intvl_s = 2;  // every this many seconds,
  int tcp_keepalive_cnt = 3;      // dead after this many unanswered
  // What one source (a CURVE tenant, else an address) may make the I/O thread read and decode: bytes per second
  // and burst (net/source_budget.hpp). Past it a message is answered `shed` `rate_limited` without decoding.
  double source_bytes_per_s = 8 << 20;
  double source_burst_bytes = 16 << 20;
  double connection_messages_per_s = 500;  // messages per second per connection, burst connection_message_burst
  double connection_message_burst = 1000;
  std::string zap_domain;  // non-empty: consult the ZAP handler bound in this context
  // Z85 secret key: non-empty makes this a CURVE server (ZMQ_CURVE_SERVER); every connection is encrypted and
  // the ZAP handler, when one is bound, decides which client keys may connect.
  std::string curve_secret_key;
  decode_limits limits;
};

// Peers of the HTTP door (net/http_door.hpp) are named "\0http/<connection>": no ZeroMQ routing id has that form
// (generated ids are five bytes, and this front end drops messages from client-set ids with this prefix), so the
// server routes each event to the right door by the peer's name alone.
inline const std::string http_peer_prefix = std::string("\0http/", 6);
inline bool is_http_peer(std::string_view peer) { return peer.substr(0, http_peer_prefix.size()) == http_peer_prefix; }

// Callbacks from the I/O thread. PEER is the client's ROUTER routing id (opaque bytes).
class frontend_handler {
 public:
  virtual ~frontend_handler() = default;
  // A well-formed message from PEER, whose TCP address is PEER_ADDRESS ("" when unknown) and whose connection
  // the ZAP handler admitted as USER_ID ("" without CURVE). Malformed ones are answered with an error event by
  // the frontend itself.
  virtual void on_message(const std::string& peer, const std::string& peer_address, const std::string& user_id,
                          client_message msg) = 0;
  // PEER can no longer be reached (it disconnected or its heartbeat timed out): cancel its work.
  virtual void on_peer_gone(const std::string& peer) = 0;
  // Connection events of the socket: accepted (TCP), handshake succeeded, handshake failed.
  enum class connection_event { accepted, handshake_succeeded, handshake_failed, disconnected };
  virtual void on_connection_event(connection_event) {}
  // A message refused as malformed, by its error code.
  virtual void on_malformed(error_code) {}
  // A `register` from PEER_ADDRESS that the front end answered itself with the standing refusal.
  virtual void on_register_refused(const std::string& /*peer_address*/) {}
  // A credential from PEER_ADDRESS refused before it reached the gateway (the HTTP door: an Authorization
  // header that is not "Bearer <key>").
  virtual void on_auth_refused(const std::string& /*peer_address*/) {}
  // A connection from PEER_ADDRESS dropped for not reading what it was sent (the front end's send queue for it
  // was full; the HTTP door's write waited too long or its unsent bytes grew too large).
  virtual void on_slow_reader(const std::string& /*peer_address*/) {}
};

// The standing answer to `register` while registrations are closed. The I/O thread sends it itself, with no hop
// to the actors: a registration flood costs a decode and a send per message and queues behind nothing.
struct registration_refusal {
  std::string reason = "registration_closed";
  int64_t retry_after_ms = 0;
  std::string message;  // told to the client; empty: none
};

struct frontend_counters {
  std::atomic<uint64_t> messages_in{0};
  std::atomic<uint64_t> malformed_in{0};
  std::atomic<uint64_t> events_out{0};
  std::atomic<uint64_t> unroutable{0};  // events for peers that had gone
  std::atomic<uint64_t> slow_consumers{0};  // connections dropped because sndhwm events waited for them
  std::atomic<uint64_t> rate_limited_in{0};  // messages refused undecoded: their source's read budget was spent
  std::atomic<uint64_t> flooders_dropped{0};  // connections dropped: their source kept sending past its budget
  std::atomic<uint64_t> denied_dropped{0};    // connections dropped: their address was deny-listed
  std::atomic<uint64_t> handshakes_succeeded{0};
  std::atomic<uint64_t> handshakes_failed{0};
  std::atomic<uint64_t> accepted_connections{0};
  std::atomic<uint64_t> disconnects{0};
};

class frontend {
 public:
  frontend(frontend_options options, frontend_handler* handler);
  ~frontend();
  frontend(const frontend&) = delete;
  frontend& operator=(const frontend&) = delete;

  // Binds the socket and starts the I/O thread. Returns false with *error set when binding fails.
  bool start(std::string* error);
  // Stops the I/O thread after sending what was already posted; closes the socket. Idempotent.
  void stop();

  // Queues an event for PEER. Thread-safe, never blocks on the network.
  void post(const std::string& peer, std::string_view type, const nlohmann::json& body);
  // The same for a body already encoded as JSON text (net::token_event_body).
  void post_encoded(const std::string& peer, std::string_view type, std::string body);

  // While one of these lives, this thread's posts to F queue in order without waking F's I/O thread; the last
  // one to end wakes it once if anything was posted (a step's events: one wake for all of them).
  class held_wakes {
   public:
    explicit held_wakes(frontend& f);
    ~held_wakes();
    held_wakes(const held_wakes&) = delete;
    held_wakes& operator=(const held_wakes&) = delete;

   private:
    frontend* previous_;
  };

  // Sets ZMQ_HANDSHAKE_IVL for connections accepted from now on (applied by the I/O thread). Thread-safe.
  void set_handshake_ivl(int ms);
  // While REFUSAL is set, `register` messages are answered with it by the front end (shed event); null hands
  // them to the handler again. Thread-safe.
  void set_registration_refusal(std::shared_ptr<const registration_refusal> refusal);
  // Connections from an address that LIST refuses outright (deny_match::everyone) are dropped at their next
  // message, unread: the ZAP gate refuses new ones, this ends those opened before the address was listed.
  // Null: none. Thread-safe.
  void set_deny_list(std::shared_ptr<const admission::deny_list> list);

  // The endpoint actually bound (resolves port 0 / wildcards).
  std::string bound_endpoint() const;
  const frontend_counters& counters() const { return counters_; }
  // The decoder's limits (fixed at construction).
  const decode_limits& limits() const;
  // The ZeroMQ context, so a ZAP handler can bind in the same context before start().
  void* zmq_context();

 private:
  void post_frames(const std::string& peer, std::vector<std::string> frames);
  struct impl;
  std::unique_ptr<impl> impl_;
  frontend_counters counters_;
};

}  // namespace rampart::net
