// rampart-generate: runs the CPU engine on a checkpoint from token ids and prints the generated ids; optionally
// dumps logits (--logits) or measures speed (--bench).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#if RAMPART_WITH_SHARDS
#include "actors/shard_server.hpp"
#endif
#include "base/device_name.hpp"
#include "engine/engine.hpp"
#include "engine/sampler.hpp"
#include "engine/scheduler.hpp"
#if RAMPART_WITH_CUDA
#include "gpu/cuda_engine.hpp"
#endif
#include "testkit/kernels_bench.hpp"
#include "tools/flags.hpp"
#include "tools/stats.hpp"

namespace {

using namespace rampart::model;

const char* const usage =
    "usage: rampart-generate --model DIR --ids \"0 15 27\" [-n N] [--temperature T] [--top-k K] [--top-p P]\n"
    "                        [--min-p P] [--seed S] [--threads N]\n"
    "                        [--logits FILE] [--chunk N] [--batch N] [--kv-tokens N] [--bench [--profile]]\n"
    "                        [--no-pack] [--shards N | --shard-endpoints tcp://HOST:PORT,...] [--serve R]\n"
    "                        [--device cpu|cuda:N [--precision exact|fast] [--no-graphs]]\n"
    "\n"
    "Generates exactly N tokens (default 16) after the prompt and prints them on one line.\n"
    "--serve R: BATCH clients each send R requests one after another (prompts as long as --ids, N tokens each)\n"
    "  through the batch scheduler with the server's defaults, in this process; prints output tokens/s (the\n"
    "  median of 3 runs), the engine's rate on the work tools/bench-pipeline.sh sends to the server.\n"
    "--profile (with --bench): also print where a decode step's time goes, phase by phase.\n"
    "--bench also prints what sampling one sequence's next token costs with common settings.\n"
    "--no-pack: compute from the mapped checkpoint instead of the kernels' layout (engine_options.pack_weights).\n"
    "--device cuda:N: the forward pass on CUDA device N; --precision exact (default: fp32) or fast (bf16\n"
    "  tensor-core projections); --no-graphs launches every decode step op by op instead of replaying graphs.\n"
    "  Builds without CUDA (or, for --shards, without the actors) refuse the flag with the reason.\n";

int fail(const std::string& message) {
  std::fprintf(stderr, "rampart-generate: %s\n", message.c_str());
  return 2;
}

bool parse_int(const std::string& text, long long lo, long long hi, long long* out) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789-") != std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

struct options {
  std::string model, logits_file;
  std::vector<int32_t> ids;
  long long n = 16, seed = 0, threads = 0, chunk = 0, batch = 1, kv_tokens = 0;
  long long shards = 0;        // in-process expert shard actors
  std::string shard_endpoints;  // or `rampartd --role shard` processes
  float temperature = 0, top_p = 1, min_p = 0;
  int top_k = 0;
  long long serve = 0;  // requests per client for --serve (0: off)
  bool bench = false, profile = false;
  bool pack = true;
  std::string device = "cpu", precision = "exact";
  bool graphs = true;
};

// CPU seconds used by this process so far (all threads).
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sequence I's prompt: the main prompt for I = 0, otherwise a different prompt of a different length.
std::vector<int32_t> prompt_for(const std::vector<int32_t>& main, int i, int64_t vocab) {
  if (i == 0) return main;
  std::vector<int32_t> p;
  for (size_t j = 0; j < main.size() + static_cast<size_t>(i); ++j)
    p.push_back(static_cast<int32_t>((main[j % main.size()] + 7919LL * i + 31LL * j) % vocab));
  return p;
}

// Sequences started on one engine for a run, released together (at the latest when the set goes away).
class sequence_set {
 public:
  explicit sequence_set(engine& e) : e_(e) {}
  ~sequence_set() { release(); }
  sequence_set(const sequence_set&) = delete;
  sequence_set& operator=(const sequence_set&) = delete;

  // Starts N empty sequences, after releasing the set's earlier ones.
  bool start(int n, std::string* err) {
    release();
    for (int i = 0; i < n; ++i) {
      records_.emplace_back();
      if (e_.start(&records_.back(), nullptr, 0, err) < 0) return false;
    }
    return true;
  }
  kv_sequence* operator[](size_t i) { return &records_[i]; }
  void release() {
    for (kv_sequence& r : records_) e_.release(&r);
    records_.clear();
  }

