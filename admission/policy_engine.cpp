#include "admission/policy_engine.hpp"

#include <algorithm>

namespace rampart::admission {
namespace {

// A full-length prefix as its address ("203.0.113.7"), anything shorter as a prefix ("198.51.100.0/24").
std::string describe(const ip_prefix& p) {
  std::string text = format_prefix(p);
  if (p.bits == 128) text.erase(text.rfind('/'));
  return text;
}

}  // namespace

policy_engine::policy_engine(std::shared_ptr<const config::policy> policy, int64_t now_ms, policy_effects* effects)
    : policy_(policy),
      shedder_(policy),
      threat_(policy->hold_ms, policy->cool_down_ms, now_ms),
      deny_(std::make_shared<deny_list>()) {
  if (policy->override_level) apply_level(threat_.set_override(policy->override_level, now_ms), now_ms, effects);
  effects->settings_changed = true;
}

decision policy_engine::admit_generate(const generate_facts& facts, const load_snapshot& load, int64_t now_ms,
                                       policy_effects* effects) {
  shedder::request q;
  const bool has_address = ip_address::parse(facts.peer_address, &q.source);
  const deny_match listed = has_address ? deny_->match(q.source, now_ms) : deny_match::none;
  q.source_denied = listed != deny_match::none;
  q.asked = facts.asked;
  q.prompt_tokens = facts.prompt_tokens;
  q.max_tokens = facts.max_tokens;
  if (facts.tenant_id != 0) {
    q.tenant_id = facts.tenant_id;
    q.tenant_class = facts.tenant_class;
    // A valid tenant credential gets past the entries that spare tenants (prefixes, and addresses listed on
    // forgeable evidence), as it does at the ZAP gate.
    q.source_denied = listed == deny_match::everyone;
    const config::class_limits* limits = shedder_.level_policy().find_class(facts.tenant_class);
    if (limits && limits->max_priority <= priority::high && has_address) {
      trusted_[std::string(facts.peer_address)] = {q.source, now_ms};
      if (listed != deny_match::none) {
        auto copy = std::make_shared<deny_list>(*deny_);
        if (copy->lift(q.source) > 0) {
          deny_ = std::move(copy);
          effects->deny_changed = true;
          effects->lifted.emplace_back(facts.peer_address);
        }
      }
      q.source_denied = false;
    }
  }
  stream_ticket ticket;
  const decision d = shedder_.admit(q, load, now_ms, &ticket);
  if (d.admitted) tickets_[facts.seq_id] = ticket;
  return d;
}

void policy_engine::release(uint64_t seq_id) {
  auto it = tickets_.find(seq_id);
  if (it == tickets_.end()) return;
  shedder_.release(&it->second);
  tickets_.erase(it);
}

decision policy_engine::admit_registration(std::string_view address, int64_t now_ms) {
  ip_address source;
  const bool has_address = ip_address::parse(address, &source);
  return shedder_.admit_registration(source, has_address && deny_->denied(source, now_ms), now_ms);
}

void policy_engine::set_policy(std::shared_ptr<const config::policy> policy, int64_t now_ms,
                               policy_effects* effects) {
  policy_ = policy;
  shedder_.set_policy(policy);
  threat_.set_timing(policy->hold_ms, policy->cool_down_ms);
  if (policy->override_level != threat_.override_level()) {
    apply_level(threat_.set_override(policy->override_level, now_ms), now_ms, effects);
  }
  effects->settings_changed = true;
}

void policy_engine::on_level(config::threat_level level, int64_t now_ms, policy_effects* effects) {
  apply_level(threat_.observe(level, now_ms), now_ms, effects);
}

void policy_engine::on_alert(const alert_news& news, int64_t now_ms, policy_effects* effects) {
  if (news.phase == monitor::alert_phase::end) {
    active_alerts_.erase(news.detector);
    return;
  }
  const alert_news& active = active_alerts_[news.detector] = news;
  if (shedder_.level_policy().deny_heavy_hitters) deny_culprits(active, now_ms, effects);
}

void policy_engine::tick(int64_t now_ms, policy_effects* effects) {
  for (auto it = trusted_.begin(); it != trusted_.end();) {
    if (now_ms - it->second.second > trust_ms) it = trusted_.erase(it);
    else ++it;
  }
  apply_level(threat_.tick(now_ms), now_ms, effects);
  if (deny_->size() > 0) {
    auto copy = std::make_shared<deny_list>(*deny_);
    if (copy->expire(now_ms) > 0) {
      deny_ = std::move(copy);
      effects->deny_changed = true;
    }
  }
}

void policy_engine::apply_level(const std::optional<level_change>& change, int64_t now_ms,
                                policy_effects* effects) {
  if (!change) return;
  shedder_.set_level(change->to);
  if (effects->level) effects->level->to = change->to;  // two changes in one call read as one
  else effects->level = change;
  effects->settings_changed = true;
  if (shedder_.level_policy().deny_heavy_hitters) {
    for (const auto& [detector, news] : active_alerts_) deny_culprits(news, now_ms, effects);
  }
}

bool policy_engine::covers_trusted(const ip_prefix& p, int64_t now_ms) const {
  return std::any_of(trusted_.begin(), trusted_.end(), [&](const auto& t) {
    return now_ms - t.second.second <= trust_ms && p.contains(t.second.first);
  });
}

void policy_engine::deny_culprits(const alert_news& news, int64_t now_ms, policy_effects* effects) {
  if (news.culprits.empty()) return;
  // Evidence a forged source address produces (half-open SYNs, datagrams, raw packets) may name a bystander:
  // its entries are short and spare tenants. Evidence that needs the address to answer (completed or stalled
  // handshakes, messages) earns the level's full deny_ttl_ms.
  const bool spoofable = monitor::evidence_spoofable(news.evidence);
  const int64_t max_ttl = shedder_.level_policy().deny_ttl_ms;
  const int64_t ttl = spoofable ? std::min(max_ttl, spoofable_deny_ttl_ms) : max_ttl;
  auto copy = std::make_shared<deny_list>(*deny_);
  const auto listed = copy->entries();
  std::vector<std::string> added;
  for (const ip_prefix& p : news.culprits) {
    // Never an address registered users are using, nor a prefix that covers one.
    if (covers_trusted(p, now_ms)) {
      effects->spared.push_back(describe(p));
      continue;
    }
    // Listed already, at least as strictly: nothing to add (an address listed on forgeable evidence is listed
    // again, refusing everyone, when evidence that needs the address itself names it).
    const std::string canonical = format_prefix(p);
    const bool known = std::any_of(listed.begin(), listed.end(), [&](const deny_list::entry& e) {
      return e.prefix == canonical && e.expires_at_ms > now_ms && (!e.spares_tenants || spoofable);
    });
    if (known) continue;
    if (copy->add(canonical, now_ms + ttl, nullptr, spoofable)) added.push_back(describe(p));
  }
  if (added.empty()) return;
  deny_ = std::move(copy);
  effects->deny_changed = true;
  effects->listed.push_back({std::move(added), news.detector, news.evidence, ttl});
}

}  // namespace rampart::admission
