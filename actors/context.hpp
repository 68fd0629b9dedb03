// What every stage of one server shares: the configuration, the front end to answer clients through, the
// stage directory, and the server-wide counters. Owned by run_server; outlives the actor system.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "actors/supervisor.hpp"
#include "config/server_config.hpp"
#include "net/frontend.hpp"

namespace rampart::actors {

struct server_counters {
  std::atomic<uint64_t> requests_accepted{0};
  std::atomic<uint64_t> requests_finished{0};
  std::atomic<uint64_t> requests_errored{0};
  std::atomic<uint64_t> requests_shed{0};
  std::atomic<int64_t> requests_in_flight{0};
  std::atomic<uint64_t> config_reloads{0};
};

struct server_context {
  config::server_config config;
  net::frontend* frontend = nullptr;
  stage_directory directory;
  server_counters counters;
  std::atomic<bool> draining{false};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

}  // namespace rampart::actors
