#include "actors/shard_actor.hpp"

#include <algorithm>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "config/server_config.hpp"
#include "engine/engine.hpp"
#include "net/shard_link.hpp"
#include "shards/expert_placement.hpp"

namespace rampart::actors {

namespace {

shard_actor::behavior_type shard_behavior(shard_actor::pointer self, std::shared_ptr<model::shard_compute> compute,
                                          std::shared_ptr<std::atomic<bool>> crash_next) {
  (void)self;
  return {
      [compute, crash_next](const shard_job& job) {
        // Fault injection: die in the middle of a job, leaving it unanswered, as a crashing shard would.
        if (crash_next->exchange(false)) throw std::runtime_error("fault injection: expert shard crashed");
        std::string err;
        bool ok = false;
        try {
          ok = compute->run(*job.batch, &err);
        } catch (const std::exception& e) {
          err = e.what();
        }
        job.batch->in_flight.store(false);
        std::lock_guard<std::mutex> lock(job.done->mutex);
        if (job.done->generation != job.generation) return;  // the caller gave up on this exchange
        job.done->state[job.call] = ok ? 1 : -1;
        job.done->answered[job.call] = std::chrono::steady_clock::now();
        if (!ok) job.done->error[job.call] = err;
        ++job.done->finished;
        job.done->cv.notify_all();
      },
      [compute, crash_next](const shard_warm_job& job) {
        if (crash_next->exchange(false)) throw std::runtime_error("fault injection: expert shard crashed");
        std::string err;
        job.state->store(compute->warm(job.experts, &err) ? 1 : -1);
      },
  };
}

}  // namespace

actor_shard_transport::actor_shard_transport(std::shared_ptr<const model::model_weights> weights, int hidden,
                                             int n_shards, int threads_each, std::vector<int> cpus)
    : cfg_(std::make_unique<caf::actor_system_config>()), done_(std::make_shared<shard_completion>()) {
  cfg_->set("scheduler.max-threads", 1);  // the shards are detached: the scheduler only routes messages
  system_ = std::make_unique<caf::actor_system>(*cfg_);
  actors_.resize(static_cast<size_t>(n_shards));
  for (int s = 0; s < n_shards; ++s) {
    computes_.push_back(std::make_shared<model::shard_compute>(weights, hidden, threads_each, cpus));
    dead_.push_back(std::make_shared<std::atomic<bool>>(false));
    crash_next_.push_back(std::make_shared<std::atomic<bool>>(false));
    warms_.emplace_back();
    spawn(s);
  }
  done_->state.resize(static_cast<size_t>(n_shards));
  done_->error.resize(static_cast<size_t>(n_shards));
  done_->answered.resize(static_cast<size_t>(n_shards));
}

void actor_shard_transport::spawn(int shard) {
  const size_t i = static_cast<size_t>(shard);
  std::lock_guard<std::mutex> lock(actors_mutex_);
  dead_[i]->store(false);
  actors_[i] = system_->spawn<caf::detached>(shard_behavior, computes_[i], crash_next_[i]);
  actors_[i]->attach_functor([dead = dead_[i]](const caf::error&) { dead->store(true); });
}

void actor_shard_transport::respawn_dead() {
  for (int s = 0; s < size(); ++s) {
    const size_t i = static_cast<size_t>(s);
    if (!dead_[i]->load()) continue;
    {
      // Warm jobs that died with the actor are never answered: they failed.
      std::lock_guard<std::mutex> lock(actors_mutex_);
      for (const auto& w : warms_[i]) {
        int pending = 0;
        if (auto state = w.lock()) state->compare_exchange_strong(pending, -1);
      }
      warms_[i].clear();
    }
    spawn(s);
  }
}

actor_shard_transport::~actor_shard_transport() {
  for (auto& a : actors_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  actors_.clear();
  system_->await_all_actors_done();
}

std::string actor_shard_transport::name(int shard) const {
  return "expert shard " + std::to_string(shard) + " (in-process actor)";
}

void actor_shard_transport::exchange(std::vector<model::shard_call>& calls,
                                     std::chrono::steady_clock::time_point deadline) {
  respawn_dead();
  shard_completion& d = *done_;
  const auto sent_at = std::chrono::steady_clock::now();
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    gen = ++d.generation;
    d.finished = 0;
    std::fill(d.state.begin(), d.state.end(), 0);
  }
  {
    std::lock_guard<std::mutex> actors_lock(actors_mutex_);
    for (size_t i = 0; i < calls.size(); ++i) {
      calls[i].batch->in_flight.store(true);
      caf::anon_send(actors_[static_cast<size_t>(calls[i].shard)], shard_job{calls[i].batch, done_, gen, i});
    }
  }
  std::unique_lock<std::mutex> lock(d.mutex);
  d.cv.wait_until(lock, deadline, [&] { return d.finished == calls.size(); });
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i].ok = d.state[i] == 1;
    if (calls[i].ok) calls[i].latency = d.answered[i] - sent_at;
    if (d.state[i] == -1) calls[i].error = name(calls[i].shard) + ": " + d.error[i];
    if (d.state[i] == 0) calls[i].error = name(calls[i].shard) + ": no answer before the deadline";
  }
  ++d.generation;  // answers still on their way are now late
}

