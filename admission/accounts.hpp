// Tenant accounts in a SQLite database: who may use the server, with which class and API key.
// API keys are generated here ("rk_<16 hex id>_<43 base64url secret>", 256 secret bits) and returned exactly
// once; the database keeps only the id, a random salt and SHA-256(salt || secret). A key is checked in memory:
// the id finds the tenant, the hash is recomputed and compared in constant time. Keys are never logged.
//
// Durability: WAL journal, synchronous=FULL, every write one transaction; a write that returned success survives
// a crash of the process (and of the machine, as far as fsync holds).
// Thread-safety: all methods may be called from any thread. Lookups (authenticate, find, curve_keys) share a
// reader lock on the in-memory index and never touch the database; writes are serialised on the database and
// take the index lock only to publish their result.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rampart::admission {

struct tenant {
  int64_t id = 0;
  std::string name;
  std::string tenant_class;      // a class of the policy, e.g. "registered", "trial"
  std::string curve_public_key;  // Z85, empty when none
  int64_t created_at_ms = 0;     // Unix time
  std::optional<int64_t> revoked_at_ms;
  std::optional<int64_t> first_used_at_ms;  // the first authenticated request; unset: never used
  bool revoked() const { return revoked_at_ms.has_value(); }
};

enum class auth_result { ok, malformed_key, unknown_key, wrong_key, revoked };
const char* auth_result_name(auth_result r);

struct created_tenant {
  tenant record;
  std::string api_key;  // shown once; not stored anywhere
};

class accounts {
 public:
  // Opens (creating when absent) the database at PATH and loads the index. Returns null with *ERROR set when
  // the file cannot be opened or is not a Rampart accounts database.
  static std::unique_ptr<accounts> open(const std::string& path, std::string* error);
  ~accounts();
  accounts(const accounts&) = delete;
  accounts& operator=(const accounts&) = delete;

  // Creates a tenant and its API key. NAME: 1-64 printable ASCII characters, not all digits, unique.
  // CLASS: see config::is_valid_class_name. CURVE_KEY: empty or a Z85 public key that no other tenant, revoked
  // or not, holds (a UNIQUE index enforces it across processes). Returns nullopt with *ERROR (and *WHY when
  // given) on invalid input, a taken name or key, or a database failure (then nothing was written).
  enum class create_failure { invalid, name_taken, curve_key_taken, database };
  std::optional<created_tenant> create(std::string_view name, std::string_view tenant_class,
                                       std::string_view curve_key, int64_t now_ms, std::string* error,
                                       create_failure* why = nullptr);

  // Checks API_KEY; on ok fills *OUT (when given) with the tenant. Pure memory work: one hash map lookup and one
  // SHA-256 of 32 bytes.
  auth_result authenticate(std::string_view api_key, tenant* out) const;

  // "12" selects by id, anything else by name. Returns nullopt when there is no such tenant.
  std::optional<tenant> find(std::string_view id_or_name) const;
  std::vector<tenant> list() const;  // by id

  // Marks the tenant revoked (its key and CURVE key stop working). Revoking twice keeps the first time.
  bool revoke(std::string_view id_or_name, int64_t now_ms, std::string* error);
  bool set_class(std::string_view id_or_name, std::string_view tenant_class, std::string* error);

  // Records tenant ID's first use (kept once set; no write when the index already has it). False with *ERROR
  // for an unknown tenant or a database failure.
  bool mark_used(int64_t id, int64_t now_ms, std::string* error);
  // Deletes the unrevoked tenants of TENANT_CLASS created before CREATED_BEFORE_MS that never made a request
  // (their keys stop working, their names and CURVE keys are free again). Returns how many, or -1 with *ERROR.
  int64_t expire_unused(std::string_view tenant_class, int64_t created_before_ms, std::string* error);

  // CURVE public keys of unrevoked tenants, with their ids (for the ZAP gate's allow list).
  std::vector<std::pair<std::string, int64_t>> curve_keys() const;

  // Re-reads the tenants table, picking up changes made by other processes (e.g. rampart-admin).
  bool reload(std::string* error);

 private:
  accounts();
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace rampart::admission
