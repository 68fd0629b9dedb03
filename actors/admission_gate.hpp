// The policy in the request path, owned by the gateway stage (one thread at a time): authenticates a request's
// credential, asks admission::policy_engine for the verdict, and carries what the engine changed (the level in
// force, its settings, the deny list) to the stages, the front end, the ZAP gate and the operators. Refusals
// cost a hash lookup and a few comparisons, so registrations and anonymous floods are turned away in front of
// the expensive path.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/context.hpp"
#include "actors/messages.hpp"
#include "admission/policy_engine.hpp"

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
  // The monitor's level, or one of its alerts (the policy engine deny-lists its culprits when the level says so).
  void on_monitor(const monitor_notice& notice);
  // Cool-down and deny-list expiry; call about once a second.
  void tick();

  const admission::shedder& shedder() const { return engine_.shedding(); }
  config::threat_level level() const { return engine_.level(); }
  std::shared_ptr<const admission::deny_list> deny_snapshot() const { return engine_.deny_snapshot(); }
  // Hands the deny list in force to the front end and the ZAP gate (at start, and whenever it changes).
  void publish_deny_list();

 private:
  // Carries what the policy engine changed to the log, the stages, the front end, the gates and the operators.
  void apply(const admission::policy_effects& effects);
  void publish_level_settings();

  server_context* ctx_;
  admission::policy_effects initial_;  // what the engine's construction changed, applied once ctx_ is set
  admission::policy_engine engine_;
  // Tenants whose first request was sent to the registrar to record (so it is sent once).
  std::unordered_set<int64_t> first_use_sent_;
};

}  // namespace rampart::actors
