#include "engine/engine.hpp"

#include <algorithm>
#include <new>
#include <thread>

#include "engine/block_manager.hpp"
#include "kernels/kernels_parallel.hpp"
#include "model/attention.hpp"
#include "model/kv_cache.hpp"
#include "model/layers.hpp"
#include "model/moe.hpp"

namespace rampart::model {

namespace {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Checks the config fields the forward pass relies on; "" when usable.
std::string check_config(const model_config& c) {
  if (c.n_routed_experts > 0) {
    if (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.n_routed_experts)
      return "num_experts_per_tok must be in [1, n_routed_experts]";
    if (c.n_group < 1 || c.n_routed_experts % c.n_group != 0) return "n_group must divide n_routed_experts";
    if (c.topk_group < 1 || c.topk_group > c.n_group) return "topk_group must be in [1, n_group]";
    if (c.topk_method != router_topk::greedy && c.n_group > 1 &&
        c.topk_group * (c.n_routed_experts / c.n_group) < c.num_experts_per_tok)
      return "topk_group groups hold fewer experts than num_experts_per_tok";
    if (c.moe_intermediate_size <= 0) return "moe_intermediate_size must be positive";
  }
  if (c.moe_layer_freq < 1) return "moe_layer_freq must be >= 1";
  if (c.max_position_embeddings <= 0) return "max_position_embeddings must be positive";
  return "";
}

}  // namespace

struct engine::impl {
  std::shared_ptr<const checkpoint> ck;
  const model_config& cfg;
  model_weights w;
  const kernel_ops& k;
  thread_pool pool;
  std::shared_ptr<expert_backend> experts;
  std::unique_ptr<device_forward> dev;  // set: the forward pass runs there
  int64_t n_blocks;
  kv_cache kv;
  block_manager blocks;
  mla_attention attn;
  feed_forward ffn;
  bool prefix_cache;
  int64_t max_step_tokens;
  int64_t prefix_hit_tokens = 0;
  size_t packed_bytes = 0;
  uint64_t step_count = 0;
  bool profiling = false;
  step_profile prof;
  // Step scratch, grown on demand.
  std::vector<float> x, xn, tmp;
  std::vector<token_slot> slots;
  std::vector<int32_t> tokens;
  std::vector<int64_t> logit_rows, dev_rows;
  // Rows the device samples (seq_input::sample): parameters (nullptr: the row's logits are returned), draws, tokens.
  std::vector<const sampling_params*> row_sample;
  std::vector<double> row_uniform;
  std::vector<int32_t> row_tokens;
  bool any_sample = false;

  // With a device (O.device) the CPU KV cache and attention scratch are empty: the device holds the cache.
  impl(std::shared_ptr<const checkpoint> c, model_weights weights, const engine_options& o, int64_t blocks_n)
      : ck(std::move(c)),
        cfg(ck->config()),
        w(std::move(weights)),
        k(kernels()),
        pool(o.threads, o.cpus),
        experts(o.experts ? o.experts : std::make_shared<local_expert_backend>(w, k, pool)),
        n_blocks(blocks_n),
        kv(cfg.num_hidden_layers, o.device ? 0 : blocks_n, o.kv_block_tokens, cfg.kv_lora_rank + cfg.qk_rope_head_dim),
        blocks(blocks_n, o.kv_block_tokens),
        attn(cfg, k, pool, o.device ? 0 : blocks_n * o.kv_block_tokens),
        ffn(cfg, k, pool, *experts),
        prefix_cache(o.prefix_cache),
        max_step_tokens(o.max_step_tokens),
        profiling(o.profile) {
    if (profiling) {
      attn.set_profile(&prof);
      ffn.set_profile(&prof);
    }
  }

