#include "actors/admission_gate.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include "actors/monitor_service.hpp"
#include "admission/accounts.hpp"

namespace rampart::actors {
namespace {

config::priority to_policy_priority(net::priority_class p) { return static_cast<config::priority>(p); }
net::priority_class to_wire_priority(config::priority p) { return static_cast<net::priority_class>(p); }

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
    : ctx_(ctx),
      policy_(policy),
      shedder_(policy),
      threat_(policy->hold_ms, policy->cool_down_ms, admission::monotonic_ms()),
      deny_(std::make_shared<admission::deny_list>()) {
  if (policy->override_level) apply_level(threat_.set_override(policy->override_level, admission::monotonic_ms()));
  publish_level_settings();
}

bool admission_gate::denied(const std::string& address, int64_t now) const {
  return !address.empty() && deny_->denied(address, now);
}

admission_gate::verdict admission_gate::admit_generate(request_state& r) {
  const int64_t now = admission::monotonic_ms();
  admission::shedder::request q;
  admission::parse_ip(r.peer_address, &q.source);
  const admission::deny_match listed =
      r.peer_address.empty() ? admission::deny_match::none : deny_->match(r.peer_address, now);
  q.source_denied = listed != admission::deny_match::none;
  q.asked = to_policy_priority(r.req.priority);
  q.prompt_tokens = estimate_prompt_tokens(r.req);
  q.max_tokens = r.req.max_tokens;
  if (r.req.api_key.empty() && r.curve_tenant_id == 0) return decide(r, q, now);
  auto refuse = [&](std::string reason) {
    if (ctx_->monitor) ctx_->monitor->signal(monitor::app_signal::auth_failure, r.peer_address);
    verdict v;
    v.is_error = true;
    v.code = net::error_code::unauthorized;
    v.reason = std::move(reason);
    return v;
  };
  admission::tenant t;
  if (!r.req.api_key.empty()) {
    auto result = ctx_->accounts ? ctx_->accounts->authenticate(r.req.api_key, &t) : admission::auth_result::unknown_key;
    if (result != admission::auth_result::ok) return refuse(std::string("api_key refused: ") + admission::auth_result_name(result));
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
    if (auto registrar = caf::actor_cast<registrar_actor>(ctx_->directory.get("registrar"))) {
      caf::anon_send(registrar, used_atom::value, t.id);
      first_use_sent_.insert(t.id);
    }
  }
  q.tenant_id = t.id;
  q.tenant_class = t.tenant_class;  // T outlives the decision below
  r.tenant_id = t.id;
  // A valid tenant credential gets past the entries that spare tenants (prefixes, and addresses listed on
  // forgeable evidence), as it does at the ZAP gate.
  q.source_denied = listed == admission::deny_match::everyone;
  const auto* limits = shedder_.level_policy().find_class(t.tenant_class);
  if (limits && limits->max_priority <= config::priority::high && !r.peer_address.empty()) {
    trusted_sources_[r.peer_address] = now;
    if (listed != admission::deny_match::none) lift_entries(r.peer_address);
    q.source_denied = false;
  }
  return decide(r, q, now);
}

admission_gate::verdict admission_gate::decide(request_state& r, const admission::shedder::request& q,
                                               int64_t now) {
  admission::load_snapshot load;
  load.running = ctx_->load_running.load();
  load.waiting = ctx_->load_waiting.load();
  load.capacity = ctx_->config.engine.max_batch_sequences + ctx_->config.frontend.max_queued_requests;
  load.expected_wait_ms = load.waiting > 0 ? ctx_->recent_queue_ms.load() : 0;
  admission::stream_ticket ticket;
  auto d = shedder_.admit(q, load, now, &ticket);
  verdict v;
  if (!d.admitted) {
    v.reason = admission::shed_reason_name(d.reason);
    v.retry_after_ms = d.retry_after_ms;
    return v;
  }
  if (d.would_shed) {
    spdlog::info("dry run: request {} would be shed ({})", r.req.request_id, admission::shed_reason_name(d.reason));
  }
  r.req.priority = to_wire_priority(d.effective);
  tickets_[r.seq_id] = ticket;
  v.admitted = true;
  return v;
}

void admission_gate::release(uint64_t seq_id) {
  auto it = tickets_.find(seq_id);
  if (it == tickets_.end()) return;
  shedder_.release(&it->second);
  tickets_.erase(it);
}

admission_gate::verdict admission_gate::admit_registration(const std::string& address) {
  const int64_t now = admission::monotonic_ms();
  if (ctx_->monitor) ctx_->monitor->signal(monitor::app_signal::registration, address);
  admission::ip_address source;
  admission::parse_ip(address, &source);
  auto d = shedder_.admit_registration(source, denied(address, now), now);
  verdict v;
  if (d.admitted) {
    v.admitted = true;
    return v;
  }
  v.reason = admission::shed_reason_name(d.reason);
  v.retry_after_ms = d.retry_after_ms;
  return v;
}

void admission_gate::set_policy(std::shared_ptr<const config::policy> policy) {
  policy_ = policy;
  shedder_.set_policy(policy);
  threat_.set_timing(policy->hold_ms, policy->cool_down_ms);
  const int64_t now = admission::monotonic_ms();
  if (policy->override_level != threat_.override_level()) apply_level(threat_.set_override(policy->override_level, now));
  publish_level_settings();
}

void admission_gate::on_monitor(const monitor_notice& n) {
  const int64_t now = admission::monotonic_ms();
  if (n.monitor_level >= 0 && n.monitor_level <= 3) {
    apply_level(threat_.observe(static_cast<config::threat_level>(n.monitor_level), now));
  }
  if (!n.detector.empty()) {
    if (n.phase == "end") {
      alert_sources_.erase(n.detector);
    } else {
      // The monitor names only culprits: sources whose own evidence for this detector passed its bars.
      alert_culprits& c = alert_sources_[n.detector];
      c.sources = n.sources;
      c.evidence = n.evidence;
      c.spoofable = n.spoofable;
      if (shedder_.level_policy().deny_heavy_hitters) deny_sources(c, n.detector.c_str());
    }
  }
}

void admission_gate::tick() {
  const int64_t now = admission::monotonic_ms();
  if (first_use_sent_.size() > 65536) first_use_sent_.clear();  // recorded by now: the index says so
  for (auto it = trusted_sources_.begin(); it != trusted_sources_.end();) {
    if (now - it->second > 10 * 60 * 1000) it = trusted_sources_.erase(it);
    else ++it;
  }
  apply_level(threat_.tick(now));
  if (deny_->size() > 0) {
    auto copy = std::make_shared<admission::deny_list>(*deny_);
    if (copy->expire(now) > 0) deny_ = copy;
  }
}

void admission_gate::apply_level(const std::optional<admission::level_change>& change) {
  if (!change) return;
  shedder_.set_level(change->to);
  spdlog::warn("policy: threat level in force {} -> {} ({})", monitor::threat_level_name(change->from),
               monitor::threat_level_name(change->to), admission::cause_name(change->why));
  publish_level_settings();
  if (shedder_.level_policy().deny_heavy_hitters) {
    for (const auto& [detector, culprits] : alert_sources_) deny_sources(culprits, detector.c_str());
  }
}

void admission_gate::publish_level_settings() {
  const auto& lp = shedder_.level_policy();
  for (size_t i = 0; i < ctx_->queue_delay_ms.size(); ++i) ctx_->queue_delay_ms[i] = lp.queue_delay_ms[i];
  ctx_->policy_max_prompt_tokens = lp.max_prompt_tokens;
  ctx_->budget_batch_share = lp.budget_batch_share;
  ctx_->budget_step_share = lp.budget_step_share;
  if (ctx_->frontend) {
    ctx_->frontend->set_handshake_ivl(static_cast<int>(lp.handshake_ivl_ms));
    // Closed registration is answered by the front end itself (a dry run sheds nothing; without an accounts
    // database `register` is an error the gateway gives).
    std::shared_ptr<const net::registration_refusal> refusal;
    if (ctx_->accounts && lp.registration.mode == config::registration_mode::closed && !policy_->dry_run) {
      refusal = std::make_shared<const net::registration_refusal>(
          net::registration_refusal{"registration_closed", lp.retry_after_ms, lp.registration.message});
    }
    ctx_->frontend->set_registration_refusal(std::move(refusal));
  }
  // With CURVE, the registration identity connects only while registration is not closed (a dry run sheds
  // nothing, so it keeps the gate open too).
  if (ctx_->on_registration_gate) {
    ctx_->on_registration_gate(lp.registration.mode != config::registration_mode::closed || policy_->dry_run,
                               policy_->registration_curve_key);
  }
  if (ctx_->monitor) {
    ctx_->monitor->publish_notice(
        "policy", {{"event_type", "policy"},
                   {"policy",
                    {{"level", monitor::threat_level_name(shedder_.level())},
                     {"registration", config::registration_mode_name(lp.registration.mode)},
                     {"anonymous_admitted", lp.anonymous_admitted},
                     {"anonymous_share", lp.anonymous_share},
                     {"budget_batch_share", lp.budget_batch_share},
                     {"budget_step_share", lp.budget_step_share},
                     {"deny_heavy_hitters", lp.deny_heavy_hitters},
                     {"handshake_ivl_ms", lp.handshake_ivl_ms},
                     {"dry_run", policy_->dry_run},
                     {"source", policy_->source}}}});
  }
}

void admission_gate::deny_sources(const alert_culprits& culprits, const char* why) {
  if (culprits.sources.empty()) return;
  const int64_t now = admission::monotonic_ms();
  // Evidence a forged source address produces (half-open SYNs, datagrams, raw packets) may name a bystander:
  // its entries are short and spare tenants. Evidence that needs the address to answer (completed or stalled
  // handshakes, messages) earns the level's full deny_ttl_ms.
  const int64_t max_ttl = shedder_.level_policy().deny_ttl_ms;
  const int64_t ttl = culprits.spoofable ? std::min(max_ttl, spoofable_deny_ttl_ms) : max_ttl;
  const int64_t until = now + ttl;
  auto copy = std::make_shared<admission::deny_list>(*deny_);
  std::vector<std::string> added;
  const auto listed = copy->entries();
  constexpr int64_t trust_ms = 10 * 60 * 1000;
  for (const auto& s : culprits.sources) {
    admission::ip_address network;
    int bits = 0;
    if (!admission::parse_prefix(s, &network, &bits)) continue;
    // Never deny an address registered users are using, nor a prefix that covers one.
    bool covers_trusted = false;
    for (const auto& [address, seen] : trusted_sources_) {
      if (now - seen > trust_ms) continue;
      admission::deny_list probe;
      std::string ignored;
      if (probe.add(s, now + 1000, &ignored) && probe.denied(address, now)) covers_trusted = true;
    }
    if (covers_trusted) {
      spdlog::info("policy: not deny-listing {}: registered users connect from it", s);
      continue;
    }
    // Listed already, at least as strictly: nothing to add (an address listed on forgeable evidence is listed
    // again, refusing everyone, when evidence that needs the address itself names it).
    const std::string canonical = admission::format_prefix(network, bits);
    const bool known = std::any_of(listed.begin(), listed.end(), [&](const admission::deny_list::entry& e) {
      return e.prefix == canonical && e.expires_at_ms > now && (!e.spares_tenants || culprits.spoofable);
    });
    if (known) continue;
    std::string error;
    if (copy->add(s, until, &error, culprits.spoofable)) added.push_back(s);
  }
  if (added.empty()) return;
  deny_ = copy;
  std::string list;
  for (const auto& a : added) list += (list.empty() ? "" : ", ") + a;
  spdlog::warn("policy: deny-listed {} for {} ms ({}: {})", list, ttl, why, culprits.evidence);
  if (ctx_->on_deny_list) ctx_->on_deny_list(deny_);
  if (ctx_->monitor) {
    ctx_->monitor->publish_notice("policy", {{"event_type", "policy"},
                                             {"policy",
                                              {{"action", "deny"},
                                               {"sources", added},
                                               {"detector", why},
                                               {"evidence", culprits.evidence},
                                               {"spoofable", culprits.spoofable},
                                               {"ttl_ms", ttl}}}});
  }
}

void admission_gate::lift_entries(const std::string& address) {
  admission::ip_address a;
  if (!admission::parse_ip(address, &a)) return;
  auto copy = std::make_shared<admission::deny_list>(*deny_);
  if (copy->lift(a) == 0) return;
  deny_ = copy;
  spdlog::warn("policy: lifted the deny-list entries covering {}: registered users connect from it", address);
  if (ctx_->on_deny_list) ctx_->on_deny_list(deny_);
  if (ctx_->monitor) {
    ctx_->monitor->publish_notice(
        "policy", {{"event_type", "policy"},
                   {"policy", {{"action", "lift"}, {"sources", std::vector<std::string>{address}}}}});
  }
}

}  // namespace rampart::actors
