#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include "actors/stages.hpp"
#include "engine/engine.hpp"
#include "engine/scheduler.hpp"
#include "shards/sharded_expert_backend.hpp"

namespace rampart::actors {
namespace {

struct scheduler_state {
  server_context* ctx = nullptr;
  std::unique_ptr<model::batch_scheduler> sched;
  std::unordered_map<uint64_t, request_ptr> requests;  // every request the scheduler holds
  bool step_pending = false;
  int64_t preemptions_seen = 0;
  static inline const char* name = "scheduler";

  // A stage that dies leaves no request without its terminal event; the batch scheduler's destructor
  // returns the KV blocks of whatever was running.
  ~scheduler_state() {
    for (auto& [id, r] : requests) {
      if (ctx->draining) {
        ctx->ledger.finish(*r, outcome::shed(*r, "shutting_down", 1000));  // the drain limit ran out
      } else {
        ctx->ledger.finish(*r, outcome::error(*r, net::error_code::internal, "the scheduler stage failed"));
      }
    }
  }
};

using self_ptr = scheduler_actor::stateful_pointer<scheduler_state>;

void schedule_step(self_ptr self) {
  if (!self->state.step_pending) {
    self->state.step_pending = true;
    self->send(self, step_atom::value);
  }
}

int priority_index(priority p) { return static_cast<int>(p); }  // the scheduler's class: 0 highest

void enqueue(self_ptr self, const request_ptr& r) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  if (r->cancel_requested && r->shed_by_policy.load() != request_state::policy_shed::none) {
    // Ended by policy before acceptance.
    ctx.ledger.finish(*r, outcome::shed(*r, r->policy_shed_reason(), r->shed_retry_after_ms.load()));
    return;
  }
  if (r->cancel_requested) {
    // Cancelled between admission and here (a cancel sent right behind its generate): it was accepted all the
    // same, so it gets `accepted` first and then a `done` like any other cancelled request.
    // A client already gone gets nothing posted, but the request still ends here: the ledger gives back its
    // admission ticket and in-flight count.
    if (ctx.ledger.ended(*r)) return;
    ctx.counters.requests_accepted++;
    if (!r->peer_gone) {
      ctx.reply(r->peer, "accepted",
                         {{"request_id", r->req.request_id}, {"prompt_tokens", r->prompt.size()}});
    }
    using ms = std::chrono::duration<double, std::milli>;
    const double total = ms(request_state::clock::now() - r->received).count();
    ctx.ledger.finish(*r, outcome::done({{"request_id", r->req.request_id},
                                         {"finish_reason", "cancelled"},
                                         {"usage", {{"prompt_tokens", r->prompt.size()},
                                                    {"completion_tokens", 0},
                                                    {"cached_prompt_tokens", 0}}},
                                         {"timing", {{"queue_ms", total},
                                                     {"time_to_first_token_ms", 0.0},
                                                     {"time_per_output_token_ms", 0.0},
                                                     {"total_ms", total}}}}));
    return;
  }
  model::sequence_request sr;
  sr.id = r->seq_id;
  sr.priority = priority_index(r->req.priority);
  // Fairness is between tenants, and between source addresses for anonymous work, not between connections.
  sr.client = r->tenant_id != 0 ? "t" + std::to_string(r->tenant_id) : "a" + r->peer_address;
  sr.budgeted = r->tenant_id == 0 || r->req.priority == priority::sheddable;
  sr.prompt = r->prompt;
  sr.max_tokens = r->req.max_tokens;
  sr.arrival_ms = std::chrono::duration_cast<std::chrono::milliseconds>(r->received.time_since_epoch()).count();
  if (!r->req.ignore_eos) sr.eos_ids = ctx.model->eos_ids;
  const auto& p = r->req.params;
  sr.sampling.temperature = static_cast<float>(p.temperature);
  sr.sampling.top_k = static_cast<int>(std::min<int64_t>(p.top_k, INT32_MAX));
  sr.sampling.top_p = static_cast<float>(p.top_p);
  sr.sampling.min_p = static_cast<float>(p.min_p);
  sr.sampling.seed = p.seed ? *p.seed : r->seq_id * 0x9E3779B97F4A7C15ull;
  const auto added = st.sched->add(std::move(sr));
  switch (added.code) {
    case model::batch_scheduler::add_result::queued:
      st.requests[r->seq_id] = r;
      ctx.counters.requests_accepted++;
      ctx.reply(r->peer, "accepted",
                         {{"request_id", r->req.request_id}, {"prompt_tokens", r->prompt.size()}});
      schedule_step(self);
      break;
    case model::batch_scheduler::add_result::queue_full:
      ctx.ledger.finish(*r, outcome::shed(*r, "over_capacity", 500));
      break;
    case model::batch_scheduler::add_result::too_long:
      ctx.ledger.finish(*r, outcome::error(*r, net::error_code::prompt_too_long, added.message));
      break;
    case model::batch_scheduler::add_result::bad_request:
      ctx.ledger.finish(*r, outcome::error(*r, net::error_code::bad_parameter, added.message));
      break;
  }
}

// Cancelled requests, and requests another stage has already ended (a detokenizer that died with them, say):
// they stop taking batch slots and KV blocks at once.
void apply_cancellations(scheduler_state& st) {
  for (auto& [id, r] : st.requests) {
    if (r->cancel_requested || st.ctx->ledger.ended(*r)) st.sched->cancel(id);
  }
}

// After a step: the load figures the policy reads, and the metrics (the batch, the KV cache, the shards every
// 16 steps, preemptions).
void record_load(scheduler_state& st, size_t tokens) {
  auto& ctx = *st.ctx;
  const model::scheduler_stats s = st.sched->stats();
  ctx.load.running = s.running;
  ctx.load.waiting = s.waiting;
  if (!ctx.metrics) return;
  ctx.metrics->generation_tokens->Increment(static_cast<double>(tokens));
  ctx.metrics->requests_running->Set(static_cast<double>(s.running));
  ctx.metrics->requests_waiting->Set(static_cast<double>(s.waiting));
  if (s.kv.total_blocks > 0) {
    ctx.metrics->kv_cache_usage->Set(1.0 - double(s.kv.free_blocks) / double(s.kv.total_blocks));
  }
  if (ctx.model->shards && s.steps % 16 == 0) {
    const auto& stats = ctx.model->shards->stats();
    std::vector<uint64_t> loads;
    for (int k = 0; k < stats.n_shards(); ++k) {
      loads.push_back(stats.shard_total(k));
      ctx.metrics->shard_tokens(k).Set(static_cast<double>(loads.back()));
    }
    for (int e = 0; e < stats.n_experts(); ++e) {
      ctx.metrics->expert_tokens(e).Set(static_cast<double>(stats.expert_total(e)));
    }
    ctx.metrics->shard_imbalance->Set(model::load_imbalance(loads));
    ctx.metrics->shard_rebalances->Set(static_cast<double>(ctx.model->shards->costs().rebalances.load()));
    ctx.metrics->shard_slow_marks->Set(static_cast<double>(ctx.model->shards->costs().slow_marks.load()));
    ctx.metrics->shard_failures->Set(static_cast<double>(ctx.model->shards->costs().shard_failures.load()));
    for (int k = 0; k < stats.n_shards(); ++k) ctx.metrics->shard_slow(k).Set(ctx.model->shards->slow(k) ? 1 : 0);
  }
  if (s.preemptions > st.preemptions_seen) {
    ctx.metrics->preemptions->Increment(static_cast<double>(s.preemptions - st.preemptions_seen));
    st.preemptions_seen = s.preemptions;
  }
}

void run_step(self_ptr self) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  st.step_pending = false;
  apply_cancellations(st);
  model::step_report report;
  // Requests that waited past their class's queue-delay target are shed (queue_timeout) before the step.
  std::vector<int64_t> deadlines;
  for (const auto& d : ctx.level.queue_delay_ms) deadlines.push_back(d.load());
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             request_state::clock::now().time_since_epoch()).count();
  auto expired = st.sched->expire_waiting(now_ms, deadlines);
  st.sched->set_budget({ctx.level.budget_batch_share.load(), ctx.level.budget_step_share.load()});
  st.sched->step(&report);
  for (auto& e : expired) report.finished.push_back(std::move(e));
  step_events ev;
  ev.tokens.reserve(report.tokens.size());
  for (const auto& t : report.tokens) {
    auto it = st.requests.find(t.id);
    if (it == st.requests.end()) continue;
    if (it->second->queue_ms.load(std::memory_order_relaxed) < 0) it->second->queue_ms = st.sched->queue_ms(t.id);
    ev.tokens.push_back({it->second, t.token});
  }
  const auto now = request_state::clock::now();
  for (auto& f : report.finished) {
    auto it = st.requests.find(f.id);
    if (it == st.requests.end()) continue;
    auto& r = it->second;
    if (r->peer_gone && ctx.metrics) {
      ctx.metrics->client_gone_to_freed->Observe(std::chrono::duration<double>(now - r->peer_gone_at).count());
      spdlog::debug("request {} of a vanished client freed {:.1f} ms after the client was noticed gone",
                    r->req.request_id,
                    std::chrono::duration<double, std::milli>(now - r->peer_gone_at).count());
    }
    if (ctx.metrics) {
      ctx.metrics->prompt_tokens->Increment(static_cast<double>(f.prompt_tokens - f.cached_prompt_tokens));
      ctx.metrics->prefix_cache_hit_tokens->Increment(static_cast<double>(f.cached_prompt_tokens));
    }
    if (r->queue_ms.load(std::memory_order_relaxed) < 0) r->queue_ms = f.queue_ms;
    ev.finished.push_back({r, std::move(f)});
    st.requests.erase(it);
  }
  record_load(st, report.tokens.size());
  if (!ev.tokens.empty() || !ev.finished.empty()) {
    auto detok = ctx.stages.detokenizer.get();
    if (detok) {
      self->send(detok, std::move(ev));
    } else {
      for (auto& f : ev.finished) {
        ctx.ledger.finish(*f.request, outcome::error(*f.request, net::error_code::unavailable,
                                                     "the detokenizer is restarting"));
      }
    }
  }
  if (st.sched->has_work()) schedule_step(self);
}