  int64_t blocks_for(int64_t tokens) const { return (tokens + blocks.block_tokens() - 1) / blocks.block_tokens(); }
  // Runs the step's tokens [t0, t0 + n) (KV of earlier tokens already cached) and writes logits rows
  // [row0, row0 + rows), which must belong to those tokens.
  void forward(int64_t t0, int64_t n, int64_t row0, int64_t rows, float* logits);
  // A step's parts: the batch's checks (every sequence started by SELF, once, with tokens in the vocabulary
  // and room in the context and the KV cache; *N its token count), laying out its tokens and logit rows (returns the row
  // count), the forward pass in slices, and committing the tokens to the cache.
  bool check_batch(const engine* self, const std::vector<seq_input>& batch, int64_t* n, std::string* err);
  int64_t lay_out(const std::vector<seq_input>& batch, int64_t n, step_output* out);
  void forward_sliced(int64_t n, int64_t rows, float* logits);
  void commit(const std::vector<seq_input>& batch);
  void prefault();
};

engine::engine(std::unique_ptr<impl> p) : p_(std::move(p)) {}
engine::~engine() = default;

std::unique_ptr<engine> engine::create(std::shared_ptr<const checkpoint> ck, const engine_options& options,
                                       std::string* err) {
  if (!ck) {
    *err = "engine: no checkpoint";
    return nullptr;
  }
  const model_config& c = ck->config();
  const std::string bad = check_config(c);
  if (!bad.empty()) {
    *err = ck->dir() + "/config.json: " + bad;
    return nullptr;
  }
  if (options.kv_block_tokens < 1 || options.kv_cache_tokens < 0 || options.max_step_tokens < 1) {
    *err = "engine: kv_block_tokens and max_step_tokens must be >= 1, kv_cache_tokens >= 0";
    return nullptr;
  }
  model_weights w;
  size_t packed = 0;
  if (!model_weights::load(*ck, &w, err)) return nullptr;
  if (options.pack_weights && !options.device) {
    const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
    try {
      packed = w.pack_for(c, kernels(), threads, /*routed_experts=*/options.experts == nullptr);
    } catch (const std::bad_alloc&) {
      *err = "engine: not enough free memory to rewrite the weights into the kernels' layout ([engine] "
             "pack_weights = false, or engine_options.pack_weights, runs from the mapped checkpoint instead)";
      return nullptr;
    }
  }
  const int64_t tokens =
      options.kv_cache_tokens > 0 ? options.kv_cache_tokens : std::min<int64_t>(c.max_position_embeddings, 16384);
  const int64_t n_blocks = (tokens + options.kv_block_tokens - 1) / options.kv_block_tokens;
  std::unique_ptr<impl> p;
  try {
    p = std::make_unique<impl>(std::move(ck), std::move(w), options, n_blocks);
  } catch (const std::bad_alloc&) {
    *err = "engine: cannot allocate the KV cache for " + std::to_string(n_blocks * options.kv_block_tokens) +
           " tokens and its scratch space";
    return nullptr;
  }
  p->packed_bytes = packed;
  if (options.device) {
    p->dev = options.device(p->cfg, p->w, n_blocks, options.kv_block_tokens, err);
    if (!p->dev) return nullptr;
  } else if (options.prefault_weights) {
    p->prefault();
  }
  return std::unique_ptr<engine>(new engine(std::move(p)));
}

void engine::impl::prefault() {
  // Every matrix the forward pass reads (the weights rewritten by pack_for are resident already).
  std::vector<weight_matrix> views;
  w.for_each_matrix([&](const weight_matrix& m) {
    if (m.layout == weight_layout::natural) views.push_back(m);
  });
  std::vector<uint8_t> sink(static_cast<size_t>(pool.size()) * 64, 0);
  pool.parallel_for(static_cast<int64_t>(views.size()), [&](int64_t b, int64_t e, int thr) {
    uint8_t acc = 0;
    for (int64_t i = b; i < e; ++i) {
      const volatile std::byte* d = views[i].row_ptr(0);
      const size_t n = views[i].storage_bytes();
      for (size_t off = 0; off < n; off += 4096) acc = static_cast<uint8_t>(acc + static_cast<uint8_t>(d[off]));
    }
    sink[static_cast<size_t>(thr) * 64] = acc;
  });
}

const model_config& engine::config() const { return p_->cfg; }
bool engine::samples_on_device() const { return p_->dev && p_->dev->samples(); }
const char* engine::kernel_name() const { return p_->dev ? p_->dev->name() : p_->k.name; }
int engine::threads() const { return p_->pool.size(); }

int64_t engine::start(kv_sequence* seq, const int32_t* prompt, int64_t n, std::string* err) {
  if (seq->started()) {
    *err = "the sequence is already started";
    return -1;
  }
  kv_sequence& s = *seq;
  s.owner_ = this;
  const int bs = p_->blocks.block_tokens();
  s.filling_.reserve(static_cast<size_t>(bs));
  if (p_->prefix_cache && prompt != nullptr) {
    for (int64_t b = 0; (b + 1) * bs <= n - 1; ++b) {
      const int32_t* toks = prompt + b * bs;
      const uint64_t h = block_manager::chain_hash(s.last_hash_, toks, bs);
      const int32_t blk = p_->blocks.lookup(h, s.last_hash_, toks);
      if (blk < 0) break;
      p_->blocks.acquire(blk);
      s.blocks_.push_back(blk);
      s.last_hash_ = h;
      s.length_ += bs;
    }
    p_->prefix_hit_tokens += s.length_;
  }
  return s.length_;
}

bool engine::impl::check_batch(const engine* self, const std::vector<seq_input>& batch, int64_t* n,
                               std::string* err) {
  const uint64_t stamp = ++step_count;
  const int64_t V = cfg.vocab_size;
  int64_t need = 0;
  *n = 0;
  for (const seq_input& in : batch) {
    // Error text is built only on failure: the normal path allocates nothing.
    auto who = [&] { return "batch entry " + std::to_string(&in - batch.data()); };
    if (in.seq == nullptr || in.seq->owner_ != self) return *err = who() + ": the sequence is not started", false;
    kv_sequence& s = *in.seq;
    if (s.stamp_ == stamp) return *err = who() + ": the sequence appears twice in one step", false;
    s.stamp_ = stamp;
    if (in.n_tokens < 1 || in.tokens == nullptr) return *err = who() + ": a step needs at least one token", false;
    for (int64_t i = 0; i < in.n_tokens; ++i)
      if (in.tokens[i] < 0 || in.tokens[i] >= V)
        return *err = who() + ": token id " + std::to_string(in.tokens[i]) + " is outside the vocabulary [0, " +
                      std::to_string(V) + ")",
               false;
    if (s.length_ + in.n_tokens > cfg.max_position_embeddings)
      return *err = who() + ": position " + std::to_string(s.length_ + in.n_tokens - 1) +
                    " is past max_position_embeddings " + std::to_string(cfg.max_position_embeddings),
             false;
    need += blocks_for(s.length_ + in.n_tokens) - static_cast<int64_t>(s.blocks_.size());
    *n += in.n_tokens;
  }
  if (need > blocks.free_blocks())
    return *err = "kv cache full: the step needs " + std::to_string(need) + " new blocks, " +
                  std::to_string(blocks.free_blocks()) + " are free",
           false;
  return true;
}

int64_t engine::impl::lay_out(const std::vector<seq_input>& batch, int64_t n, step_output* out) {
  grow(slots, static_cast<size_t>(n));
  grow(tokens, static_cast<size_t>(n));
  grow(logit_rows, static_cast<size_t>(n));
  out->vocab_size = cfg.vocab_size;
  out->first_row.resize(batch.size());
  out->n_rows.resize(batch.size());
  int64_t t = 0, rows = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const seq_input& in = batch[i];
    kv_sequence& s = *in.seq;
    while (static_cast<int64_t>(s.blocks_.size()) < blocks_for(s.length_ + in.n_tokens))
      s.blocks_.push_back(blocks.allocate());
    out->first_row[i] = rows;
    out->n_rows[i] = in.all_logits ? in.n_tokens : 1;
    for (int64_t j = 0; j < in.n_tokens; ++j, ++t) {
      slots[t] = token_slot{s.length_ + j, s.blocks_.data()};
      tokens[t] = in.tokens[j];
      if (in.all_logits || j == in.n_tokens - 1) logit_rows[rows++] = t;
    }
  }
  out->logits.resize(static_cast<size_t>(rows * cfg.vocab_size));
  out->tokens.assign(batch.size(), -2);
  any_sample = false;
  if (dev && dev->samples()) {
    row_sample.assign(static_cast<size_t>(rows), nullptr);
    row_uniform.assign(static_cast<size_t>(rows), 0.0);
    row_tokens.assign(static_cast<size_t>(rows), -2);
    for (size_t i = 0; i < batch.size(); ++i)
      if (batch[i].sample != nullptr && !batch[i].all_logits) {
        row_sample[out->first_row[i]] = batch[i].sample;
        row_uniform[out->first_row[i]] = batch[i].uniform;
        any_sample = true;
      }
  }
  return rows;
}

