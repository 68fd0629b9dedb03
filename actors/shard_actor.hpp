// Expert shards for this process's engine. In-process: one detached CAF actor per shard, each with its own
// model::shard_compute and thread pool; a message carries the batch's shared pointer, so rows and outputs are
// never copied. (Shard processes use the ZeroMQ link of net/shard_link.hpp; make_expert_shards in
// actors/shard_server.hpp builds either.)
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/shard_server.hpp"
#include "model/checkpoint.hpp"
#include "shards/shard_compute.hpp"
#include "shards/sharded_expert_backend.hpp"

namespace rampart::actors {

// Where the answers of one exchange meet. GENERATION tells a late answer from a current one.
struct shard_completion {
  std::mutex mutex;
  std::condition_variable cv;
  uint64_t generation = 0;
  size_t finished = 0;
  std::vector<int> state;  // per call: 0 waiting, 1 ok, -1 failed
  std::vector<std::string> error;
  std::vector<std::chrono::steady_clock::time_point> answered;  // per call, when state was set
};

struct shard_job {
  std::shared_ptr<model::shard_batch> batch;
  std::shared_ptr<shard_completion> done;
  uint64_t generation = 0;
  size_t call = 0;
};

struct shard_warm_job {
  std::vector<int32_t> experts;
  std::shared_ptr<model::warm_state> state;
};

using shard_actor = caf::typed_actor<caf::reacts_to<shard_job>, caf::reacts_to<shard_warm_job>>;

class actor_shard_transport final : public model::shard_transport {
 public:
  // N_SHARDS actors over WEIGHTS (HIDDEN wide), each computing with THREADS_EACH threads (on CPUS when given).
  actor_shard_transport(std::shared_ptr<const model::model_weights> weights, int hidden, int n_shards,
                        int threads_each, std::vector<int> cpus = {});
  ~actor_shard_transport() override;

  int size() const override { return static_cast<int>(actors_.size()); }
  std::string name(int shard) const override;
  void exchange(std::vector<model::shard_call>& calls, std::chrono::steady_clock::time_point deadline) override;
  std::shared_ptr<model::warm_state> warm(int shard, const std::vector<int32_t>& experts) override;
  // Respawns shards whose actor has died, failing the warm jobs they died with.
  void poll() override { respawn_dead(); }

  // Fault injection: SHARD's actor crashes (throws) on its next job, leaving it unanswered: a batch's step fails
  // at its deadline, a warm job and any others it died with fail (-1); the next exchange or warm finds the actor
  // gone and spawns it again over the same experts.
  void crash_on_next_job(int shard);

 private:
  // Spawns SHARD's actor over its computation; its flag goes up when the actor terminates for any reason.
  void spawn(int shard);
  // Respawns every shard whose actor has terminated (its computation is idle by then).
  void respawn_dead();

  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> system_;
  std::mutex actors_mutex_;  // guards actors_: a respawn replaces a handle that send paths read
  std::vector<shard_actor> actors_;
  std::vector<std::shared_ptr<model::shard_compute>> computes_;
  std::vector<std::shared_ptr<std::atomic<bool>>> dead_;
  std::vector<std::shared_ptr<std::atomic<bool>>> crash_next_;
  std::vector<std::vector<std::weak_ptr<model::warm_state>>> warms_;  // per shard, warm jobs not yet answered
  std::shared_ptr<shard_completion> done_;
};

// With --fault-injection: in-process shard SHARD of BACKEND crashes on its next job (false when its shards are
// not in-process actors, or there is no such shard).
bool kill_shard_actor(model::sharded_expert_backend& backend, int shard);

}  // namespace rampart::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::shard_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rampart::actors::shard_warm_job)
