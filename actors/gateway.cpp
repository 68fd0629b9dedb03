#include "actors/gateway.hpp"

#include <cstdlib>

#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include "actors/admission_gate.hpp"
#include "actors/monitor_service.hpp"
#include "actors/stages.hpp"
#include "shards/sharded_expert_backend.hpp"

namespace rampart::actors {

std::vector<std::string> not_ready_reasons(const server_context& context) {
  std::vector<std::string> why;
  for (const auto& name : context.directory.names())
    if (!context.directory.up(name)) why.push_back("stage " + name + " is down");
  if (!context.directory.given_up().empty()) why.push_back("stage " + context.directory.given_up() + " was given up");
  if (context.draining) why.push_back("draining");
  if (!context.model) why.push_back("no model is loaded");
  if (context.model && context.model->shards) {
    if (const int n = context.model->shards->shards_failing(); n > 0)
      why.push_back(std::to_string(n) + " expert shard(s) failing");
  }
  return why;
}

bool stages_healthy(const server_context& context) {
  return context.directory.all_up() && context.directory.given_up().empty();
}

nlohmann::json health_report(const server_context& context) {
  using namespace std::chrono;
  nlohmann::json stages = nlohmann::json::object();
  auto restarts = context.directory.restarts();
  for (const auto& name : context.directory.names()) {
    stages[name] = {{"up", context.directory.up(name)}, {"restarts", restarts[name]}};
  }
  const auto& c = context.counters;
  const std::vector<std::string> why = not_ready_reasons(context);
  const bool ready = why.empty();
  return {
      {"status", context.draining ? "draining" : stages_healthy(context) ? "ok" : "degraded"},
      {"ready", ready},
      {"not_ready", why},
      {"server", context.config.name},
      {"uptime_ms", duration_cast<milliseconds>(steady_clock::now() - context.started).count()},
      // The checkpoint's folder name only: anyone may ping, and file-system paths are the operator's business.
      {"model", context.model ? nlohmann::json(served_model_name(context.config.model.path)) : nlohmann::json(nullptr)},
      {"stages", stages},
      {"requests", {{"accepted", c.requests_accepted.load()},
                    {"finished", c.requests_finished.load()},
                    {"errored", c.requests_errored.load()},
                    {"shed", c.requests_shed.load()},
                    {"in_flight", c.requests_in_flight.load()}}},
      {"limits", context.frontend ? net::limits_body(context.frontend->limits()) : nlohmann::json(nullptr)},
  };
}

namespace {

struct gateway_state {
  server_context* context = nullptr;
  std::unique_ptr<admission_gate> gate;
  // Running requests by client and request id, to refuse duplicate ids and to find cancel targets.
  std::map<std::pair<std::string, std::string>, std::weak_ptr<request_state>> running;
  std::unordered_map<uint64_t, std::pair<std::string, std::string>> key_of;  // seq id -> running's key
  size_t inserts_since_sweep = 0;
  size_t next_tokenizer = 0;
  int64_t tokenizing = 0;  // requests handed to the tokenizer pool and not yet back: its mailboxes' depth
  bool anonymous_admitted = true;  // at the level in force, as last seen
  static inline const char* name = "gateway";
};

using self_ptr = gateway_actor::stateful_pointer<gateway_state>;

request_ptr find_running(gateway_state& st, const std::string& peer, const std::string& id) {
  auto it = st.running.find({peer, id});
  if (it == st.running.end()) return nullptr;
  auto r = it->second.lock();
  if (!r || st.context->ledger.ended(*r)) {
    st.running.erase(it);
    return nullptr;
  }
  return r;
}

void sweep(gateway_state& st) {
  for (auto it = st.running.begin(); it != st.running.end();) {
    auto r = it->second.lock();
    if (!r || st.context->ledger.ended(*r)) it = st.running.erase(it);
    else ++it;
  }
  st.inserts_since_sweep = 0;
}

void poke_scheduler(server_context& ctx) {
  if (auto sched = ctx.stages.scheduler.get()) {
    caf::anon_send(sched, poke_atom::value);
  }
}

void start_generate(self_ptr self, const inbound_message& in) {
  auto& st = self->state;
  auto& ctx = *st.context;
  const auto& g = in.msg->generate;
  auto reject = [&](std::string_view type, nlohmann::json body) { ctx.reply(in.peer, type, body); };
  if (ctx.draining) {
    ctx.counters.requests_shed++;
    if (ctx.metrics) ctx.metrics->shed("shutting_down").Increment();
    return reject("shed", net::shed_body(g.request_id, "shutting_down", 1000));
  }
  if (!ctx.model) {
    return reject("error", net::error_body(g.request_id, net::error_code::unavailable, "no model is loaded"));
  }
  if (find_running(st, in.peer, g.request_id)) {
    return reject("error", net::error_body(g.request_id, net::error_code::duplicate_request_id,
                                           "a request with this id is still running"));
  }
  auto r = std::make_shared<request_state>();
  r->seq_id = ctx.next_seq_id++;
  r->peer = in.peer;
  r->peer_address = in.peer_address;
  r->req = g;
  if (in.user_id.rfind("tenant:", 0) == 0) r->curve_tenant_id = std::strtoll(in.user_id.c_str() + 7, nullptr, 10);
  auto verdict = st.gate->admit_generate(*r);
  // Counted whether admitted or not (a flood is mostly refused), by tenant when the request authenticated: a
  // tenant is judged against its own rate, and its address (shared, maybe, with others) is not its name.
  r->monitor_key = r->tenant_id != 0 ? "tenant:" + std::to_string(r->tenant_id) : r->peer_address;
  if (ctx.monitor) ctx.monitor->signal(monitor::app_signal::request, r->monitor_key);
  if (!verdict.admitted) {
    if (verdict.is_error) {
      ctx.counters.requests_errored++;
      if (ctx.metrics) ctx.metrics->errored(net::to_string(verdict.code)).Increment();
      return reject("error", net::error_body(g.request_id, verdict.code, verdict.reason));
    }
    ctx.counters.requests_shed++;
    if (ctx.metrics) ctx.metrics->shed(verdict.reason).Increment();
    return reject("shed", net::shed_body(g.request_id, verdict.reason, verdict.retry_after_ms));
  }
  // The tokenizer pool's mailboxes are bounded like the scheduler's queue: full is a shed, not a longer queue.
  if (st.tokenizing >= ctx.config.frontend.max_queued_requests) {
    st.gate->release(r->seq_id);
    ctx.counters.requests_shed++;
    if (ctx.metrics) ctx.metrics->shed("over_capacity").Increment();
    return reject("shed", net::shed_body(g.request_id, "over_capacity", 500));
  }
  ctx.ledger.open(*r);
  st.running[{in.peer, g.request_id}] = r;
  st.key_of[r->seq_id] = {in.peer, g.request_id};
  if (++st.inserts_since_sweep >= 1024) sweep(st);

  auto tok = ctx.stages.tokenizers[st.next_tokenizer++ % ctx.tokenizer_stages].get();
  if (!tok) {
    ctx.ledger.finish(*r, outcome::error(*r, net::error_code::unavailable, "the tokenizer is restarting"));
    return;
  }
  const auto timeout = std::chrono::milliseconds(ctx.config.actors.request_timeout_ms);
  auto* pctx = &ctx;
  ++st.tokenizing;
  self->request(tok, timeout, tokenize_atom::value, r)
      .then(
          [self, pctx](tokenized& t) {
            --self->state.tokenizing;
            if (!t.ok) {
              pctx->ledger.finish(*t.request, outcome::error(*t.request, t.code, t.message));
              return;
            }
            auto sched = pctx->stages.scheduler.get();
            if (!sched) {
              pctx->ledger.finish(*t.request, outcome::error(*t.request, net::error_code::unavailable,
                                                             "the scheduler is restarting"));
              return;
            }
            // Answered once the scheduler has taken it; a scheduler that dies first answers with an error.
            auto handed = t.request;
            self->request(sched, caf::infinite, handed)
                .then([](bool) {},
                      [pctx, handed](caf::error& e) {
                        pctx->ledger.finish(*handed, outcome::error(*handed, net::error_code::unavailable,
                                                                    "the scheduler stopped before taking the "
                                                                    "request: " + caf::to_string(e)));
                      });
          },
          [self, pctx, r](caf::error& e) {
            --self->state.tokenizing;
            pctx->ledger.finish(
                *r, outcome::error(*r, net::error_code::internal, "tokenizer stage: " + caf::to_string(e)));
          });
}

// A stats answer: the health report, the front end's counters and, when it answers in time, the scheduler's.
void answer_stats(self_ptr self, const inbound_message& in) {
  auto* ctx = self->state.context;
  auto body = health_report(*ctx);
  const auto& fc = ctx->frontend->counters();
  body["frontend"] = {{"messages_in", fc.messages_in.load()},
                      {"malformed_in", fc.malformed_in.load()},
                      {"events_out", fc.events_out.load()},
                      {"unroutable", fc.unroutable.load()},
                      {"slow_consumers", fc.slow_consumers.load()},
                      {"rate_limited", fc.rate_limited_in.load()},
                      {"flooders_dropped", fc.flooders_dropped.load()},
                      {"denied_dropped", fc.denied_dropped.load()},
                      {"disconnects", fc.disconnects.load()}};
  if (ctx->http) {
    const auto& hc = ctx->http->counters();
    body["http"] = {{"open", hc.open.load()},
                    {"accepted", hc.accepted.load()},
                    {"requests", hc.requests.load()},
                    {"malformed", hc.malformed.load()},
                    {"timed_out", hc.timed_out.load()},
                    {"slow_readers", hc.slow_readers.load()},
                    {"refused_connections", hc.refused_connections.load()},
                    {"denied", hc.denied.load()},
                    {"unroutable", hc.unroutable.load()},
                    {"rate_limited", hc.rate_limited.load()}};
  }
  auto sched = ctx->stages.scheduler.get();
  if (!sched) {
    ctx->reply(in.peer, "stats", body);
    return;
  }
  auto peer = in.peer;
  self->request(sched, std::chrono::seconds(2), stats_atom::value)
      .then([ctx, peer, body](const std::string& s) mutable {
              body["scheduler"] = nlohmann::json::parse(s, nullptr, false);
              ctx->reply(peer, "stats", body);
            },
            [ctx, peer, body](caf::error&) { ctx->reply(peer, "stats", body); });
}

// Every cancel is answered once: by the request's terminal event when this cancel is the one that stops it
// (finish_reason `cancelled`, or `stop`/`length` when generation ended first), otherwise by unknown_request (no
// such running request, or a cancel for it is already under way).
void cancel(self_ptr self, const inbound_message& in) {
  auto* ctx = self->state.context;
  const auto& id = in.msg->cancel.request_id;
  auto r = find_running(self->state, in.peer, id);
  if (!r || r->cancel_requested.exchange(true)) {
    ctx->reply(in.peer, "error",
                        net::error_body(id, net::error_code::unknown_request,
                                        r ? "a cancel for this request is already under way"
                                          : "no running request with this id"));
    return;
  }
  poke_scheduler(*ctx);
}

// A `register`: the policy's verdict, the key checks, then the registrar (its mailbox bounded).
void start_registration(self_ptr self, const inbound_message& in) {
  auto& st = self->state;
  auto* ctx = st.context;
  if (!ctx->accounts) {
    ctx->reply(in.peer, "error",
                        net::error_body("", net::error_code::unavailable,
                                        "registration is not enabled (no accounts database)"));
    return;
  }
  auto v = st.gate->admit_registration(in.peer_address);
  if (!v.admitted) {
    auto body = net::shed_body("", v.reason, v.retry_after_ms);
    if (v.reason == "registration_closed") body["message"] = st.gate->shedder().level_policy().registration.message;
    if (ctx->metrics) ctx->metrics->shed(v.reason).Increment();
    ctx->reply(in.peer, "shed", body);
    return;
  }
  // Keys that name someone already: a tenant holding one would be served whoever holds the published
  // registration keypair, or would take over the server's own identity. Other tenants' keys are refused by the
  // accounts database itself.
  const auto& registration = in.msg->registration;
  const auto& key = registration.curve_public_key;
  if (!key.empty() && (key == ctx->config.frontend.curve_public_key ||
                       key == st.gate->shedder().policy().registration_curve_key)) {
    ctx->reply(in.peer, "error",
                        net::error_body("", net::error_code::curve_key_taken,
                                        "curve_public_key is the server's or the registration identity's key"));
    return;
  }
  auto registrar = ctx->stages.registrar.get();
  if (!registrar) {
    ctx->reply(in.peer, "error",
                        net::error_body("", net::error_code::unavailable, "the registrar is restarting"));
    return;
  }
  if (ctx->registrations_pending.fetch_add(1) >= server_context::max_pending_registrations) {
    ctx->registrations_pending--;
    if (ctx->metrics) ctx->metrics->shed("registration_busy").Increment();
    ctx->reply(in.peer, "shed", net::shed_body("", "registration_busy", 1000));
    return;
  }
  caf::anon_send(registrar, register_atom::value, in.peer, registration.name, registration.curve_public_key);
}

void handle(self_ptr self, const inbound_message& in) {
  auto* ctx = self->state.context;
  const auto& msg = *in.msg;
  // A connection admitted with the published registration identity may register and ping, nothing else.
  if (in.user_id == "registration" && msg.type != net::message_type::register_tenant &&
      msg.type != net::message_type::ping) {
    if (ctx->metrics) ctx->metrics->errored(net::to_string(net::error_code::unauthorized)).Increment();
    ctx->reply(in.peer, "error",
                        net::error_body(msg.request_id(), net::error_code::unauthorized,
                                        "this connection uses the registration key: it may only register"));
    return;
  }
  switch (msg.type) {
    case net::message_type::ping: {
      auto body = health_report(*ctx);
      if (msg.echo_omitted) body["echo_omitted"] = true;  // the body was over max_echo_bytes
      else body["echo"] = msg.ping_body;                  // the decoded body object, within the decoder's limits
      ctx->reply(in.peer, "pong", body);
      break;
    }
    case net::message_type::stats: answer_stats(self, in); break;
    case net::message_type::generate: start_generate(self, in); break;
    case net::message_type::cancel: cancel(self, in); break;
    case net::message_type::register_tenant: start_registration(self, in); break;
  }
}

// When the level in force stops admitting anonymous requests, the anonymous ones already running or queued
// are ended too (shed anonymous_closed, the level's retry_after), not left to finish.
void apply_class_closures(self_ptr self) {
  auto& st = self->state;
  const auto& lp = st.gate->shedder().level_policy();
  const bool was = st.anonymous_admitted;
  st.anonymous_admitted = lp.anonymous_admitted || st.gate->shedder().policy().dry_run;
  if (!was || st.anonymous_admitted) return;
  int ended = 0;
  for (auto& [key, weak] : st.running) {
    auto r = weak.lock();
    if (!r || st.context->ledger.ended(*r) || r->tenant_id != 0) continue;
    if (r->cancel_requested.load()) continue;  // already ending (cancelled, gone or stopped)
    r->shed_retry_after_ms = lp.retry_after_ms;
    r->shed_by_policy = request_state::policy_shed::anonymous_closed;
    r->cancel_requested = true;
    ++ended;
  }
  if (ended > 0) {
    spdlog::warn("policy: ending {} running anonymous request(s): the level in force admits none", ended);
    poke_scheduler(*st.context);
  }
}

void on_peer_gone(self_ptr self, const std::string& peer) {
  auto& st = self->state;
  int cancelled = 0;
  const auto now = request_state::clock::now();
  for (auto it = st.running.lower_bound({peer, std::string()});
       it != st.running.end() && it->first.first == peer;) {
    if (auto r = it->second.lock(); r && !st.context->ledger.ended(*r)) {
      r->peer_gone_at = now;
      r->peer_gone = true;
      r->cancel_requested = true;
      ++cancelled;
    }
    it = st.running.erase(it);
  }
  if (cancelled > 0) {
    spdlog::info("a client vanished: cancelling its {} running request(s)", cancelled);
    poke_scheduler(*st.context);
  }
}

gateway_actor::behavior_type gateway(self_ptr self, server_context* context) {
  self->state.context = context;
  self->state.gate = std::make_unique<admission_gate>(context, context->initial_policy);
  self->state.gate->publish_deny_list();
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
  return {
      [=](const inbound_message& in) {
        self->state.context->gateway_backlog--;
        handle(self, in);
      },
      [=](peer_gone_atom, const std::string& peer) { on_peer_gone(self, peer); },
      [=](finished_atom, uint64_t seq_id) {
        auto& st = self->state;
        st.gate->release(seq_id);
        auto it = st.key_of.find(seq_id);
        if (it != st.key_of.end()) {
          auto r = st.running.find(it->second);
          // The id may already name a newer request of the same client: erase only this one.
          if (r != st.running.end()) {
            auto live = r->second.lock();
            if (!live || live->seq_id == seq_id) st.running.erase(r);
          }
          st.key_of.erase(it);
        }
      },
      [=](const monitor_notice& n) {
        self->state.gate->on_monitor(n);
        apply_class_closures(self);
      },
      [=](const std::shared_ptr<const config::policy>& p) {
        self->state.gate->set_policy(p);
        self->state.context->initial_policy = p;  // a restarted gateway starts from the policy in force
        apply_class_closures(self);
        spdlog::info("policy: {} in force", p->source);
      },
      [=](tick_atom) {
        self->state.gate->tick();
        apply_class_closures(self);
        self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
      },
  };
}

}  // namespace

gateway_actor spawn_gateway(caf::actor_system& system, server_context* context) {
  context->gateway_backlog = 0;  // a restarted gateway starts with an empty mailbox
  return system.spawn(gateway, context);
}

}  // namespace rampart::actors
