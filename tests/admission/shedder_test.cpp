// Admission decisions with an injected clock: every expected token count and retry_after is worked out by hand
// from the bucket formula b = min(burst, b + rate * dt) in the comments.
#include <catch2/catch.hpp>

#include "admission/shedder.hpp"

using namespace rampart::admission;
using rampart::config::priority;
using rampart::config::threat_level;

namespace {

std::shared_ptr<const rampart::config::policy> make_policy(const std::string& text) {
  auto p = std::make_shared<rampart::config::policy>();
  rampart::config::config_error err;
  bool ok = rampart::config::parse_policy(text, "t.toml", p.get(), &err);
  INFO(err.to_string());
  REQUIRE(ok);
  return p;
}

const char* kPolicy = R"(
[policy]
[policy.levels.green]
retry_after_ms = 7000
max_streams_per_source = 3
[policy.levels.green.classes.trial]
requests_per_s = 2
requests_burst = 3
tokens_per_s = 1000
tokens_burst = 20000
max_streams = 2
[policy.levels.red]
anonymous = { admitted = false, share = 0.25 }
registration = { mode = "closed" }
max_utilization = { normal = 0.9, sheddable = 0.5 }
)";

shedder::request trial(int64_t tenant, const char* ip, int64_t prompt, int64_t max_tokens) {
  shedder::request r;
  r.tenant_id = tenant;
  r.tenant_class = "trial";
  REQUIRE(ip_address::parse(ip, &r.source));
  r.prompt_tokens = prompt;
  r.max_tokens = max_tokens;
  return r;
}

shedder::request anonymous(const char* ip) {
  shedder::request r = trial(0, ip, 10, 10);
  r.tenant_class = "";
  return r;
}

load_snapshot idle() { return load_snapshot{0, 0, 100, 0}; }

}  // namespace

TEST_CASE("bucket arithmetic: refill is capped at burst and retry_after rounds up", "[shedder]") {
  token_bucket b;
  CHECK(refill(&b, 2, 3, 1000) == 3);  // first look: full
  b.tokens = 0;
  CHECK(refill(&b, 2, 3, 1250) == Approx(0.5));  // 0 + 2 * 0.25
  CHECK(refill(&b, 2, 3, 1000) == Approx(0.5));  // an earlier time adds nothing
  CHECK(refill(&b, 2, 3, 9000) == 3);            // 0.5 + 2 * 7.75 = 16, capped at 3
  CHECK(wait_ms(0.5, 1, 2) == 250);              // (1 - 0.5) / 2 s
  CHECK(wait_ms(0, 1, 3) == 334);                // 333.33 ms rounds up
  CHECK(wait_ms(5, 1, 2) == 0);
}

TEST_CASE("the request bucket refuses a tenant past its burst and says when to retry", "[shedder]") {
  shedder s(make_policy(kPolicy));
  stream_ticket t;
  // Burst 3 at t=0, each request costs 1 (streams released so only the bucket counts).
  for (int i = 0; i < 3; ++i) {
    auto d = s.admit(trial(5, "10.0.0.1", 10, 90), idle(), 0, &t);
    REQUIRE(d.admitted);
    s.release(&t);
  }
  auto d = s.admit(trial(5, "10.0.0.1", 10, 90), idle(), 0, &t);
  CHECK_FALSE(d.admitted);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 500);  // (1 - 0) / 2 per s
  d = s.admit(trial(5, "10.0.0.1", 10, 90), idle(), 250, &t);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 250);  // b = 0 + 2 * 0.25 = 0.5; (1 - 0.5) / 2 per s
  d = s.admit(trial(5, "10.0.0.1", 10, 90), idle(), 500, &t);
  CHECK(d.admitted);  // b = 0.5 + 2 * 0.25 = 1
  CHECK(s.counters().shed[static_cast<int>(shed_reason::rate_limited)] == 2);
  CHECK(s.counters().admitted == 4);
  // Another tenant has its own bucket.
  CHECK(s.admit(trial(6, "10.0.0.1", 10, 90), idle(), 500, &t).admitted);
}

TEST_CASE("the token bucket charges prompt plus max_tokens", "[shedder]") {
  shedder s(make_policy(kPolicy));
  stream_ticket t;
  REQUIRE(s.admit(trial(6, "10.0.0.1", 8000, 4000), idle(), 0, &t).admitted);  // 20000 - 12000 = 8000
  s.release(&t);
  auto d = s.admit(trial(6, "10.0.0.1", 8000, 4000), idle(), 0, &t);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 4000);  // (12000 - 8000) / 1000 per s
  d = s.admit(trial(6, "10.0.0.1", 8000, 4000), idle(), 1000, &t);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 3000);  // 8000 + 1000 = 9000; (12000 - 9000) / 1000
  CHECK(s.admit(trial(6, "10.0.0.1", 8000, 4000), idle(), 4000, &t).admitted);  // 8000 + 4000 = 12000
  s.release(&t);
  d = s.admit(trial(6, "10.0.0.1", 1, 0), idle(), 4000, &t);  // 0 left, cost 1
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 1);
}