void engine::impl::forward_sliced(int64_t n, int64_t rows, float* logits) {
  // Long steps run as consecutive slices of at most max_step_tokens tokens, which bounds scratch memory; a slice
  // sees the KV of the slices before it, and results do not depend on the slicing.
  for (int64_t t0 = 0, r0 = 0; t0 < n;) {
    const int64_t len = std::min<int64_t>(n - t0, max_step_tokens);
    int64_t r1 = r0;
    while (r1 < rows && logit_rows[r1] < t0 + len) ++r1;
    forward(t0, len, r0, r1 - r0, logits);
    t0 += len;
    r0 = r1;
  }
}

void engine::impl::commit(const std::vector<seq_input>& batch) {
  const int bs = blocks.block_tokens();
  for (const seq_input& in : batch) {
    kv_sequence& s = *in.seq;
    for (int64_t j = 0; j < in.n_tokens; ++j) {
      s.filling_.push_back(in.tokens[j]);
      ++s.length_;
      if (static_cast<int>(s.filling_.size()) == bs) {
        const uint64_t h = block_manager::chain_hash(s.last_hash_, s.filling_.data(), bs);
        if (prefix_cache) blocks.publish(s.blocks_[(s.length_ - 1) / bs], h, s.last_hash_, s.filling_.data());
        s.last_hash_ = h;
        s.filling_.clear();
      }
    }
  }
}

