#include <algorithm>

#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "actors/monitor_service.hpp"
#include "actors/stages.hpp"
#include "tokenizer/detokenizer.hpp"
#include "tokenizer/tokenizer.hpp"

namespace rampart::actors {
namespace {

// Token events pair text with ids this way: an event carries every id fed since the previous event and the
// text that became final since then. Text can lag its ids (a UTF-8 character or a possible stop string is held
// back), never lead them, and the ids and texts of all events concatenate to the whole completion.
struct stream {
  request_ptr request;
  std::optional<model::detokenizer> detok;
  std::vector<int32_t> ids;  // fed ids
  size_t ids_sent = 0;       // ids already reported in token events
  std::string pending;       // final text of this batch of step events, not yet sent
};

struct detokenizer_state {
  server_context* ctx = nullptr;
  std::unordered_map<uint64_t, stream> streams;
  static inline const char* name = "detokenizer";

  // A stage that dies leaves no request without its terminal event.
  ~detokenizer_state() {
    for (auto& [id, s] : streams) {
      auto& r = *s.request;
      if (ctx->draining) {
        ctx->ledger.finish(r, outcome::shed(r, "shutting_down", 1000));  // the drain limit ran out
      } else {
        ctx->ledger.finish(r, outcome::error(r, net::error_code::internal, "the detokenizer stage failed"));
      }
    }
  }
};

using clock = std::chrono::steady_clock;

// Sends the stream's pending text with every id not yet reported, when there is either.
void emit_token(server_context& ctx, stream& s) {
  auto& r = *s.request;
  if (s.pending.empty() && s.ids_sent >= s.ids.size()) return;
  const std::string text = std::move(s.pending);
  s.pending.clear();
  if (ctx.ledger.ended(r) || r.peer_gone) return;
  const size_t first_id = s.ids_sent, n_ids = s.ids.size() - s.ids_sent;
  s.ids_sent = s.ids.size();
  const auto now = clock::now();
  if (r.token_events == 0) {
    r.first_token = now;
    // A moving average of time to first token: the wait a new request can expect (admission's estimate).
    const int64_t ttft_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - r.received).count();
    const int64_t old = ctx.load.recent_queue_ms.load();
    ctx.load.recent_queue_ms = old == 0 ? ttft_ms : (old * 7 + ttft_ms) / 8;
    if (ctx.metrics) {
      const double ttft = std::chrono::duration<double>(now - r.received).count();
      ctx.metrics->time_to_first_token->Observe(ttft);
      if (r.tenant_id != 0) ctx.metrics->registered_ttft->Observe(ttft);
    }
  }
  if (ctx.metrics && r.tenant_id != 0) ctx.metrics->registered_tokens->Increment(static_cast<double>(n_ids));
  if (ctx.monitor) ctx.monitor->signal(monitor::app_signal::generated_tokens, r.monitor_key, n_ids);
  r.last_token = now;
  ctx.reply_token(r.peer, r.req.request_id, r.token_events++, text, s.ids.data() + first_id, n_ids);
}

void send_done(server_context& ctx, stream& s, const char* reason, int64_t prompt_tokens, int64_t completion,
               int64_t cached) {
  auto& r = *s.request;
  using ms = std::chrono::duration<double, std::milli>;
  const auto now = clock::now();
  double ttft = r.token_events > 0 ? ms(r.first_token - r.received).count() : 0.0;
  double tpot = r.token_events > 1 ? ms(r.last_token - r.first_token).count() / double(r.token_events - 1) : 0.0;
  nlohmann::json body = {
      {"request_id", r.req.request_id},
      {"finish_reason", reason},
      {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion},
                 {"cached_prompt_tokens", cached}}},
      {"timing", {{"queue_ms", static_cast<double>(std::max<int64_t>(0, r.queue_ms.load()))},
                  {"time_to_first_token_ms", ttft}, {"time_per_output_token_ms", tpot},
                  {"total_ms", ms(now - r.received).count()}}},
  };
  if (ctx.ledger.ended(r)) return;
  if (ctx.metrics && r.token_events > 1) {
    ctx.metrics->time_per_output_token->Observe(tpot / 1000.0);
    if (r.tenant_id != 0) ctx.metrics->registered_tpot->Observe(tpot / 1000.0);
  }
  ctx.ledger.finish(r, outcome::done(std::move(body)));
}

