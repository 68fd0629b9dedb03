// The threat-level state machine (hold, cool-down, override) and the deny list (prefixes, TTL, which entries
// spare tenants, lifting), on an injected clock.
#include <catch2/catch.hpp>

#include "admission/deny_list.hpp"
#include "admission/threat_state.hpp"

using namespace rampart::admission;
using rampart::config::threat_level;
using cause = level_change::cause;

TEST_CASE("a higher monitor level takes effect at once and lowering waits for the cool-down", "[threat]") {
  threat_state s(10000, 30000, 0);
  CHECK(s.level() == threat_level::green);
  auto c = s.observe(threat_level::orange, 1000);
  REQUIRE(c);
  CHECK((c->from == threat_level::green && c->to == threat_level::orange && c->at_ms == 1000));
  CHECK(c->why == cause::monitor);
  c = s.observe(threat_level::red, 2000);
  REQUIRE(c);
  CHECK(c->to == threat_level::red);
  CHECK_FALSE(s.observe(threat_level::green, 3000));  // cooling since 3000
  CHECK_FALSE(s.tick(32999));
  c = s.tick(33000);
  REQUIRE(c);
  CHECK((c->from == threat_level::red && c->to == threat_level::green && c->why == cause::cool_down));
  CHECK_FALSE(s.tick(100000));
}

TEST_CASE("the cool-down needs an unbroken stretch below the level", "[threat]") {
  threat_state s(0, 30000, 0);
  s.observe(threat_level::red, 0);
  s.observe(threat_level::green, 1000);
  s.observe(threat_level::red, 20000);  // back up: the cool-down starts over
  CHECK(s.level() == threat_level::red);
  s.observe(threat_level::green, 25000);
  CHECK_FALSE(s.tick(54999));
  auto c = s.tick(55000);
  REQUIRE(c);
  CHECK(c->to == threat_level::green);
}

TEST_CASE("the level drops to the highest monitor level seen during the cool-down", "[threat]") {
  threat_state s(0, 30000, 0);
  s.observe(threat_level::red, 0);
  s.observe(threat_level::orange, 100000);
  s.observe(threat_level::green, 110000);
  auto c = s.tick(130000);
  REQUIRE(c);
  CHECK(c->to == threat_level::orange);
  CHECK_FALSE(s.tick(159999));  // a new cool-down from 130000 at green
  c = s.tick(160000);
  REQUIRE(c);
  CHECK(c->to == threat_level::green);
}

TEST_CASE("a level is held at least hold_ms even when the cool-down is shorter", "[threat]") {
  threat_state s(10000, 0, 0);
  s.observe(threat_level::red, 0);
  CHECK_FALSE(s.observe(threat_level::green, 1000));
  CHECK_FALSE(s.tick(9999));
  REQUIRE(s.tick(10000));
  CHECK(s.level() == threat_level::green);
}

TEST_CASE("an operator override fixes the level until it is cleared", "[threat]") {
  threat_state s(10000, 30000, 0);
  CHECK_FALSE(s.set_override(std::nullopt, 0));
  auto c = s.set_override(threat_level::yellow, 0);
  REQUIRE(c);
  CHECK(c->why == cause::override_set);
  CHECK_FALSE(s.observe(threat_level::red, 1000));
  CHECK(s.level() == threat_level::yellow);
  CHECK(s.monitor_level() == threat_level::red);
  c = s.set_override(std::nullopt, 2000);
  REQUIRE(c);
  CHECK((c->to == threat_level::red && c->why == cause::override_cleared));
  CHECK(std::string(cause_name(c->why)) == "override_cleared");
}

TEST_CASE("deny list: addresses, prefixes and their expiry", "[deny]") {
  deny_list d;
  std::string error;
  REQUIRE(d.add("127.0.0.2", 1000, &error));
  CHECK(d.denied("127.0.0.2", 999));
  CHECK_FALSE(d.denied("127.0.0.2", 1000));  // denied until, not including, the expiry
  CHECK_FALSE(d.denied("127.0.0.3", 0));
  CHECK(d.denied("::ffff:127.0.0.2", 0));  // the IPv4-mapped form is the same source
  REQUIRE(d.add("10.1.2.3/16", 5000, &error));
  CHECK(d.denied("10.1.255.255", 0));
  CHECK(d.denied("10.1.0.0", 0));
  CHECK_FALSE(d.denied("10.2.0.0", 0));
  REQUIRE(d.add("2001:db8::/32", 5000, &error));
  CHECK(d.denied("2001:db8:ffff::1", 0));
  CHECK_FALSE(d.denied("2001:db9::1", 0));
  REQUIRE(d.add("::1", 5000, &error));
  CHECK(d.denied("::1", 0));
  CHECK_FALSE(d.denied("::2", 0));
  CHECK_FALSE(d.denied("not an address", 0));
  auto entries = d.entries();
  REQUIRE(entries.size() == 4);
  CHECK(entries[0].prefix == "10.1.0.0/16");
  CHECK(entries[1].prefix == "127.0.0.2/32");
  CHECK(entries[2].prefix == "2001:db8::/32");
  CHECK(entries[3].prefix == "::1/128");
  CHECK(d.expire(1000) == 1);
  CHECK(d.size() == 3);
  CHECK(d.remove("10.1.0.0/16"));
  CHECK_FALSE(d.remove("10.1.0.0/16"));
  CHECK_FALSE(d.denied("10.1.2.3", 0));
  CHECK(d.expire(5000) == 2);
  CHECK(d.size() == 0);
}

