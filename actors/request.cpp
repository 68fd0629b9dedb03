#include "actors/request.hpp"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "actors/context.hpp"
#include "actors/messages.hpp"

#include <caf/all.hpp>

namespace rampart::actors {

bool send_terminal(server_context& ctx, request_state& r, std::string_view type, nlohmann::json body) {
  if (r.terminal_sent.exchange(true)) return false;
  if (type == "done") {
    ctx.counters.requests_finished++;
    if (ctx.metrics) {
      ctx.metrics->finished(body.value("finish_reason", "stop")).Increment();
      ctx.metrics->e2e_latency->Observe(
          std::chrono::duration<double>(request_state::clock::now() - r.received).count());
    }
  } else if (type == "error") {
    ctx.counters.requests_errored++;
    if (ctx.metrics) ctx.metrics->errored(body.value("code", "internal")).Increment();
  } else if (type == "shed") {
    ctx.counters.requests_shed++;
    if (ctx.metrics) ctx.metrics->shed(body.value("reason", "unknown")).Increment();
  }
  ctx.counters.requests_in_flight--;
  if (!r.peer_gone) ctx.frontend->post(r.peer, type, body);
  // The gateway gives back the request's admission ticket and forgets its id.
  if (auto gw = caf::actor_cast<gateway_actor>(ctx.directory.get("gateway"))) {
    caf::anon_send(gw, finished_atom::value, r.seq_id);
  }
  return true;
}

bool send_error(server_context& ctx, request_state& r, net::error_code code, std::string_view message) {
  return send_terminal(ctx, r, "error", net::error_body(r.req.request_id, code, message));
}

bool send_shed(server_context& ctx, request_state& r, std::string_view reason, int64_t retry_after_ms) {
  return send_terminal(ctx, r, "shed", net::shed_body(r.req.request_id, reason, retry_after_ms));
}

}  // namespace rampart::actors