 private:
  engine& e_;
  std::deque<kv_sequence> records_;  // a deque: records never move once started
};

// Prefills the started sequences 0..P-1 with PROMPTS, CHUNK tokens per sequence per step (0: whole), all
// unfinished sequences in each step. LAST[i] receives sequence i's logits after its last prompt token; ALL, when
// non-null, every prompt row of sequence 0.
bool prefill(engine& e, sequence_set& seqs, const std::vector<std::vector<int32_t>>& prompts, long long chunk,
             std::vector<std::vector<float>>* last, std::vector<float>* all, std::string* err) {
  std::vector<size_t> done(prompts.size(), 0);
  last->assign(prompts.size(), {});
  step_output out;
  for (;;) {
    std::vector<seq_input> batch;
    std::vector<size_t> which;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const size_t left = prompts[i].size() - done[i];
      if (left == 0) continue;
      const size_t len = chunk > 0 ? std::min<size_t>(static_cast<size_t>(chunk), left) : left;
      batch.push_back({seqs[i], prompts[i].data() + done[i], static_cast<int64_t>(len), i == 0 && all != nullptr});
      which.push_back(i);
    }
    if (batch.empty()) return true;
    if (!e.step(batch, &out, err)) return false;
    for (size_t b = 0; b < batch.size(); ++b) {
      if (which[b] == 0 && all != nullptr)
        all->insert(all->end(), out.row(b, 0), out.row(b, 0) + batch[b].n_tokens * out.vocab_size);
      (*last)[which[b]].assign(out.row(b), out.row(b) + out.vocab_size);
      done[which[b]] += static_cast<size_t>(batch[b].n_tokens);
    }
  }
}

// Starts sequences 0..n_seqs-1 in SEQS with their prompts and prefills them. False + *err on failure.
bool start_all(engine& e, const options& o, int n_seqs, sequence_set* seqs, std::vector<std::vector<float>>* last,
               std::vector<float>* all, std::string* err) {
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < n_seqs; ++i) prompts.push_back(prompt_for(o.ids, i, e.config().vocab_size));
  if (!seqs->start(n_seqs, err)) return false;
  return prefill(e, *seqs, prompts, o.chunk, last, all, err);
}

// Decodes STEPS tokens for each of sequences 0..n-1 (prefilled, LAST holding their logits), sampling with
// SAMPLERS. GEN[i] receives the tokens; ALL, when non-null, sequence 0's logits rows except after the last token;
// STEP_SECONDS, when non-null, the wall time of each sample-and-step.
bool decode(engine& e, sequence_set& seqs, std::vector<sampler>& samplers, const std::vector<std::vector<float>>& last,
            long long steps, std::vector<std::vector<int32_t>>* gen, std::vector<float>* all, std::string* err,
            std::vector<double>* step_seconds = nullptr, std::vector<std::vector<float>>* final_rows = nullptr) {
  const size_t n = last.size(), V = static_cast<size_t>(e.config().vocab_size);
  std::vector<int32_t> next(n);
  std::vector<seq_input> batch(n);
  step_output out;
  gen->assign(n, {});
  for (long long s = 0; s < steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    e.parallel(static_cast<int64_t>(n), [&](int64_t j) {  // samplers are independent
      const size_t i = static_cast<size_t>(j);
      next[i] = samplers[i].sample(s == 0 ? last[i].data() : out.row(i), V);
    });
    for (size_t i = 0; i < n; ++i) {
      (*gen)[i].push_back(next[i]);
      batch[i] = {seqs[i], &next[i], 1, false};
    }
    if (s + 1 == steps) break;
    if (!e.step(batch, &out, err)) return false;
    if (step_seconds != nullptr) step_seconds->push_back(seconds_since(t0));
    if (all != nullptr) all->insert(all->end(), out.row(0), out.row(0) + V);
  }
  if (final_rows != nullptr) {  // the logits the next token would be sampled from
    final_rows->clear();
    for (size_t i = 0; i < n; ++i) {
      const float* row = steps > 1 ? out.row(i) : last[i].data();
      final_rows->emplace_back(row, row + V);
    }
  }
  return true;
}