TEST_CASE("deny list: a repeated entry keeps the later expiry and an IPv4 /0 covers only IPv4", "[deny]") {
  deny_list d;
  std::string error;
  REQUIRE(d.add("192.0.2.1", 5000, &error));
  REQUIRE(d.add("192.0.2.1/32", 3000, &error));
  CHECK(d.size() == 1);
  CHECK(d.denied("192.0.2.1", 4000));
  REQUIRE(d.add("0.0.0.0/0", 100, &error));
  CHECK(d.denied("8.8.8.8", 0));
  CHECK_FALSE(d.denied("2001:db8::1", 0));
}

TEST_CASE("deny list: malformed addresses and prefixes are refused with a reason", "[deny]") {
  deny_list d;
  std::string error;
  for (const char* bad : {"10.0.0.0/33", "1.2.3", "fe80::1%eth0", "abc", "10.0.0.0/", "/8", "10.0.0.0/8x",
                          "::1/129", "", "10.0.0.0/-1", "1.2.3.4/0008"}) {
    INFO(bad);
    CHECK_FALSE(d.add(bad, 1000, &error));
    CHECK(error == "\"" + std::string(bad) + "\" is not an IP address or CIDR prefix");
  }
  CHECK(d.size() == 0);
}

TEST_CASE("deny list: prefixes spare tenants, a single address refuses everyone unless listed to spare them",
          "[deny]") {
  deny_list d;
  std::string error;
  REQUIRE(d.add("198.51.100.0/24", 5000, &error));
  REQUIRE(d.add("203.0.113.7", 5000, &error));
  REQUIRE(d.add("203.0.113.8", 5000, &error, true));  // listed on forgeable evidence
  REQUIRE(d.add("2001:db8::/32", 5000, &error, false));  // a prefix spares tenants whatever is asked
  CHECK(d.match("198.51.100.9", 0) == deny_match::tenants_spared);
  CHECK(d.match("203.0.113.7", 0) == deny_match::everyone);
  CHECK(d.match("203.0.113.8", 0) == deny_match::tenants_spared);
  CHECK(d.match("2001:db8::1", 0) == deny_match::tenants_spared);
  CHECK(d.match("192.0.2.1", 0) == deny_match::none);
  CHECK(d.match("not an address", 0) == deny_match::none);
  CHECK(d.match("203.0.113.7", 5000) == deny_match::none);  // expired
  CHECK(d.denied("203.0.113.8", 0));  // every entry refuses a client without a credential
  // An address inside a listed prefix that is also listed on its own is refused by the stricter entry.
  REQUIRE(d.add("198.51.100.9", 5000, &error));
  CHECK(d.match("198.51.100.9", 0) == deny_match::everyone);
  CHECK(d.match("198.51.100.10", 0) == deny_match::tenants_spared);
  const auto entries = d.entries();
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].prefix == "198.51.100.0/24");
  CHECK(entries[0].spares_tenants);
  CHECK(entries[1].prefix == "198.51.100.9/32");
  CHECK_FALSE(entries[1].spares_tenants);
  CHECK(entries[2].prefix == "2001:db8::/32");  // sorted as text
  CHECK(entries[2].spares_tenants);
  CHECK(entries[3].prefix == "203.0.113.7/32");
  CHECK_FALSE(entries[3].spares_tenants);
  CHECK(entries[4].prefix == "203.0.113.8/32");
  CHECK(entries[4].spares_tenants);
}

TEST_CASE("deny list: listing an address again keeps the stricter rule and the later expiry", "[deny]") {
  deny_list d;
  std::string error;
  REQUIRE(d.add("203.0.113.8", 3000, &error, true));
  REQUIRE(d.add("203.0.113.8", 2000, &error, false));  // stricter, earlier
  CHECK(d.size() == 1);
  CHECK(d.match("203.0.113.8", 2500) == deny_match::everyone);
  REQUIRE(d.add("203.0.113.8", 9000, &error, true));  // sparing again does not loosen it
  CHECK(d.match("203.0.113.8", 8000) == deny_match::everyone);
}

TEST_CASE("deny list: lifting an address removes every entry that covers it and nothing else", "[deny]") {
  deny_list d;
  std::string error;
  REQUIRE(d.add("10.0.0.0/8", 5000, &error));
  REQUIRE(d.add("10.1.0.0/16", 5000, &error));
  REQUIRE(d.add("10.1.2.3", 5000, &error));
  REQUIRE(d.add("10.1.2.4", 5000, &error));
  REQUIRE(d.add("192.0.2.0/24", 5000, &error));
  ip_address a;
  REQUIRE(ip_address::parse("10.1.2.3", &a));
  CHECK(d.lift(a) == 3);  // 10.0.0.0/8, 10.1.0.0/16 and the address itself
  CHECK(d.size() == 2);
  CHECK_FALSE(d.denied("10.1.2.3", 0));
  CHECK(d.denied("10.1.2.4", 0));
  CHECK(d.denied("192.0.2.9", 0));
  CHECK(d.lift(a) == 0);
  REQUIRE(ip_address::parse("192.0.2.9", &a));
  CHECK(d.lift(a) == 1);
  CHECK(d.size() == 1);
  CHECK(d.entries().size() == 1);
}