stream* open_stream(detokenizer_state& st, const request_ptr& r) {
  auto [it, inserted] = st.streams.try_emplace(r->seq_id);
  if (inserted) {
    it->second.request = r;
    model::detokenizer_options opts;
    opts.skip_special = r->req.skip_special_tokens;
    opts.stop_strings = r->req.stop;
    std::string error;
    it->second.detok = model::detokenizer::create(*st.ctx->model->tokenizer, opts, &error);
    if (!it->second.detok) {
      st.ctx->ledger.finish(*r, outcome::error(*r, net::error_code::bad_parameter, error));
      r->cancel_requested = true;
    }
  }
  return &it->second;
}

void on_events(detokenizer_state& st, const step_events& ev) {
  auto& ctx = *st.ctx;
  const net::frontend::held_wakes one_wake(*ctx.frontend);  // the step's events go out together
  // One step's tokens and endings arrive together: text is gathered per stream and sent once, after the
  // stream's ending when it ends in this step, so a request's last token and its flushed text share an event.
  std::vector<stream*> touched;
  for (const auto& t : ev.tokens) {
    stream* s = open_stream(st, t.request);
    if (!s->detok || s->detok->stopped()) continue;
    if (std::find(touched.begin(), touched.end(), s) == touched.end()) touched.push_back(s);
    s->ids.push_back(t.id);
    auto d = s->detok->feed(t.id);
    s->pending += d.text;
    if (d.stopped) {
      // The stop string ends the request now; the scheduler frees its blocks at its next step.
      emit_token(ctx, *s);
      send_done(ctx, *s, "stop", static_cast<int64_t>(t.request->prompt.size()),
                static_cast<int64_t>(s->ids.size()), 0);
      t.request->cancel_requested = true;
      if (auto sched = ctx.stages.scheduler.get()) {
        caf::anon_send(sched, poke_atom::value);
      }
    }
  }
  for (const auto& f : ev.finished) {
    auto& r = *f.request;
    if (f.info.reason == model::finish_reason::error) {
      ctx.ledger.finish(r, outcome::error(r, net::error_code::internal, f.info.error));
    } else if (f.info.reason == model::finish_reason::expired) {
      ctx.ledger.finish(r, outcome::shed(r, "queue_timeout", ctx.load.recent_queue_ms.load() + 100));
    } else if (f.info.reason == model::finish_reason::cancelled &&
               r.shed_by_policy.load() != request_state::policy_shed::none) {
      // Ended by the policy (the level closed its class): the text so far, then `shed` as its terminal event.
      stream* s = open_stream(st, f.request);
      if (s->detok && !s->detok->stopped()) s->pending += s->detok->finish().text;
      emit_token(ctx, *s);
      ctx.ledger.finish(r, outcome::shed(r, r.policy_shed_reason(), r.shed_retry_after_ms.load()));
    } else {
      stream* s = open_stream(st, f.request);
      if (s->detok && !s->detok->stopped()) s->pending += s->detok->finish().text;
      emit_token(ctx, *s);
      send_done(ctx, *s, model::to_string(f.info.reason), f.info.prompt_tokens, f.info.completion_tokens,
                f.info.cached_prompt_tokens);
    }
    if (auto it = st.streams.find(r.seq_id); it != st.streams.end()) {
      touched.erase(std::remove(touched.begin(), touched.end(), &it->second), touched.end());
      st.streams.erase(it);
    }
  }
  // A stream whose text is all held back (inside a character or a possible stop string) waits for more.
  for (stream* s : touched) {
    if (!s->pending.empty()) emit_token(ctx, *s);
  }
}

detokenizer_actor::behavior_type detokenizer_stage(detokenizer_actor::stateful_pointer<detokenizer_state> self,
                                                   server_context* ctx) {
  self->state.ctx = ctx;
  return {[=](const step_events& ev) { on_events(self->state, ev); }};
}

}  // namespace

detokenizer_actor spawn_detokenizer_stage(caf::actor_system& system, server_context* context) {
  return system.spawn(detokenizer_stage, context);
}

}  // namespace rampart::actors
