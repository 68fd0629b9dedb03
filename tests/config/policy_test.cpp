// The policy schema: shipped defaults, inheritance between levels, and one test per kind of validation error
// with positions counted by hand from the test text.
#include <catch2/catch.hpp>

#include <fstream>

#include "config/policy.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

using namespace rampart::config;

namespace {

config_error parse_error(const std::string& text) {
  policy p;
  config_error err;
  REQUIRE_FALSE(parse_policy(text, "p.toml", &p, &err));
  CHECK(err.file == "p.toml");
  return err;
}

policy parse_ok(const std::string& text) {
  policy p;
  config_error err;
  INFO(err.to_string());
  bool ok = parse_policy(text, "p.toml", &p, &err);
  INFO(err.to_string());
  REQUIRE(ok);
  return p;
}

const level_policy& level(const policy& p, threat_level l) { return p.at(l); }

}  // namespace

TEST_CASE("the shipped policy parses and is the embedded default", "[policy]") {
  policy shipped;
  config_error err;
  REQUIRE(load_policy(rampart::test::source_dir() + "/config/policy.toml", &shipped, &err));
  policy embedded;
  REQUIRE(parse_policy(embedded_default_policy(), "<embedded>", &embedded, &err));
  CHECK(std::string(embedded_default_policy()).find("[policy.levels.red]") != std::string::npos);
  policy d = default_policy();
  CHECK(d.source == "<embedded policy>");
  CHECK_FALSE(d.dry_run);
  CHECK(d.hold_ms == 30000);
  CHECK(d.cool_down_ms == 60000);
  CHECK_FALSE(d.override_level.has_value());
  const auto& green = level(d, threat_level::green);
  CHECK(green.registration.mode == registration_mode::open);
  CHECK(green.anonymous_admitted);
  CHECK(green.anonymous_share == 0.5);
  CHECK(green.budget_batch_share == 0.5);
  CHECK(green.budget_step_share == 0.05);
  CHECK(green.find_class("anonymous")->max_streams == 16);
  CHECK(green.find_class("registered")->requests_per_s == 100);
  // yellow names only what changes; the rest comes from green.
  const auto& yellow = level(d, threat_level::yellow);
  CHECK(yellow.registration.mode == registration_mode::rate_limited);
  CHECK(yellow.registration.rate == 5);
  CHECK(yellow.registration.burst == 10);
  CHECK(yellow.anonymous_admitted);
  CHECK(yellow.anonymous_share == 0.25);
  CHECK(yellow.budget_step_share == 0.03);
  CHECK(yellow.find_class("trial")->requests_per_s == 10);
  CHECK(yellow.find_class("trial")->tokens_burst == 400000);
  CHECK(yellow.max_utilization[3] == 0.9);
  CHECK(yellow.max_utilization[2] == 1.0);
  const auto& orange = level(d, threat_level::orange);
  CHECK(orange.registration.mode == registration_mode::closed);
  CHECK(orange.registration.message.find("under attack") != std::string::npos);
  CHECK(orange.deny_heavy_hitters);
  CHECK(orange.deny_ttl_ms == 600000);
  CHECK(orange.queue_delay_ms[0] == 30000);
  CHECK(orange.queue_delay_ms[3] == 1000);
  const auto& red = level(d, threat_level::red);
  CHECK_FALSE(red.anonymous_admitted);
  CHECK(red.registration.mode == registration_mode::closed);
  CHECK(red.deny_ttl_ms == 1800000);
  CHECK(red.handshake_ivl_ms == 1000);
  CHECK(red.find_class("trial")->requests_per_s == 0.5);
  CHECK(red.find_class("trial")->max_streams == 1);
  CHECK(red.find_class("anonymous")->max_streams == 4);  // from orange
  CHECK(red.budget_batch_share == 0.0);
  CHECK(red.budget_step_share == 0.0);
  // The shipped file and the embedded copy agree on every level's headline values.
  for (int i = 0; i < threat_level_count; ++i) {
    CHECK(shipped.levels[i].registration.mode == d.levels[i].registration.mode);
    CHECK(shipped.levels[i].handshake_ivl_ms == d.levels[i].handshake_ivl_ms);
    CHECK(shipped.levels[i].anonymous_share == d.levels[i].anonymous_share);
    CHECK(shipped.levels[i].budget_step_share == d.levels[i].budget_step_share);
    CHECK(shipped.levels[i].classes.size() == d.levels[i].classes.size());
  }
}

