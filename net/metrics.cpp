#include "net/metrics.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "admission/deny_list.hpp"
#include "config/server_config.hpp"
#include "net/http_listener.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace rampart::net {

struct server_metrics::families {
  prometheus::Family<prometheus::Counter>* finished;
  prometheus::Family<prometheus::Counter>* errored;
  prometheus::Family<prometheus::Counter>* shed;
  prometheus::Family<prometheus::Counter>* malformed;
  prometheus::Family<prometheus::Counter>* alerts;
  prometheus::Family<prometheus::Gauge>* shard_tokens;
  prometheus::Family<prometheus::Gauge>* shard_slow;
  prometheus::Family<prometheus::Gauge>* expert_tokens;
};

namespace {
prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0};
}
}  // namespace

server_metrics::server_metrics()
    : registry_(std::make_shared<prometheus::Registry>()), families_(std::make_unique<families>()) {
  using namespace prometheus;
  auto& r = *registry_;
  requests_running = &BuildGauge().Name("rampart:num_requests_running")
                          .Help("Sequences in the running batch").Register(r).Add({});
  requests_waiting = &BuildGauge().Name("rampart:num_requests_waiting")
                          .Help("Sequences waiting to be admitted").Register(r).Add({});
  kv_cache_usage = &BuildGauge().Name("rampart:kv_cache_usage_perc")
                        .Help("Fraction of KV-cache blocks in use (1 = full)").Register(r).Add({});
  prompt_tokens = &BuildCounter().Name("rampart:prompt_tokens_total")
                       .Help("Prompt tokens processed").Register(r).Add({});
  generation_tokens = &BuildCounter().Name("rampart:generation_tokens_total")
                           .Help("Tokens generated").Register(r).Add({});
  prefix_cache_hit_tokens = &BuildCounter().Name("rampart:prefix_cache_hit_tokens_total")
                                 .Help("Prompt tokens served from the prefix cache").Register(r).Add({});
  preemptions = &BuildCounter().Name("rampart:num_preemptions_total")
                     .Help("Sequences preempted (recomputed later)").Register(r).Add({});
  time_to_first_token = &BuildHistogram().Name("rampart:time_to_first_token_seconds")
                             .Help("Time from receipt to the first token event").Register(r)
                             .Add({}, latency_buckets());
  time_per_output_token = &BuildHistogram().Name("rampart:time_per_output_token_seconds")
                               .Help("Mean time between token events of a request").Register(r)
                               .Add({}, latency_buckets());
  e2e_latency = &BuildHistogram().Name("rampart:e2e_request_latency_seconds")
                     .Help("Time from receipt to the terminal event").Register(r)
                     .Add({}, latency_buckets());
  client_gone_to_freed = &BuildHistogram().Name("rampart:client_gone_to_kv_freed_seconds")
                              .Help("Time from noticing a vanished client to its KV blocks being freed")
                              .Register(r).Add({}, latency_buckets());
  registered_tokens = &BuildCounter().Name("rampart:registered_generation_tokens_total")
                           .Help("Tokens streamed to registered tenants").Register(r).Add({});
  registered_ttft = &BuildHistogram().Name("rampart:registered_time_to_first_token_seconds")
                         .Help("Time from receipt to the first token event, registered tenants' requests").Register(r)
                         .Add({}, latency_buckets());
  registered_tpot = &BuildHistogram().Name("rampart:registered_time_per_output_token_seconds")
                         .Help("Mean time between token events, registered tenants' requests").Register(r)
                         .Add({}, latency_buckets());
  families_->finished = &BuildCounter().Name("rampart:request_success_total")
                             .Help("Requests finished, by finish reason").Register(r);
  families_->errored = &BuildCounter().Name("rampart:request_error_total")
                            .Help("Requests ended with an error event, by code").Register(r);
  families_->shed = &BuildCounter().Name("rampart:request_shed_total")
                         .Help("Requests refused on purpose, by reason").Register(r);
  threat_level = &BuildGauge().Name("rampart:threat_level")
                      .Help("Threat level from the monitor: 0 green, 1 yellow, 2 orange, 3 red").Register(r).Add({});
  threat_level_in_force = &BuildGauge().Name("rampart:threat_level_in_force")
                               .Help("Threat level the policy applies (after hold, cool-down and overrides)")
                               .Register(r).Add({});
  deny_list_entries = &BuildGauge().Name("rampart:deny_list_entries")
                           .Help("Addresses and prefixes on the deny list in force").Register(r).Add({});
  registration_mode = &BuildGauge().Name("rampart:registration_mode")
                           .Help("Registration mode of the level in force: 0 open, 1 rate_limited, 2 closed")
                           .Register(r).Add({});
  monitor_capture_up = &BuildGauge().Name("rampart:monitor_capture_up")
                            .Help("1 while the monitor's live capture runs, 0 while it is down (or not live)")
                            .Register(r).Add({});
  monitor_capture_reopens = &BuildCounter().Name("rampart:monitor_capture_reopens_total")
                                 .Help("Times a failed live capture was reopened").Register(r).Add({});
  capture_packets = &BuildGauge().Name("rampart:monitor_packets")
                         .Help("Packets the monitor has inspected").Register(r).Add({});
  capture_kernel_drops = &BuildGauge().Name("rampart:monitor_kernel_drops")
                              .Help("Packets the kernel dropped before the capture saw them").Register(r).Add({});
  families_->shard_tokens = &BuildGauge().Name("rampart:expert_shard_tokens")
                                 .Help("(token, MoE layer) pairs each expert shard has served").Register(r);
  families_->expert_tokens = &BuildGauge().Name("rampart:expert_tokens")
                                  .Help("(token, MoE layer) pairs routed to each expert").Register(r);
  shard_imbalance = &BuildGauge().Name("rampart:expert_shard_imbalance")
                         .Help("Largest shard load over the mean shard load since start (1 = even)").Register(r).Add({});
  shard_rebalances = &BuildGauge().Name("rampart:expert_rebalances")
                          .Help("Expert placements switched by a rebalance").Register(r).Add({});
  shard_slow_marks = &BuildGauge().Name("rampart:expert_shard_slow_marks")
                          .Help("Times an expert shard was marked slow and its replicas took its work").Register(r).Add({});
  shard_failures = &BuildGauge().Name("rampart:expert_shard_failures")
                        .Help("Expert-shard calls that failed or missed their deadline since start").Register(r).Add({});
  families_->shard_slow = &BuildGauge().Name("rampart:expert_shard_slow")
                               .Help("1 while the expert shard is marked slow").Register(r);
  families_->alerts = &BuildCounter().Name("rampart:alerts_total")
                           .Help("Alerts started, by detector").Register(r);
  families_->malformed = &BuildCounter().Name("rampart:malformed_messages_total")
                              .Help("Client messages refused as malformed, by error code").Register(r);
}

