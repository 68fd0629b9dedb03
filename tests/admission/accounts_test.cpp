// Tenant accounts: keys, hashes, revocation, validation and durability, checked against SQLite and OpenSSL
// directly rather than through the code under test.
#include <catch2/catch.hpp>

#include <openssl/sha.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "admission/accounts.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::admission;

namespace {

std::unique_ptr<accounts> open_db(const std::string& path) {
  std::string error;
  auto db = accounts::open(path, &error);
  INFO(error);
  REQUIRE(db);
  return db;
}

std::string fresh_db() { return rampart::test::make_temp_dir("rampart-accounts") + "/accounts.db"; }

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct stored_row {
  std::string salt, hash, key_id;
};

// Reads a tenant's stored key material with plain SQLite.
stored_row read_row(const std::string& path, int64_t id) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT key_salt, key_hash, key_id FROM tenants WHERE id = ?", -1, &st,
                             nullptr) == SQLITE_OK);
  sqlite3_bind_int64(st, 1, id);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  stored_row r;
  r.salt.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)), sqlite3_column_bytes(st, 0));
  r.hash.assign(static_cast<const char*>(sqlite3_column_blob(st, 1)), sqlite3_column_bytes(st, 1));
  r.key_id.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), sqlite3_column_bytes(st, 2));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return r;
}

std::string sha256(const std::string& data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

constexpr const char* kCurveKey = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";

}  // namespace

TEST_CASE("a created tenant authenticates with its key and only with its key", "[accounts]") {
  auto path = fresh_db();
  auto db = open_db(path);
  std::string error;
  auto made = db->create("alice", "registered", kCurveKey, 1700000000123, &error);
  REQUIRE(made);
  const std::string& key = made->api_key;
  CHECK(key.size() == 63);  // "rk_" + 16 hex + "_" + 43 base64url (256 bits)
  CHECK(key.rfind("rk_", 0) == 0);
  CHECK(key[19] == '_');
  tenant t;
  REQUIRE(db->authenticate(key, &t) == auth_result::ok);
  CHECK(t.id == made->record.id);
  CHECK(t.name == "alice");
  CHECK(t.tenant_class == "registered");
  CHECK(t.curve_public_key == kCurveKey);
  CHECK(t.created_at_ms == 1700000000123);
  CHECK_FALSE(t.revoked());

  std::string wrong = key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  CHECK(db->authenticate(wrong, nullptr) == auth_result::wrong_key);
  std::string other_id = key;
  other_id[3] = other_id[3] == '0' ? '1' : '0';
  CHECK(db->authenticate(other_id, nullptr) == auth_result::unknown_key);
  CHECK(db->authenticate("", nullptr) == auth_result::malformed_key);
  CHECK(db->authenticate("rk_", nullptr) == auth_result::malformed_key);
  CHECK(db->authenticate(key + "x", nullptr) == auth_result::malformed_key);
  CHECK(db->authenticate(key.substr(0, 62) + "!", nullptr) == auth_result::malformed_key);
  auto second = db->create("bob", "trial", "", 1, &error);
  REQUIRE(second);
  CHECK(second->api_key != key);
  CHECK(db->authenticate(second->api_key, &t) == auth_result::ok);
  CHECK(t.name == "bob");
}

TEST_CASE("keys are stored as salted SHA-256 hashes and never in the database files", "[accounts]") {
  auto path = fresh_db();
  std::string key_a, key_b;
  int64_t id_a, id_b;
  {
    auto db = open_db(path);
    std::string error;
    auto a = db->create("alice", "registered", "", 1, &error);
    auto b = db->create("bob", "registered", "", 2, &error);
    REQUIRE((a && b));
    key_a = a->api_key;
    key_b = b->api_key;
    id_a = a->record.id;
    id_b = b->record.id;
    // Still open: the WAL file holds the rows now.
    std::string all = file_bytes(path) + file_bytes(path + "-wal") + file_bytes(path + "-shm");
    CHECK(all.find(key_a) == std::string::npos);
    CHECK(all.find(key_a.substr(20)) == std::string::npos);
    CHECK(all.find(key_b.substr(20)) == std::string::npos);
    CHECK(all.find("alice") != std::string::npos);  // the search itself works on these bytes
  }
  std::string all = file_bytes(path) + file_bytes(path + "-wal");
  CHECK(all.find(key_a.substr(20)) == std::string::npos);
  CHECK(all.find(key_b.substr(20)) == std::string::npos);

  stored_row ra = read_row(path, id_a), rb = read_row(path, id_b);
  CHECK(ra.key_id == key_a.substr(3, 16));
  CHECK(ra.salt.size() == 16);
  CHECK(rb.salt.size() == 16);
  CHECK(ra.salt != rb.salt);
  // The stored hash is SHA-256(salt || secret), computed here with OpenSSL directly.
  CHECK(ra.hash == sha256(ra.salt + key_a.substr(20)));
  CHECK(rb.hash == sha256(rb.salt + key_b.substr(20)));
  // The same secret under the other tenant's salt hashes differently: equal keys never share a hash.
  CHECK(sha256(rb.salt + key_a.substr(20)) != ra.hash);
}

