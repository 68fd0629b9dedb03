#include "actors/request.hpp"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "actors/context.hpp"
#include "actors/messages.hpp"

#include <caf/all.hpp>

namespace rampart::actors {

void request_ledger::open(request_state&) { ctx_->counters.requests_in_flight++; }

bool request_ledger::finish(request_state& r, outcome o) {
  if (r.terminal_sent.exchange(true)) return false;
  server_context& ctx = *ctx_;
  const char* type = "done";
  switch (o.what) {
    case outcome::kind::done:
      ctx.counters.requests_finished++;
      if (ctx.metrics) {
        ctx.metrics->finished(o.body.value("finish_reason", "stop")).Increment();
        ctx.metrics->e2e_latency->Observe(
            std::chrono::duration<double>(request_state::clock::now() - r.received).count());
      }
      break;
    case outcome::kind::error:
      type = "error";
      ctx.counters.requests_errored++;
      if (ctx.metrics) ctx.metrics->errored(o.body.value("code", "internal")).Increment();
      break;
    case outcome::kind::shed:
      type = "shed";
      ctx.counters.requests_shed++;
      if (ctx.metrics) ctx.metrics->shed(o.body.value("reason", "unknown")).Increment();
      break;
  }
  ctx.counters.requests_in_flight--;
  if (!r.peer_gone) ctx.reply(r.peer, type, o.body);
  // The gateway gives back the request's admission ticket and forgets its id.
  if (auto gw = ctx.stages.gateway.get()) caf::anon_send(gw, finished_atom::value, r.seq_id);
  return true;
}

}  // namespace rampart::actors
