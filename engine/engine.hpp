// The CPU inference engine: one forward step over a batch of sequences of a DeepSeek-V3 / V2-Lite checkpoint,
// with a paged latent KV cache and a prefix cache. Plain C++: no actors, no sockets; one caller at a time
// (the scheduler), the engine's own thread pool does the parallel work.
//
// Life of a sequence: the caller owns its kv_sequence record; start(&record, prompt) -> the number of prompt
// tokens already cached (do not feed those) -> step() with the rest of the prompt (in chunks if wanted) and then
// one token per step -> release(&record) when it ends or is cancelled, which returns its KV blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/device_forward.hpp"
#include "engine/sampler.hpp"
#include "model/checkpoint.hpp"
#include "model/expert_backend.hpp"
#include "model/step_profile.hpp"

namespace rampart::model {

struct engine_options {
  int threads = 0;              // 0: one per hardware thread
  std::vector<int> cpus;        // non-empty: the engine's threads run only on these CPUs (thread_pool)
  int kv_block_tokens = 16;     // tokens per KV block
  int64_t kv_cache_tokens = 0;  // KV capacity in tokens (rounded up to blocks); 0: min(max_position, 16384)
  bool prefix_cache = true;     // reuse published full blocks of identical prompt prefixes
  bool prefault_weights = false;  // read every mapped weight page at creation (no page faults in early steps)
  // Rewrite the matrices into the layout the kernels read fastest (model_weights::pack_for; same dtype and
  // size, the checkpoint's pages of them dropped); false: compute straight from the mapped checkpoint.
  bool pack_weights = true;
  bool profile = false;  // time each step's phases (engine::profile)
  int64_t max_step_tokens = 1024;  // a longer step runs as consecutive slices (bounds scratch memory)
  // Where routed experts run; nullptr: in this process (local_expert_backend).
  std::shared_ptr<expert_backend> experts;
  // Set: the forward pass runs on that device (gpu::cuda_device, say), which holds the weights and the KV
  // cache; the engine keeps sequences, blocks and the prefix cache. Weights are then not packed, EXPERTS is
  // unused, and no CPU KV cache is allocated. Empty: the CPU forward pass.
  device_factory device;
};

class engine;

// A sequence's place in the KV cache: its block table, how many tokens it holds and the block being filled.
// The caller owns the record (the scheduler's record of a request holds one, so a sequence has one record and
// one id); only the engine changes it, from start() to release(). Release a started record before destroying
// it, or its blocks stay taken. Not copyable: two copies of one block table would release its blocks twice.
class kv_sequence {
 public:
  kv_sequence() = default;
  kv_sequence(const kv_sequence&) = delete;
  kv_sequence& operator=(const kv_sequence&) = delete;

  bool started() const { return owner_ != nullptr; }
  // Tokens in the cache: the cached prefix and everything fed (0 when not started).
  int64_t length() const { return length_; }
  // The KV blocks holding them, in order.
  const std::vector<int32_t>& blocks() const { return blocks_; }

