// Choosing the next token from a row of logits: greedy, or seeded sampling with temperature, top-k, top-p and
// min-p; and the stop check for end-of-sequence and token limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rampart::model {

struct bracket_sums;

struct sampling_params {
  float temperature = 0;  // 0: greedy (argmax, lowest id on ties); otherwise > 0
  int top_k = 0;          // keep the k largest logits (ties: lower id first); 0: off
  float top_p = 1;        // keep the smallest most-probable set whose probability reaches top_p; in (0, 1]
  float min_p = 0;        // keep tokens with probability >= min_p * the largest probability; in [0, 1]
  uint64_t seed = 0;
};

// xoshiro256** (Blackman & Vigna, 2018) seeded by four outputs of splitmix64(seed). Own implementation so
// that a seed gives the same draws with every standard library.
class xoshiro256ss {
 public:
  explicit xoshiro256ss(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1) with 53 random bits

 private:
  uint64_t s_[4];
};

// Not thread-safe: one sampler per sequence. sample() allocates only until its scratch space has grown to the
// vocabulary size once.
class sampler {
 public:
  // PARAMS must pass validate(); invalid values are clamped into range.
  explicit sampler(const sampling_params& params);

  // True when every field is in range; otherwise false and *err names the field and its allowed range.
  static bool validate(const sampling_params& params, std::string* err);

  // The chosen token id in [0, vocab). The candidates are the finite logits (or, when some logit is
  // +infinity, those logits, with equal shares). Filters apply in this order: top-k keeps the k largest logits
  // (ties: lower id first); on the softmax of logits / temperature of what is left, top-p keeps the shortest
  // run, largest first (ties by id), whose probability reaches top_p, and min-p drops tokens below min_p times
  // the largest probability. The kept tokens are drawn in proportion to their probabilities, with uniform
  // numbers from the seeded generator: the same seed and logits give the same tokens (on the same ISA, like
  // the logits themselves). NaN logits are never chosen; with no candidate, returns -1. Over a vocabulary of
  // 129,280 this costs a few passes over the row, never a sort of it (docs/benchmarks.md).
  int32_t sample(const float* logits, size_t vocab);

  const sampling_params& params() const { return params_; }
  // The next uniform draw in [0, 1) of this sampler's seeded generator, for a device that samples the row where
  // its logits are (seq_input::uniform): one per token, so a seed gives the same tokens there run after run.
  double next_uniform() { return rng_.uniform(); }

 private:
  struct candidate {
    float logit;
    int32_t id;
    double weight;
  };
  struct cut_point {
    bool found = false;
    size_t index = 0;  // the last token kept, in (logit desc, id asc) order
    float logit = 0;
    size_t covered = 0;  // when > 0: ids_[0, covered) hold (ascending) every token at or above the cut, and more
  };
  // Where the search for a cut stands: the cut is in the bracket [lo, hi]; the finite values above hi have
  // mass `above` (count above_n); the bracket's mass and count, where known (else < 0).
  struct cut_search {
    float lo, hi;
    double above = 0;
    int64_t above_n = 0;
    double inside_mass = -1;
    int64_t inside_n = -1;
  };
  // Each value's mass in a search: 1 (top-k) or its weight in w_ (top-p).
  enum class mass_kind : uint8_t { count, weight };
  int32_t sample_candidates();
  // Top-k's cut over the row. A k up to sort_max: the candidates are drawn from as a list (true, *TOKEN);
  // a larger k: *K_CUT and *K_INDEX say where the kept prefix ends (false; also when no cut is found).
  bool top_k(const float* logits, size_t vocab, float max, float* k_cut, size_t* k_index, int32_t* token);
  // The token at U in the running sum of w_ in id order (over blocks summing to blocks_), counting only the
  // tokens COUNTS says.
  template <class Counts>
  int32_t walk(double u, size_t vocab, const Counts& counts) const;
  // The exact draw after rejection gave up: top-p's cut of TARGET (bracketed over the row's mass ROW_TOTAL),
  // top-k's cut if it comes first, min-p; the draw walks the kept weights.
  int32_t sample_cut(const float* logits, size_t vocab, float max, double row_total, double target, float k_cut,
                     size_t k_index);
  std::pair<float, float> place_bracket(const float* logits, size_t vocab, const cut_search& at, double target,
                                        mass_kind kind);
  cut_point find_cut(const float* logits, const float* w, size_t vocab, double target, cut_search at,
                     float lo, float hi, const bracket_sums& pass);
  cut_point cut_in_list(double above, double target);

  sampling_params params_;
  xoshiro256ss rng_;
  std::vector<float> w_;          // per-token weights of the row
  std::vector<double> blocks_;    // kept weight per block of the row
  std::vector<uint32_t> ids_;     // token ids collected from the row
  std::vector<candidate> list_;   // candidates being cut or drawn from
  std::vector<candidate> sample_;  // a sample of the row, to place a bracket around a cut
};

// Lowest-id argmax over finite-or-infinite logits, ignoring NaN; -1 when no logit is above -infinity.
int32_t greedy_token(const float* logits, size_t vocab);

enum class stop_reason : uint8_t { none, eos, max_tokens };

struct stop_condition {
  std::vector<int32_t> eos_ids;  // any of these ends the sequence (the token itself is generated)
  size_t max_tokens = 0;         // 0: no limit
};

// Whether the sequence ends after generating TOKEN as its GENERATED-th token (1-based count). End-of-sequence
// takes precedence over the limit when both hold.
stop_reason check_stop(const stop_condition& stop, int32_t token, size_t generated);

}  // namespace rampart::model
