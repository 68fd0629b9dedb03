#include "admission/shedder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace rampart::admission {
namespace {

decision shed(shed_reason reason, int64_t retry_after_ms, priority effective) {
  decision d;
  d.admitted = false;
  d.reason = reason;
  d.retry_after_ms = retry_after_ms;
  d.effective = effective;
  return d;
}

}  // namespace

const char* shed_reason_name(shed_reason r) {
  switch (r) {
    case shed_reason::none: return "none";
    case shed_reason::denied_source: return "denied_source";
    case shed_reason::registration_closed: return "registration_closed";
    case shed_reason::rate_limited: return "rate_limited";
    case shed_reason::anonymous_closed: return "anonymous_closed";
    case shed_reason::prompt_too_long: return "prompt_too_long";
    case shed_reason::max_tokens_too_large: return "max_tokens_too_large";
    case shed_reason::too_many_streams: return "too_many_streams";
    case shed_reason::over_capacity: return "over_capacity";
    case shed_reason::queue_timeout: return "queue_timeout";
  }
  return "none";
}

double refill(token_bucket* b, double rate, double burst, int64_t now_ms) {
  if (!b->primed) {
    b->primed = true;
    b->tokens = burst;
    b->last_ms = now_ms;
    return b->tokens;
  }
  if (now_ms > b->last_ms) {
    b->tokens += rate * static_cast<double>(now_ms - b->last_ms) / 1000.0;
    b->last_ms = now_ms;
  }
  b->tokens = std::min(burst, b->tokens);
  return b->tokens;
}

int64_t wait_ms(double tokens, double cost, double rate) {
  if (tokens >= cost || rate <= 0) return 0;
  return static_cast<int64_t>(std::ceil((cost - tokens) / rate * 1000.0));
}

decision decide(const config::level_policy& lv, const request_facts& f, const load_snapshot& load) {
  const config::class_limits& c = *f.limits;
  const priority p = std::max(f.asked, c.max_priority);  // a larger value is a lower class
  const int pi = static_cast<int>(p);
  const int64_t later = lv.retry_after_ms;
  if (f.source_denied) return shed(shed_reason::denied_source, later, p);
  if (f.anonymous && !lv.anonymous_admitted) return shed(shed_reason::anonymous_closed, later, p);
  if (f.prompt_tokens > lv.max_prompt_tokens) return shed(shed_reason::prompt_too_long, later, p);
  if (f.max_tokens > lv.max_tokens) return shed(shed_reason::max_tokens_too_large, later, p);
  if (f.tenant_streams >= c.max_streams || f.source_streams >= lv.max_streams_per_source) {
    return shed(shed_reason::too_many_streams, later, p);
  }
  const int64_t busy = load.running + load.waiting;
  if (load.capacity <= 0 || busy >= load.capacity ||
      static_cast<double>(busy) >= lv.max_utilization[pi] * static_cast<double>(load.capacity)) {
    return shed(shed_reason::over_capacity, later, p);
  }
  if (f.anonymous) {
    const auto share = static_cast<int64_t>(std::floor(lv.anonymous_share * static_cast<double>(load.capacity)));
    if (f.anonymous_streams >= share) return shed(shed_reason::over_capacity, later, p);
  }
  if (load.expected_wait_ms > lv.queue_delay_ms[pi]) return shed(shed_reason::queue_timeout, later, p);
  if (f.request_tokens < 1.0) {
    return shed(shed_reason::rate_limited, wait_ms(f.request_tokens, 1.0, c.requests_per_s), p);
  }
  const double cost = static_cast<double>(f.prompt_tokens + f.max_tokens);
  if (f.token_tokens < cost) {
    return shed(shed_reason::rate_limited, wait_ms(f.token_tokens, cost, c.tokens_per_s), p);
  }
  decision d;
  d.effective = p;
  return d;
}

shedder::shedder(std::shared_ptr<const config::policy> policy, uint32_t source_slots)
    : policy_(std::move(policy)) {
  uint32_t n = 1;
  while (n < source_slots && n < (1u << 24)) n <<= 1;
  sources_.resize(n);
}

void shedder::set_policy(std::shared_ptr<const config::policy> policy) { policy_ = std::move(policy); }

uint32_t shedder::slot_of(const ip_address& a) const {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (uint8_t byte : a.bytes) h = (h ^ byte) * 1099511628211ULL;
  return static_cast<uint32_t>(h ^ (h >> 32)) & static_cast<uint32_t>(sources_.size() - 1);
}

decision shedder::finish(decision d) {
  if (d.admitted) return d;
  const int r = static_cast<int>(d.reason);
  if (policy_->dry_run) {
    counters_.would_shed[r].fetch_add(1, std::memory_order_relaxed);
    d.admitted = true;
    d.would_shed = true;
  } else {
    counters_.shed[r].fetch_add(1, std::memory_order_relaxed);
  }
  return d;
}