TEST_CASE("concurrent streams are limited per tenant and per source", "[shedder]") {
  shedder s(make_policy(kPolicy));
  stream_ticket a, b, c, d4;
  REQUIRE(s.admit(trial(7, "10.0.0.1", 1, 1), idle(), 0, &a).admitted);
  REQUIRE(s.admit(trial(7, "10.0.0.1", 1, 1), idle(), 0, &b).admitted);
  auto d = s.admit(trial(7, "10.0.0.1", 1, 1), idle(), 0, &c);
  CHECK(d.reason == shed_reason::too_many_streams);  // trial max_streams = 2
  CHECK(d.retry_after_ms == 7000);
  CHECK(s.admit(trial(7, "10.0.0.2", 1, 1), idle(), 0, &c).reason == shed_reason::too_many_streams);
  // A third stream from 10.0.0.1 for another tenant: per-source limit 3 is not reached yet.
  REQUIRE(s.admit(trial(8, "10.0.0.1", 1, 1), idle(), 0, &c).admitted);
  CHECK(s.admit(trial(9, "10.0.0.1", 1, 1), idle(), 0, &d4).reason == shed_reason::too_many_streams);
  CHECK(s.admit(trial(9, "10.9.9.9", 1, 1), idle(), 0, &d4).admitted);
  s.release(&a);
  s.release(&a);  // a second release of the same ticket changes nothing
  CHECK(s.admit(trial(7, "10.0.0.1", 1, 1), idle(), 0, &a).admitted);
  CHECK(s.admit(trial(9, "10.0.0.1", 1, 1), idle(), 0, &b).reason == shed_reason::too_many_streams);
}

TEST_CASE("size caps, denied sources and closed anonymous access", "[shedder]") {
  shedder s(make_policy(kPolicy));
  stream_ticket t;
  CHECK(s.admit(trial(1, "10.0.0.1", 8193, 1), idle(), 0, &t).reason == shed_reason::prompt_too_long);
  CHECK(s.admit(trial(1, "10.0.0.1", 8192, 4097), idle(), 0, &t).reason == shed_reason::max_tokens_too_large);
  auto denied = trial(1, "10.0.0.1", 1, 1);
  denied.source_denied = true;
  CHECK(s.admit(denied, idle(), 0, &t).reason == shed_reason::denied_source);
  CHECK(s.admit(anonymous("10.0.0.5"), idle(), 0, &t).admitted);
  s.set_level(threat_level::red);
  auto d = s.admit(anonymous("10.0.0.5"), idle(), 0, &t);
  CHECK(d.reason == shed_reason::anonymous_closed);
  CHECK(d.retry_after_ms == 7000);
  CHECK(s.admit(trial(1, "10.0.0.5", 1, 1), idle(), 0, &t).admitted);
}

TEST_CASE("lower priority classes are shed first as the load grows", "[shedder]") {
  shedder s(make_policy(kPolicy));
  s.set_level(threat_level::red);  // max_utilization: critical 1, high 1, normal 0.9, sheddable 0.5
  stream_ticket t;
  auto registered = trial(2, "10.0.0.1", 1, 1);
  registered.tenant_class = "registered";
  registered.asked = priority::sheddable;
  // 5 busy of 10: 5 >= 0.5 * 10 sheds sheddable; normal needs 9.
  load_snapshot half{5, 0, 10, 0};
  CHECK(s.admit(registered, half, 0, &t).reason == shed_reason::over_capacity);
  registered.asked = priority::normal;
  CHECK(s.admit(registered, half, 0, &t).admitted);
  s.release(&t);
  load_snapshot nine{6, 3, 10, 0};
  CHECK(s.admit(registered, nine, 0, &t).reason == shed_reason::over_capacity);
  registered.asked = priority::critical;
  auto d = s.admit(registered, nine, 0, &t);
  CHECK(d.admitted);
  CHECK(d.effective == priority::critical);
  s.release(&t);
  // A trial tenant asking for critical runs as normal (its class's max_priority), so 9 of 10 sheds it.
  auto asking = trial(3, "10.0.0.1", 1, 1);
  asking.asked = priority::critical;
  d = s.admit(asking, nine, 0, &t);
  CHECK(d.reason == shed_reason::over_capacity);
  CHECK(d.effective == priority::normal);
  load_snapshot full{10, 0, 10, 0};
  CHECK(s.admit(registered, full, 0, &t).reason == shed_reason::over_capacity);
  CHECK(s.admit(registered, load_snapshot{0, 0, 0, 0}, 0, &t).reason == shed_reason::over_capacity);
}