TEST_CASE("a revoked tenant's key stops working and the revocation time is kept", "[accounts]") {
  auto path = fresh_db();
  auto db = open_db(path);
  std::string error;
  auto made = db->create("carol", "trial", kCurveKey, 10, &error);
  REQUIRE(made);
  REQUIRE(db->curve_keys().size() == 1);
  CHECK(db->curve_keys()[0] == std::make_pair(std::string(kCurveKey), made->record.id));
  REQUIRE(db->revoke("carol", 5000, &error));
  CHECK(db->authenticate(made->api_key, nullptr) == auth_result::revoked);
  REQUIRE(db->revoke(std::to_string(made->record.id), 9000, &error));
  auto t = db->find("carol");
  REQUIRE(t);
  CHECK(t->revoked_at_ms == 5000);
  CHECK(db->curve_keys().empty());
  auto reopened = open_db(path);
  CHECK(reopened->authenticate(made->api_key, nullptr) == auth_result::revoked);
  CHECK(reopened->find("carol")->revoked_at_ms == 5000);
  CHECK_FALSE(db->revoke("nobody", 1, &error));
  CHECK(error == "no tenant nobody");
}

TEST_CASE("set-class, find by id or name, and reload of another handle's writes", "[accounts]") {
  auto path = fresh_db();
  auto db = open_db(path);
  auto other = open_db(path);
  std::string error;
  auto made = db->create("dave", "trial", "", 1, &error);
  REQUIRE(made);
  const std::string id = std::to_string(made->record.id);
  REQUIRE(db->set_class(id, "gold", &error));
  CHECK(db->find(id)->tenant_class == "gold");
  CHECK(db->find("dave")->tenant_class == "gold");
  CHECK_FALSE(db->find("999"));
  CHECK_FALSE(db->set_class("dave", "Gold!", &error));
  CHECK(db->find("dave")->tenant_class == "gold");
  // OTHER opened before the writes: it sees them after reload.
  CHECK_FALSE(other->find("dave"));
  REQUIRE(other->reload(&error));
  CHECK(other->find("dave")->tenant_class == "gold");
  CHECK(other->authenticate(made->api_key, nullptr) == auth_result::ok);
}

TEST_CASE("invalid tenants are refused and nothing is written", "[accounts]") {
  auto path = fresh_db();
  auto db = open_db(path);
  std::string error;
  REQUIRE(db->create("erin", "registered", "", 1, &error));
  CHECK_FALSE(db->create("erin", "registered", "", 2, &error));
  CHECK(error == "the name \"erin\" is taken");
  CHECK_FALSE(db->create("", "registered", "", 2, &error));
  CHECK_FALSE(db->create("12345", "registered", "", 2, &error));  // would read as an id
  CHECK_FALSE(db->create("tab\there", "registered", "", 2, &error));
  CHECK_FALSE(db->create(std::string(65, 'x'), "registered", "", 2, &error));
  CHECK_FALSE(db->create("frank", "Registered", "", 2, &error));
  CHECK_FALSE(db->create("frank", "registered", "not-a-key", 2, &error));
  CHECK(error == "the CURVE public key must be 40 characters of Z85");
  CHECK(db->list().size() == 1);
  CHECK(open_db(path)->list().size() == 1);
}

TEST_CASE("files that are not accounts databases are refused", "[accounts]") {
  auto dir = rampart::test::make_temp_dir("rampart-accounts");
  std::ofstream(dir + "/garbage.db") << std::string(4096, 'g');
  std::string error;
  CHECK_FALSE(accounts::open(dir + "/garbage.db", &error));
  CHECK(error.find("garbage.db") != std::string::npos);
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open((dir + "/other.db").c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw, "CREATE TABLE t (x)", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  CHECK_FALSE(accounts::open(dir + "/other.db", &error));
  CHECK(error == dir + "/other.db: not a Rampart accounts database");
  CHECK_FALSE(accounts::open(dir + "/missing/dir/x.db", &error));
  // A real accounts database is in WAL mode.
  auto path = dir + "/accounts.db";
  open_db(path);
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "wal");
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_CASE("every acknowledged registration survives a SIGKILL of the writer", "[accounts]") {
  auto path = fresh_db();
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    std::string error;
    auto db = accounts::open(path, &error);
    for (int i = 0; db; ++i) {
      auto made = db->create("tenant-" + std::to_string(i), "registered", "", i, &error);
      if (!made) break;
      std::string line = made->api_key + "\n";  // acknowledged only after create() returned
      if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) break;
    }
    _exit(1);
  }
  close(fds[1]);
  std::string received;
  char buf[4096];
  while (std::count(received.begin(), received.end(), '\n') < 40) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    received.append(buf, static_cast<size_t>(n));
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  close(fds[0]);
  CHECK(WIFSIGNALED(status));
  std::vector<std::string> keys;
  for (size_t pos = 0, nl; (nl = received.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    keys.push_back(received.substr(pos, nl - pos));
  }
  REQUIRE(keys.size() >= 40);
  auto db = open_db(path);
  for (const auto& key : keys) CHECK(db->authenticate(key, nullptr) == auth_result::ok);
  CHECK(db->list().size() >= keys.size());
}

