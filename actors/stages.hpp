// Spawn functions of the pipeline stages (gateway -> tokenizer -> scheduler -> detokenizer -> front end).
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace rampart::actors {

// Tokenizes requests: chat messages through the model's chat template, raw text as is, ids checked.
tokenizer_actor spawn_tokenizer_stage(caf::actor_system& system, server_context* context);

// Owns the engine (on its own thread: an engine step blocks for milliseconds) and runs continuous batching.
scheduler_actor spawn_scheduler_stage(caf::actor_system& system, server_context* context);

// Creates tenants for admitted `register` requests and answers `registered` (or an error).
registrar_actor spawn_registrar_stage(caf::actor_system& system, server_context* context);

// Turns generated ids into text deltas and terminal events.
detokenizer_actor spawn_detokenizer_stage(caf::actor_system& system, server_context* context);

}  // namespace rampart::actors
