// Admission decisions: admit a request, or shed it with a stable reason and a retry_after.
// decide() is the pure rule set (docs/policy.md, "Shed reasons"); shedder keeps the state it needs (token
// buckets per tenant and per source, concurrent stream counts, the registration bucket) and applies dry_run.
// Every call is O(1): a hash lookup for the tenant, a fixed-size table slot for the source, a few comparisons.
#pragma once

#include <atomic>
#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "admission/deny_list.hpp"
#include "config/policy.hpp"

namespace rampart::admission {

using config::priority;

enum class shed_reason : uint8_t {
  none,
  denied_source,
  registration_closed,
  rate_limited,
  anonymous_closed,
  prompt_too_long,
  max_tokens_too_large,
  too_many_streams,
  over_capacity,
  queue_timeout,
};
constexpr int shed_reason_count = 10;
const char* shed_reason_name(shed_reason r);  // the wire name, e.g. "rate_limited"

// A token bucket: b = min(burst, b + rate * dt) at each look; a full bucket the first time it is seen.
struct token_bucket {
  double tokens = 0;
  int64_t last_ms = 0;
  bool primed = false;
};
// Refills B up to NOW_MS and returns its tokens (time never runs backwards: an earlier NOW_MS adds nothing).
double refill(token_bucket* b, double rate, double burst, int64_t now_ms);
// Milliseconds until a bucket holding TOKENS has COST at RATE: ceil((cost - tokens) / rate * 1000), or 0.
int64_t wait_ms(double tokens, double cost, double rate);

// The server's load as the caller sees it when the request arrives.
struct load_snapshot {
  int64_t running = 0;           // requests being generated
  int64_t waiting = 0;           // requests queued
  int64_t capacity = 1;          // running + waiting the server accepts at most
  int64_t expected_wait_ms = 0;  // how long a new request would wait for a slot (0: free slot now)
};

// Everything decide() looks at, already gathered (buckets refilled to now).
struct request_facts {
  bool anonymous = false;
  const config::class_limits* limits = nullptr;  // the tenant's class (anonymous: the "anonymous" class)
  priority asked = priority::normal;
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;
  bool source_denied = false;
  double request_tokens = 0;     // in the tenant's (anonymous: the source's) request bucket
  double token_tokens = 0;       // in its token bucket
  int64_t tenant_streams = 0;    // running for this tenant (anonymous: anonymous ones from this source)
  int64_t source_streams = 0;    // running from this source address, all tenants
  int64_t anonymous_streams = 0; // anonymous requests running server-wide
};

struct decision {
  bool admitted = true;
  bool would_shed = false;  // dry_run: the request was admitted although REASON says it would be shed
  shed_reason reason = shed_reason::none;
  int64_t retry_after_ms = 0;
  priority effective = priority::normal;  // the class it runs at (asked, lowered to the class's max_priority)
};

// The rules, in order: denied source, anonymous closed, size caps, stream counts, capacity (per-class
// utilisation, anonymous share), queue delay, request bucket, token bucket. Pure; never admits with dry_run.
decision decide(const config::level_policy& level, const request_facts& facts, const load_snapshot& load);

// What admit() hands out for an admitted request; give it back to release() when the request ends.
struct stream_ticket {
  int64_t tenant_id = 0;
  uint32_t source_slot = 0;
  bool anonymous = false;
  bool active = false;
};

struct shed_counters {
  std::array<std::atomic<uint64_t>, shed_reason_count> shed{};        // index: shed_reason
  std::array<std::atomic<uint64_t>, shed_reason_count> would_shed{};  // dry_run
  std::atomic<uint64_t> admitted{0};
  std::atomic<uint64_t> registrations_admitted{0};
};

// Not thread-safe: one thread (the admission stage) owns it. counters() may be read from any thread.
class shedder {
 public:
  // SOURCE_SLOTS (a power of two) bounds the per-source state: sources sharing a slot share its limits, which
  // errs on the strict side and keeps memory fixed under spoofed floods.
  explicit shedder(std::shared_ptr<const config::policy> policy, uint32_t source_slots = 4096);

  // Swaps in a new policy (state is kept; buckets clamp to new bursts at their next look).
  void set_policy(std::shared_ptr<const config::policy> policy);
  const config::policy& policy() const { return *policy_; }
  void set_level(config::threat_level level) { level_ = level; }
  config::threat_level level() const { return level_; }
  const config::level_policy& level_policy() const { return policy_->at(level_); }

  struct request {
    int64_t tenant_id = 0;            // 0: anonymous
    std::string_view tenant_class;    // ignored for anonymous
    ip_address source;
    bool source_denied = false;
    priority asked = priority::normal;
    int64_t prompt_tokens = 0;
    int64_t max_tokens = 0;
  };
  // Decides REQ at NOW_MS. When admitted, its buckets are charged, its streams counted and *TICKET filled.
  decision admit(const request& req, const load_snapshot& load, int64_t now_ms, stream_ticket* ticket);
  // Ends an admitted request's stream. Inactive tickets are ignored; a ticket is released once.
  void release(stream_ticket* ticket);

  // A `register` from SOURCE: registration_closed, rate_limited (the server-wide bucket or SOURCE's slot's
  // bucket, in every mode but closed) or admitted.
  decision admit_registration(const ip_address& source, bool source_denied, int64_t now_ms);
  // For a queued request of class P that has waited WAITED_MS: shed queue_timeout once past its target.
  decision check_queue_delay(priority p, int64_t waited_ms);

  const shed_counters& counters() const { return counters_; }
  int64_t anonymous_streams() const { return anonymous_streams_; }

 private:
  struct tenant_state {
    token_bucket requests, tokens;
    int64_t streams = 0;
  };
  struct source_state {
    token_bucket requests, tokens;  // anonymous requests from this source
    int64_t anonymous_streams = 0;
    int64_t streams = 0;            // all requests from this source
    token_bucket registrations;     // `register` messages from this source
  };
  uint32_t slot_of(const ip_address& a) const;
  decision finish(decision d);

  std::shared_ptr<const config::policy> policy_;
  config::threat_level level_ = config::threat_level::green;
  std::unordered_map<int64_t, tenant_state> tenants_;
  std::vector<source_state> sources_;
  int64_t anonymous_streams_ = 0;
  token_bucket registrations_;
  shed_counters counters_;
};

}  // namespace rampart::admission
