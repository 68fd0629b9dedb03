#include "actors/admission_gate.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include "actors/monitor_service.hpp"
#include "admission/accounts.hpp"

namespace rampart::actors {
namespace {


int64_t estimate_prompt_tokens(const net::generate_request& g) {
  // Before tokenization only an estimate exists; about 4 bytes per token for text. The exact count is checked
  // against the level's cap after tokenization.
  switch (g.kind) {
    case net::input_kind::ids: return static_cast<int64_t>(g.ids.size());
    case net::input_kind::text: return static_cast<int64_t>(g.text.size() / 4 + 1);
    // The template adds a few tokens per message around its text.
    case net::input_kind::chat: return static_cast<int64_t>(g.input_bytes / 4 + 4 * g.messages.size() + 1);
  }
  return 1;
}

}  // namespace

admission_gate::admission_gate(server_context* ctx, std::shared_ptr<const config::policy> policy)
    : ctx_(ctx), engine_(std::move(policy), admission::monotonic_ms(), &initial_) {
  apply(initial_);
}

admission_gate::verdict admission_gate::admit_generate(request_state& r) {
  const int64_t now = admission::monotonic_ms();
  admission::generate_facts facts;
  facts.seq_id = r.seq_id;
  facts.peer_address = r.peer_address;
  facts.asked = r.req.priority;
  facts.prompt_tokens = estimate_prompt_tokens(r.req);
  facts.max_tokens = r.req.max_tokens;
  admission::tenant t;
  if (!r.req.api_key.empty() || r.curve_tenant_id != 0) {
    auto refuse = [&](std::string reason) {
      if (ctx_->monitor) ctx_->monitor->signal(monitor::app_signal::auth_failure, r.peer_address);
      verdict v;
      v.is_error = true;
      v.code = net::error_code::unauthorized;
      v.reason = std::move(reason);
      return v;
    };
    if (!r.req.api_key.empty()) {
      auto result =
          ctx_->accounts ? ctx_->accounts->authenticate(r.req.api_key, &t) : admission::auth_result::unknown_key;
      if (result != admission::auth_result::ok) {
        return refuse(std::string("api_key refused: ") + admission::auth_result_name(result));
      }
      if (r.curve_tenant_id != 0 && t.id != r.curve_tenant_id) {
        return refuse("api_key refused: it belongs to another tenant than the connection's CURVE key");
      }
    } else {
      // The ZAP gate admitted the connection with this tenant's CURVE key: that key is the credential.
      auto found = ctx_->accounts ? ctx_->accounts->find(std::to_string(r.curve_tenant_id)) : std::nullopt;
      if (!found || found->revoked()) return refuse("CURVE key refused: its tenant is revoked");
      t = std::move(*found);
    }
    if (!t.first_used_at_ms && first_use_sent_.count(t.id) == 0) {
      // Recorded by the registrar (a durable write off this thread); unused trial tenants expire. Remembered
      // only once handed over, so a registrar that is restarting gets it at the tenant's next request.
      if (auto registrar = ctx_->stages.registrar.get()) {
        caf::anon_send(registrar, used_atom::value, t.id);
        first_use_sent_.insert(t.id);
      }
    }
    facts.tenant_id = t.id;
    facts.tenant_class = t.tenant_class;  // T outlives the decision below
    r.tenant_id = t.id;
  }
  admission::load_snapshot load;
  load.running = ctx_->load.running.load();
  load.waiting = ctx_->load.waiting.load();
  load.capacity = ctx_->config.engine.max_batch_sequences + ctx_->config.frontend.max_queued_requests;
  load.expected_wait_ms = load.waiting > 0 ? ctx_->load.recent_queue_ms.load() : 0;
  admission::policy_effects effects;
  const admission::decision d = engine_.admit_generate(facts, load, now, &effects);
  apply(effects);
  verdict v;
  if (!d.admitted) {
    v.reason = admission::shed_reason_name(d.reason);
    v.retry_after_ms = d.retry_after_ms;
    return v;
  }
  if (d.would_shed) {
    spdlog::info("dry run: request {} would be shed ({})", r.req.request_id, admission::shed_reason_name(d.reason));
  }
  r.req.priority = d.effective;
  v.admitted = true;
  return v;
}

void admission_gate::release(uint64_t seq_id) { engine_.release(seq_id); }

admission_gate::verdict admission_gate::admit_registration(const std::string& address) {
  if (ctx_->monitor) ctx_->monitor->signal(monitor::app_signal::registration, address);
  const admission::decision d = engine_.admit_registration(address, admission::monotonic_ms());
  verdict v;
  v.admitted = d.admitted;
  if (!d.admitted) {
    v.reason = admission::shed_reason_name(d.reason);
    v.retry_after_ms = d.retry_after_ms;
  }
  return v;
}

void admission_gate::set_policy(std::shared_ptr<const config::policy> policy) {
  admission::policy_effects effects;
  engine_.set_policy(std::move(policy), admission::monotonic_ms(), &effects);
  apply(effects);
}

void admission_gate::on_monitor(const monitor_notice& n) {
  admission::policy_effects effects;
  const int64_t now = admission::monotonic_ms();
  if (n.level) engine_.on_level(*n.level, now, &effects);
  if (n.alert) engine_.on_alert(*n.alert, now, &effects);
  apply(effects);
}

void admission_gate::tick() {
  if (first_use_sent_.size() > 65536) first_use_sent_.clear();  // recorded by now: the index says so
  admission::policy_effects effects;
  engine_.tick(admission::monotonic_ms(), &effects);
  apply(effects);
}

void admission_gate::apply(const admission::policy_effects& fx) {
  if (fx.level) {
    spdlog::warn("policy: threat level in force {} -> {} ({})", monitor::threat_level_name(fx.level->from),
                 monitor::threat_level_name(fx.level->to), admission::cause_name(fx.level->why));
  }
  if (fx.settings_changed) publish_level_settings();
  for (const auto& s : fx.spared) spdlog::info("policy: not deny-listing {}: registered users connect from it", s);
  for (const auto& a : fx.lifted) {
    spdlog::warn("policy: lifted the deny-list entries covering {}: registered users connect from it", a);
  }
  if (fx.deny_changed) publish_deny_list();
  for (const auto& l : fx.listed) {
    std::string list;
    for (const auto& a : l.sources) list += (list.empty() ? "" : ", ") + a;
    const char* detector = monitor::detector_name(l.detector);
    const char* evidence = monitor::evidence_kind_name(l.evidence);
    spdlog::warn("policy: deny-listed {} for {} ms ({}: {})", list, l.ttl_ms, detector, evidence);
    if (ctx_->monitor) {
      ctx_->monitor->publish_notice("policy", {{"event_type", "policy"},
                                               {"policy",
                                                {{"action", "deny"},
                                                 {"sources", l.sources},
                                                 {"detector", detector},
                                                 {"evidence", evidence},
                                                 {"spoofable", monitor::evidence_spoofable(l.evidence)},
                                                 {"ttl_ms", l.ttl_ms}}}});
    }
  }
  if (ctx_->monitor && !fx.lifted.empty()) {
    ctx_->monitor->publish_notice(
        "policy", {{"event_type", "policy"}, {"policy", {{"action", "lift"}, {"sources", fx.lifted}}}});
  }
}

void admission_gate::publish_deny_list() {
  auto list = engine_.deny_snapshot();
  if (ctx_->metrics) {
    ctx_->metrics->deny_list_entries->Set(static_cast<double>(list->size()));
    ctx_->metrics->set_deny_list(list);
  }
  if (ctx_->frontend) ctx_->frontend->set_deny_list(list);
  if (ctx_->http) ctx_->http->set_deny_list(list);
  if (ctx_->zap) ctx_->zap->set_deny_list(std::move(list));
}

void admission_gate::publish_level_settings() {
  const auto& lp = engine_.level_policy();
  const config::policy& policy = engine_.policy();
  if (ctx_->metrics) {
    ctx_->metrics->threat_level_in_force->Set(static_cast<double>(engine_.level()));
    ctx_->metrics->registration_mode->Set(static_cast<double>(lp.registration.mode));
  }
  for (size_t i = 0; i < ctx_->level.queue_delay_ms.size(); ++i) ctx_->level.queue_delay_ms[i] = lp.queue_delay_ms[i];
  ctx_->level.max_prompt_tokens = lp.max_prompt_tokens;
  ctx_->level.budget_batch_share = lp.budget_batch_share;
  ctx_->level.budget_step_share = lp.budget_step_share;
  if (ctx_->frontend) {
    ctx_->frontend->set_handshake_ivl(static_cast<int>(lp.handshake_ivl_ms));
    // Closed registration is answered by the front end itself (a dry run sheds nothing; without an accounts
    // database `register` is an error the gateway gives).
    std::shared_ptr<const net::registration_refusal> refusal;
    if (ctx_->accounts && lp.registration.mode == config::registration_mode::closed && !policy.dry_run) {
      refusal = std::make_shared<const net::registration_refusal>(
          net::registration_refusal{"registration_closed", lp.retry_after_ms, lp.registration.message});
    }
    ctx_->frontend->set_registration_refusal(std::move(refusal));
  }
  // With CURVE, the registration identity connects only while registration is not closed (a dry run sheds
  // nothing, so it keeps the gate open too).
  if (ctx_->curve) {
    const bool open = lp.registration.mode != config::registration_mode::closed || policy.dry_run;
    const std::string& key = policy.registration_curve_key;
    if (ctx_->curve->set_registration(open, key)) {
      spdlog::info("CURVE: the registration identity is {}", key.empty() ? "not configured"
                                                             : open      ? "admitted"
                                                                         : "refused");
    }
  }
  if (ctx_->monitor) {
    ctx_->monitor->publish_notice(
        "policy", {{"event_type", "policy"},
                   {"policy",
                    {{"level", monitor::threat_level_name(engine_.level())},
                     {"registration", config::registration_mode_name(lp.registration.mode)},
                     {"anonymous_admitted", lp.anonymous_admitted},
                     {"anonymous_share", lp.anonymous_share},
                     {"budget_batch_share", lp.budget_batch_share},
                     {"budget_step_share", lp.budget_step_share},
                     {"deny_heavy_hitters", lp.deny_heavy_hitters},
                     {"handshake_ivl_ms", lp.handshake_ivl_ms},
                     {"dry_run", policy.dry_run},
                     {"source", policy.source}}}});
  }
}

}  // namespace rampart::actors