TEST_CASE("an empty [policy] table gives the base values at every level", "[policy]") {
  policy p = parse_ok("[policy]\n");
  CHECK(p.source == "p.toml");
  CHECK(p.hold_ms == 30000);
  CHECK(p.fallback_class == "trial");
  for (const auto& lv : p.levels) {
    CHECK(lv.registration.mode == registration_mode::open);
    CHECK(lv.max_prompt_tokens == 8192);
    CHECK(lv.max_tokens == 4096);
    CHECK(lv.queue_delay_ms == std::array<int64_t, 4>{30000, 20000, 10000, 5000});
    REQUIRE(lv.classes.size() == 3);
    CHECK(lv.find_class("registered")->max_priority == priority::critical);
    CHECK(lv.find_class("anonymous")->max_priority == priority::normal);
  }
}

TEST_CASE("each level inherits what it does not name from the level before it", "[policy]") {
  policy p = parse_ok(
      "[policy]\nhold_s = 0.5\noverride = \"orange\"\n"
      "[policy.levels.green]\nmax_tokens = 100\n"
      "[policy.levels.yellow.classes.gold]\nmax_streams = 3\n"
      "[policy.levels.orange]\nmax_tokens = 50\n");
  CHECK(p.hold_ms == 500);
  REQUIRE(p.override_level.has_value());
  CHECK(*p.override_level == threat_level::orange);
  CHECK(level(p, threat_level::yellow).max_tokens == 100);
  CHECK(level(p, threat_level::red).max_tokens == 50);
  CHECK(level(p, threat_level::green).find_class("gold") == nullptr);
  const class_limits* gold = level(p, threat_level::red).find_class("gold");
  REQUIRE(gold != nullptr);
  CHECK(gold->max_streams == 3);
  CHECK(gold->requests_per_s == 100);  // base value
  CHECK(gold->max_priority == priority::normal);
}

TEST_CASE("a file without a [policy] table is refused", "[policy]") {
  auto err = parse_error("");
  CHECK(err.key == "policy");
  CHECK(err.line == 1);
  CHECK(err.column == 1);
}

TEST_CASE("a TOML syntax error reports its line and column", "[policy]") {
  auto err = parse_error("[policy]\nhold_s = = 3\n");
  CHECK(err.line == 2);
  CHECK(err.column == 10);
}

TEST_CASE("unknown keys are errors at the key with its dotted path", "[policy]") {
  auto e1 = parse_error("[policy]\nholds = 3\n");
  CHECK(e1.key == "policy.holds");
  CHECK(e1.message == "unknown key");
  CHECK((e1.line == 2 && e1.column == 1));
  auto e2 = parse_error("[policy.levels.orange]\nmax_stream_per_source = 3\n");
  CHECK(e2.key == "policy.levels.orange.max_stream_per_source");
  CHECK((e2.line == 2 && e2.column == 1));
  auto e3 = parse_error("[policy]\n[policy.levels.purple]\n");
  CHECK(e3.key == "policy.levels.purple");
  CHECK((e3.line == 2 && e3.column == 16));
  auto e4 = parse_error("[policy]\n[server]\nname = \"x\"\n");
  CHECK(e4.key == "server");
  CHECK((e4.line == 2 && e4.column == 2));
  auto e5 = parse_error("[policy.levels.green.classes.trial]\nburst = 3\n");
  CHECK(e5.key == "policy.levels.green.classes.trial.burst");
  CHECK((e5.line == 2 && e5.column == 1));
}

