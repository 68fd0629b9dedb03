// The gateway's policy on monitor notices: the culprits an alert names are deny-listed while the level in
// force says so, for the level's deny_ttl_ms on evidence that needs the address itself, for at most
// admission_gate::spoofable_deny_ttl_ms (and sparing tenants) on evidence a forged source produces. Expected
// lifetimes come from the policy built here.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "actors/admission_gate.hpp"
#include "admission/deny_list.hpp"
#include "config/policy.hpp"

using namespace rampart;

namespace {

constexpr int64_t deny_ttl_ms = 1800000;

// The base policy, deny-listing at orange and red for 30 minutes.
std::shared_ptr<const config::policy> deny_policy() {
  auto p = std::make_shared<config::policy>(config::base_policy());
  for (auto l : {config::threat_level::orange, config::threat_level::red}) {
    config::level_policy& lp = p->levels[static_cast<size_t>(l)];
    lp.deny_heavy_hitters = true;
    lp.deny_ttl_ms = deny_ttl_ms;
  }
  return p;
}

actors::monitor_notice level_notice(int level) {
  actors::monitor_notice n;
  n.monitor_level = level;
  return n;
}

actors::monitor_notice alert_notice(const std::string& detector, std::vector<std::string> sources,
                                    const std::string& evidence, bool spoofable,
                                    const std::string& phase = "start") {
  actors::monitor_notice n;
  n.detector = detector;
  n.phase = phase;
  n.sources = std::move(sources);
  n.evidence = evidence;
  n.spoofable = spoofable;
  return n;
}

// The entry listed for PREFIX (canonical text); REQUIREs that there is one.
admission::deny_list::entry entry_of(const admission::deny_list& d, const std::string& prefix) {
  for (const auto& e : d.entries()) {
    if (e.prefix == prefix) return e;
  }
  FAIL("no deny-list entry for " << prefix);
  return {};
}

}  // namespace

TEST_CASE("culprits named on handshakes are listed for deny_ttl_ms, on forged-source evidence for a minute",
          "[actors][admission_gate]") {
  actors::server_context ctx;
  actors::admission_gate gate(&ctx, deny_policy());
  gate.on_monitor(level_notice(2));
  REQUIRE(gate.level() == config::threat_level::orange);
  const int64_t before = admission::monotonic_ms();
  gate.on_monitor(alert_notice("conn_flood", {"198.51.100.0/24"}, "completed_handshakes", false));
  gate.on_monitor(alert_notice("syn_flood", {"203.0.113.7"}, "half_open_syns", true));
  const int64_t after = admission::monotonic_ms();
  auto d = gate.deny_snapshot();
  REQUIRE(d->size() == 2);
  const auto prefix = entry_of(*d, "198.51.100.0/24");
  CHECK(prefix.expires_at_ms >= before + deny_ttl_ms);
  CHECK(prefix.expires_at_ms <= after + deny_ttl_ms);
  CHECK(prefix.spares_tenants);  // a prefix never locks out a tenant's credential
  const auto forged = entry_of(*d, "203.0.113.7/32");
  CHECK(forged.expires_at_ms >= before + actors::admission_gate::spoofable_deny_ttl_ms);
  CHECK(forged.expires_at_ms <= after + actors::admission_gate::spoofable_deny_ttl_ms);
  CHECK(forged.spares_tenants);
  CHECK(d->match("203.0.113.7", after) == admission::deny_match::tenants_spared);

  // Evidence that needs the address itself (its handshakes stalled) lists it again: full TTL, for everyone.
  gate.on_monitor(alert_notice("handshake_stall", {"203.0.113.7"}, "stalled_handshakes", false));
  const int64_t later = admission::monotonic_ms();
  d = gate.deny_snapshot();
  REQUIRE(d->size() == 2);
  const auto real = entry_of(*d, "203.0.113.7/32");
  CHECK(real.expires_at_ms >= before + deny_ttl_ms);
  CHECK(real.expires_at_ms <= later + deny_ttl_ms);
  CHECK_FALSE(real.spares_tenants);
  CHECK(d->match("203.0.113.7", later) == admission::deny_match::everyone);
  // Forged-source evidence naming it again does not loosen that.
  gate.on_monitor(alert_notice("syn_flood", {"203.0.113.7"}, "half_open_syns", true, "update"));
  CHECK(gate.deny_snapshot()->match("203.0.113.7", later) == admission::deny_match::everyone);
}

TEST_CASE("an alert naming no culprit lists nothing; culprits named below orange are listed when it comes",
          "[actors][admission_gate]") {
  actors::server_context ctx;
  actors::admission_gate gate(&ctx, deny_policy());
  REQUIRE(gate.level() == config::threat_level::green);
  // A spoofed flood: the alert names no culprit, whatever its top sources were.
  gate.on_monitor(alert_notice("syn_flood", {}, "half_open_syns", true));
  gate.on_monitor(alert_notice("heavy_hitter", {"192.0.2.50"}, "packets", true));
  CHECK(gate.deny_snapshot()->size() == 0);  // green does not deny-list
  gate.on_monitor(level_notice(2));
  REQUIRE(gate.level() == config::threat_level::orange);
  auto d = gate.deny_snapshot();
  REQUIRE(d->size() == 1);
  CHECK(d->entries()[0].prefix == "192.0.2.50/32");
  // An ended alert's culprits are not listed again at the next level change.
  gate.on_monitor(alert_notice("heavy_hitter", {}, "packets", true, "end"));
  gate.on_monitor(alert_notice("request_flood", {"not an address"}, "app_signals", false));
  gate.on_monitor(level_notice(3));
  REQUIRE(gate.level() == config::threat_level::red);
  CHECK(gate.deny_snapshot()->size() == 1);
}
