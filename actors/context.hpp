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

#include "actors/supervisor.hpp"
#include "config/server_config.hpp"
#include "net/frontend.hpp"
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

struct server_context {
  config::server_config config;
  net::frontend* frontend = nullptr;
  net::server_metrics* metrics = nullptr;
  monitor_service* monitor = nullptr;  // null when [alerts].enabled is false
  stage_directory directory;
  server_counters counters;
  std::optional<loaded_model> model;
  int tokenizer_stages = 0;
  std::atomic<uint64_t> next_seq_id{1};
  // Admission: the tenant database (null without [admission].accounts_db) and the policy at start.
  std::shared_ptr<admission::accounts> accounts;
  std::shared_ptr<const config::policy> initial_policy;
  // Written by the gateway when the level or policy changes, read by the scheduler: the queue-delay target of
  // each priority class in milliseconds (0: none).
  std::array<std::atomic<int64_t>, 4> queue_delay_ms{};
  // ... and the engine budget of anonymous and sheddable work (model::scheduler_budget).
  std::atomic<double> budget_batch_share{1.0};
  std::atomic<double> budget_step_share{1.0};
  // Written by the scheduler after each step, read by the gateway's admission decisions.
  std::atomic<int64_t> load_running{0};
  std::atomic<int64_t> load_waiting{0};
  std::atomic<int64_t> recent_queue_ms{0};  // moving average of time to first token: the expected wait
  std::atomic<int64_t> policy_max_prompt_tokens{INT64_MAX};  // the level's cap, checked after tokenization
  // Called by the gateway with each new deny list (the ZAP gate reads it); may be empty.
  std::function<void(std::shared_ptr<const admission::deny_list>)> on_deny_list;
  // Called by the gateway when the level's registration mode changes (open: not closed) and by the registrar
  // after a tenant with a CURVE key was created, so the ZAP gate's allow list follows; may be empty.
  std::function<void(bool registration_open, const std::string& registration_key)> on_registration_gate;
  std::function<void()> on_tenants_changed;
  // `register` messages handed to the registrar and not yet answered (its mailbox): past
  // max_pending_registrations the gateway sheds registration_busy instead of queueing more.
  std::atomic<int64_t> registrations_pending{0};
  static constexpr int64_t max_pending_registrations = 64;
  // Decoded client messages handed to the gateway and not yet taken out of its mailbox.
  std::atomic<int64_t> gateway_backlog{0};
  static constexpr int64_t max_gateway_backlog = 4096;
  std::atomic<bool> draining{false};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

}  // namespace rampart::actors