bool engine::step(const std::vector<seq_input>& batch, step_output* out, std::string* err) {
  impl& p = *p_;
  if (batch.empty()) {
    out->vocab_size = p.cfg.vocab_size;
    out->tokens.clear();
    out->logits.clear();
    out->first_row.clear();
    out->n_rows.clear();
    return true;
  }
  const auto step_start = std::chrono::steady_clock::now();
  int64_t n = 0;
  if (!p.check_batch(this, batch, &n, err)) return false;
  const int64_t rows = p.lay_out(batch, n, out);
  const step_profile before = p.prof;  // a failed step leaves the profile as it was
  try {
    p.forward_sliced(n, rows, out->logits.data());
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const expert_shard_failure*>(&e) == nullptr && dynamic_cast<const device_failure*>(&e) == nullptr)
      throw;
    // Lengths did not advance, so KV rows written for this step are dead; return the blocks it took.
    for (const seq_input& in : batch) {
      kv_sequence& s = *in.seq;
      for (; static_cast<int64_t>(s.blocks_.size()) > p.blocks_for(s.length_); s.blocks_.pop_back())
        p.blocks.release(s.blocks_.back());
    }
    p.prof = before;
    return *err = e.what(), false;
  }
  if (p.any_sample)
    for (size_t i = 0; i < batch.size(); ++i)
      if (p.row_sample[out->first_row[i]] != nullptr) out->tokens[i] = p.row_tokens[out->first_row[i]];
  p.commit(batch);  // the new tokens are in the cache: advance lengths, publish blocks that became full
  if (p.profiling) {
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    double phases = 0;
    for (size_t i = 0; i < step_phase_count; ++i) phases += p.prof.seconds[i] - before.seconds[i];
    p.prof.seconds[static_cast<size_t>(step_phase::other)] += std::max(0.0, total - phases);
    p.prof.step_seconds += total;
    ++p.prof.steps;
    p.prof.tokens += static_cast<uint64_t>(n);
  }
  return true;
}

