#include "admission/accounts.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "admission/api_key.hpp"
#include "config/policy.hpp"

namespace rampart::admission {
namespace {

// PRAGMA application_id of a Rampart accounts database ("Rmpt").
constexpr int kApplicationId = 0x526d7074;
using api_key::digest;

struct entry {
  tenant record;
  std::string key_id;
  std::string salt;
  digest hash{};
};

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == ' ' || name.back() == ' ') return false;
  bool all_digits = true;
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) return false;
    if (c < '0' || c > '9') all_digits = false;
  }
  return !all_digits;
}

bool parse_id(std::string_view s, int64_t* id) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *id = v;
  return true;
}

class statement {
 public:
  statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  bool ok() const { return stmt_ != nullptr; }
  sqlite3_stmt* get() { return stmt_; }
  void text(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void blob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(stmt_, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
  }
  void integer(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }
  std::string column_text(int i) {
    const unsigned char* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, i)) : std::string();
  }
  std::string column_blob(int i) {
    const void* p = sqlite3_column_blob(stmt_, i);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, i)) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

const char* auth_result_name(auth_result r) {
  switch (r) {
    case auth_result::ok: return "ok";
    case auth_result::malformed_key: return "malformed_key";
    case auth_result::unknown_key: return "unknown_key";
    case auth_result::wrong_key: return "wrong_key";
    case auth_result::revoked: return "revoked";
  }
  return "unknown_key";
}

struct accounts::impl {
  sqlite3* db = nullptr;
  std::mutex write_mu;                  // one writer on the connection at a time
  mutable std::shared_mutex index_mu;   // guards the maps below
  std::unordered_map<std::string, entry> by_key_id;
  std::unordered_map<int64_t, std::string> key_id_by_tenant;
  std::unordered_map<std::string, int64_t> id_by_name;

  ~impl() { sqlite3_close(db); }

  bool exec(const char* sql, std::string* error) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) == SQLITE_OK) return true;
    if (error) *error = std::string("database: ") + (msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return false;
  }

  // Databases made before trial expiry lack first_used_at: add it (NULL: never used).
  bool add_first_used_column(std::string* error) {
    statement info(db, "SELECT count(*) FROM pragma_table_info('tenants') WHERE name = 'first_used_at'");
    if (!info.ok() || info.step() != SQLITE_ROW) {
      *error = std::string("database: ") + sqlite3_errmsg(db);
      return false;
    }
    if (sqlite3_column_int(info.get(), 0) > 0) return true;
    return exec("ALTER TABLE tenants ADD COLUMN first_used_at INTEGER", error);
  }

  bool load(std::string* error) {
    statement st(db, "SELECT id, name, class, curve_key, created_at, revoked_at, key_id, key_salt, key_hash, "
                     "first_used_at FROM tenants");
    if (!st.ok()) {
      *error = std::string("database: ") + sqlite3_errmsg(db);
      return false;
    }
    std::unordered_map<std::string, entry> keys;
    std::unordered_map<int64_t, std::string> ids;
    std::unordered_map<std::string, int64_t> names;
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      entry e;
      e.record.id = sqlite3_column_int64(st.get(), 0);
      e.record.name = st.column_text(1);
      e.record.tenant_class = st.column_text(2);
      e.record.curve_public_key = st.column_text(3);
      e.record.created_at_ms = sqlite3_column_int64(st.get(), 4);
      if (sqlite3_column_type(st.get(), 5) != SQLITE_NULL) e.record.revoked_at_ms = sqlite3_column_int64(st.get(), 5);
      if (sqlite3_column_type(st.get(), 9) != SQLITE_NULL) e.record.first_used_at_ms = sqlite3_column_int64(st.get(), 9);
      e.key_id = st.column_text(6);
      e.salt = st.column_blob(7);
      std::string h = st.column_blob(8);
      if (h.size() != e.hash.size()) {
        *error = "database: tenant " + std::to_string(e.record.id) + " has a malformed key hash";
        return false;
      }
      std::memcpy(e.hash.data(), h.data(), h.size());
      ids[e.record.id] = e.key_id;
      names[e.record.name] = e.record.id;
      keys[e.key_id] = std::move(e);
    }
    if (rc != SQLITE_DONE) {
      *error = std::string("database: ") + sqlite3_errmsg(db);
      return false;
    }
    std::unique_lock lock(index_mu);
    by_key_id.swap(keys);
    key_id_by_tenant.swap(ids);
    id_by_name.swap(names);
    return true;
  }

  // The key id of ID_OR_NAME, under the caller's index lock; empty when not found.
  std::string locate(std::string_view id_or_name) const {
    int64_t id;
    if (parse_id(id_or_name, &id)) {
      auto it = key_id_by_tenant.find(id);
      return it == key_id_by_tenant.end() ? std::string() : it->second;
    }
    auto it = id_by_name.find(std::string(id_or_name));
    if (it == id_by_name.end()) return {};
    return key_id_by_tenant.at(it->second);
  }

  // Runs one UPDATE of the tenant ID_OR_NAME inside a transaction, then applies CHANGE to its index entry.
  template <typename Bind, typename Change>
  bool update(std::string_view id_or_name, const char* sql, Bind bind, Change change, std::string* error) {
    std::lock_guard w(write_mu);
    int64_t id;
    std::string key_id;
    {
      std::shared_lock lock(index_mu);
      key_id = locate(id_or_name);
      if (key_id.empty()) {
        *error = "no tenant " + std::string(id_or_name);
        return false;
      }
      id = by_key_id.at(key_id).record.id;
    }
    if (!exec("BEGIN IMMEDIATE", error)) return false;
    statement st(db, sql);
    bool ok = st.ok();
    if (ok) {
      bind(st);
      st.integer(2, id);
      ok = st.step() == SQLITE_DONE;
    }
    if (!ok || !exec("COMMIT", error)) {
      if (error->empty() || ok) *error = std::string("database: ") + sqlite3_errmsg(db);
      exec("ROLLBACK", nullptr);
      return false;
    }
    std::unique_lock lock(index_mu);
    change(by_key_id.at(key_id).record);
    return true;
  }
};

