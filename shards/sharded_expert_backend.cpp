#include "shards/sharded_expert_backend.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>

#include "shards/eplb.hpp"

namespace rampart::model {

namespace {

using clock_type = std::chrono::steady_clock;

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

uint64_t ns_between(clock_type::time_point a, clock_type::time_point b) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

}  // namespace

sharded_expert_backend::sharded_expert_backend(std::shared_ptr<shard_transport> transport,
                                               expert_placement placement, sharded_options options)
    : transport_(std::move(transport)),
      opt_(options),
      k_(kernels()),
      placement_(std::move(placement)),
      stats_(placement_.n_experts(), placement_.n_shards()),
      last_layer_(INT_MAX),
      pass_deadline_(clock_type::time_point::max()) {
  const size_t N = static_cast<size_t>(placement_.n_shards());
  for (size_t s = 0; s < N; ++s) batch_.push_back(std::make_shared<shard_batch>());
  row_map_.resize(N);
  down_until_.assign(N, clock_type::time_point{});
  failing_ = std::make_unique<std::atomic<bool>[]>(N);
  n_failing_ = N;
  for (size_t s = 0; s < N; ++s) failing_[s] = false;
  slow_until_.assign(N, clock_type::time_point{});
  item_ns_.assign(N, 0.0);
  samples_.assign(N, 0);
  last_error_.resize(N);
  turn_.assign(static_cast<size_t>(placement_.n_experts()), 0);
  calls_.reserve(N);
}

expert_placement sharded_expert_backend::placement() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return placement_;
}

std::vector<rebalance_report> sharded_expert_backend::reports() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reports_;
}

int sharded_expert_backend::shards_failing() const {
  int n = 0;
  for (size_t s = 0; s < n_failing_; ++s) n += failing_[s].load(std::memory_order_relaxed) ? 1 : 0;
  return n;
}

bool sharded_expert_backend::slow(int shard) const {
  return clock_type::now() < slow_until_[static_cast<size_t>(shard)];
}

int sharded_expert_backend::pick_shard(int expert, clock_type::time_point now) {
  const std::vector<int>& owners = placement_.owners(expert);
  const size_t n = owners.size();
  const uint32_t start = turn_[static_cast<size_t>(expert)]++;
  int fallback = -1;  // a live owner that is slow: used only when no other owner is live
  for (size_t t = 0; t < n; ++t) {
    const int s = owners[(start + t) % n];
    if (now < down_until_[static_cast<size_t>(s)]) continue;
    if (now < slow_until_[static_cast<size_t>(s)]) {
      if (fallback < 0) fallback = s;
      continue;
    }
    if (fallback >= 0) ++costs_.slow_avoided;
    return s;
  }
  return fallback;
}

void sharded_expert_backend::watch_latency(clock_type::time_point now) {
  if (opt_.slow_factor <= 0) return;
  const size_t N = item_ns_.size();
  for (size_t s = 0; s < N; ++s)  // a hold that ended: measure afresh
    if (slow_until_[s] != clock_type::time_point{} && now >= slow_until_[s]) {
      slow_until_[s] = clock_type::time_point{};
      item_ns_[s] = 0;
      samples_[s] = 0;
    }
  for (const shard_call& c : calls_) {
    if (!c.ok || c.batch->n_items <= 0) continue;
    // The work unit is one expert's weights read for the batch: a decode step's cost follows the distinct
    // experts a shard serves far more than its rows, so time per item would call a shard with many experts
    // and few rows each slow.
    distinct_.assign(c.batch->item_expert.begin(), c.batch->item_expert.begin() + c.batch->n_items);
    std::sort(distinct_.begin(), distinct_.end());
    const auto units = std::unique(distinct_.begin(), distinct_.end()) - distinct_.begin();
    const double per_unit = static_cast<double>(c.latency.count()) / static_cast<double>(units);
    const size_t s = static_cast<size_t>(c.shard);
    item_ns_[s] = samples_[s] == 0 ? per_unit : 0.8 * item_ns_[s] + 0.2 * per_unit;
    ++samples_[s];
  }
  const double floor_ns = static_cast<double>(std::chrono::nanoseconds(opt_.slow_floor).count());
  constexpr uint32_t min_samples = 8;  // a few answers before anyone is judged, or compared against
  std::vector<double> peers;
  for (const shard_call& c : calls_) {
    const size_t s = static_cast<size_t>(c.shard);
    if (now < slow_until_[s] || samples_[s] < min_samples || item_ns_[s] <= floor_ns) continue;
    peers.clear();
    for (size_t p = 0; p < N; ++p)
      if (p != s && samples_[p] >= min_samples && now >= slow_until_[p]) peers.push_back(item_ns_[p]);
    if (peers.empty()) continue;
    std::nth_element(peers.begin(), peers.begin() + static_cast<long>(peers.size() / 2), peers.end());
    if (item_ns_[s] > opt_.slow_factor * peers[peers.size() / 2]) {
      slow_until_[s] = now + opt_.slow_hold;
      ++costs_.slow_marks;
    }
  }
}

