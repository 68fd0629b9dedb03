// What every stage of one server shares: the configuration, the front end to answer clients through, the
// stage directory, the loaded model, metrics and counters. Owned by run_server; outlives the actor system.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "actors/messages.hpp"
#include "actors/supervisor.hpp"
#include "config/server_config.hpp"
#include "net/curve_gate.hpp"
#include "net/frontend.hpp"
#include "net/http_door.hpp"
#include "net/metrics.hpp"

namespace rampart::admission {
class accounts;
class deny_list;
}  // namespace rampart::admission

namespace rampart::config {
struct policy;
}  // namespace rampart::config

namespace rampart::model {
class tokenizer;
class chat_template;
class engine;
class sharded_expert_backend;
}  // namespace rampart::model

namespace rampart::actors {

class monitor_service;

// The name clients know the model by (pong, GET /v1/models, `model` over HTTP): its folder's name, never a path.
inline std::string served_model_name(const std::string& model_path) {
  std::string p = model_path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

struct server_counters {
  std::atomic<uint64_t> requests_accepted{0};
  std::atomic<uint64_t> requests_finished{0};
  std::atomic<uint64_t> requests_errored{0};
  std::atomic<uint64_t> requests_shed{0};
  std::atomic<int64_t> requests_in_flight{0};
  std::atomic<uint64_t> config_reloads{0};
};

// The model a server runs, loaded once at start.
struct loaded_model {
  std::shared_ptr<const model::tokenizer> tokenizer;
  std::shared_ptr<const model::chat_template> chat;  // null when the tokenizer has no usable chat template
  std::shared_ptr<model::engine> engine;             // used only by the scheduler stage
  std::shared_ptr<model::sharded_expert_backend> shards;  // null when experts run in the engine
  int64_t vocab_size = 0;
  std::vector<int32_t> eos_ids;
};

// The level in force as the stages need it on their hot paths (atomics: read at every step and prompt).
// One writer: the gateway's admission gate (admission_gate::publish_level_settings), whenever the level or the
// policy changes. Readers: the tokenizer and scheduler stages.
struct level_feed {
  std::array<std::atomic<int64_t>, 4> queue_delay_ms{};  // per priority class, in ms; 0: none
  std::atomic<double> budget_batch_share{1.0};           // the engine budget of anonymous and sheddable work
  std::atomic<double> budget_step_share{1.0};            // (model::scheduler_budget)
  std::atomic<int64_t> max_prompt_tokens{INT64_MAX};     // the level's cap, checked after tokenization
};

// The load the admission gate weighs each request against (atomics: read at every admission).
struct load_feed {
  std::atomic<int64_t> running{0};  // writer: the scheduler stage, after each step
  std::atomic<int64_t> waiting{0};  // writer: the scheduler stage, after each step
  // Writer: the detokenizer stage, at each first token: a moving average of time to first token, the wait a
  // new request can expect.
  std::atomic<int64_t> recent_queue_ms{0};
};

// Where each stage is now: typed handles the supervisor keeps current across restarts.
struct stage_handles {
  static constexpr int max_tokenizers = 8;
  stage_slot<gateway_actor> gateway;
  stage_slot<registrar_actor> registrar;  // absent without an accounts database
  std::array<stage_slot<tokenizer_actor>, max_tokenizers> tokenizers;
  stage_slot<scheduler_actor> scheduler;
  stage_slot<detokenizer_actor> detokenizer;
  // Drops every handle: their strong references would otherwise keep detached actors (and the actor system's
  // shutdown) waiting forever.
  void clear() {
    gateway.set({});
    registrar.set({});
    for (auto& t : tokenizers) t.set({});
    scheduler.set({});
    detokenizer.set({});
  }
};

struct server_context {
  config::server_config config;
  net::frontend* frontend = nullptr;
  net::http_door* http = nullptr;  // null when [http] is off
  net::server_metrics* metrics = nullptr;
  monitor_service* monitor = nullptr;  // null when [alerts].enabled is false
  stage_handles stages;
  stage_directory directory;  // names, up, restarts: for the health report
  server_counters counters;
  request_ledger ledger{this};  // every admitted request's one terminal frame
  std::optional<loaded_model> model;
  int tokenizer_stages = 0;
  std::atomic<uint64_t> next_seq_id{1};
  // Admission: the tenant database (null without [admission].accounts_db) and the policy at start.
  std::shared_ptr<admission::accounts> accounts;
  std::shared_ptr<const config::policy> initial_policy;
  level_feed level;
  load_feed load;
  // The gates in front of the server that the policy steers: the ZAP handler takes each new deny list (as does
  // the front end), the CURVE gate the registration identity and the tenants' keys. Null where not running (the
  // CURVE gate: CURVE off).
  net::zap_handler* zap = nullptr;
  net::curve_gate* curve = nullptr;
  // `register` messages handed to the registrar and not yet answered (its mailbox): past
  // max_pending_registrations the gateway sheds registration_busy instead of queueing more.
  std::atomic<int64_t> registrations_pending{0};
  static constexpr int64_t max_pending_registrations = 64;
  // Decoded client messages handed to the gateway and not yet taken out of its mailbox.
  std::atomic<int64_t> gateway_backlog{0};
  static constexpr int64_t max_gateway_backlog = 4096;
  std::atomic<bool> draining{false};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // Sends an event to PEER through the door it came in by: the HTTP door names its peers (net::is_http_peer).
  void reply(const std::string& peer, std::string_view type, const nlohmann::json& body) const {
    if (net::is_http_peer(peer)) {
      if (http) http->post(peer, type, body);
      return;
    }
    frontend->post(peer, type, body);
  }
  // A `token` event: written directly for a ZeroMQ client (net::token_event_body), as a document for the HTTP
  // door, which translates it.
  void reply_token(const std::string& peer, const std::string& request_id, int64_t index, const std::string& text,
                   const int32_t* ids, size_t n_ids) const {
    if (net::is_http_peer(peer)) {
      if (http) {
        http->post(peer, "token",
                   {{"request_id", request_id}, {"index", index}, {"text", text},
                    {"ids", std::vector<int32_t>(ids, ids + n_ids)}});
      }
      return;
    }
    frontend->post_encoded(peer, "token", net::token_event_body(request_id, index, text, ids, n_ids));
  }
};

}  // namespace rampart::actors
