#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "actors/stages.hpp"
#include "model/detokenizer.hpp"
#include "model/tokenizer.hpp"

namespace rampart::actors {
namespace {

struct stream {
  request_ptr request;
  std::optional<model::detokenizer> detok;
  std::vector<int32_t> ids;  // fed ids
  size_t ids_sent = 0;       // ids already reported in token events
};

struct detokenizer_state {
  server_context* ctx = nullptr;
  std::unordered_map<uint64_t, stream> streams;
  static inline const char* name = "detokenizer";

  // A stage that dies leaves no request without its terminal event.
  ~detokenizer_state() {
    for (auto& [id, s] : streams) {
      send_error(*ctx, *s.request, net::error_code::internal, "the detokenizer stage failed");
    }
  }
};

using clock = std::chrono::steady_clock;

void emit_token(server_context& ctx, stream& s, std::string_view text, size_t tokens_done) {
  auto& r = *s.request;
  if (r.terminal_sent || r.peer_gone) return;
  nlohmann::json ids = nlohmann::json::array();
  for (size_t i = s.ids_sent; i < tokens_done && i < s.ids.size(); ++i) ids.push_back(s.ids[i]);
  s.ids_sent = std::max(s.ids_sent, tokens_done);
  const auto now = clock::now();
  if (r.token_events == 0) {
    r.first_token = now;
    // A moving average of time to first token: the wait a new request can expect (admission's estimate).
    const int64_t ttft_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - r.received).count();
    const int64_t old = ctx.recent_queue_ms.load();
    ctx.recent_queue_ms = old == 0 ? ttft_ms : (old * 7 + ttft_ms) / 8;
    if (ctx.metrics) {
      ctx.metrics->time_to_first_token->Observe(std::chrono::duration<double>(now - r.received).count());
    }
  }
  r.last_token = now;
  ctx.frontend->post(r.peer, "token",
                     {{"request_id", r.req.request_id}, {"index", r.token_events++}, {"text", text}, {"ids", ids}});
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
      {"timing", {{"time_to_first_token_ms", ttft}, {"time_per_output_token_ms", tpot},
                  {"total_ms", ms(now - r.received).count()}}},
  };
  if (r.terminal_sent) return;
  if (ctx.metrics && r.token_events > 1) ctx.metrics->time_per_output_token->Observe(tpot / 1000.0);
  send_terminal(ctx, r, "done", std::move(body));
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
      send_error(*st.ctx, *r, net::error_code::bad_parameter, error);
      r->cancel_requested = true;
    }
  }
  return &it->second;
}

void on_events(detokenizer_state& st, const step_events& ev) {
  auto& ctx = *st.ctx;
  for (const auto& t : ev.tokens) {
    stream* s = open_stream(st, t.request);
    if (!s->detok || s->detok->stopped()) continue;
    s->ids.push_back(t.id);
    auto d = s->detok->feed(t.id);
    if (!d.text.empty() || d.stopped) emit_token(ctx, *s, d.text, d.tokens_done);
    if (d.stopped) {
      // The stop string ends the request now; the scheduler frees its blocks at its next step.
      send_done(ctx, *s, "stop", static_cast<int64_t>(t.request->prompt.size()),
                static_cast<int64_t>(s->ids.size()), 0);
      t.request->cancel_requested = true;
      if (auto sched = caf::actor_cast<scheduler_actor>(ctx.directory.get("scheduler"))) {
        caf::anon_send(sched, poke_atom::value);
      }
    }
  }
  for (const auto& f : ev.finished) {
    auto& r = *f.request;
    if (f.info.reason == model::finish_reason::error) {
      send_error(ctx, r, net::error_code::internal, f.info.error);
    } else if (f.info.reason == model::finish_reason::expired) {
      send_shed(ctx, r, "queue_timeout", ctx.recent_queue_ms.load() + 100);
    } else {
      stream* s = open_stream(st, f.request);
      if (s->detok && !s->detok->stopped()) {
        auto d = s->detok->finish();
        if (!d.text.empty() || s->ids_sent < s->ids.size()) emit_token(ctx, *s, d.text, s->ids.size());
      }
      send_done(ctx, *s, model::to_string(f.info.reason), f.info.prompt_tokens, f.info.completion_tokens,
                f.info.cached_prompt_tokens);
    }
    st.streams.erase(r.seq_id);
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