void sharded_expert_backend::run(int layer, const float* rows, int n_rows, int hidden, const int32_t* expert_ids,
                                 const float* weights, int k, float* out) {
  const auto t0 = clock_type::now();
  if (layer <= last_layer_) {
    on_step_boundary();
    pass_deadline_ = opt_.step_deadline.count() > 0 ? t0 + opt_.step_deadline : clock_type::time_point::max();
  }
  last_layer_ = layer;
  step_had_calls_ = true;
  const int N = placement_.n_shards(), E = placement_.n_experts();
  const size_t D = static_cast<size_t>(hidden), slots = static_cast<size_t>(n_rows) * static_cast<size_t>(k);
  grow(slot_shard_, slots);
  grow(slot_item_, slots);
  uint64_t exchange_ns = 0, max_compute = 0;
  for (int attempt = 0;; ++attempt) {
    for (int s = 0; s < N; ++s) {
      auto& b = batch_[static_cast<size_t>(s)];
      if (b->in_flight.load()) b = std::make_shared<shard_batch>();  // a late answer may still land in the old one
      b->layer = layer;
      b->hidden = hidden;
      b->n_rows = 0;
      b->n_items = 0;
      std::vector<int32_t>& map = row_map_[static_cast<size_t>(s)];
      grow(map, static_cast<size_t>(n_rows));
      std::fill_n(map.begin(), n_rows, -1);
    }
    for (size_t slot = 0; slot < slots; ++slot) {
      const int e = expert_ids[slot];
      if (e < 0 || e >= E) {
        ++costs_.failed_calls;
        throw expert_shard_failure("expert id " + std::to_string(e) + " outside the placement");
      }
      const int s = pick_shard(e, t0);
      if (s < 0) {
        ++costs_.failed_calls;
        const int p = placement_.owners(e)[0];
        throw expert_shard_failure(last_error_[static_cast<size_t>(p)] + "; no live shard holds expert " +
                                   std::to_string(e));
      }
      shard_batch& b = *batch_[static_cast<size_t>(s)];
      const size_t r = slot / static_cast<size_t>(k);
      int32_t& local = row_map_[static_cast<size_t>(s)][r];
      if (local < 0) {
        local = b.n_rows++;
        grow(b.rows, static_cast<size_t>(b.n_rows) * D);
        std::memcpy(&b.rows[static_cast<size_t>(local) * D], rows + r * D, sizeof(float) * D);
      }
      grow(b.item_row, static_cast<size_t>(b.n_items) + 1);
      grow(b.item_expert, static_cast<size_t>(b.n_items) + 1);
      b.item_row[static_cast<size_t>(b.n_items)] = local;
      b.item_expert[static_cast<size_t>(b.n_items)] = e;
      slot_shard_[slot] = s;
      slot_item_[slot] = b.n_items++;
      if (attempt == 0) stats_.count(e, s);
    }
    calls_.clear();
    for (int s = 0; s < N; ++s)
      if (batch_[static_cast<size_t>(s)]->n_items > 0) {
        shard_batch& b = *batch_[static_cast<size_t>(s)];
        grow(b.out, static_cast<size_t>(b.n_items) * D);
        calls_.push_back(shard_call{s, batch_[static_cast<size_t>(s)], false, {}});
      }
    const auto t1 = clock_type::now();
    if (attempt == 0) costs_.route_ns += ns_between(t0, t1);
    transport_->exchange(calls_, std::min(t1 + opt_.deadline, pass_deadline_));
    const auto t_answered = clock_type::now();
    exchange_ns += ns_between(t1, t_answered);
    watch_latency(t_answered);
    bool all_ok = true;
    for (const shard_call& c : calls_) {
      failing_[static_cast<size_t>(c.shard)].store(!c.ok, std::memory_order_relaxed);
      if (c.ok) {
        max_compute = std::max(max_compute, c.batch->compute_ns);
        continue;
      }
      all_ok = false;
      ++costs_.shard_failures;
      down_until_[static_cast<size_t>(c.shard)] = t_answered + opt_.retry_after;
      last_error_[static_cast<size_t>(c.shard)] = c.error;
    }
    if (all_ok) break;
    // The pass is out of time: no replica can answer in it either, and the shards not yet asked are not at
    // fault, so the step fails now rather than taking them out of rotation one attempt at a time.
    if (t_answered >= pass_deadline_) {
      ++costs_.failed_calls;
      for (const shard_call& c : calls_) {
        if (!c.ok) {
          throw expert_shard_failure(c.error + "; the step's experts took longer than the step deadline of " +
                                     std::to_string(opt_.step_deadline.count()) + " ms");
        }
      }
    }
    // Each failed attempt takes at least one shard out of rotation, so this ends within N attempts.
    if (attempt == 0) ++costs_.rerouted_calls;
  }

  const auto t2 = clock_type::now();
  for (size_t r = 0; r < static_cast<size_t>(n_rows); ++r) {
    float* o = out + r * D;
    std::fill_n(o, D, 0.0f);
    for (size_t j = 0; j < static_cast<size_t>(k); ++j) {
      const size_t slot = r * static_cast<size_t>(k) + j;
      const shard_batch& b = *batch_[static_cast<size_t>(slot_shard_[slot])];
      k_.axpy(weights[slot], &b.out[static_cast<size_t>(slot_item_[slot]) * D], o, static_cast<int64_t>(D));
    }
  }
  costs_.combine_ns += ns_between(t2, clock_type::now());
  costs_.exchange_ns += exchange_ns;
  costs_.max_compute_ns += max_compute;
  ++costs_.calls;
}