std::vector<sampler> make_samplers(const options& o, int n) {
  std::vector<sampler> v;
  for (int i = 0; i < n; ++i)
    v.emplace_back(sampling_params{o.temperature, o.top_k, o.top_p, o.min_p, static_cast<uint64_t>(o.seed) + i});
  return v;
}

long long vm_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  return -1;
}

// Runs the prompt with batch - 1 companion prompts, generates N tokens each, prints sequence 0's tokens.
int generate(engine& e, const options& o) {
  std::string err;
  std::vector<std::vector<float>> last;
  std::vector<std::vector<int32_t>> gen;
  std::vector<float> logits;
  std::vector<float>* all = o.logits_file.empty() ? nullptr : &logits;
  std::vector<sampler> samplers = make_samplers(o, static_cast<int>(o.batch));
  sequence_set seqs(e);
  if (!start_all(e, o, static_cast<int>(o.batch), &seqs, &last, all, &err)) return fail(err);
  if (!decode(e, seqs, samplers, last, o.n, &gen, all, &err)) return fail(err);
  for (size_t j = 0; j < gen[0].size(); ++j) std::printf(j ? " %d" : "%d", gen[0][j]);
  std::printf("\n");
  if (all != nullptr) {
    std::ofstream f(o.logits_file, std::ios::binary);
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
    if (!f) return fail("cannot write " + o.logits_file);
  }
  return 0;
}

// FLOPs of prefilling T tokens from position 0: 2 per weight used per token (embedding lookup and lm_head
// excluded; lm_head counted once, for the last token) plus the absorbed attention's scores and sums.
double prefill_flops(const model_config& c, int64_t T) {
  const double D = c.hidden_size, H = c.num_attention_heads, n = c.qk_nope_head_dim, r = c.qk_rope_head_dim;
  const double v = c.v_head_dim, C = c.kv_lora_rank, Q = c.q_lora_rank;
  double per_token = 0, attn_pairs = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    per_token += (Q > 0 ? Q * D + H * (n + r) * Q : H * (n + r) * D) + (C + r) * D + H * n * C + H * v * C + D * H * v;
    if (c.is_moe_layer(l))
      per_token += c.n_routed_experts * D + 3.0 * D * c.moe_intermediate_size *
                                                (c.num_experts_per_tok + c.n_shared_experts);
    else
      per_token += 3.0 * D * c.intermediate_size;
    attn_pairs += H * (static_cast<double>(T) * (T + 1) / 2) * ((C + r) + C);
  }
  return 2.0 * (per_token * T + attn_pairs + static_cast<double>(c.vocab_size) * D);
}

void add_profile(const step_profile& p, step_profile* sum) {
  for (size_t i = 0; i < step_phase_count; ++i) sum->seconds[i] += p.seconds[i];
  sum->step_seconds += p.step_seconds;
  sum->steps += p.steps;
  sum->tokens += p.tokens;
}

// One line per phase: milliseconds per step and share of the step, over all runs of one batch size.
void print_profile(int batch, const step_profile& p) {
  if (p.steps == 0) return;
  const double per_step = 1e3 / static_cast<double>(p.steps);
  std::printf("profile batch %d: %.2f ms/step over %llu steps\n", batch, p.step_seconds * per_step,
              static_cast<unsigned long long>(p.steps));
  for (size_t i = 0; i < step_phase_count; ++i)
    std::printf("  %-22s %7.2f ms  %4.1f%%\n", step_phase_name(static_cast<step_phase>(i)), p.seconds[i] * per_step,
                100 * p.seconds[i] / p.step_seconds);
}

