// Prometheus metrics in text format over HTTP (net/http_listener.hpp, with /healthz and /readyz beside them),
// named in the style vLLM uses with a `rampart:` prefix. Every member is safe to update from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "net/event_feed.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace rampart::admission {
class deny_list;
}  // namespace rampart::admission

namespace rampart::net {

class http_listener;
struct probe_answer;

class server_metrics {
 public:
  server_metrics();
  ~server_metrics();

  // Serves /metrics, and /healthz and /readyz answered by HEALTH and READY (called on the listener's threads),
  // on LISTEN ("127.0.0.1:9464"); with DASHBOARD, the web dashboard beside them (net/http_listener.hpp), behind
  // OPERATOR_TOKEN when it is not empty. False with *error when the address cannot be bound, or when the
  // dashboard would be served off loopback without a token.
  bool serve(const std::string& listen, std::function<probe_answer()> health, std::function<probe_answer()> ready,
             bool dashboard, const std::string& operator_token, std::string* error);
  // Stops the listener (before what HEALTH and READY read goes away). Idempotent.
  void stop_serving();
  // The registry, so other rooms' counters can be added.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The text exposition of every metric (what GET /metrics returns).
  std::string render() const;

  prometheus::Gauge* requests_running;
  prometheus::Gauge* requests_waiting;
  prometheus::Gauge* kv_cache_usage;  // fraction of KV blocks in use, 0..1
  prometheus::Counter* prompt_tokens;
  prometheus::Counter* generation_tokens;
  prometheus::Counter* prefix_cache_hit_tokens;
  prometheus::Counter* preemptions;
  prometheus::Histogram* time_to_first_token;
  prometheus::Histogram* time_per_output_token;
  prometheus::Histogram* e2e_latency;
  prometheus::Histogram* client_gone_to_freed;  // disconnect noticed -> KV blocks freed
  prometheus::Counter& finished(const std::string& reason);  // rampart:request_success_total{finished_reason}
  prometheus::Counter& errored(const std::string& code);     // rampart:request_error_total{code}
  prometheus::Counter& shed(const std::string& reason);      // rampart:request_shed_total{reason}
  prometheus::Counter& malformed(const std::string& code);   // rampart:malformed_messages_total{code}
  prometheus::Counter& alerts(const std::string& detector);  // rampart:alerts_total{detector}
  prometheus::Gauge& shard_tokens(int shard);    // rampart:expert_shard_tokens{shard}: (token, layer) pairs served
  prometheus::Gauge& expert_tokens(int expert);  // rampart:expert_tokens{expert}: (token, layer) pairs routed
  prometheus::Gauge* shard_imbalance;            // max shard load over mean, since start
  prometheus::Gauge* shard_rebalances;           // placements switched by EPLB
  prometheus::Gauge* shard_slow_marks;           // times a shard was marked slow (its replicas took its work)
  prometheus::Gauge* shard_failures;             // shard calls that failed or missed their deadline
  prometheus::Gauge& shard_slow(int shard);      // rampart:expert_shard_slow{shard}: 1 while marked slow
  prometheus::Gauge* threat_level;           // the monitor's own level: 0 green .. 3 red
  prometheus::Gauge* threat_level_in_force;  // the level the policy applies (hold, cool-down, overrides)
  prometheus::Gauge* deny_list_entries;      // entries in the deny list in force
  prometheus::Gauge* registration_mode;      // the level's registration mode: 0 open, 1 rate_limited, 2 closed
  prometheus::Gauge* capture_packets;        // packets the monitor has seen
  prometheus::Gauge* monitor_capture_up;     // 1 while the live capture runs, 0 while it is down
  prometheus::Counter* monitor_capture_reopens;  // times the watchdog reopened a failed capture
  prometheus::Gauge* capture_kernel_drops;   // pcap_stats drops
  // What registered tenants (requests with a tenant) get: the figures the promise to them is judged by.
  prometheus::Counter* registered_tokens;    // rampart:registered_generation_tokens_total: tokens streamed to them
  prometheus::Histogram* registered_ttft;    // rampart:registered_time_to_first_token_seconds
  prometheus::Histogram* registered_tpot;    // rampart:registered_time_per_output_token_seconds

  // The dashboard's live stream: the monitor's events and the policy's actions, as the alert stream has them.
  event_feed& feed() { return feed_; }
  // The deny list in force, for the dashboard (the admission gate hands over each new one). Thread-safe.
  void set_deny_list(std::shared_ptr<const admission::deny_list> list);
  // The deny list in force as JSON: {"entries":[{"prefix","expires_in_s","spares_tenants"}], "total"}, at most
  // max_deny_listed entries listed (the latest to expire first), expired ones left out.
  std::string deny_list_json() const;
  static constexpr size_t max_deny_listed = 1000;
  // Called with the client's address for each wrong operator token the dashboard is shown. Set before serve().
  void on_operator_token_refused(std::function<void(const std::string&)> f) { token_refused_ = std::move(f); }

 private:
  struct families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<families> families_;
  event_feed feed_;
  mutable std::mutex deny_mutex_;
  std::shared_ptr<const admission::deny_list> deny_;
  std::function<void(const std::string&)> token_refused_;
  std::unique_ptr<http_listener> listener_;  // last: stopped before what its routes read goes away
};

}  // namespace rampart::net
