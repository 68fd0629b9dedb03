// The admission gate carries the policy engine's effects out: the level in force, its registration mode and the
// deny list's size reach the metrics, next to the monitor's own level. Expected values come from the policy built
// here (override at orange, whose registration is closed; deny-listing at orange).
#include <catch2/catch.hpp>

#include <memory>

#include <prometheus/gauge.h>

#include "actors/admission_gate.hpp"
#include "config/policy.hpp"
#include "net/metrics.hpp"

using namespace rampart;

TEST_CASE("the level in force, its registration mode and the deny list's size are metrics", "[actors][admission]") {
  auto p = std::make_shared<config::policy>(config::base_policy());
  auto& orange = p->levels[static_cast<size_t>(config::threat_level::orange)];
  orange.registration.mode = config::registration_mode::closed;
  orange.deny_heavy_hitters = true;
  p->override_level = config::threat_level::orange;
  net::server_metrics metrics;
  actors::server_context ctx;
  ctx.metrics = &metrics;
  actors::admission_gate gate(&ctx, p);
  CHECK(metrics.threat_level_in_force->Value() == 2);
  CHECK(metrics.registration_mode->Value() == 2);  // closed
  CHECK(metrics.threat_level->Value() == 0);       // the monitor's own level is the monitor service's to set

  actors::monitor_notice n;
  admission::alert_news news;
  news.detector = monitor::detector_id::conn_flood;
  news.evidence = monitor::evidence_kind::completed_handshakes;
  admission::ip_prefix a, b;
  REQUIRE(admission::parse_prefix("198.51.100.7", &a));
  REQUIRE(admission::parse_prefix("203.0.113.0/24", &b));
  news.culprits = {a, b};
  n.alert = news;
  gate.on_monitor(n);
  CHECK(metrics.deny_list_entries->Value() == 2);

  // The override cleared: the monitor's level (green) is in force, registration open again.
  auto cleared = std::make_shared<config::policy>(*p);
  cleared->override_level.reset();
  gate.set_policy(cleared);
  CHECK(metrics.threat_level_in_force->Value() == 0);
  CHECK(metrics.registration_mode->Value() == 0);
}