server_metrics::~server_metrics() {
  feed_.close();  // an open event stream returns at once
  listener_.reset();
}

void server_metrics::stop_serving() { listener_.reset(); }

prometheus::Counter& server_metrics::finished(const std::string& reason) {
  return families_->finished->Add({{"finished_reason", reason}});
}
prometheus::Counter& server_metrics::errored(const std::string& code) {
  return families_->errored->Add({{"code", code}});
}
prometheus::Counter& server_metrics::shed(const std::string& reason) {
  return families_->shed->Add({{"reason", reason}});
}
prometheus::Counter& server_metrics::malformed(const std::string& code) {
  return families_->malformed->Add({{"code", code}});
}

prometheus::Gauge& server_metrics::shard_slow(int shard) {
  return families_->shard_slow->Add({{"shard", std::to_string(shard)}});
}

prometheus::Gauge& server_metrics::shard_tokens(int shard) {
  return families_->shard_tokens->Add({{"shard", std::to_string(shard)}});
}
prometheus::Gauge& server_metrics::expert_tokens(int expert) {
  return families_->expert_tokens->Add({{"expert", std::to_string(expert)}});
}

prometheus::Counter& server_metrics::alerts(const std::string& detector) {
  return families_->alerts->Add({{"detector", detector}});
}

bool server_metrics::serve(const std::string& listen, std::function<probe_answer()> health,
                           std::function<probe_answer()> ready, bool dashboard, const std::string& operator_token,
                           std::string* error) {
  http_routes routes;
  routes.metrics = [this] { return render(); };
  routes.health = std::move(health);
  routes.ready = std::move(ready);
  if (dashboard) {
    if (operator_token.empty() && !config::is_loopback_endpoint("tcp://" + listen)) {
      *error = "the dashboard on " + listen + " is off loopback: it needs an operator token "
               "([metrics].operator_token_file), or [metrics].dashboard = false";
      return false;
    }
    routes.dashboard.enabled = true;
    routes.dashboard.operator_token = operator_token;
    routes.dashboard.feed = &feed_;
    routes.dashboard.deny_list = [this] { return deny_list_json(); };
    routes.dashboard.token_refused = token_refused_;
  }
  listener_ = http_listener::start(listen, std::move(routes), error);
  return listener_ != nullptr;
}

void server_metrics::set_deny_list(std::shared_ptr<const admission::deny_list> list) {
  std::lock_guard<std::mutex> lock(deny_mutex_);
  deny_ = std::move(list);
}

std::string server_metrics::deny_list_json() const {
  std::shared_ptr<const admission::deny_list> list;
  {
    std::lock_guard<std::mutex> lock(deny_mutex_);
    list = deny_;
  }
  nlohmann::json out = {{"entries", nlohmann::json::array()}, {"total", 0}};
  if (!list) return out.dump();
  const int64_t now = admission::monotonic_ms();
  std::vector<admission::deny_list::entry> entries = list->entries();
  entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const auto& e) { return e.expires_at_ms <= now; }),
                entries.end());
  // Only the listed ones are ordered: a long list costs one pass, not a full sort, every time the page asks.
  const size_t listed = std::min<size_t>(entries.size(), max_deny_listed);
  const auto later_first = [](const auto& a, const auto& b) {
    return a.expires_at_ms != b.expires_at_ms ? a.expires_at_ms > b.expires_at_ms : a.prefix < b.prefix;
  };
  std::partial_sort(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(listed), entries.end(),
                    later_first);
  out["total"] = entries.size();
  for (size_t i = 0; i < listed; ++i) {
    out["entries"].push_back({{"prefix", entries[i].prefix},
                              {"expires_in_s", static_cast<double>(entries[i].expires_at_ms - now) / 1000.0},
                              {"spares_tenants", entries[i].spares_tenants}});
  }
  return out.dump();
}

std::string server_metrics::render() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace rampart::net