// What sampling one sequence's next token costs on one thread, for common settings, over rows of this model's
// own logits (at the last prompt position of each sequence, and 32 tokens into its completion): the median of 15
// rounds over each set of rows.
void print_sampling_costs(engine& e, const options& o) {
  std::vector<std::vector<float>> prompt_rows, decode_rows;
  std::string err;
  const int nseq = static_cast<int>(std::max<long long>(o.batch, 4));
  {
    sequence_set seqs(e);
    if (!start_all(e, o, nseq, &seqs, &prompt_rows, nullptr, &err)) return;
    // And the rows 32 tokens into the completion, sampled as the run's settings say.
    std::vector<sampler> samplers = make_samplers(o, nseq);
    std::vector<std::vector<int32_t>> gen;
    if (!decode(e, seqs, samplers, prompt_rows, 33, &gen, nullptr, &err, nullptr, &decode_rows)) return;
  }
  const size_t V = static_cast<size_t>(e.config().vocab_size);
  struct setting {
    const char* name;
    sampling_params p;
  };
  const setting settings[] = {{"greedy", {0, 0, 1, 0, 1}},
                              {"temperature 0.8", {0.8f, 0, 1, 0, 1}},
                              {"temperature 0.7 top_k 50", {0.7f, 50, 1, 0, 1}},
                              {"temperature 0.7 top_p 0.95", {0.7f, 0, 0.95f, 0, 1}},
                              {"temperature 1 min_p 0.05", {1.0f, 0, 1, 0.05f, 1}},
                              {"temperature 0.7 top_k 40 top_p 0.9 min_p 0.02", {0.7f, 40, 0.9f, 0.02f, 1}},
                              // Settings a client could pick to cost the batch the most.
                              {"temperature 0.7 top_k 257 top_p 0.95", {0.7f, 257, 0.95f, 0, 1}},
                              {"temperature 1 top_k 20000", {1.0f, 20000, 1, 0, 1}},
                              {"temperature 1 top_k 129279 top_p 0.99", {1.0f, 129279, 0.99f, 0, 1}},
                              {"temperature 1 top_p 0.000001", {1.0f, 0, 1e-6f, 0, 1}},
                              {"temperature 100 top_p 0.5", {100.0f, 0, 0.5f, 0, 1}},
                              {"temperature 1 min_p 1", {1.0f, 0, 1, 1.0f, 1}}};
  std::printf("sampling one sequence's token (vocabulary %zu, one thread, median of 15 rounds over %d rows each: "
              "at the last prompt position / 32 tokens on):\n",
              V, nseq);
  // The median time per row of 15 rounds over ROWS.
  auto per_row = [&](sampler& smp, const std::vector<std::vector<float>>& rows, long long* sink) {
    std::vector<double> t;
    for (int round = 0; round < 15; ++round) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& row : rows) *sink += smp.sample(row.data(), V);
      t.push_back(seconds_since(t0) / static_cast<double>(rows.size()));
    }
    std::nth_element(t.begin(), t.begin() + 7, t.end());
    return t[7];
  };
  for (const setting& st : settings) {
    sampler smp(st.p);
    long long sink = 0;
    const double at_prompt = per_row(smp, prompt_rows, &sink), later = per_row(smp, decode_rows, &sink);
    std::printf("  %-48s %8.1f / %6.1f us%s\n", st.name, at_prompt * 1e6, later * 1e6,
                sink < 0 ? " (no candidate)" : "");
  }
}