accounts::accounts() : impl_(std::make_unique<impl>()) {}
accounts::~accounts() = default;

std::unique_ptr<accounts> accounts::open(const std::string& path, std::string* error) {
  std::unique_ptr<accounts> a(new accounts());
  impl& d = *a->impl_;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  // Created owner-only before SQLite sees it: SQLite gives the WAL and shared-memory files the database's mode.
  if (int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) ::close(fd);
  if (sqlite3_open_v2(path.c_str(), &d.db, flags, nullptr) != SQLITE_OK) {
    *error = path + ": " + (d.db ? sqlite3_errmsg(d.db) : "cannot open");
    return nullptr;
  }
  sqlite3_busy_timeout(d.db, 5000);
  std::string e;
  int app_id = 0, tables = 0;
  {
    statement st(d.db, "PRAGMA application_id");
    if (!st.ok() || st.step() != SQLITE_ROW) {
      *error = path + ": not a database (" + sqlite3_errmsg(d.db) + ")";
      return nullptr;
    }
    app_id = sqlite3_column_int(st.get(), 0);
    statement count(d.db, "SELECT count(*) FROM sqlite_master");
    if (count.ok() && count.step() == SQLITE_ROW) tables = sqlite3_column_int(count.get(), 0);
  }
  if (app_id != kApplicationId && (app_id != 0 || tables != 0)) {
    *error = path + ": not a Rampart accounts database";
    return nullptr;
  }
  const std::string setup =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA application_id=" + std::to_string(kApplicationId) +
      "; CREATE TABLE IF NOT EXISTS tenants ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, class TEXT NOT NULL,"
      " key_id TEXT NOT NULL UNIQUE, key_salt BLOB NOT NULL, key_hash BLOB NOT NULL, curve_key TEXT,"
      " created_at INTEGER NOT NULL, revoked_at INTEGER, first_used_at INTEGER);";
  if (!d.exec(setup.c_str(), &e) || !d.add_first_used_column(&e) || !d.load(&e)) {
    *error = path + ": " + e;
    return nullptr;
  }
  // One CURVE key, one tenant, revoked ones included (a revoked key must not be claimed again). The index makes
  // the database refuse a duplicate even when two processes insert at once.
  if (!d.exec("CREATE UNIQUE INDEX IF NOT EXISTS tenants_curve_key ON tenants (curve_key) "
              "WHERE curve_key IS NOT NULL",
              &e)) {
    *error = path + ": two tenants share a CURVE key (" + e +
             "); clear the later one: UPDATE tenants SET curve_key = NULL WHERE id = <id>";
    return nullptr;
  }
  // The database and its WAL hold key hashes: owner only, whatever the umask was.
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string f = path + suffix;
    if (::access(f.c_str(), F_OK) == 0) ::chmod(f.c_str(), 0600);
  }
  return a;
}

