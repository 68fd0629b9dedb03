// The policy engine on its own, with time as a parameter: the culprits an alert names are deny-listed while the
// level in force says so, for the level's deny_ttl_ms on evidence that needs the address itself and for at most
// spoofable_deny_ttl_ms (sparing tenants) on evidence a forged source produces; registered users' addresses are
// never listed and entries covering them are lifted; the level follows the monitor and the operator's
// override. Expected lifetimes and verdicts come from the policy built here.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "admission/policy_engine.hpp"

using namespace rampart;
using admission::policy_effects;
using admission::policy_engine;
using monitor::alert_phase;
using monitor::detector_id;
using monitor::evidence_kind;

namespace {

constexpr int64_t deny_ttl_ms = 1800000;
constexpr int64_t t0 = 1000000;  // any monotonic origin

// The base policy, deny-listing at orange and red for 30 minutes. Classes: registered (max critical), trial and
// anonymous (max normal).
std::shared_ptr<config::policy> deny_policy() {
  auto p = std::make_shared<config::policy>(config::base_policy());
  for (auto l : {config::threat_level::orange, config::threat_level::red}) {
    config::level_policy& lp = p->levels[static_cast<size_t>(l)];
    lp.deny_heavy_hitters = true;
    lp.deny_ttl_ms = deny_ttl_ms;
  }
  return p;
}

admission::ip_prefix prefix(const std::string& text) {
  admission::ip_prefix p;
  REQUIRE(admission::parse_prefix(text, &p));
  return p;
}

admission::alert_news alert(detector_id d, std::vector<std::string> culprits, evidence_kind evidence,
                            alert_phase phase = alert_phase::start) {
  admission::alert_news n;
  n.detector = d;
  n.phase = phase;
  n.evidence = evidence;
  for (const auto& c : culprits) n.culprits.push_back(prefix(c));
  return n;
}

admission::generate_facts request(const std::string& address, int64_t tenant = 0, const std::string& cls = "") {
  static std::string addr, tenant_class;  // the facts view them
  static uint64_t seq = 0;
  addr = address;
  tenant_class = cls;
  admission::generate_facts f;
  f.seq_id = ++seq;
  f.peer_address = addr;
  f.tenant_id = tenant;
  f.tenant_class = tenant_class;
  f.prompt_tokens = 10;
  f.max_tokens = 10;
  return f;
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
          "[admission][policy_engine]") {
  policy_effects fx;
  policy_engine engine(deny_policy(), t0, &fx);
  engine.on_level(config::threat_level::orange, t0, &fx);
  REQUIRE(engine.level() == config::threat_level::orange);
  fx = {};
  engine.on_alert(alert(detector_id::conn_flood, {"198.51.100.0/24"}, evidence_kind::completed_handshakes), t0, &fx);
  engine.on_alert(alert(detector_id::syn_flood, {"203.0.113.7"}, evidence_kind::half_open_syns), t0 + 5, &fx);
  auto d = engine.deny_snapshot();
  REQUIRE(d->size() == 2);
  CHECK(fx.deny_changed);
  REQUIRE(fx.listed.size() == 2);
  CHECK(fx.listed[0].sources == std::vector<std::string>{"198.51.100.0/24"});
  CHECK(fx.listed[0].ttl_ms == deny_ttl_ms);
  CHECK(fx.listed[1].sources == std::vector<std::string>{"203.0.113.7"});
  CHECK(fx.listed[1].ttl_ms == policy_engine::spoofable_deny_ttl_ms);
  const auto wide = entry_of(*d, "198.51.100.0/24");
  CHECK(wide.expires_at_ms == t0 + deny_ttl_ms);
  CHECK(wide.spares_tenants);  // a prefix never locks out a tenant's credential
  const auto forged = entry_of(*d, "203.0.113.7/32");
  CHECK(forged.expires_at_ms == t0 + 5 + policy_engine::spoofable_deny_ttl_ms);
  CHECK(forged.spares_tenants);
  CHECK(d->match("203.0.113.7", t0 + 5) == admission::deny_match::tenants_spared);

  // Evidence that needs the address itself (its handshakes stalled) lists it again: full TTL, for everyone.
  engine.on_alert(alert(detector_id::handshake_stall, {"203.0.113.7"}, evidence_kind::stalled_handshakes), t0 + 9,
                  &fx);
  d = engine.deny_snapshot();
  REQUIRE(d->size() == 2);
  const auto real = entry_of(*d, "203.0.113.7/32");
  CHECK(real.expires_at_ms == t0 + 9 + deny_ttl_ms);
  CHECK_FALSE(real.spares_tenants);
  CHECK(d->match("203.0.113.7", t0 + 9) == admission::deny_match::everyone);
  // Forged-source evidence naming it again does not loosen that.
  fx = {};
  engine.on_alert(alert(detector_id::syn_flood, {"203.0.113.7"}, evidence_kind::half_open_syns, alert_phase::update),
                  t0 + 10, &fx);
  CHECK_FALSE(fx.deny_changed);
  CHECK(engine.deny_snapshot()->match("203.0.113.7", t0 + 10) == admission::deny_match::everyone);
  // Entries lapse at their expiry.
  fx = {};
  engine.tick(t0 + 5 + policy_engine::spoofable_deny_ttl_ms + 1, &fx);
  CHECK_FALSE(fx.deny_changed);  // the forged-source entry was replaced by the full one
  engine.tick(t0 + deny_ttl_ms + 1, &fx);
  CHECK(fx.deny_changed);
  CHECK(engine.deny_snapshot()->size() == 1);  // 203.0.113.7's entry (listed 9 ms later) remains
  engine.tick(t0 + 9 + deny_ttl_ms + 1, &fx);
  CHECK(engine.deny_snapshot()->size() == 0);
}

TEST_CASE("an alert naming no culprit lists nothing, culprits named below orange are listed when it comes",
          "[admission][policy_engine]") {
  policy_effects fx;
  policy_engine engine(deny_policy(), t0, &fx);
  REQUIRE(engine.level() == config::threat_level::green);
  // A spoofed flood: the alert names no culprit, whatever its top sources were.
  engine.on_alert(alert(detector_id::syn_flood, {}, evidence_kind::half_open_syns), t0, &fx);
  engine.on_alert(alert(detector_id::heavy_hitter, {"192.0.2.50"}, evidence_kind::packets), t0, &fx);
  CHECK(engine.deny_snapshot()->size() == 0);  // green does not deny-list
  fx = {};
  engine.on_level(config::threat_level::orange, t0 + 1, &fx);
  REQUIRE(fx.level);
  CHECK(fx.level->from == config::threat_level::green);
  CHECK(fx.level->to == config::threat_level::orange);
  CHECK(fx.settings_changed);
  auto d = engine.deny_snapshot();
  REQUIRE(d->size() == 1);
  CHECK(d->entries()[0].prefix == "192.0.2.50/32");
  // An ended alert's culprits are not listed again at the next level change.
  engine.on_alert(alert(detector_id::heavy_hitter, {}, evidence_kind::packets, alert_phase::end), t0 + 2, &fx);
  engine.on_level(config::threat_level::red, t0 + 3, &fx);
  REQUIRE(engine.level() == config::threat_level::red);
  CHECK(engine.deny_snapshot()->size() == 1);
}

TEST_CASE("a registered user's address is never deny-listed, and entries covering it are lifted",
          "[admission][policy_engine]") {
  policy_effects fx;
  policy_engine engine(deny_policy(), t0, &fx);
  engine.on_level(config::threat_level::orange, t0, &fx);
  const admission::load_snapshot load{0, 0, 100, 0};
  // 10.1.2.3 listed on evidence that needs the address: anonymous and trial requests from it are shed.
  engine.on_alert(alert(detector_id::request_flood, {"10.1.2.3"}, evidence_kind::app_signals), t0, &fx);
  CHECK(engine.admit_generate(request("10.1.2.3"), load, t0 + 1, &fx).reason ==
        admission::shed_reason::denied_source);
  CHECK(engine.admit_generate(request("10.1.2.3", 7, "trial"), load, t0 + 1, &fx).reason ==
        admission::shed_reason::denied_source);
  // A registered tenant's request from it is admitted, the entry is lifted and the address trusted.
  fx = {};
  const auto d = engine.admit_generate(request("10.1.2.3", 8, "registered"), load, t0 + 2, &fx);
  CHECK(d.admitted);
  CHECK(fx.deny_changed);
  CHECK(fx.lifted == std::vector<std::string>{"10.1.2.3"});
  CHECK(engine.deny_snapshot()->size() == 0);
  // A later alert naming it, or a prefix covering it, spares it; other culprits are listed.
  fx = {};
  engine.on_alert(alert(detector_id::conn_flood, {"10.1.0.0/16", "10.9.9.9"}, evidence_kind::completed_handshakes),
                  t0 + 3, &fx);
  CHECK(fx.spared == std::vector<std::string>{"10.1.0.0/16"});
  REQUIRE(engine.deny_snapshot()->size() == 1);
  CHECK(engine.deny_snapshot()->entries()[0].prefix == "10.9.9.9/32");
  // Trust lapses after trust_ms without a registered request from the address.
  engine.tick(t0 + 2 + policy_engine::trust_ms + 1, &fx);
  fx = {};
  engine.on_alert(alert(detector_id::conn_flood, {"10.1.2.3"}, evidence_kind::completed_handshakes),
                  t0 + 2 + policy_engine::trust_ms + 2, &fx);
  CHECK(fx.spared.empty());
  CHECK(engine.deny_snapshot()->denied("10.1.2.3", t0 + 2 + policy_engine::trust_ms + 2));
}

TEST_CASE("a tenant's credential passes entries that spare tenants, not those that refuse everyone",
          "[admission][policy_engine]") {
  policy_effects fx;
  policy_engine engine(deny_policy(), t0, &fx);
  engine.on_level(config::threat_level::red, t0, &fx);
  const admission::load_snapshot load{0, 0, 100, 0};
  engine.on_alert(alert(detector_id::syn_flood, {"192.0.2.1"}, evidence_kind::half_open_syns), t0, &fx);
  engine.on_alert(alert(detector_id::handshake_stall, {"192.0.2.2"}, evidence_kind::stalled_handshakes), t0, &fx);
  CHECK(engine.admit_generate(request("192.0.2.1", 5, "trial"), load, t0 + 1, &fx).admitted);
  CHECK(engine.admit_generate(request("192.0.2.2", 5, "trial"), load, t0 + 1, &fx).reason ==
        admission::shed_reason::denied_source);
  CHECK(engine.admit_generate(request("192.0.2.1"), load, t0 + 1, &fx).reason ==
        admission::shed_reason::denied_source);
  CHECK(engine.admit_registration("192.0.2.1", t0 + 1).reason == admission::shed_reason::denied_source);
  CHECK(engine.admit_registration("192.0.2.9", t0 + 1).admitted);
}

TEST_CASE("the operator's override level holds until the policy clears it", "[admission][policy_engine]") {
  auto p = deny_policy();
  p->override_level = config::threat_level::orange;
  policy_effects fx;
  policy_engine engine(p, t0, &fx);
  CHECK(engine.level() == config::threat_level::orange);
  REQUIRE(fx.level);
  CHECK(fx.level->why == admission::level_change::cause::override_set);
  CHECK(fx.settings_changed);
  // The monitor's levels are noted but do not move it.
  fx = {};
  engine.on_level(config::threat_level::red, t0 + 1, &fx);
  CHECK_FALSE(fx.level);
  CHECK(engine.level() == config::threat_level::orange);
  // A reload without the override puts the monitor's latest level in force.
  auto cleared = deny_policy();
  engine.set_policy(cleared, t0 + 2, &fx);
  REQUIRE(fx.level);
  CHECK(fx.level->to == config::threat_level::red);
  CHECK(fx.level->why == admission::level_change::cause::override_cleared);
  CHECK(engine.level() == config::threat_level::red);
}

TEST_CASE("an admitted request holds its ticket until released", "[admission][policy_engine]") {
  auto p = deny_policy();
  for (auto& lp : p->levels) {
    for (auto& c : lp.classes) c.max_streams = 1;
  }
  policy_effects fx;
  policy_engine engine(p, t0, &fx);
  const admission::load_snapshot load{0, 0, 100, 0};
  auto first = request("198.51.100.20", 3, "trial");
  REQUIRE(engine.admit_generate(first, load, t0, &fx).admitted);
  CHECK(engine.admit_generate(request("198.51.100.21", 3, "trial"), load, t0, &fx).reason ==
        admission::shed_reason::too_many_streams);
  engine.release(first.seq_id);
  engine.release(first.seq_id);  // a second release is ignored
  CHECK(engine.admit_generate(request("198.51.100.21", 3, "trial"), load, t0, &fx).admitted);
}