std::shared_ptr<model::warm_state> actor_shard_transport::warm(int shard, const std::vector<int32_t>& experts) {
  respawn_dead();
  auto state = std::make_shared<model::warm_state>(0);
  std::lock_guard<std::mutex> lock(actors_mutex_);
  auto& pending = warms_[static_cast<size_t>(shard)];
  pending.erase(std::remove_if(pending.begin(), pending.end(),
                               [](const std::weak_ptr<model::warm_state>& w) {
                                 auto s = w.lock();
                                 return !s || s->load() != 0;
                               }),
                pending.end());
  pending.push_back(state);
  caf::anon_send(actors_[static_cast<size_t>(shard)], shard_warm_job{experts, state});
  return state;
}

void actor_shard_transport::crash_on_next_job(int shard) { crash_next_[static_cast<size_t>(shard)]->store(true); }

bool kill_shard_actor(model::sharded_expert_backend& backend, int shard) {
  auto actors = std::dynamic_pointer_cast<actor_shard_transport>(backend.transport());
  if (!actors || shard < 0 || shard >= actors->size()) return false;
  actors->crash_on_next_job(shard);
  return true;
}

std::shared_ptr<model::sharded_expert_backend> make_expert_shards(std::shared_ptr<const model::checkpoint> ck,
                                                                  const expert_shards_options& o, std::string* err,
                                                                  std::shared_ptr<model::shard_transport>* out) {
  const model::model_config& c = ck->config();
  const int n = o.in_process > 0 ? o.in_process : static_cast<int>(o.endpoints.size());
  if (n < 1) {
    *err = "expert shards: no shards asked for";
    return nullptr;
  }
  if (o.in_process > 0 && !o.endpoints.empty()) {
    *err = "expert shards: in-process shards and shard endpoints exclude each other";
    return nullptr;
  }
  if (o.deadline_ms < 1) {
    *err = "expert shards: the deadline must be at least 1 ms";
    return nullptr;
  }
  for (const std::string& ep : o.endpoints)
    if (!o.keys.curve() && !config::is_loopback_endpoint(ep)) {
      *err = "expert shards: " + ep + " is not loopback, and a plain shard link is allowed on loopback only";
      return nullptr;
    }
  model::expert_placement placement;
  if (!model::expert_placement::contiguous(static_cast<int>(c.n_routed_experts), n, &placement, err)) {
    *err = "expert shards: " + *err;
    return nullptr;
  }
  std::shared_ptr<model::shard_transport> transport;
  if (o.in_process > 0) {
    auto weights = model::load_shared_weights(ck, err);
    if (!weights) return nullptr;
    const int all = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    transport = std::make_shared<actor_shard_transport>(weights, static_cast<int>(c.hidden_size), n,
                                                        std::max(1, all / n), o.cpus);
  } else {
    model::shard_frame_limits limits;  // what one answer may hold: a step slice's rows x experts x the width
    limits.max_rows = model::engine_options{}.max_step_tokens;
    limits.experts_per_row = c.num_experts_per_tok;
    limits.hidden = c.hidden_size;
    auto link = net::zmq_shard_transport::create(o.endpoints, limits.max_answer_bytes(), o.keys, err);
    if (!link) return nullptr;
    if (!link->wait_ready(std::chrono::milliseconds(o.connect_timeout_ms), err)) {
      if (o.require_connected) return nullptr;
      spdlog::warn("expert shards: {}; starting anyway, steps fail until they answer", *err);
      err->clear();
    }
    transport = link;
  }
  model::sharded_options bo = o.backend;
  bo.deadline = std::chrono::milliseconds(o.deadline_ms);
  bo.step_deadline = std::chrono::milliseconds(o.step_deadline_ms);
  if (out) *out = transport;
  return std::make_shared<model::sharded_expert_backend>(transport, std::move(placement), bo);
}

}  // namespace rampart::actors