TEST_CASE("anonymous requests hold at most their share of capacity", "[shedder]") {
  auto p = make_policy(std::string(kPolicy) + "[policy.levels.green.anonymous]\nshare = 0.25\n");
  shedder s(p);
  load_snapshot ten{0, 0, 10, 0};  // floor(0.25 * 10) = 2 anonymous streams
  stream_ticket a, b, c;
  REQUIRE(s.admit(anonymous("10.0.0.1"), ten, 0, &a).admitted);
  REQUIRE(s.admit(anonymous("10.0.0.2"), ten, 0, &b).admitted);
  CHECK(s.anonymous_streams() == 2);
  CHECK(s.admit(anonymous("10.0.0.3"), ten, 0, &c).reason == shed_reason::over_capacity);
  CHECK(s.admit(trial(4, "10.0.0.3", 1, 1), ten, 0, &c).admitted);  // tenants are not counted
  s.release(&a);
  CHECK(s.admit(anonymous("10.0.0.3"), ten, 0, &a).admitted);
}

TEST_CASE("queue-delay targets shed what waits, or would wait, too long", "[shedder]") {
  shedder s(make_policy(kPolicy));  // base targets: 30000, 20000, 10000, 5000 ms
  stream_ticket t;
  auto r = trial(1, "10.0.0.1", 1, 1);
  CHECK(s.admit(r, load_snapshot{1, 1, 100, 10001}, 0, &t).reason == shed_reason::queue_timeout);
  CHECK(s.admit(r, load_snapshot{1, 1, 100, 10000}, 0, &t).admitted);
  CHECK(s.check_queue_delay(priority::sheddable, 5000).admitted);
  auto d = s.check_queue_delay(priority::sheddable, 5001);
  CHECK(d.reason == shed_reason::queue_timeout);
  CHECK(s.check_queue_delay(priority::critical, 29999).admitted);
}

TEST_CASE("registrations: open, rate-limited by a server-wide bucket, closed", "[shedder]") {
  auto p = make_policy(std::string(kPolicy) +
                       "[policy.levels.yellow.registration]\nmode = \"rate_limited\"\nrate = 2\nburst = 2\n"
                       "per_source_rate = 100\nper_source_burst = 100\n");
  shedder s(p);
  // Green is open with the defaults (rate 10/s, burst 20; per source 1/s, burst 5): 20 sources registering
  // at once drain the server-wide bucket, whatever mode the level names.
  ip_address a;
  int admitted = 0;
  for (int i = 0; i < 40; ++i) {
    REQUIRE(ip_address::parse("192.0.2." + std::to_string(i + 1), &a));
    admitted += s.admit_registration(a, false, 0).admitted;
  }
  CHECK(admitted == 20);
  REQUIRE(ip_address::parse("198.51.100.1", &a));
  auto d = s.admit_registration(a, false, 0);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 100);  // 1 token at 10 per s
  s.set_level(threat_level::yellow);
  d = s.admit_registration(a, false, 1000);  // 1 s at yellow's 2 per s: 2 tokens (its burst)
  CHECK(d.admitted);
  CHECK(s.admit_registration(a, false, 1000).admitted);
  d = s.admit_registration(a, false, 1000);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 500);  // 1 token at 2 per s
  CHECK(s.admit_registration(a, false, 1500).admitted);
  CHECK(s.admit_registration(a, true, 10000).reason == shed_reason::denied_source);
  s.set_level(threat_level::orange);  // inherits yellow's bucket: 10 s later it is full again
  CHECK(s.admit_registration(a, false, 10000).admitted);
  s.set_level(threat_level::red);  // closed
  d = s.admit_registration(a, false, 10000);
  CHECK(d.reason == shed_reason::registration_closed);
  CHECK(d.retry_after_ms == 7000);
  CHECK(s.level_policy().registration.message == "registrations are closed; try again later");
  CHECK(s.counters().registrations_admitted == 24);
}

TEST_CASE("one source registers at its own rate even while the server-wide bucket is full", "[shedder]") {
  shedder s(make_policy(kPolicy));  // green: open, per source 1/s with a burst of 5
  ip_address a, b;
  REQUIRE(ip_address::parse("203.0.113.7", &a));
  REQUIRE(ip_address::parse("203.0.113.8", &b));
  for (int i = 0; i < 5; ++i) REQUIRE(s.admit_registration(a, false, 0).admitted);
  auto d = s.admit_registration(a, false, 0);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 1000);  // 1 token at 1 per s
  CHECK(s.admit_registration(b, false, 0).admitted);  // another source is not held back
  CHECK(s.admit_registration(a, false, 1000).admitted);
}