TEST_CASE("wrong types are errors at the value", "[policy]") {
  auto e1 = parse_error("[policy]\ndry_run = 1\n");
  CHECK(e1.key == "policy.dry_run");
  CHECK(e1.message == "expected a boolean, found an integer");
  CHECK((e1.line == 2 && e1.column == 11));
  auto e2 = parse_error("[policy.levels.green]\nclasses = { gold = 3 }\n");
  CHECK(e2.key == "policy.levels.green.classes.gold");
  CHECK(e2.message == "expected a table, found an integer");
  CHECK((e2.line == 2 && e2.column == 20));
  auto e3 = parse_error("[policy.levels.red]\nmax_tokens = \"many\"\n");
  CHECK(e3.key == "policy.levels.red.max_tokens");
  CHECK((e3.line == 2 && e3.column == 14));
}

TEST_CASE("out-of-range values and unknown choices are errors", "[policy]") {
  auto e1 = parse_error("[policy.levels.red]\nanonymous = { share = 1.5 }\n");
  CHECK(e1.key == "policy.levels.red.anonymous.share");
  CHECK(e1.message == "value 1.5 out of range [0, 1]");
  CHECK((e1.line == 2 && e1.column == 23));
  auto e2 = parse_error("[policy.levels.yellow.registration]\nmode = \"sometimes\"\n");
  CHECK(e2.key == "policy.levels.yellow.registration.mode");
  CHECK(e2.message == "\"sometimes\" is not one of: open, rate_limited, closed");
  CHECK((e2.line == 2 && e2.column == 8));
  auto e3 = parse_error("[policy]\noverride = \"purple\"\n");
  CHECK(e3.key == "policy.override");
  CHECK((e3.line == 2 && e3.column == 12));
  auto e4 = parse_error("[policy.levels.green.classes.trial]\nmax_streams = 0\n");
  CHECK(e4.message == "value 0 out of range [1, 1000000]");
  CHECK((e4.line == 2 && e4.column == 15));
  auto e5 = parse_error("[policy.levels.green.classes.trial]\nrequests_per_s = 0\n");
  CHECK(e5.key == "policy.levels.green.classes.trial.requests_per_s");
  CHECK((e5.line == 2 && e5.column == 18));
}

TEST_CASE("impossible combinations are errors with the key that makes them impossible", "[policy]") {
  // A lower class may not wait longer than a higher one.
  auto e1 = parse_error("[policy.levels.green.queue_delay_ms]\nsheddable = 40000\n");
  CHECK(e1.key == "policy.levels.green.queue_delay_ms.sheddable");
  CHECK(e1.message == "must not exceed queue_delay_ms.normal (lower classes wait less)");
  CHECK((e1.line == 2 && e1.column == 13));
  // normal = 0.5 inherited from yellow (base sheddable 1.0 lowered with it) is above orange's high = 0.4: reported at orange's key.
  auto e2 = parse_error(
      "[policy.levels.yellow.max_utilization]\nnormal = 0.5\nsheddable = 0.5\n"
      "[policy.levels.orange.max_utilization]\nhigh = 0.4\n");
  CHECK(e2.key == "policy.levels.orange.max_utilization.normal");
  CHECK(e2.message == "must not exceed max_utilization.high (lower classes are shed first)");
  CHECK((e2.line == 5 && e2.column == 8));
  // 8192 + 4096 = 12288 tokens cannot fit a bucket of 10000.
  auto e3 = parse_error("[policy.levels.green.classes.trial]\ntokens_burst = 10000\n");
  CHECK(e3.key == "policy.levels.green.classes.trial.tokens_burst");
  CHECK(e3.message.find("below max_prompt_tokens + max_tokens = 12288") != std::string::npos);
  CHECK((e3.line == 2 && e3.column == 16));
  // 3000000 + 4096 > 2000000 (the base tokens_burst): reported at the key that grew the request.
  auto e4 = parse_error("[policy.levels.yellow]\nmax_prompt_tokens = 3000000\n");
  CHECK(e4.key == "policy.levels.yellow.classes.registered.tokens_burst");
  CHECK((e4.line == 2 && e4.column == 21));
}