decision shedder::admit(const request& req, const load_snapshot& load, int64_t now_ms, stream_ticket* ticket) {
  const config::level_policy& lv = level_policy();
  const bool anonymous = req.tenant_id == 0;
  const config::class_limits* limits = lv.find_class(anonymous ? "anonymous" : req.tenant_class);
  if (!limits) limits = lv.find_class(policy_->fallback_class);
  const uint32_t slot = slot_of(req.source);
  source_state& src = sources_[slot];
  tenant_state* tenant = anonymous ? nullptr : &tenants_[req.tenant_id];
  token_bucket& rb = anonymous ? src.requests : tenant->requests;
  token_bucket& tb = anonymous ? src.tokens : tenant->tokens;

  request_facts f;
  f.anonymous = anonymous;
  f.limits = limits;
  f.asked = req.asked;
  f.prompt_tokens = req.prompt_tokens;
  f.max_tokens = req.max_tokens;
  f.source_denied = req.source_denied;
  f.request_tokens = refill(&rb, limits->requests_per_s, limits->requests_burst, now_ms);
  f.token_tokens = refill(&tb, limits->tokens_per_s, limits->tokens_burst, now_ms);
  f.tenant_streams = anonymous ? src.anonymous_streams : tenant->streams;
  f.source_streams = src.streams;
  f.anonymous_streams = anonymous_streams_;
  decision d = finish(decide(lv, f, load));
  if (!d.admitted) return d;

  // Charge only what the buckets hold: a dry-run admission past an empty bucket does not drive it negative.
  const double cost = static_cast<double>(req.prompt_tokens + req.max_tokens);
  rb.tokens = std::max(0.0, rb.tokens - 1.0);
  tb.tokens = std::max(0.0, tb.tokens - cost);
  ++src.streams;
  if (anonymous) {
    ++src.anonymous_streams;
    ++anonymous_streams_;
  } else {
    ++tenant->streams;
  }
  counters_.admitted.fetch_add(1, std::memory_order_relaxed);
  *ticket = stream_ticket{req.tenant_id, slot, anonymous, true};
  return d;
}

void shedder::release(stream_ticket* ticket) {
  if (!ticket->active) return;
  ticket->active = false;
  source_state& src = sources_[ticket->source_slot];
  src.streams = std::max<int64_t>(0, src.streams - 1);
  if (ticket->anonymous) {
    src.anonymous_streams = std::max<int64_t>(0, src.anonymous_streams - 1);
    anonymous_streams_ = std::max<int64_t>(0, anonymous_streams_ - 1);
    return;
  }
  auto it = tenants_.find(ticket->tenant_id);
  if (it != tenants_.end()) it->second.streams = std::max<int64_t>(0, it->second.streams - 1);
}

decision shedder::admit_registration(const ip_address& source, bool source_denied, int64_t now_ms) {
  const config::level_policy& lv = level_policy();
  const config::registration_policy& r = lv.registration;
  decision d;
  if (source_denied) {
    d = shed(shed_reason::denied_source, lv.retry_after_ms, priority::normal);
  } else if (r.mode == config::registration_mode::closed) {
    d = shed(shed_reason::registration_closed, lv.retry_after_ms, priority::normal);
  } else {
    // Open or rate-limited alike: the server-wide bucket, then the source's own, so a flood is limited before
    // the monitor notices it and without a monitor at all.
    token_bucket& own = sources_[slot_of(source)].registrations;
    const double server_tokens = refill(&registrations_, r.rate, r.burst, now_ms);
    const double source_tokens = refill(&own, r.per_source_rate, r.per_source_burst, now_ms);
    if (server_tokens < 1.0) {
      d = shed(shed_reason::rate_limited, wait_ms(server_tokens, 1.0, r.rate), priority::normal);
    } else if (source_tokens < 1.0) {
      d = shed(shed_reason::rate_limited, wait_ms(source_tokens, 1.0, r.per_source_rate), priority::normal);
    } else {
      registrations_.tokens -= 1.0;
      own.tokens -= 1.0;
    }
  }
  d = finish(d);
  if (d.admitted) counters_.registrations_admitted.fetch_add(1, std::memory_order_relaxed);
  return d;
}

decision shedder::check_queue_delay(priority p, int64_t waited_ms) {
  const config::level_policy& lv = level_policy();
  decision d;
  d.effective = p;
  if (waited_ms > lv.queue_delay_ms[static_cast<int>(p)]) {
    d = shed(shed_reason::queue_timeout, lv.retry_after_ms, p);
  }
  return finish(d);
}

}  // namespace rampart::admission
