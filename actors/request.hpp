// One accepted generate request as it moves through the stages. Stages share it by pointer; the fields a stage
// writes are written only by that stage, and the terminal flag makes "exactly one terminal event" hold no
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
  std::atomic<bool> terminal_sent{false};
};
using request_ptr = std::shared_ptr<request_state>;

// Sends the request's terminal event (done, error or shed) unless one was already sent; updates the counters.
// Returns true when this call sent it. Thread-safe.
bool send_terminal(server_context& ctx, request_state& r, std::string_view type, nlohmann::json body);

// Convenience forms of send_terminal.
bool send_error(server_context& ctx, request_state& r, net::error_code code, std::string_view message);
bool send_shed(server_context& ctx, request_state& r, std::string_view reason, int64_t retry_after_ms);

}  // namespace rampart::actors
