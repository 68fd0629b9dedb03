// Messages between the server's stages, and their typed interfaces. In-process only: the types carry shared
// pointers and are marked unsafe for serialization, so they never cross a process boundary by accident.
#pragma once

#include <memory>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "net/protocol.hpp"

namespace rampart::actors {

// A decoded client message and the ROUTER routing id of the client that sent it.
struct inbound_message {
  std::string peer;
  std::shared_ptr<const net::client_message> msg;
};

using peer_gone_atom = caf::atom_constant<caf::atom("peergone")>;

// The gateway receives every client message first and answers or forwards it.
using gateway_actor =
    caf::typed_actor<caf::reacts_to<inbound_message>, caf::reacts_to<peer_gone_atom, std::string>>;

}  // namespace rampart::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::inbound_message)
