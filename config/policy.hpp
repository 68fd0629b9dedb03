// The load-shedding policy: what the server admits at each threat level (docs/policy.md lists every key).
// A policy file is a TOML document whose root holds one table, [policy]; per-level actions live in
// [policy.levels.green|yellow|orange|red]. Each level starts from the level before it (green starts from the
// built-in base values below), so a level names only what it changes. Parsing is strict: unknown keys, wrong
// types and impossible values are errors with file:line:column and the dotted key path.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/priority.hpp"
#include "config/config_error.hpp"
#include "monitor/event.hpp"

namespace rampart::config {

using monitor::threat_level;
constexpr int threat_level_count = 4;
// "green", "yellow", "orange", "red" -> level; false for anything else.
bool threat_level_from_name(std::string_view name, threat_level* out);

// Priority classes: the one type the protocol, the policy and the scheduler share.
using ::rampart::priority;
using ::rampart::priority_count;
using ::rampart::priority_name;

enum class registration_mode : uint8_t { open, rate_limited, closed };
const char* registration_mode_name(registration_mode m);

// Limits for one tenant class (a string stored with each tenant; "anonymous" applies to requests without an
// API key, and then every limit counts per source address instead of per tenant).
struct class_limits {
  std::string name;
  double requests_per_s = 100;     // request token bucket: refill rate (cost 1 per request)
  double requests_burst = 200;     // ... and capacity
  double tokens_per_s = 1000000;   // token bucket over prompt + max_tokens of each request
  double tokens_burst = 2000000;   // must hold the largest request the level allows
  int64_t max_streams = 256;       // concurrent requests per tenant (anonymous: per source address)
  priority max_priority = priority::critical;  // requests asking for more are lowered to this class
};

struct registration_policy {
  registration_mode mode = registration_mode::open;
  double rate = 10;   // registrations per second over the whole server (open and rate_limited)
  double burst = 20;  // bucket capacity
  double per_source_rate = 1;   // registrations per second from one source address (open and rate_limited)
  double per_source_burst = 5;
  std::string message = "registrations are closed; try again later";  // told to clients when closed
};

struct level_policy {
  registration_policy registration;
  bool anonymous_admitted = true;
  double anonymous_share = 1.0;           // share of capacity anonymous requests may hold at once, [0, 1]
  // Budgeted work (anonymous and sheddable requests) in the engine: the share of batch slots it may hold, and
  // the share of each step's tokens it may take while other work is in the step (model::scheduler_budget).
  double budget_batch_share = 1.0;
  double budget_step_share = 1.0;
  int64_t max_streams_per_source = 256;   // concurrent requests per source address, all tenants together
  int64_t max_prompt_tokens = 8192;
  int64_t max_tokens = 4096;
  // Longest a request of each class may wait in the queue before it is shed (queue_timeout).
  std::array<int64_t, priority_count> queue_delay_ms = {30000, 20000, 10000, 5000};
  // A class is shed (over_capacity) once (running + waiting) / capacity reaches its share: lowest first.
  std::array<double, priority_count> max_utilization = {1.0, 1.0, 1.0, 1.0};
  bool deny_heavy_hitters = false;        // deny-list heavy-hitter sources reported by the monitor
  int64_t deny_ttl_ms = 600000;           // how long such a source stays denied
  int64_t handshake_ivl_ms = 5000;        // ZMQ_HANDSHAKE_IVL for new connections
  int64_t retry_after_ms = 5000;          // retry_after for refusals whose end is not computable
  std::vector<class_limits> classes;      // always holds "registered", "trial" and "anonymous"

  // The limits of class NAME, or null when the policy does not name it.
  const class_limits* find_class(std::string_view name) const;
};

struct policy {
  std::string source = "<built-in>";  // the file it came from
  bool dry_run = false;               // decide and report, but admit everything
  int64_t hold_ms = 30000;            // a level stays in force at least this long before it is lowered
  int64_t cool_down_ms = 60000;       // the monitor's level must stay lower this long before lowering
  std::optional<threat_level> override_level;  // an operator's fixed level; unset: follow the monitor
  std::string fallback_class = "trial";        // limits for tenants whose class the policy does not name
  std::string registration_curve_key;          // Z85 public key of the published registration identity
  std::array<level_policy, threat_level_count> levels;

  const level_policy& at(threat_level l) const { return levels[static_cast<int>(l)]; }
};

// The built-in base values (the struct defaults above, with the three standard classes) at every level.
policy base_policy();
// The shipped config/policy.toml, compiled in, parsed: what the server runs with when given no policy file.
policy default_policy();
std::string_view embedded_default_policy();

// Parses TEXT (named FILE in errors). On success fills *OUT and returns true; on failure returns false,
// fills *ERR (file:line:column, key path, message) and leaves *OUT untouched, so a bad reload keeps the policy
// in force.
bool parse_policy(std::string_view text, const std::string& file, policy* out, config_error* err);
// Reads and parses FILE; an unreadable file is an error with line 0.
bool load_policy(const std::string& file, policy* out, config_error* err);
// True when FILE is readable TOML whose root has a `policy` table (how rampartd --check-config tells a policy
// file from a server configuration).
bool is_policy_file(const std::string& file);

// True when TEXT is a CURVE public key in Z85: 40 characters of the Z85 alphabet whose 5-character groups
// each encode a value below 2^32.
bool is_valid_curve_key(std::string_view text);
// True when NAME can be a tenant class: 1 to 32 characters of a-z, 0-9, '_' and '-'.
bool is_valid_class_name(std::string_view name);

}  // namespace rampart::config