TEST_CASE("class names, the fallback class and the registration key are checked", "[policy]") {
  auto e1 = parse_error("[policy.levels.green.classes.Gold]\nmax_streams = 3\n");
  CHECK(e1.key == "policy.levels.green.classes.Gold");
  CHECK((e1.line == 1 && e1.column == 30));
  auto e2 = parse_error("[policy]\nfallback_class = \"gold\"\n");
  CHECK(e2.key == "policy.fallback_class");
  CHECK(e2.message == "\"gold\" is not a class of the policy");
  CHECK((e2.line == 2 && e2.column == 18));
  auto e3 = parse_error("[policy]\nregistration_curve_key = \"abc\"\n");
  CHECK(e3.key == "policy.registration_curve_key");
  CHECK((e3.line == 2 && e3.column == 26));
  // The example key of the libzmq CURVE documentation is valid Z85.
  CHECK(is_valid_curve_key("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"));
  // '#' is digit 84: 84 * (85^4 + 85^3 + 85^2 + 85 + 1) = 85^5 - 1 = 4437053124 > 2^32 - 1.
  CHECK_FALSE(is_valid_curve_key(std::string(40, '#')));
  CHECK_FALSE(is_valid_curve_key("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI"));  // 39 characters
  CHECK_FALSE(is_valid_curve_key("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI~"));  // '~' is not Z85
  CHECK(parse_ok("[policy]\nregistration_curve_key = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"\n")
            .registration_curve_key.size() == 40);
}

TEST_CASE("a refused policy leaves the policy in force untouched", "[policy]") {
  policy p = parse_ok("[policy]\ndry_run = true\n");
  config_error err;
  REQUIRE_FALSE(parse_policy("[policy]\ndry_run = false\nhold_s = -1\n", "p.toml", &p, &err));
  CHECK(err.key == "policy.hold_s");
  CHECK((err.line == 3 && err.column == 10));
  CHECK(p.dry_run);
  REQUIRE_FALSE(load_policy("/nonexistent/policy.toml", &p, &err));
  CHECK(err.line == 0);
  CHECK(err.to_string() == "/nonexistent/policy.toml: cannot read file");
  CHECK(p.dry_run);
}

namespace {
std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("rampartd --check-config validates a file with a [policy] table as a policy", "[policy]") {
  namespace test = rampart::test;
  auto dir = test::make_temp_dir("rampart-policy");
  std::string out;
  const std::string shipped = test::source_dir() + "/config/policy.toml";
  CHECK(is_policy_file(shipped));
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", shipped}, &out) == 0);
  CHECK(out.find("ok (policy)") != std::string::npos);
  auto bad = write_file(dir, "bad.toml", "[policy]\n\n[policy.levels.red]\nmax_tokens = 0\n");
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", bad}, &out) == 2);
  CHECK(out.find(bad + ":4:14: policy.levels.red.max_tokens: value 0 out of range") != std::string::npos);
  // Files without [policy] still go to the server-config checker.
  auto server = write_file(dir, "server.toml", "[engine]\nthreads = 2\n");
  CHECK_FALSE(is_policy_file(server));
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", server}, &out) == 0);
  CHECK(out.find("ok (policy)") == std::string::npos);
  auto server_bad = write_file(dir, "server_bad.toml", "[engine]\nthreds = 2\n");
  CHECK(test::run_command(test::bin("rampartd"), {"--check-config", server_bad}, &out) == 2);
  CHECK(out.find(server_bad + ":2:1: engine.threds: unknown key") != std::string::npos);
}

TEST_CASE("the example in docs/policy.md is a valid policy and means what the text says", "[policy]") {
  std::ifstream in(rampart::test::source_dir() + "/docs/policy.md");
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto begin = doc.find("```toml\n");
  REQUIRE(begin != std::string::npos);
  begin += 8;
  auto end = doc.find("```", begin);
  REQUIRE(end != std::string::npos);
  policy p = parse_ok(doc.substr(begin, end - begin));
  CHECK(p.cool_down_ms == 120000);
  for (const auto& lv : p.levels) {
    REQUIRE(lv.find_class("gold") != nullptr);
    CHECK(lv.find_class("gold")->requests_per_s == 500);
  }
  CHECK(level(p, threat_level::red).registration.mode == registration_mode::closed);
  CHECK(level(p, threat_level::red).anonymous_share == 0.1);
  CHECK_FALSE(level(p, threat_level::red).anonymous_admitted);
  CHECK(level(p, threat_level::orange).deny_ttl_ms == 900000);
}
