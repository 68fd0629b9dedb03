// The policy in the request path: authentication, the shedder's decisions, the threat level in force, and the
// deny list, owned by the gateway stage (one thread at a time). Refusals cost a hash lookup and a few
// comparisons, so registrations and anonymous floods are turned away in front of the expensive path.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/context.hpp"
#include "actors/messages.hpp"
#include "admission/deny_list.hpp"
#include "admission/shedder.hpp"
#include "admission/threat_state.hpp"

namespace rampart::actors {

class admission_gate {
 public:
  admission_gate(server_context* ctx, std::shared_ptr<const config::policy> policy);

  struct verdict {
    bool admitted = false;
    // When refused: either an error (unauthorized) or a shed with reason and retry_after.
    bool is_error = false;
    net::error_code code = net::error_code::unauthorized;
    std::string reason;  // error message or shed reason
    int64_t retry_after_ms = 0;
  };
  // Authenticates and decides R (its request fields and peer address). When admitted, R's tenant and effective
  // priority are set and a ticket is held until release(R.seq_id).
  verdict admit_generate(request_state& r);
  void release(uint64_t seq_id);

  // A `register` from ADDRESS: admitted, or shed (registration_closed / rate_limited / denied_source).
  verdict admit_registration(const std::string& address);

  void set_policy(std::shared_ptr<const config::policy> policy);
  // Applies the monitor's level, and deny-lists the culprits an alert names while the level in force says so
  // (deny_heavy_hitters): for deny_ttl_ms, or at most spoofable_deny_ttl_ms when the evidence that named them
  // is forgeable (those entries also spare tenants). Never an address registered users connect from, nor a
  // prefix covering one.
  void on_monitor(const monitor_notice& notice);
  // Cool-down and deny-list expiry; call about once a second.
  void tick();

  const admission::shedder& shedder() const { return shedder_; }
  config::threat_level level() const { return threat_.level(); }
  std::shared_ptr<const admission::deny_list> deny_snapshot() const { return deny_; }

  // Longest a source named on forgeable evidence (half-open SYNs, datagrams, raw packets) stays deny-listed:
  // the address may be a bystander's that the attacker forged, so its entry lapses soon after the flood ends
  // (an alert still active names it again at its next update).
  static constexpr int64_t spoofable_deny_ttl_ms = 60 * 1000;

 private:
  // The culprits an active alert named, as the monitor reported them.
  struct alert_culprits {
    std::vector<std::string> sources;
    std::string evidence;
    bool spoofable = false;
  };

  verdict decide(request_state& r, const admission::shedder::request& q, int64_t now);
  void apply_level(const std::optional<admission::level_change>& change);
  void publish_level_settings();
  void deny_sources(const alert_culprits& culprits, const char* why);
  // Removes the deny-list entries covering ADDRESS (registered users connect from it).
  void lift_entries(const std::string& address);
  bool denied(const std::string& address, int64_t now) const;

  server_context* ctx_;
  std::shared_ptr<const config::policy> policy_;
  admission::shedder shedder_;
  admission::threat_state threat_;
  std::shared_ptr<const admission::deny_list> deny_;
  std::unordered_map<uint64_t, admission::stream_ticket> tickets_;
  // The culprits named by each detector's active alert, by detector name.
  std::unordered_map<std::string, alert_culprits> alert_sources_;
  // Addresses that sent authenticated requests of a class with max_priority critical or high (registered
  // users) recently, by last time seen: never deny-listed (entries covering one are lifted when its request
  // arrives), so an alert cannot cut registered users off, even one whose evidence an attacker forged.
  std::unordered_map<std::string, int64_t> trusted_sources_;
  // Tenants whose first request was sent to the registrar to record (so it is sent once).
  std::unordered_set<int64_t> first_use_sent_;
};

}  // namespace rampart::actors
