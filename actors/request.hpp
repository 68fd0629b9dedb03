// One accepted generate request as it moves through the stages. Stages share it by pointer; the fields a stage
// writes are written only by that stage, and the request ledger makes "exactly one terminal event" hold no
// matter which stage ends the request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/protocol.hpp"

namespace rampart::actors {

struct server_context;

struct request_state {
  using clock = std::chrono::steady_clock;

  uint64_t seq_id = 0;  // server-wide unique, also the engine's sequence id
  std::string peer;
  std::string peer_address;
  net::generate_request req;
  clock::time_point received = clock::now();

  // Written by the tokenizer stage.
  std::vector<int32_t> prompt;
  // Written by the scheduler stage once the request first joins the batch (before its first token event).
  std::atomic<int64_t> queue_ms{-1};
  // Written by the detokenizer stage.
  clock::time_point first_token{};
  clock::time_point last_token{};
  int64_t token_events = 0;

  int64_t tenant_id = 0;  // 0: anonymous
  int64_t curve_tenant_id = 0;  // the tenant whose CURVE key the connection was admitted with; 0: none
  // The monitor's key for this request's signals (requests, generated tokens): "tenant:<id>" once
  // authenticated, else the source address. Written by the gateway before the request is handed on.
  std::string monitor_key;

  std::atomic<bool> cancel_requested{false};
  // Set by the gateway before it turns cancel_requested on when the policy ends the request: its terminal event
  // is then `shed` (policy_shed_reason) with shed_retry_after_ms, not `done`.
  enum class policy_shed : int { none = 0, anonymous_closed = 1 };
  std::atomic<policy_shed> shed_by_policy{policy_shed::none};
  std::atomic<int64_t> shed_retry_after_ms{0};
  const char* policy_shed_reason() const {
    return shed_by_policy.load() == policy_shed::anonymous_closed ? "anonymous_closed" : "";
  }
  std::atomic<bool> peer_gone{false};
  clock::time_point peer_gone_at{};
  std::atomic<bool> terminal_sent{false};  // written by request_ledger only
};
using request_ptr = std::shared_ptr<request_state>;

// How a request ended: its terminal frame.
struct outcome {
  enum class kind : uint8_t { done, error, shed };
  kind what = kind::done;
  nlohmann::json body;

  // done: BODY is the frame's whole body (request_id, finish_reason, usage, timing).
  static outcome done(nlohmann::json body) { return {kind::done, std::move(body)}; }
  static outcome error(const request_state& r, net::error_code code, std::string_view message) {
    return {kind::error, net::error_body(r.req.request_id, code, message)};
  }
  static outcome shed(const request_state& r, std::string_view reason, int64_t retry_after_ms) {
    return {kind::shed, net::shed_body(r.req.request_id, reason, retry_after_ms)};
  }
};

// Every admitted request's end goes through the ledger, exactly once: it posts the one terminal frame (unless the
// client is gone), counts the outcome, and tells the gateway to give back the admission ticket and forget the
// request's id. Stages report how a request finished; none of them sends a terminal frame itself. Thread-safe.
class request_ledger {
 public:
  explicit request_ledger(server_context* ctx) : ctx_(ctx) {}
  // R was admitted: it is in flight until finish().
  void open(request_state& r);
  // Ends R with O unless it has ended already. True when this call ended it.
  bool finish(request_state& r, outcome o);
  bool ended(const request_state& r) const { return r.terminal_sent.load(); }

 private:
  server_context* ctx_;
};

}  // namespace rampart::actors