void sharded_expert_backend::on_step_boundary() {
  if (step_had_calls_) {
    ++steps_;
    stats_.end_step();
    step_had_calls_ = false;
  }
  transport_->poll();
  if (pending_) {
    bool all_done = true, failed = false;
    for (const auto& w : pending_warm_) {
      const int v = w->load();
      all_done = all_done && v == 1;
      failed = failed || v < 0;
    }
    if (failed) {
      pending_.reset();
      pending_warm_.clear();
    } else if (all_done) {
      std::lock_guard<std::mutex> lock(mutex_);
      placement_ = *pending_;
      pending_.reset();
      pending_warm_.clear();
      if (!reports_.empty()) reports_.back().switched_at_step = steps_;
      ++costs_.rebalances;
    }
  }
  if (opt_.rebalance_window_steps > 0 && !pending_ &&
      stats_.window().steps >= static_cast<uint64_t>(opt_.rebalance_window_steps)) {
    std::string err;
    rebalance(opt_.rebalance_replicas, &err);  // a plan that does not fit keeps the current placement
  }
}

bool sharded_expert_backend::rebalance(int replicas, std::string* err) {
  const load_window w = stats_.take_window();
  expert_placement next;
  if (!eplb_plan(w.expert_tokens, placement_.n_shards(), replicas, &next, err)) return false;
  rebalance_report rep;
  rep.planned_at_step = steps_;
  rep.imbalance_before = load_imbalance(w.shard_tokens);
  rep.imbalance_planned = placement_imbalance(next, w.expert_tokens);
  rep.placement = next.describe();
  // Judge the plan against the current placement under the same model of load (an expert's load split evenly
  // over its copies); the measured figure above is what the operator sees.
  const bool worth = next != placement_ && rep.imbalance_planned <
                                               placement_imbalance(placement_, w.expert_tokens) * (1.0 - opt_.rebalance_min_gain);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reports_.push_back(rep);
  }
  if (!worth) return true;
  return rebalance_to(next, err);
}

bool sharded_expert_backend::rebalance_to(const expert_placement& next, std::string* err) {
  if (next.n_shards() != placement_.n_shards() || next.n_experts() != placement_.n_experts()) {
    *err = "a new placement must keep " + std::to_string(placement_.n_experts()) + " experts on " +
           std::to_string(placement_.n_shards()) + " shards";
    return false;
  }
  pending_warm_.clear();
  for (int s = 0; s < next.n_shards(); ++s) {
    std::vector<int32_t> moved;
    for (int e : next.experts_of(s))
      if (!placement_.holds(s, e)) moved.push_back(e);
    if (!moved.empty()) pending_warm_.push_back(transport_->warm(s, moved));
  }
  pending_ = std::make_unique<expert_placement>(next);
  return true;
}

std::string sharded_expert_backend::costs_summary() const {
  const double calls = std::max<double>(1.0, static_cast<double>(costs_.calls.load()));
  const double route = costs_.route_ns.load() / calls / 1e3, exch = costs_.exchange_ns.load() / calls / 1e3;
  const double comp = costs_.max_compute_ns.load() / calls / 1e3, comb = costs_.combine_ns.load() / calls / 1e3;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "expert shards: %d shards, %.0f MoE layer calls; per call: route+gather %.1f us, exchange %.1f us "
                "(slowest shard's expert compute %.1f us, transport %.1f us), combine %.1f us; dispatch+combine "
                "overhead %.1f us = %.0f%% of expert compute; %llu shard failures, %llu rebalances",
                placement_.n_shards(), calls, route, exch, comp, std::max(0.0, exch - comp), comb,
                route + std::max(0.0, exch - comp) + comb,
                comp > 0 ? 100.0 * (route + std::max(0.0, exch - comp) + comb) / comp : 0.0,
                static_cast<unsigned long long>(costs_.shard_failures.load()),
                static_cast<unsigned long long>(costs_.rebalances.load()));
  return buf;
}

}  // namespace rampart::model