void engine::impl::forward(int64_t t0, int64_t n, int64_t row0, int64_t rows, float* logits) {
  const int64_t D = cfg.hidden_size, V = cfg.vocab_size;
  const double eps = cfg.rms_norm_eps;
  const token_slot* sl = slots.data() + t0;
  if (dev) {
    grow(dev_rows, static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) dev_rows[r] = logit_rows[row0 + r] - t0;
    if (any_sample)
      dev->forward(tokens.data() + t0, sl, n, dev_rows.data(), rows, logits + row0 * V, row_sample.data() + row0,
                   row_uniform.data() + row0, row_tokens.data() + row0);
    else
      dev->forward(tokens.data() + t0, sl, n, dev_rows.data(), rows, logits + row0 * V);
    return;
  }
  grow(x, static_cast<size_t>(n * D));
  grow(xn, static_cast<size_t>(n * D));
  grow(tmp, static_cast<size_t>(n * D));
  for (int64_t t = 0; t < n; ++t) k.load_row(w.embed, tokens[t0 + t], &x[t * D]);
  attn.prepare(sl, n);
  // x += tmp (when ADD), then xn = RMSNorm(x) with NORM (when non-null), token by token.
  auto residual_norm = [&](bool add, const float* norm) {
    for_tokens(pool, n, [&](int64_t t, int) {
      float* xt = &x[t * D];
      if (add)
        for (int64_t i = 0; i < D; ++i) xt[i] += tmp[t * D + i];
      if (norm != nullptr) rms_norm(xt, norm, D, eps, &xn[t * D]);
    });
  };
  if (!w.layers.empty()) residual_norm(false, w.layers[0].input_norm.data());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const layer_weights& L = w.layers[l];
    attn.forward(L.attn, static_cast<int64_t>(l), xn.data(), n, sl, kv, tmp.data());
    residual_norm(true, L.post_attention_norm.data());
    if (L.is_moe)
      ffn.moe(L.moe, static_cast<int>(l), xn.data(), n, tmp.data());
    else
      ffn.mlp(L.dense, xn.data(), n, tmp.data());
    residual_norm(true, l + 1 < w.layers.size() ? w.layers[l + 1].input_norm.data() : nullptr);
  }
  for (int64_t r = 0; r < rows; ++r)
    rms_norm(&x[(logit_rows[row0 + r] - t0) * D], w.final_norm.data(), D, eps, &xn[r * D]);
  const phase_timer timer(profiling ? &prof : nullptr, step_phase::lm_head);
  matmul(pool, k, w.lm_head, xn.data(), D, rows, logits + row0 * V, V);
}

void engine::release(kv_sequence* seq) {
  if (seq->owner_ != this) return;
  // Later blocks first, so a shared prefix's head stays cached longest.
  for (auto b = seq->blocks_.rbegin(); b != seq->blocks_.rend(); ++b) p_->blocks.release(*b);
  seq->owner_ = nullptr;
  seq->blocks_.clear();
  seq->length_ = 0;
  seq->last_hash_ = 0;
  seq->filling_.clear();
  seq->stamp_ = 0;
}

kv_usage engine::kv() const {
  kv_usage u;
  u.total_blocks = p_->blocks.total_blocks();
  u.free_blocks = p_->blocks.free_blocks();
  u.block_tokens = p_->blocks.block_tokens();
  u.cached_blocks = p_->blocks.cached_blocks();
  u.prefix_hit_tokens = p_->prefix_hit_tokens;
  u.bytes = p_->dev ? p_->dev->kv_bytes() : p_->kv.bytes();
  return u;
}

int64_t engine::blocks_needed(const kv_sequence& seq, int64_t n_tokens) const {
  if (seq.owner_ != this) return p_->blocks_for(n_tokens);
  return p_->blocks_for(seq.length_ + n_tokens) - static_cast<int64_t>(seq.blocks_.size());
}

bool engine::can_admit(int64_t n_tokens) const { return p_->blocks_for(n_tokens) <= p_->blocks.free_blocks(); }

size_t engine::weight_bytes_per_token() const { return p_->w.bytes_per_token(p_->cfg.num_experts_per_tok); }
size_t engine::mapped_weight_bytes() const { return p_->ck->mapped_bytes(); }
size_t engine::packed_weight_bytes() const { return p_->packed_bytes; }
const step_profile& engine::profile() const { return p_->prof; }
void engine::reset_profile() { p_->prof = step_profile{}; }

void engine::parallel(int64_t n, const std::function<void(int64_t)>& fn) {
  for_tokens(p_->pool, n, [&](int64_t i, int) { fn(i); });
}

}  // namespace rampart::model
