// Messages between the server's stages, and their typed interfaces. In-process only: the types carry shared
// pointers and are marked unsafe for serialization, so they never cross a process boundary by accident.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/request.hpp"
#include "admission/policy_engine.hpp"
#include "config/policy.hpp"
#include "engine/scheduler.hpp"
#include "net/protocol.hpp"

namespace rampart::actors {

// A decoded client message and the ROUTER routing id of the client that sent it.
struct inbound_message {
  std::string peer;
  std::string peer_address;  // the client's IP address as text, "" when unknown
  std::string user_id;       // the ZAP gate's identity for the connection: "tenant:<id>", "registration" or ""
  std::shared_ptr<const net::client_message> msg;
};

// The tokenizer's answer: the request with its prompt filled in, or why it could not be tokenized.
struct tokenized {
  request_ptr request;
  bool ok = false;
  net::error_code code = net::error_code::internal;
  std::string message;
};

// What one engine step produced, for the detokenizer: generated tokens and finished sequences, in order.
struct step_events {
  struct token {
    request_ptr request;
    int32_t id;
  };
  struct finish {
    request_ptr request;
    model::finished_sequence info;
  };
  std::vector<token> tokens;
  std::vector<finish> finished;
};

// A monitor event the gateway acts on: the monitor's threat level, or the culprits an alert names.
struct monitor_notice {
  std::optional<config::threat_level> level;   // the monitor's own level changed
  std::optional<admission::alert_news> alert;  // an alert started, updated or ended, with its culprits
};

using peer_gone_atom = caf::atom_constant<caf::atom("peergone")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using used_atom = caf::atom_constant<caf::atom("used")>;
using tokenize_atom = caf::atom_constant<caf::atom("tokenize")>;
using step_atom = caf::atom_constant<caf::atom("step")>;
using poke_atom = caf::atom_constant<caf::atom("poke")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;

// The gateway receives every client message first and answers or forwards it.
using gateway_actor =
    caf::typed_actor<caf::reacts_to<inbound_message>, caf::reacts_to<peer_gone_atom, std::string>,
                     caf::reacts_to<finished_atom, uint64_t>,                      // a request ended
                     caf::reacts_to<monitor_notice>,                               // from the monitor
                     caf::reacts_to<std::shared_ptr<const config::policy>>,        // a reloaded policy
                     caf::reacts_to<tick_atom>>;                                   // threat-level cool-down

// Tokenizer stage: chat template + BPE.
using tokenizer_actor = caf::typed_actor<caf::replies_to<tokenize_atom, request_ptr>::with<tokenized>>;

// Scheduler stage: owns the engine and the KV cache; continuous batching.
// A tokenized request is handed over as a request whose answer says the scheduler took it: if the scheduler
// dies with the request still in its mailbox, the sender gets an error and ends the request, so none is lost.
using scheduler_actor = caf::typed_actor<caf::replies_to<request_ptr>::with<bool>,  // take a tokenized request
                                         caf::reacts_to<poke_atom>,     // look at cancel flags now
                                         caf::reacts_to<step_atom>,     // run the next engine step
                                         caf::replies_to<stats_atom>::with<std::string>>;  // JSON figures

// Registrar stage: creates tenants (a database write) off the gateway's path. Arguments: the client's routing
// id and the requested tenant name.
// register, peer, tenant name, CURVE public key ("" for none)
// Creates tenants (register), records a tenant's first use (used), expires unused trial tenants (tick).
using registrar_actor = caf::typed_actor<caf::reacts_to<register_atom, std::string, std::string, std::string>,
                                         caf::reacts_to<used_atom, int64_t>, caf::reacts_to<tick_atom>>;

// Detokenizer stage: ids to UTF-8 text deltas and terminal events, per request.
using detokenizer_actor = caf::typed_actor<caf::reacts_to<step_events>>;

}  // namespace rampart::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::inbound_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::request_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::tokenized)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::step_events)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::monitor_notice)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const rampart::config::policy>)