int bench(engine& e, const options& o) {
  std::string err;
  const long long steps = std::max<long long>(o.n, 32);
  std::vector<std::vector<float>> last;
  std::vector<std::vector<int32_t>> gen;
  std::printf("kernels %s, %d threads\n", e.kernel_name(), e.threads());
  // Batch 1 and batch N alternate three times and each reports its best run: the ratio then compares the two
  // at their quietest moments of the same process (the machine's speed can move by a third between runs).
  const std::vector<int> sizes = o.batch > 1 ? std::vector<int>{1, static_cast<int>(o.batch)} : std::vector<int>{1};
  std::vector<double> best(sizes.size(), 0), share(sizes.size(), 0);
  std::vector<std::string> runs(sizes.size());
  std::vector<step_profile> profiles(sizes.size());
  std::vector<std::vector<double>> step_times(sizes.size());
  for (int rep = 0; rep < 3; ++rep)
    for (size_t i = 0; i < sizes.size(); ++i) {
      const int nseq = sizes[i];
      std::vector<sampler> samplers = make_samplers(o, nseq);
      sequence_set seqs(e);
      if (!start_all(e, o, nseq, &seqs, &last, nullptr, &err)) return fail(err);
      e.reset_profile();
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      if (!decode(e, seqs, samplers, last, steps + 1, &gen, nullptr, &err, &step_times[i])) return fail(err);
      add_profile(e.profile(), &profiles[i]);
      const double wall = seconds_since(t0), tok_s = static_cast<double>(steps) * nseq / wall;
      runs[i] += (rep > 0 ? ", " : "") + std::to_string(static_cast<int>(tok_s + 0.5));
      if (tok_s > best[i]) {
        best[i] = tok_s;
        // The CPU share says how much of the run the engine's threads were actually on a core (others' load).
        share[i] = (cpu_seconds() - c0) / (wall * e.threads());
      }
    }
  const double tok_s_1 = best[0];
  for (size_t i = 0; i < sizes.size(); ++i)
    std::printf("decode batch %d: %.1f tok/s, best of 3 runs (%s) (%.2f ms/step; CPU share %.0f%% of %d threads)%s\n",
                sizes[i], best[i], runs[i].c_str(), 1e3 * sizes[i] / best[i], 100 * share[i], e.threads(),
                i > 0 ? (" = " + std::to_string(best[i] / tok_s_1).substr(0, 4) + "x batch 1").c_str() : "");
  // Per-step medians: a burst of the machine's other load spoils a few steps rather than a whole run, and a long
  // batch-N run is no likelier to be hit than a short batch-1 run.
  std::vector<double> median(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<double>& v = step_times[i];
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    median[i] = v[v.size() / 2];
  }
  std::printf("median step over %zu steps each:", step_times[0].size());
  for (size_t i = 0; i < sizes.size(); ++i)
    std::printf("%s batch %d %.2f ms (%.1f tok/s)", i ? "," : "", sizes[i], 1e3 * median[i], sizes[i] / median[i]);
  if (sizes.size() > 1) std::printf(" = %.2fx batch 1", sizes[1] * median[0] / median[1]);
  std::printf("\n");
  if (o.profile)
    for (size_t i = 0; i < sizes.size(); ++i) print_profile(sizes[i], profiles[i]);
  print_sampling_costs(e, o);
  std::vector<int32_t> long_prompt(512);
  for (int64_t j = 0; j < 512; ++j) long_prompt[j] = static_cast<int32_t>((j * 7919 + 13) % e.config().vocab_size);
  sequence_set one(e);
  if (!one.start(1, &err)) return fail(err);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  if (!prefill(e, one, {long_prompt}, o.chunk, &last, nullptr, &err)) return fail(err);
  const double prefill_s = seconds_since(t0);
  const double prefill_share = (cpu_seconds() - c0) / (prefill_s * e.threads());
  const long long rss = vm_rss_bytes();
  one.release();

  thread_pool pool(e.threads());
  const double peak = measure_fma_peak(pool);
  const double bandwidth = measure_read_bandwidth(pool, size_t{1} << 30);
  const double gflops = prefill_flops(e.config(), 512) / prefill_s / 1e9;
  std::printf("prefill 512 tokens: %.1f tok/s, %.1f GFLOP/s = %.0f%% of measured FMA peak %.1f GFLOP/s "
              "(CPU share %.0f%%)\n",
              512 / prefill_s, gflops, 100 * gflops / (peak / 1e9), peak / 1e9, 100 * prefill_share);
  const double bytes = static_cast<double>(e.weight_bytes_per_token());
  std::printf("decode batch 1 reads %.3f GB of weights per token: %.1f GB/s = %.0f%% of measured read "
              "bandwidth %.1f GB/s\n",
              bytes / 1e9, bytes * tok_s_1 / 1e9, 100 * bytes * tok_s_1 / bandwidth, bandwidth / 1e9);
  std::printf("memory: VmRSS %.2f GiB; weights %.2f GiB (%.2f GiB of them rewritten into the kernels' layout) + "
              "KV cache %.2f GiB\n",
              rss / 1073741824.0, e.mapped_weight_bytes() / 1073741824.0, e.packed_weight_bytes() / 1073741824.0,
              e.kv().bytes / 1073741824.0);
  return 0;
}

// Request K's prompt: as long as MAIN, the same for no two requests (no prefix-cache hits between them).
std::vector<int32_t> request_prompt(const std::vector<int32_t>& main, long long k, int64_t vocab) {
  std::vector<int32_t> p(main.size());
  for (size_t j = 0; j < main.size(); ++j)
    p[j] = static_cast<int32_t>((main[j] + 7919LL * k + 104729LL * static_cast<long long>(j) * (k + 1)) % vocab);
  return p;
}

// One run of the --serve workload: output tokens per second, and each request's time per output token (from
// its first token to its last, over the tokens between), in ms.
struct served {
  double tok_s = -1;
  long long tokens = 0;
  std::vector<double> tpot_ms;
};

