#include "actors/gateway.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace rampart::actors {

nlohmann::json health_report(const server_context& context) {
  using namespace std::chrono;
  nlohmann::json stages = nlohmann::json::object();
  auto restarts = context.directory.restarts();
  for (const auto& name : context.directory.names()) {
    stages[name] = {{"up", static_cast<bool>(context.directory.get(name))}, {"restarts", restarts[name]}};
  }
  const auto& c = context.counters;
  return {
      {"status", context.draining ? "draining" : "ok"},
      {"server", context.config.name},
      {"uptime_ms", duration_cast<milliseconds>(steady_clock::now() - context.started).count()},
      {"model", context.config.model.path.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(context.config.model.path)},
      {"stages", stages},
      {"requests", {{"accepted", c.requests_accepted.load()},
                    {"finished", c.requests_finished.load()},
                    {"errored", c.requests_errored.load()},
                    {"shed", c.requests_shed.load()},
                    {"in_flight", c.requests_in_flight.load()}}},
  };
}

namespace {

struct gateway_state {
  server_context* context = nullptr;
  static inline const char* name = "gateway";
};

void handle(gateway_actor::stateful_pointer<gateway_state> self, const inbound_message& in) {
  auto* ctx = self->state.context;
  const auto& msg = *in.msg;
  switch (msg.type) {
    case net::message_type::ping: {
      auto body = health_report(*ctx);
      if (!msg.ping_body.empty()) body["echo"] = msg.ping_body;
      ctx->frontend->post(in.peer, "pong", body);
      break;
    }
    case net::message_type::stats:
      ctx->frontend->post(in.peer, "stats", health_report(*ctx));
      break;
    case net::message_type::generate:
      if (ctx->draining) {
        ctx->counters.requests_shed++;
        ctx->frontend->post(in.peer, "shed", net::shed_body(msg.generate.request_id, "shutting_down", 1000));
      } else {
        ctx->counters.requests_errored++;
        ctx->frontend->post(in.peer, "error",
                            net::error_body(msg.generate.request_id, net::error_code::unavailable,
                                            "no model is loaded"));
      }
      break;
    case net::message_type::cancel:
      ctx->frontend->post(in.peer, "error",
                          net::error_body(msg.cancel.request_id, net::error_code::unknown_request,
                                          "no running request with this id"));
      break;
    case net::message_type::register_tenant:
      ctx->frontend->post(in.peer, "error",
                          net::error_body("", net::error_code::unavailable, "registration is not enabled"));
      break;
  }
}

gateway_actor::behavior_type gateway(gateway_actor::stateful_pointer<gateway_state> self,
                                     server_context* context) {
  self->state.context = context;
  return {
      [=](const inbound_message& in) { handle(self, in); },
      [=](peer_gone_atom, const std::string&) {},
  };
}

}  // namespace

gateway_actor spawn_gateway(caf::actor_system& system, server_context* context) {
  return system.spawn(gateway, context);
}

}  // namespace rampart::actors