 private:
  friend class engine;
  const engine* owner_ = nullptr;  // the engine that started it
  std::vector<int32_t> blocks_;
  int64_t length_ = 0;
  uint64_t last_hash_ = 0;        // chain hash of the last full block (0: none yet)
  std::vector<int32_t> filling_;  // tokens of the block being filled
  uint64_t stamp_ = 0;            // the last step that included it
};

// New tokens of one sequence for a step, appended at the sequence's current length.
struct seq_input {
  kv_sequence* seq = nullptr;
  const int32_t* tokens = nullptr;
  int64_t n_tokens = 0;
  bool all_logits = false;  // logits of every new position, else of the last one only
  // When the engine samples on its device (engine::samples_on_device()) and SAMPLE is set (and not all_logits),
  // the device picks the next token from the last position's logits with these parameters and the uniform
  // draw UNIFORM in [0, 1) (sampler::next_uniform of the sequence's sampler): step_output::tokens has it and the
  // entry's logits row is left unfilled. Otherwise both are ignored.
  const sampling_params* sample = nullptr;
  double uniform = 0;
};

// Logits of a step: entry i of the batch owns rows [first_row[i], first_row[i] + n_rows[i]) of LOGITS.
struct step_output {
  int64_t vocab_size = 0;
  std::vector<float> logits;
  std::vector<int64_t> first_row, n_rows;
  // Per batch entry: the token its device chose (seq_input::sample), or -2 when it was not sampled there (-1:
  // no candidate logit).
  std::vector<int32_t> tokens;
  // Row J of entry I (J = -1: its last row).
  const float* row(size_t i, int64_t j = -1) const {
    return logits.data() + (first_row[i] + (j < 0 ? n_rows[i] - 1 : j)) * vocab_size;
  }
};

struct kv_usage {
  int64_t total_blocks = 0;
  int64_t free_blocks = 0;        // unreferenced blocks (prefix-cached ones included: they are reclaimable)
  int64_t block_tokens = 0;
  int64_t cached_blocks = 0;      // blocks published in the prefix cache
  int64_t prefix_hit_tokens = 0;  // prompt tokens served from the prefix cache since creation
  size_t bytes = 0;               // KV storage
};

class engine {
 public:
  // Builds an engine over CK (kept alive by the engine). Fails with a one-line *err for an unsupported or
  // inconsistent config, a missing tensor or a tensor of the wrong shape.
  static std::unique_ptr<engine> create(std::shared_ptr<const checkpoint> ck, const engine_options& options,
                                        std::string* err);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  const model_config& config() const;
  const char* kernel_name() const;
  // Whether step() samples entries that ask (seq_input::sample) where the logits are, so that only tokens
  // cross to the host: true with a device that samples (the CUDA engine).
  bool samples_on_device() const;
  int threads() const;

  // Starts the sequence recorded in SEQ (not started). With the prefix cache on, PROMPT's leading full blocks are
  // looked up and shared; returns how many prompt tokens are already cached (a multiple of the block size, at
  // most n - 1 so the last prompt token is always fed). The caller then feeds prompt[returned..n) through
  // step(). Returns -1 and fills *err when SEQ is already started.
  int64_t start(kv_sequence* seq, const int32_t* prompt, int64_t n, std::string* err);

  // Runs one forward step for BATCH (distinct sequences started by this engine, each with >= 1 token). All or
  // nothing: on a bad entry (a record not started here, one given twice, a token id outside the vocabulary, a
  // position past max_position_embeddings) or when the KV cache cannot hold the new tokens, returns false with
  // a one-line *err naming the batch entry and changes nothing. Results for a sequence do not depend on the
  // other sequences in the batch.
  bool step(const std::vector<seq_input>& batch, step_output* out, std::string* err);

  // Ends SEQ (finished or cancelled): its blocks lose a reference, unshared ones become free, and the record is
  // empty again (it may be started anew). No-op for a record this engine did not start.
  void release(kv_sequence* seq);

  kv_usage kv() const;
  // New blocks a step appending N_TOKENS to SEQ would take (SEQ not started: a new sequence of N_TOKENS
  // without prefix hits).
  int64_t blocks_needed(const kv_sequence& seq, int64_t n_tokens) const;
  // Whether a new sequence of N_TOKENS total fits in the free blocks now (ignoring possible prefix hits).
  bool can_admit(int64_t n_tokens) const;

  // Weight bytes one decode token reads (attention, router, shared and top-k routed experts, lm_head).
  size_t weight_bytes_per_token() const;
  size_t mapped_weight_bytes() const;
  // Bytes of weights rewritten into the kernels' layout at creation (engine_options.pack_weights; 0 if none).
  size_t packed_weight_bytes() const;

  // FN(i) once for every i < N, spread over the engine's threads from 8 on (sampling each sequence of a step's
  // batch, say). FN runs concurrently with itself and must not call the engine.
  void parallel(int64_t n, const std::function<void(int64_t)>& fn);

  // Phase times of the successful steps since creation or the last reset_profile() (engine_options.profile;
  // all zero without it).
  const step_profile& profile() const;
  void reset_profile();

 private:
  struct impl;
  explicit engine(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

}  // namespace rampart::model
