// The ZAP gate (RFC 27): decides at the ZMTP handshake who may connect, before any request is read.
// It binds a REP socket at inproc://zeromq.zap.01 in the guarded sockets' context and answers every request
// from memory on its own thread: a deny-listed source address gets 400; with CURVE, only the public keys of
// registered tenants get 200 (user id "tenant:<id>"), plus the published registration identity while
// registration is open (user id "registration": the server must accept only `register` on such connections).
// A deny-list entry that spares tenants (every prefix, and addresses listed on forgeable evidence) still
// admits a tenant's own CURVE key: only an address entry that refuses everyone refuses a tenant.
// The registration identity is resolved first: whoever holds the published keypair is never a tenant, even if
// a tenant somehow holds the same key; a key that two tenants hold is refused.
// NULL-mechanism connections are consulted only when the server socket sets ZMQ_ZAP_DOMAIN (net::frontend's
// zap_domain). The deny list and the allow list are immutable snapshots swapped atomically from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "admission/deny_list.hpp"

namespace rampart::net {

struct curve_allow_list {
  std::unordered_map<std::string, int64_t> tenants;  // Z85 public key -> tenant id (unrevoked tenants only)
  std::unordered_set<std::string> ambiguous;         // keys held by more than one tenant: refused, never guessed
  std::string registration_key;                      // Z85 public key of the registration identity; empty: none
  bool registration_open = false;                    // false while the level's registration mode is closed
};

struct zap_counters {
  std::atomic<uint64_t> accepted{0};               // 200, tenants and NULL connections
  std::atomic<uint64_t> accepted_registration{0};  // 200 for the registration identity
  std::atomic<uint64_t> denied_address{0};         // 400: deny-listed source
  std::atomic<uint64_t> denied_key{0};             // 400: unknown CURVE key, or registration identity while closed
  std::atomic<uint64_t> denied_mechanism{0};       // 400: PLAIN or anything but NULL / CURVE
  std::atomic<uint64_t> malformed{0};              // 500: not a ZAP 1.0 request
};

struct zap_reply {
  std::string status_code;  // "200", "400" or "500"
  std::string status_text;
  std::string user_id;      // with 200 only
  bool key_refused = false;  // 400 for the CURVE key itself (not for the address or the mechanism)
};

// The decision for one request, without sockets. CREDENTIAL is the CURVE client's 32-byte public key (ignored
// for other mechanisms). A deny-listed address is refused before anything else (not a key refusal), unless
// the entries covering it spare tenants and CREDENTIAL is exactly one tenant's key. DENY and ALLOW may be
// null (nothing denied / no CURVE key admitted). Counts into COUNTERS when given.
zap_reply decide_zap(std::string_view address, std::string_view mechanism, std::string_view credential,
                     const admission::deny_list* deny, const curve_allow_list* allow, int64_t now_ms,
                     zap_counters* counters = nullptr);

class zap_handler {
 public:
  // CONTEXT is the zmq context (void*, e.g. frontend::zmq_context()) of the sockets to guard; it must outlive
  // the handler. Keep one handler per context for the context's whole life: libzmq closes the inproc endpoint
  // asynchronously, and binding it again in the same context can fail with EADDRINUSE.
  explicit zap_handler(void* context);
  ~zap_handler();  // stop()
  zap_handler(const zap_handler&) = delete;
  zap_handler& operator=(const zap_handler&) = delete;

  // Binds inproc://zeromq.zap.01 and starts the thread; call before the guarded socket binds or connects.
  // Returns false with *ERROR when the endpoint cannot be bound (e.g. another handler holds it).
  bool start(std::string* error);
  // Stops the thread and closes the socket. Idempotent.
  void stop();

  // Publish new snapshots; the next handshake uses them. Null clears. Thread-safe, never blocks the gate.
  // Deny-list expiries are on admission::monotonic_ms().
  void set_deny_list(std::shared_ptr<const admission::deny_list> list);
  void set_allow_list(std::shared_ptr<const curve_allow_list> list);

  // Called on the handler's thread with the source address of every handshake refused for its key (unknown or
  // ambiguous key), not for deny-listed addresses (their retries are not new failures) nor for the registration
  // identity while registration is closed (an expected refusal its holders retry). Set before start(); must not
  // block.
  void set_on_key_denied(std::function<void(std::string_view address)> callback) {
    on_key_denied_ = std::move(callback);
  }

  const zap_counters& counters() const { return counters_; }

 private:
  void run();

  void* context_;
  void* socket_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<const admission::deny_list> deny_;   // std::atomic_load / atomic_store only
  std::shared_ptr<const curve_allow_list> allow_;      // std::atomic_load / atomic_store only
  zap_counters counters_;
  std::function<void(std::string_view)> on_key_denied_;
};

}  // namespace rampart::net