std::string stats_json(const scheduler_state& st) {
  auto s = st.sched->stats();
  return nlohmann::json{{"running", s.running},
                        {"waiting", s.waiting},
                        {"preemptions", s.preemptions},
                        {"budgeted_running", s.budgeted_running},
                        {"budgeted_waiting", s.budgeted_waiting},
                        {"steps", s.steps},
                        {"kv", {{"total_blocks", s.kv.total_blocks},
                                {"free_blocks", s.kv.free_blocks},
                                {"block_tokens", s.kv.block_tokens},
                                {"cached_blocks", s.kv.cached_blocks},
                                {"prefix_hit_tokens", s.kv.prefix_hit_tokens}}}}
      .dump();
}

scheduler_actor::behavior_type scheduler_stage(self_ptr self, server_context* ctx) {
  auto& st = self->state;
  st.ctx = ctx;
  model::scheduler_options opts;
  opts.max_running = ctx->config.engine.max_batch_sequences;
  opts.max_step_tokens = ctx->config.engine.max_step_tokens;
  opts.budget_guard_s = static_cast<double>(ctx->config.engine.budget_guard_ms) / 1000.0;
  opts.max_waiting = ctx->config.frontend.max_queued_requests;
  opts.priority_classes = priority_count;
  st.sched = std::make_unique<model::batch_scheduler>(ctx->model->engine.get(), opts);
  return {
      [=](const request_ptr& r) {
        enqueue(self, r);  // queued, or ended through the ledger: either way it is the scheduler's now
        return true;
      },
      [=](poke_atom) { schedule_step(self); },
      [=](step_atom) { run_step(self); },
      [=](stats_atom) { return stats_json(self->state); },
  };
}

}  // namespace

scheduler_actor spawn_scheduler_stage(caf::actor_system& system, server_context* context) {
  return system.spawn<caf::detached>(scheduler_stage, context);
}

}  // namespace rampart::actors
