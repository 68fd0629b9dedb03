// What every stage of one server shares: the configuration, the front end to answer clients through, the
// stage directory, the loaded model, metrics and counters. Owned by run_server; outlives the actor system.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "actors/supervisor.hpp"
#include "config/server_config.hpp"
#include "net/frontend.hpp"
#include "net/metrics.hpp"

namespace rampart::model {
class tokenizer;
class chat_template;
class engine;
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
  std::atomic<bool> draining{false};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

}  // namespace rampart::actors