TEST_CASE("a CURVE key belongs to one tenant only, revoked tenants included", "[accounts]") {
  auto db = open_db(fresh_db());
  std::string error;
  accounts::create_failure why;
  REQUIRE(db->create("holder", "registered", kCurveKey, 1, &error));
  CHECK_FALSE(db->create("thief", "trial", kCurveKey, 2, &error, &why));
  CHECK(why == accounts::create_failure::curve_key_taken);
  CHECK(error == "the CURVE key belongs to another tenant");
  REQUIRE(db->revoke("holder", 3, &error));
  CHECK_FALSE(db->create("thief", "trial", kCurveKey, 4, &error, &why));
  CHECK(why == accounts::create_failure::curve_key_taken);
  CHECK(db->list().size() == 1);
}

TEST_CASE("two handles racing to claim one CURVE key: the database's unique index refuses the second",
          "[accounts]") {
  auto path = fresh_db();
  auto a = open_db(path);
  auto b = open_db(path);  // loaded before a writes: its in-memory index cannot see a's tenant
  std::string error;
  accounts::create_failure why;
  REQUIRE(a->create("first", "trial", kCurveKey, 1, &error));
  CHECK_FALSE(b->create("second", "trial", kCurveKey, 2, &error, &why));
  CHECK(why == accounts::create_failure::curve_key_taken);
  // Checked with plain SQLite: one row holds the key.
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "SELECT count(*) FROM tenants WHERE curve_key = ?", -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, kCurveKey, -1, SQLITE_STATIC);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 1);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_CASE("the accounts database and its WAL are readable by their owner only", "[accounts]") {
  auto path = fresh_db();
  const mode_t old = umask(0);  // the loosest umask: the files' modes must not depend on it
  auto db = open_db(path);
  umask(old);
  std::string error;
  REQUIRE(db->create("grace", "registered", "", 1, &error));
  for (const std::string& f : {path, path + "-wal"}) {
    INFO(f);
    struct stat sb {};
    REQUIRE(stat(f.c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
  }
}

TEST_CASE("unused tenants of a class expire, used, revoked, younger and other-class tenants stay", "[accounts]") {
  auto path = fresh_db();
  auto db = open_db(path);
  std::string error;
  auto idle = db->create("idle", "trial", kCurveKey, 1000, &error);
  auto busy = db->create("busy", "trial", "", 1000, &error);
  auto young = db->create("young", "trial", "", 9000, &error);
  auto gone = db->create("gone", "trial", "", 1000, &error);
  auto paying = db->create("paying", "registered", "", 1000, &error);
  REQUIRE((idle && busy && young && gone && paying));
  REQUIRE(db->mark_used(busy->record.id, 2000, &error));
  REQUIRE(db->mark_used(busy->record.id, 3000, &error));  // kept at the first use
  REQUIRE(db->revoke("gone", 2500, &error));
  CHECK(db->find("busy")->first_used_at_ms == 2000);
  // Created before 5000 and never used: only "idle".
  CHECK(db->expire_unused("trial", 5000, &error) == 1);
  CHECK_FALSE(db->find("idle"));
  CHECK(db->authenticate(idle->api_key, nullptr) == auth_result::unknown_key);
  CHECK(db->curve_keys().empty());  // its CURVE key left with it
  for (const char* kept : {"busy", "young", "gone", "paying"}) CHECK(db->find(kept));
  CHECK(db->authenticate(busy->api_key, nullptr) == auth_result::ok);
  // The deletion and the first use are in the database, not only in this handle.
  auto again = open_db(path);
  CHECK_FALSE(again->find("idle"));
  CHECK(again->find("busy")->first_used_at_ms == 2000);
  CHECK(again->expire_unused("trial", 5000, &error) == 0);
}

TEST_CASE("a database made before first_used_at existed gains the column and keeps its tenants", "[accounts]") {
  auto path = fresh_db();
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  // The previous schema, with one tenant row (its key material is irrelevant here).
  REQUIRE(sqlite3_exec(raw,
                       "PRAGMA application_id=1382903924; CREATE TABLE tenants ("
                       " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, class TEXT NOT NULL,"
                       " key_id TEXT NOT NULL UNIQUE, key_salt BLOB NOT NULL, key_hash BLOB NOT NULL, curve_key TEXT,"
                       " created_at INTEGER NOT NULL, revoked_at INTEGER);"
                       "INSERT INTO tenants (name, class, key_id, key_salt, key_hash, created_at) VALUES"
                       " ('old', 'trial', 'k', x'00', zeroblob(32), 1);",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  auto db = open_db(path);
  auto old = db->find("old");
  REQUIRE(old);
  CHECK_FALSE(old->first_used_at_ms);
  std::string error;
  CHECK(db->expire_unused("trial", 2, &error) == 1);
}