served serve_once(engine& e, const options& o, std::string* err) {
  const scheduler_options so;  // the server's defaults ([engine] max_batch_sequences, max_step_tokens)
  batch_scheduler sched(&e, so);
  const int clients = static_cast<int>(o.batch);
  std::vector<long long> sent(static_cast<size_t>(clients), 0);
  std::vector<int> owner;  // request id - 1 -> client
  std::vector<std::chrono::steady_clock::time_point> first;  // request id - 1 -> its first token
  auto send = [&](int c) {
    sequence_request r;
    r.id = owner.size() + 1;
    r.client = "client-" + std::to_string(c);
    r.prompt = request_prompt(o.ids, static_cast<long long>(r.id), e.config().vocab_size);
    r.sampling = sampling_params{o.temperature, o.top_k, o.top_p, o.min_p, static_cast<uint64_t>(o.seed) + r.id};
    r.max_tokens = o.n;
    owner.push_back(c);
    first.emplace_back();
    ++sent[static_cast<size_t>(c)];
    const auto added = sched.add(std::move(r));
    if (!added.ok()) *err = added.message;
    return added.ok();
  };
  served out;
  for (int c = 0; c < clients; ++c)
    if (!send(c)) return out;
  const auto t0 = std::chrono::steady_clock::now();
  long long tokens = 0;
  step_report rep;
  while (sched.has_work()) {
    sched.step(&rep);
    const auto now = std::chrono::steady_clock::now();
    tokens += static_cast<long long>(rep.tokens.size());
    for (const generated_token& t : rep.tokens)
      if (t.index == 0) first[t.id - 1] = now;
    for (const finished_sequence& f : rep.finished) {
      if (f.reason != finish_reason::length) {
        *err = "request " + std::to_string(f.id) + " ended with " + to_string(f.reason) + " " + f.error;
        return out;
      }
      if (f.completion_tokens > 1)
        out.tpot_ms.push_back(std::chrono::duration<double, std::milli>(now - first[f.id - 1]).count() /
                              static_cast<double>(f.completion_tokens - 1));
      const int c = owner[f.id - 1];
      if (sent[static_cast<size_t>(c)] < o.serve && !send(c)) return out;
    }
  }
  out.tokens = tokens;
  out.tok_s = static_cast<double>(tokens) / seconds_since(t0);
  return out;
}

