// How the attention rank reaches expert shards. The sharded expert backend builds one shard_batch per shard per
// MoE layer per step and hands them to a transport, which delivers them (in-process actors: the batch itself;
// processes: a ZeroMQ frame) and waits for the outputs. A GPU transport (NCCL all-to-all) implements the same
// calls. model/ only knows this interface; the transports live in actors/ and net/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rampart::model {

// One shard's share of one MoE layer's step. Items are (row, expert) pairs; a row appears once even when
// several of its experts live on the shard.
struct shard_batch {
  int32_t layer = 0;
  int32_t hidden = 0;
  int32_t n_rows = 0;
  int32_t n_items = 0;
  std::vector<float> rows;             // [n_rows * hidden]; capacity may exceed the size in use
  std::vector<int32_t> item_row;       // [n_items] index into rows
  std::vector<int32_t> item_expert;    // [n_items]
  std::vector<float> out;              // [n_items * hidden]: out[i] = expert_{item_expert[i]}(rows[item_row[i]])
  uint64_t compute_ns = 0;             // the shard's own time for the experts, reported back
  // Set by the caller before sending; cleared by whoever writes OUT after its last write. A batch whose
  // answer came too late may still be written, so the caller takes a fresh one while this is set.
  std::atomic<bool> in_flight{false};
};

struct shard_call {
  int shard = 0;
  std::shared_ptr<shard_batch> batch;
  bool ok = false;
  std::string error;  // when !ok: one line naming the shard and what went wrong
  // When ok: from sending the batch to its answer, as the transport saw it (network and queueing included).
  std::chrono::nanoseconds latency{0};
};

// Progress of a background weight move to one shard: 0 pending, 1 done, -1 failed.
using warm_state = std::atomic<int>;

class shard_transport {
 public:
  virtual ~shard_transport() = default;
  virtual int size() const = 0;
  // "shard 1 (tcp://127.0.0.1:7001)": used in error messages.
  virtual std::string name(int shard) const = 0;
  // Sends every call's batch to its shard (one message each, all in flight together; shards are distinct)
  // and returns when each call has its outputs (ok) or failed, at DEADLINE at the latest. Called from one
  // thread at a time.
  virtual void exchange(std::vector<shard_call>& calls, std::chrono::steady_clock::time_point deadline) = 0;
  // Asks SHARD to make EXPERTS' weights resident without blocking; the returned state turns 1 when they are
  // (or -1 when the shard cannot). Serving continues meanwhile.
  virtual std::shared_ptr<warm_state> warm(int shard, const std::vector<int32_t>& experts) = 0;
  // Takes in late answers (warm acknowledgements) without blocking. Same thread as exchange.
  virtual void poll() {}
};

}  // namespace rampart::model
