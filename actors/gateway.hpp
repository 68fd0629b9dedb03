// The gateway stage: first stop of every client message. Answers ping and stats itself; generate and cancel
// go on to the pipeline when a model is loaded, and are refused with `unavailable` when none is.
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace rampart::actors {

gateway_actor spawn_gateway(caf::actor_system& system, server_context* context);

// The body of a pong: health of the server and its stages.
nlohmann::json health_report(const server_context& context);

}  // namespace rampart::actors