std::optional<created_tenant> accounts::create(std::string_view name, std::string_view tenant_class,
                                               std::string_view curve_key, int64_t now_ms, std::string* error,
                                               create_failure* why) {
  create_failure ignored;
  if (!why) why = &ignored;
  *why = create_failure::invalid;
  if (!valid_name(name)) {
    *error = "a name is 1-64 printable ASCII characters, not all digits, without leading or trailing spaces";
    return std::nullopt;
  }
  if (!config::is_valid_class_name(tenant_class)) {
    *error = "a class is 1-32 characters of a-z, 0-9, '_' and '-'";
    return std::nullopt;
  }
  if (!curve_key.empty() && !config::is_valid_curve_key(curve_key)) {
    *error = "the CURVE public key must be 40 characters of Z85";
    return std::nullopt;
  }
  api_key::generated key;
  if (!api_key::generate(&key)) {
    *error = "no random bytes available";
    return std::nullopt;
  }
  entry e;
  e.key_id = key.key_id;
  e.salt = key.salt;
  e.hash = key.hash;
  e.record.name = std::string(name);
  e.record.tenant_class = std::string(tenant_class);
  e.record.curve_public_key = std::string(curve_key);
  e.record.created_at_ms = now_ms;

  impl& d = *impl_;
  std::lock_guard w(d.write_mu);
  error->clear();
  if (!curve_key.empty()) {
    std::shared_lock lock(d.index_mu);
    for (const auto& [id, other] : d.by_key_id) {
      if (other.record.curve_public_key == curve_key) {
        *why = create_failure::curve_key_taken;
        *error = "the CURVE key belongs to another tenant";
        return std::nullopt;
      }
    }
  }
  *why = create_failure::database;
  if (!d.exec("BEGIN IMMEDIATE", error)) return std::nullopt;
  statement st(d.db, "INSERT INTO tenants (name, class, key_id, key_salt, key_hash, curve_key, created_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  bool ok = st.ok();
  if (ok) {
    st.text(1, e.record.name);
    st.text(2, e.record.tenant_class);
    st.text(3, e.key_id);
    st.blob(4, e.salt.data(), e.salt.size());
    st.blob(5, e.hash.data(), e.hash.size());
    if (curve_key.empty()) sqlite3_bind_null(st.get(), 6);
    else st.text(6, curve_key);
    st.integer(7, now_ms);
    int rc = st.step();
    ok = rc == SQLITE_DONE;
    if (rc == SQLITE_CONSTRAINT) {
      // Another process may have inserted the same key since our index was loaded.
      const bool key = std::string(sqlite3_errmsg(d.db)).find("curve_key") != std::string::npos;
      *why = key ? create_failure::curve_key_taken : create_failure::name_taken;
      *error = key ? "the CURVE key belongs to another tenant" : "the name \"" + e.record.name + "\" is taken";
    }
  }
  if (ok) e.record.id = sqlite3_last_insert_rowid(d.db);
  if (!ok || !d.exec("COMMIT", error)) {
    if (error->empty()) *error = std::string("database: ") + sqlite3_errmsg(d.db);
    d.exec("ROLLBACK", nullptr);
    return std::nullopt;
  }
  created_tenant out;
  out.record = e.record;
  out.api_key = api_key::format(key.key_id, key.secret);
  std::unique_lock lock(d.index_mu);
  d.key_id_by_tenant[e.record.id] = e.key_id;
  d.id_by_name[e.record.name] = e.record.id;
  d.by_key_id[e.key_id] = std::move(e);
  return out;
}

auth_result accounts::authenticate(std::string_view key, tenant* out) const {
  std::string_view id, secret;
  if (!api_key::split(key, &id, &secret)) return auth_result::malformed_key;
  std::shared_lock lock(impl_->index_mu);
  auto it = impl_->by_key_id.find(std::string(id));
  if (it == impl_->by_key_id.end()) return auth_result::unknown_key;
  const entry& e = it->second;
  if (!api_key::equal(api_key::hash(e.salt, secret), e.hash)) return auth_result::wrong_key;
  if (e.record.revoked()) return auth_result::revoked;
  if (out) *out = e.record;
  return auth_result::ok;
}

std::optional<tenant> accounts::find(std::string_view id_or_name) const {
  std::shared_lock lock(impl_->index_mu);
  std::string key_id = impl_->locate(id_or_name);
  if (key_id.empty()) return std::nullopt;
  return impl_->by_key_id.at(key_id).record;
}

std::vector<tenant> accounts::list() const {
  std::vector<tenant> out;
  {
    std::shared_lock lock(impl_->index_mu);
    for (const auto& [key_id, e] : impl_->by_key_id) out.push_back(e.record);
  }
  std::sort(out.begin(), out.end(), [](const tenant& a, const tenant& b) { return a.id < b.id; });
  return out;
}

bool accounts::revoke(std::string_view id_or_name, int64_t now_ms, std::string* error) {
  error->clear();
  return impl_->update(
      id_or_name, "UPDATE tenants SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2",
      [&](statement& st) { st.integer(1, now_ms); },
      [&](tenant& t) {
        if (!t.revoked_at_ms) t.revoked_at_ms = now_ms;
      },
      error);
}

bool accounts::mark_used(int64_t id, int64_t now_ms, std::string* error) {
  error->clear();
  {
    std::shared_lock lock(impl_->index_mu);
    auto it = impl_->key_id_by_tenant.find(id);
    if (it != impl_->key_id_by_tenant.end() && impl_->by_key_id.at(it->second).record.first_used_at_ms) return true;
  }
  return impl_->update(
      std::to_string(id), "UPDATE tenants SET first_used_at = coalesce(first_used_at, ?1) WHERE id = ?2",
      [&](statement& st) { st.integer(1, now_ms); },
      [&](tenant& t) {
        if (!t.first_used_at_ms) t.first_used_at_ms = now_ms;
      },
      error);
}

int64_t accounts::expire_unused(std::string_view tenant_class, int64_t created_before_ms, std::string* error) {
  impl& d = *impl_;
  std::lock_guard w(d.write_mu);
  error->clear();
  if (!d.exec("BEGIN IMMEDIATE", error)) return -1;
  statement st(d.db, "DELETE FROM tenants WHERE class = ?1 AND first_used_at IS NULL AND revoked_at IS NULL "
                     "AND created_at < ?2");
  bool ok = st.ok();
  if (ok) {
    st.text(1, tenant_class);
    st.integer(2, created_before_ms);
    ok = st.step() == SQLITE_DONE;
  }
  const int64_t removed = ok ? sqlite3_changes(d.db) : 0;
  if (!ok || !d.exec("COMMIT", error)) {
    if (error->empty()) *error = std::string("database: ") + sqlite3_errmsg(d.db);
    d.exec("ROLLBACK", nullptr);
    return -1;
  }
  if (removed > 0 && !d.load(error)) return -1;
  return removed;
}

bool accounts::set_class(std::string_view id_or_name, std::string_view tenant_class, std::string* error) {
  error->clear();
  if (!config::is_valid_class_name(tenant_class)) {
    *error = "a class is 1-32 characters of a-z, 0-9, '_' and '-'";
    return false;
  }
  return impl_->update(
      id_or_name, "UPDATE tenants SET class = ?1 WHERE id = ?2", [&](statement& st) { st.text(1, tenant_class); },
      [&](tenant& t) { t.tenant_class = std::string(tenant_class); }, error);
}

std::vector<std::pair<std::string, int64_t>> accounts::curve_keys() const {
  std::vector<std::pair<std::string, int64_t>> out;
  std::shared_lock lock(impl_->index_mu);
  for (const auto& [key_id, e] : impl_->by_key_id) {
    if (!e.record.revoked() && !e.record.curve_public_key.empty()) {
      out.emplace_back(e.record.curve_public_key, e.record.id);
    }
  }
  return out;
}

bool accounts::reload(std::string* error) {
  std::lock_guard w(impl_->write_mu);
  return impl_->load(error);
}

}  // namespace rampart::admission
