// rampart-admin as an operator runs it: a real process on a real database file.
#include <catch2/catch.hpp>

#include "admission/accounts.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

namespace test = rampart::test;

namespace {

int admin(const std::vector<std::string>& args, std::string* out) {
  return test::run_command(test::bin("rampart-admin"), args, out);
}

std::string key_from(const std::string& out) {
  auto pos = out.find("api_key: ");
  if (pos == std::string::npos) return {};
  pos += 9;
  return out.substr(pos, out.find('\n', pos) - pos);
}

}  // namespace

TEST_CASE("rampart-admin creates, lists, re-classes and revokes tenants", "[admin]") {
  const std::string db = test::make_temp_dir("rampart-admin") + "/accounts.db";
  std::string out;
  REQUIRE(admin({"--db", db, "create", "alice"}, &out) == 0);
  CHECK(out.find("tenant 1 created: name alice, class registered") != std::string::npos);
  const std::string key = key_from(out);
  REQUIRE(key.size() == 63);
  REQUIRE(admin({"--db", db, "create", "bob", "--class", "trial"}, &out) == 0);
  const std::string bob_key = key_from(out);

  REQUIRE(admin({"--db", db, "list"}, &out) == 0);
  CHECK(out.find("alice") != std::string::npos);
  CHECK(out.find("trial") != std::string::npos);
  CHECK(out.find(key.substr(20)) == std::string::npos);
  CHECK(out.find(key.substr(3, 16)) == std::string::npos);
  CHECK(out.find(bob_key.substr(3, 16)) == std::string::npos);
  CHECK(out.find("rk_") == std::string::npos);

  std::string error;
  auto accounts = rampart::admission::accounts::open(db, &error);
  REQUIRE(accounts);
  rampart::admission::tenant t;
  REQUIRE(accounts->authenticate(key, &t) == rampart::admission::auth_result::ok);
  CHECK(t.name == "alice");

  REQUIRE(admin({"--db", db, "set-class", "1", "gold"}, &out) == 0);
  REQUIRE(admin({"--db", db, "revoke", "bob"}, &out) == 0);
  REQUIRE(accounts->reload(&error));
  CHECK(accounts->find("alice")->tenant_class == "gold");
  CHECK(accounts->authenticate(bob_key, nullptr) == rampart::admission::auth_result::revoked);
  REQUIRE(admin({"list", "--db", db}, &out) == 0);
  CHECK(out.find("gold") != std::string::npos);
}

TEST_CASE("rampart-admin: operation failures exit 1, usage errors exit 2", "[admin]") {
  const std::string db = test::make_temp_dir("rampart-admin") + "/accounts.db";
  std::string out;
  REQUIRE(admin({"--db", db, "create", "alice"}, &out) == 0);
  CHECK(admin({"--db", db, "create", "alice"}, &out) == 1);
  CHECK(out.find("create alice: the name \"alice\" is taken") != std::string::npos);
  CHECK(admin({"--db", db, "revoke", "nobody"}, &out) == 1);
  CHECK(out.find("revoke nobody: no tenant nobody") != std::string::npos);
  CHECK(admin({"--db", db, "set-class", "alice", "Not A Class"}, &out) == 1);
  CHECK(admin({"--db", db, "create", "carol", "--curve-key", "short"}, &out) == 1);
  CHECK(admin({"--db", "/nonexistent-dir/x.db", "list"}, &out) == 1);

  CHECK(admin({"list"}, &out) == 2);
  CHECK(out.find("--db FILE is required") != std::string::npos);
  CHECK(admin({"--db", db}, &out) == 2);
  CHECK(admin({"--db", db, "frobnicate"}, &out) == 2);
  CHECK(out.find("unknown command frobnicate") != std::string::npos);
  CHECK(admin({"--db", db, "revoke"}, &out) == 2);
  CHECK(admin({"--db", db, "set-class", "alice"}, &out) == 2);
  CHECK(admin({"--db", db, "create"}, &out) == 2);
  CHECK(admin({"--db", db, "create", "x", "--class"}, &out) == 2);
  CHECK(admin({"--db", db, "list", "extra"}, &out) == 2);
  CHECK(admin({"--db"}, &out) == 2);
  CHECK(admin({"--help"}, &out) == 0);
  CHECK(out.find("set-class") != std::string::npos);
}
