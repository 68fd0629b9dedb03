// The gateway stage: first stop of every client message. Answers ping and stats itself; generate and cancel
// go on to the pipeline when a model is loaded, and are refused with `unavailable` when none is.
#pragma once

#include <caf/fwd.hpp>

#include <string>
#include <vector>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace rampart::actors {

gateway_actor spawn_gateway(caf::actor_system& system, server_context* context);

// The body of a pong: health of the server and its stages, and whether it is ready (with the reasons when not).
nlohmann::json health_report(const server_context& context);

// Why the server cannot serve requests now ("stage NAME is down", "draining", "no model is loaded", "N expert
// shard(s) failing"); empty when it can. Safe on any thread while CONTEXT lives.
std::vector<std::string> not_ready_reasons(const server_context& context);
// The process and its stages are up (/healthz): no stage down or given up.
bool stages_healthy(const server_context& context);

}  // namespace rampart::actors