int serve(engine& e, const options& o) {
  std::string err;
  std::vector<served> runs;
  for (int rep = 0; rep < 3; ++rep) {
    runs.push_back(serve_once(e, o, &err));
    if (runs.back().tok_s < 0) return fail(err);
  }
  std::vector<size_t> order = {0, 1, 2};
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return runs[a].tok_s < runs[b].tok_s; });
  const served& median = runs[order[1]];
  std::printf("served batch %lld: %.1f tok/s, median of 3 runs (%.0f, %.0f, %.0f); time per output token p50 %.3f "
              "ms, p99 %.3f ms; %lld requests per client of %zu prompt tokens and %lld output tokens, %lld tokens in all\n",
              o.batch, median.tok_s, runs[0].tok_s, runs[1].tok_s, runs[2].tok_s,
              rampart::tools::percentile(median.tpot_ms, 0.5), rampart::tools::percentile(median.tpot_ms, 0.99),
              o.serve, o.ids.size(), o.n, median.tokens);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  bool have_ids = false;
  rampart::tools::flags f(argc, argv, "rampart-generate", usage);
  while (f.next()) {
    if (f.is("--bench")) o.bench = true;
    else if (f.is("--profile")) o.profile = true;
    else if (f.is("--no-pack")) o.pack = false;
    else if (f.is("--model")) o.model = f.value();
    else if (f.is("--ids")) {
      std::istringstream in(f.value());
      std::string tok;
      long long id;
      while (in >> tok) {
        if (!parse_int(tok, 0, 2147483647, &id)) f.fail("--ids: '" + tok + "' is not a token id");
        o.ids.push_back(static_cast<int32_t>(id));
      }
      have_ids = true;
    } else if (f.is("-n")) o.n = f.integer(1, 1000000);
    else if (f.is("--seed")) o.seed = f.integer(0, INT64_MAX);
    else if (f.is("--threads")) o.threads = f.integer(0, 1024);
    else if (f.is("--chunk")) o.chunk = f.integer(0, 1 << 30);
    else if (f.is("--batch")) o.batch = f.integer(1, 4096);
    else if (f.is("--kv-tokens")) o.kv_tokens = f.integer(0, 1LL << 32);
    else if (f.is("--shards")) o.shards = f.integer(1, 4096);
    else if (f.is("--shard-endpoints")) o.shard_endpoints = f.value();
    else if (f.is("--logits")) o.logits_file = f.value();
    else if (f.is("--temperature")) o.temperature = static_cast<float>(f.real(-1e30, 1e30));
    else if (f.is("--top-p")) o.top_p = static_cast<float>(f.real(-1e30, 1e30));
    else if (f.is("--min-p")) o.min_p = static_cast<float>(f.real(-1e30, 1e30));
    else if (f.is("--top-k")) o.top_k = static_cast<int>(f.integer(0, 1 << 30));
    else if (f.is("--serve")) o.serve = f.integer(1, 1000000);
    else if (f.is("--device")) o.device = f.value();
    else if (f.is("--precision")) o.precision = f.value();
    else if (f.is("--no-graphs")) o.graphs = false;
    else f.unknown();
  }
  if (o.model.empty()) f.fail("--model DIR is required");
  if (!have_ids || o.ids.empty()) f.fail("--ids needs at least one token id");
  if (o.profile && !o.bench) f.fail("--profile needs --bench");
  if (o.serve > 0 && o.bench) f.fail("--serve and --bench are separate runs");
  std::string err;
  if (!sampler::validate(sampling_params{o.temperature, o.top_k, o.top_p, o.min_p, 0}, &err)) return fail(err);
  load_error lerr;
  std::shared_ptr<const checkpoint> ck = checkpoint::open(o.model, &lerr);
  if (!ck) return fail(lerr.message);
  for (int32_t id : o.ids)
    if (id >= ck->config().vocab_size)
      return fail("--ids: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(ck->config().vocab_size) + ")");
  engine_options eo;
  eo.threads = static_cast<int>(o.threads);
  eo.prefault_weights = o.bench || o.serve > 0;
  eo.pack_weights = o.pack;
  eo.profile = o.profile;
  const long long per_seq = static_cast<long long>(o.ids.size()) + o.batch + std::max<long long>(o.n, 33) + 16;
  eo.kv_cache_tokens = o.kv_tokens > 0 ? o.kv_tokens : std::max<long long>(o.batch * per_seq + 512 + 64, 1024);
  const int device = rampart::parse_device_name(o.device, &err);
  if (device == -2) return fail("--device: " + err);
  if (o.precision != "exact" && o.precision != "fast") return fail("--precision must be exact or fast");
  if (device < 0 && (o.precision != "exact" || !o.graphs)) return fail("--precision and --no-graphs need --device cuda:N");
  if (device >= 0) {
#if RAMPART_WITH_CUDA
    eo.device = rampart::gpu::cuda_device(
        device, o.graphs, o.precision == "fast" ? rampart::gpu::precision::fast : rampart::gpu::precision::exact);
#else
    return fail("--device " + o.device + ": this build has no CUDA backend (CUDA was not found when it was configured)");
#endif
  }
  if (o.shards > 0 || !o.shard_endpoints.empty()) {
#if RAMPART_WITH_SHARDS
    if (device >= 0) return fail("--shards and --shard-endpoints run the experts on the CPU; not with --device");
    std::shared_ptr<sharded_expert_backend> shards = rampart::actors::expert_shards_from_flags(
        ck, static_cast<int>(o.shards), o.shard_endpoints, static_cast<int>(o.threads), &err);
    if (!shards) return fail(err);
    eo.experts = shards;
    auto e = engine::create(ck, eo, &err);
    if (!e) return fail(err);
    const int rc = o.serve > 0 ? serve(*e, o) : o.bench ? bench(*e, o) : generate(*e, o);
    if (o.bench) std::printf("%s\n", shards->costs_summary().c_str());
    return rc;
#else
    return fail("--shards and --shard-endpoints need the actors, which this engine-only build leaves out");
#endif
  }
  auto e = engine::create(ck, eo, &err);
  if (!e) return fail(err);
  return o.serve > 0 ? serve(*e, o) : o.bench ? bench(*e, o) : generate(*e, o);
}
