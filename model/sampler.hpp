// Choosing the next token from a row of logits: greedy, or seeded sampling with temperature, top-k, top-p and
// min-p; and the stop check for end-of-sequence and token limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rampart::model {

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

  // The chosen token id in [0, vocab). Filters apply in this order on logits / temperature: top-k, then
  // top-p and min-p on the softmax of what is left; the draw walks the kept tokens (sorted by probability,
  // ties by id, when top-p is on; by id otherwise). NaN logits are never chosen; if every logit is NaN or
  // -infinity, returns -1. Logits of +infinity share all the probability.
  int32_t sample(const float* logits, size_t vocab);

  const sampling_params& params() const { return params_; }

 private:
  struct candidate {
    float logit;
    int32_t id;
  };
  sampling_params params_;
  xoshiro256ss rng_;
  std::vector<candidate> scratch_;
  std::vector<double> weights_;
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