TEST_CASE("dry run admits everything and counts what it would have shed", "[shedder]") {
  auto p = make_policy(std::string(kPolicy).replace(std::string(kPolicy).find("[policy]\n"), 9,
                                                    "[policy]\ndry_run = true\n"));
  REQUIRE(p->dry_run);
  shedder s(p);
  stream_ticket t;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(s.admit(trial(5, "10.0.0.1", 1, 1), idle(), 0, &t).admitted);
    s.release(&t);
  }
  auto d = s.admit(trial(5, "10.0.0.1", 1, 1), idle(), 0, &t);  // request bucket empty
  CHECK(d.admitted);
  CHECK(d.would_shed);
  CHECK(d.reason == shed_reason::rate_limited);
  CHECK(d.retry_after_ms == 500);
  s.release(&t);
  // The dry-run admission did not drive the bucket below 0: at t=500 it holds 0 + 2 * 0.5 = 1 again.
  d = s.admit(trial(5, "10.0.0.1", 1, 1), idle(), 500, &t);
  CHECK((d.admitted && !d.would_shed));
  CHECK(s.counters().would_shed[static_cast<int>(shed_reason::rate_limited)] == 1);
  CHECK(s.counters().shed[static_cast<int>(shed_reason::rate_limited)] == 0);
  CHECK(s.counters().admitted == 5);
  CHECK(s.check_queue_delay(priority::sheddable, 999999).would_shed);
}

TEST_CASE("a new policy keeps the state and clamps buckets to the new burst", "[shedder]") {
  shedder s(make_policy(kPolicy));
  stream_ticket t;
  REQUIRE(s.admit(trial(5, "10.0.0.1", 1, 1), idle(), 0, &t).admitted);  // 3 - 1 = 2 left
  s.release(&t);
  std::string smaller = kPolicy;
  smaller.replace(smaller.find("requests_burst = 3"), 18, "requests_burst = 1");
  s.set_policy(make_policy(smaller));
  REQUIRE(s.admit(trial(5, "10.0.0.1", 1, 1), idle(), 0, &t).admitted);  // min(1, 2) = 1, then 0
  s.release(&t);
  CHECK(s.admit(trial(5, "10.0.0.1", 1, 1), idle(), 0, &t).reason == shed_reason::rate_limited);
}

TEST_CASE("the shipped policy sheds nothing of ordinary traffic at green", "[shedder]") {
  auto p = std::make_shared<rampart::config::policy>(rampart::config::default_policy());
  shedder s(p);
  // 20 registered tenants and 10 anonymous sources, each 5 requests per second for 60 s (700 + 300 tokens,
  // about 5 in flight each), with the server an eighth busy (the anonymous ones, up to 40, stay within their
  // share: half of the capacity of 160).
  std::vector<stream_ticket> running;
  load_snapshot load{16, 4, 160, 200};
  for (int64_t now = 0; now < 60000; now += 200) {
    for (int k = 0; k < 30; ++k) {
      shedder::request r;
      r.tenant_id = k < 20 ? k + 1 : 0;
      r.tenant_class = "registered";
      std::string ip = "192.168.1." + std::to_string(k + 1);
      REQUIRE(ip_address::parse(ip, &r.source));
      r.prompt_tokens = 700;
      r.max_tokens = 300;
      stream_ticket t;
      auto d = s.admit(r, load, now, &t);
      INFO("t=" << now << " k=" << k << " " << shed_reason_name(d.reason));
      REQUIRE((d.admitted && !d.would_shed));
      running.push_back(t);
    }
    if (running.size() > 120) {
      for (size_t i = 0; i < 30; ++i) s.release(&running[i]);
      running.erase(running.begin(), running.begin() + 30);
    }
  }
  ip_address someone;
  REQUIRE(ip_address::parse("192.0.2.200", &someone));
  CHECK(s.admit_registration(someone, false, 0).admitted);
  for (int i = 0; i < shed_reason_count; ++i) CHECK(s.counters().shed[i] == 0);
}

TEST_CASE("a tenant whose class the policy does not name gets the fallback class's limits", "[shedder]") {
  shedder s(make_policy(kPolicy));  // fallback_class = "trial": max_streams 2, max_priority normal
  stream_ticket a, b, c;
  auto r = trial(11, "10.0.0.1", 1, 1);
  r.tenant_class = "platinum";
  r.asked = priority::critical;
  auto d = s.admit(r, idle(), 0, &a);
  REQUIRE(d.admitted);
  CHECK(d.effective == priority::normal);
  REQUIRE(s.admit(r, idle(), 0, &b).admitted);
  CHECK(s.admit(r, idle(), 0, &c).reason == shed_reason::too_many_streams);
}
