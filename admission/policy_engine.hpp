// The load-shedding policy as one engine. Its inputs are a request's facts (after authentication), the
// monitor's news (the level it sees, its alerts and their culprits), the server's load and the time; its
// outputs are a verdict (admit at a priority, or shed with a reason and a retry_after), the settings of the
// threat level in force and the deny list, plus a record of what changed. It sends nothing and reads no clock:
// the gateway stage authenticates, measures the load and carries the changes to the front end, the ZAP gate and
// the operators. Not thread-safe: one owner.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "admission/deny_list.hpp"
#include "admission/shedder.hpp"
#include "admission/threat_state.hpp"
#include "config/policy.hpp"
#include "monitor/event.hpp"

namespace rampart::admission {

// A `generate` as the policy sees it.
struct generate_facts {
  uint64_t seq_id = 0;            // the request's id in the server; its ticket is released by this id
  std::string_view peer_address;  // the source address; empty for in-process callers
  int64_t tenant_id = 0;          // 0: anonymous; otherwise authenticated by the caller
  std::string_view tenant_class;  // the tenant's class (ignored for anonymous)
  priority asked = priority::normal;
  int64_t prompt_tokens = 0;  // before tokenization, an estimate
  int64_t max_tokens = 0;
};

// One alert's news, reduced to what the policy acts on.
struct alert_news {
  monitor::detector_id detector = monitor::detector_id::syn_flood;
  monitor::alert_phase phase = monitor::alert_phase::start;
  std::vector<ip_prefix> culprits;  // what the detector's own evidence names (addresses or prefixes)
  monitor::evidence_kind evidence = monitor::evidence_kind::none;
};

// What a call changed that the outside must hear about.
struct policy_effects {
  std::optional<level_change> level;  // the level in force changed
  bool settings_changed = false;      // the level's settings or the policy changed: publish level_policy()
  bool deny_changed = false;          // deny_snapshot() is a new list: hand it to the gates
  struct listing {
    std::vector<std::string> sources;  // canonical prefixes newly deny-listed
    monitor::detector_id detector = monitor::detector_id::syn_flood;
    monitor::evidence_kind evidence = monitor::evidence_kind::none;
    int64_t ttl_ms = 0;
  };
  std::vector<listing> listed;
  std::vector<std::string> spared;  // culprits left off the list: registered users connect from them
  std::vector<std::string> lifted;  // addresses whose covering entries were removed, for the same reason
};

class policy_engine {
 public:
  // Longest a source named on forgeable evidence (half-open SYNs, datagrams, raw packets) stays deny-listed:
  // the address may be a bystander's that the attacker forged, so its entry lapses soon after the flood ends
  // (an alert still active names it again at its next update).
  static constexpr int64_t spoofable_deny_ttl_ms = 60 * 1000;
  // How long an address that sent a registered user's request stays trusted (never deny-listed).
  static constexpr int64_t trust_ms = 10 * 60 * 1000;

  // Starts at green, or at the policy's override level (then *EFFECTS says so).
  policy_engine(std::shared_ptr<const config::policy> policy, int64_t now_ms, policy_effects* effects);

  // Decides a generate. Sources a deny-list entry covers are shed, except that a tenant's credential gets past
  // entries that spare tenants, and a tenant of a class whose max_priority is high or critical (a registered
  // user) gets past every entry: its address becomes trusted and the entries covering it are lifted. When
  // admitted, a ticket is held until release(FACTS.seq_id).
  decision admit_generate(const generate_facts& facts, const load_snapshot& load, int64_t now_ms,
                          policy_effects* effects);
  void release(uint64_t seq_id);
  // A `register` from ADDRESS: admitted, or shed (registration_closed / rate_limited / denied_source).
  decision admit_registration(std::string_view address, int64_t now_ms);

  // Swaps in a reloaded policy (state is kept; a changed override level takes effect now).
  void set_policy(std::shared_ptr<const config::policy> policy, int64_t now_ms, policy_effects* effects);
  // The monitor's own level changed.
  void on_level(config::threat_level level, int64_t now_ms, policy_effects* effects);
  // An alert started, updated or ended. While the level in force deny-lists (deny_heavy_hitters), its culprits
  // are listed: for deny_ttl_ms, or at most spoofable_deny_ttl_ms (sparing tenants) when the evidence that named
  // them is forgeable. Never an address registered users connect from, nor a prefix covering one. The
  // culprits of alerts still active are listed when the level rises to one that deny-lists.
  void on_alert(const alert_news& news, int64_t now_ms, policy_effects* effects);
  // Cool-down, deny-list expiry and forgetting stale trust; about once a second.
  void tick(int64_t now_ms, policy_effects* effects);

  const config::policy& policy() const { return *policy_; }
  config::threat_level level() const { return threat_.level(); }
  const config::level_policy& level_policy() const { return shedder_.level_policy(); }
  std::shared_ptr<const deny_list> deny_snapshot() const { return deny_; }
  const shedder& shedding() const { return shedder_; }

 private:
  void apply_level(const std::optional<level_change>& change, int64_t now_ms, policy_effects* effects);
  void deny_culprits(const alert_news& news, int64_t now_ms, policy_effects* effects);
  bool covers_trusted(const ip_prefix& p, int64_t now_ms) const;

  std::shared_ptr<const config::policy> policy_;
  shedder shedder_;
  threat_state threat_;
  std::shared_ptr<const deny_list> deny_;
  std::unordered_map<uint64_t, stream_ticket> tickets_;
  // The culprits named by each detector's active alert.
  std::unordered_map<monitor::detector_id, alert_news> active_alerts_;
  // Addresses that sent requests of registered users (a class with max_priority high or critical), by when
  // last seen: an alert cannot cut registered users off, even one whose evidence an attacker forged.
  std::unordered_map<std::string, std::pair<ip_address, int64_t>> trusted_;
};

}  // namespace rampart::admission
