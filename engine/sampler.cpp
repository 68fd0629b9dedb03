#include "engine/sampler.hpp"

#include "engine/sampler_rows.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

namespace rampart::model {
namespace {

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

xoshiro256ss::xoshiro256ss(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& s : s_) s = splitmix64(&state);
}

uint64_t xoshiro256ss::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double xoshiro256ss::uniform() {
  return static_cast<double>(next() >> 11) * 0x1p-53;
}

bool sampler::validate(const sampling_params& p, std::string* err) {
  auto fail = [&](const char* message) {
    if (err) *err = message;
    return false;
  };
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature))
    return fail("temperature must be a finite number >= 0");
  if (p.top_k < 0) return fail("top_k must be >= 0 (0 disables it)");
  if (!(p.top_p > 0 && p.top_p <= 1)) return fail("top_p must be in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) return fail("min_p must be in [0, 1]");
  return true;
}

sampler::sampler(const sampling_params& params) : params_(params), rng_(params.seed) {
  if (!(params_.temperature >= 0) || !std::isfinite(params_.temperature)) params_.temperature = 0;
  params_.top_k = std::max(0, params_.top_k);
  if (!(params_.top_p > 0 && params_.top_p <= 1)) params_.top_p = 1;
  if (!(params_.min_p >= 0)) params_.min_p = 0;
  params_.min_p = std::min(params_.min_p, 1.0f);
}

namespace {

constexpr float lowest = -std::numeric_limits<float>::max();
constexpr float infinity = std::numeric_limits<float>::infinity();
// A cut (top-k's k-th token, top-p's last kept token when draws alone did not settle it) is found by
// bracketing: a sample of the row, sorted, estimates where the cut lies; one pass sums the mass above and
// inside a bracket of sample_margin samples either side of the estimate and collects the bracket's tokens, and
// the bracket is narrowed until it is small enough to sort.
constexpr size_t sample_size = 256;
constexpr size_t sample_margin = 8;
constexpr size_t list_max = 4096;  // a bracket this small is collected into a list
constexpr size_t sort_max = 256;   // a list this small is sorted
constexpr int max_tries = 4;       // draws tried against top-p and min-p before the cut is found

}  // namespace

int32_t greedy_token(const float* logits, size_t vocab) {
  const sampler_row_ops& ops = sampler_rows();
  const float best = ops.max(logits, vocab);
  if (!(best > -infinity)) return -1;
  return static_cast<int32_t>(ops.find(logits, vocab, best));
}

bool sampler::top_k(const float* logits, size_t vocab, float max, float* k_cut, size_t* k_index, int32_t* token) {
  const sampler_row_ops& ops = sampler_rows();
  const double target = static_cast<double>(params_.top_k);
  cut_search at{lowest, max};
  const auto [lo, hi] = place_bracket(logits, vocab, at, target, mass_kind::count);
  bracket_sums pass;
  ops.bracket(logits, nullptr, vocab, lo, hi, &pass, ids_.data(), list_max);
  const cut_point k = find_cut(logits, nullptr, vocab, target, at, lo, hi, pass);
  if (!k.found) return false;
  if (static_cast<size_t>(params_.top_k) > sort_max) {
    *k_cut = k.logit;
    *k_index = k.index;
    return false;
  }
  const size_t count = k.covered > 0 ? k.covered : ops.collect(logits, vocab, k.logit, infinity, ids_.data(), vocab);
  list_.clear();
  for (size_t i = 0; i < count; ++i) {
    const uint32_t id = ids_[i];
    if (logits[id] < k.logit || (logits[id] == k.logit && id > k.index)) continue;  // past the k-th token
    list_.push_back({logits[id], static_cast<int32_t>(id), 0.0});
  }
  *token = sample_candidates();
  return true;
}

template <class Counts>
int32_t sampler::walk(double u, size_t vocab, const Counts& counts) const {
  size_t b = 0;
  for (; b + 1 < blocks_.size() && u >= blocks_[b]; ++b) u -= blocks_[b];
  const size_t begin = b * sampler_block, end = std::min(vocab, begin + sampler_block);
  for (size_t i = begin; i < end; ++i) {
    if (!counts(i)) continue;
    if (u < w_[i]) return static_cast<int32_t>(i);
    u -= w_[i];
  }
  // Rounding left u past the block's last counted token: that token, or the nearest counted one.
  for (size_t i = end; i-- > 0;)
    if (counts(i)) return static_cast<int32_t>(i);
  for (size_t i = end; i < vocab; ++i)
    if (counts(i)) return static_cast<int32_t>(i);
  return -1;
}

int32_t sampler::sample_cut(const float* logits, size_t vocab, float max, double row_total, double target,
                            float k_cut, size_t k_index) {
  const sampler_row_ops& ops = sampler_rows();
  const float min_w = params_.min_p;
  float cut = lowest;
  size_t cut_index = vocab;
  if (params_.top_p < 1) {
    cut_search at{lowest, max};
    at.inside_mass = row_total;
    const auto [lo, hi] = place_bracket(logits, vocab, at, target, mass_kind::weight);
    bracket_sums pass;
    ops.bracket(logits, w_.data(), vocab, lo, hi, &pass, ids_.data(), list_max);
    const cut_point p = find_cut(logits, w_.data(), vocab, target, at, lo, hi, pass);
    if (p.found) {
      cut = p.logit;
      cut_index = p.index;
    }
  }
  if (k_index < vocab && (cut < k_cut || (cut == k_cut && cut_index > k_index))) {  // top-k's cut comes first
    cut = k_cut;
    cut_index = k_index;
  }
  const auto is_kept = [&](size_t i) {
    const float l = logits[i];
    return (l > cut || (l == cut && i <= cut_index)) && w_[i] >= min_w && w_[i] > 0;
  };
  const double kept = ops.kept_blocks(logits, w_.data(), vocab, cut, cut_index, min_w, blocks_.data());
  return walk(rng_.uniform() * kept, vocab, is_kept);
}

int32_t sampler::sample(const float* logits, size_t vocab) {
  if (params_.temperature == 0) return greedy_token(logits, vocab);
  const sampler_row_ops& ops = sampler_rows();
  const float max = ops.max(logits, vocab);
  if (!(max > -infinity)) return -1;
  ids_.resize(vocab);
  if (max == infinity) {  // the +infinity logits share all the probability
    size_t count = ops.collect(logits, vocab, infinity, infinity, ids_.data(), vocab);
    if (params_.top_k > 0) count = std::min(count, static_cast<size_t>(params_.top_k));  // ids ascend: ties by id
    list_.clear();
    for (size_t i = 0; i < count; ++i) list_.push_back({0.0f, static_cast<int32_t>(ids_[i]), 0.0});
    return sample_candidates();
  }
  // Top-k's cut: up to sort_max tokens are drawn from as a list; a larger k stays a cut over the row.
  float k_cut = lowest;
  size_t k_index = vocab;
  if (int32_t token = -1; params_.top_k > 0 && top_k(logits, vocab, max, &k_cut, &k_index, &token)) return token;

  // Every finite logit is a candidate: weights relative to the best token (weight 1).
  w_.resize(vocab);
  blocks_.resize((vocab + sampler_block - 1) / sampler_block);
  const float scale = static_cast<float>(
      std::min(1.4426950408889634 / static_cast<double>(params_.temperature),
               static_cast<double>(std::numeric_limits<float>::max())));
  const double row_total = ops.weights(logits, vocab, max, scale, w_.data(), blocks_.data());
  double total = row_total;
  // A large top-k: the candidates are the tokens up to its cut, a prefix of the (logit desc, id asc) order, so
  // the mass before any of them is all inside it and top-p's test below holds as it is.
  const bool k_cuts = k_index < vocab;
  const auto in_k = [&](size_t i) {
    return !k_cuts || logits[i] > k_cut || (logits[i] == k_cut && i <= k_index);
  };
  if (k_cuts) total = ops.kept_blocks(logits, w_.data(), vocab, k_cut, k_index, 0, blocks_.data());
  const auto any_weight = [&](size_t i) { return w_[i] > 0 && in_k(i); };
  const float min_w = params_.min_p;
  if (params_.top_p >= 1 && min_w <= 0) return walk(rng_.uniform() * total, vocab, any_weight);

  // Filters: a draw from all the weights, kept if the filters keep it, gives each kept token in proportion to
  // its weight. A token passes top-p when the mass before it (logit desc, id asc) is below top_p of the total,
  // which one pass sums, and surely when its own weight is above the rest (1 - top_p of the total): then the
  // tokens before it reach top_p without it. The kept mass is at least top_p of the whole, so a try or two
  // nearly always do; past max_tries, the cut is found and the draw walks the kept weights.
  const double target = static_cast<double>(params_.top_p) * total;
  const double surely = (1 - static_cast<double>(params_.top_p)) * total * (1 + 1e-5);
  for (int attempt = 0; attempt < max_tries; ++attempt) {
    const int32_t t = walk(rng_.uniform() * total, vocab, any_weight);
    if (t < 0) break;
    const size_t i = static_cast<size_t>(t);
    if (w_[i] < min_w) continue;
    if (params_.top_p >= 1 || w_[i] > surely || ops.mass_before(logits, w_.data(), vocab, logits[i], i) < target)
      return t;
  }
  return sample_cut(logits, vocab, max, row_total, target, k_cut, k_index);
}

int32_t sampler::sample_candidates() {
  float best = -infinity;
  for (const candidate& c : list_) best = std::max(best, c.logit);
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  double total = 0;
  for (candidate& c : list_) {
    // d == 0 is spelled out: with a subnormal temperature inv_t is infinite and 0 * inf would be NaN.
    const double d = static_cast<double>(c.logit) - best;
    c.weight = d == 0 ? 1.0 : std::exp(d * inv_t);
    total += c.weight;
  }
  if (params_.top_p < 1) {
    // The shortest run, largest first, whose mass reaches top_p of the total.
    sample_ = list_;
    std::sort(sample_.begin(), sample_.end(), [](const candidate& a, const candidate& b) {
      return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
    });
    const double target = static_cast<double>(params_.top_p) * total;
    double cumulative = 0;
    for (const candidate& c : sample_) {
      cumulative += c.weight;
      if (cumulative >= target) {
        for (candidate& k : list_)
          if (k.logit < c.logit || (k.logit == c.logit && k.id > c.id)) k.weight = 0;
        break;
      }
    }
  }
  // min_p: the largest weight is 1, so the threshold is min_p itself. The best token always survives.
  double kept = 0;
  for (candidate& c : list_) {
    if (c.weight < params_.min_p) c.weight = 0;
    kept += c.weight;
  }
  double u = rng_.uniform() * kept;
  int32_t last = -1;
  for (const candidate& c : list_) {
    if (c.weight == 0) continue;
    last = c.id;
    if (u < c.weight) return last;
    u -= c.weight;
  }
  return last;  // rounding left u at the very end of the range
}

std::pair<float, float> sampler::place_bracket(const float* logits, size_t vocab, const cut_search& at,
                                               double target, mass_kind kind) {
  // A sample of about sample_size values in the bracket (4 times as many when counting: only its first few,
  // largest first, are put in order).
  const size_t size = kind == mass_kind::count ? 4 * sample_size : sample_size;
  const size_t expected = at.inside_n < 0 ? vocab : static_cast<size_t>(at.inside_n);
  const size_t stride = std::max<size_t>(1, expected / size);
  sample_.clear();
  size_t visited = 0;
  for (size_t i = stride / 2; i < vocab; i += stride, ++visited) {
    const float l = logits[i];
    if (!(l >= at.lo && l <= at.hi)) continue;
    sample_.push_back({l, static_cast<int32_t>(i), kind == mass_kind::weight ? w_[i] : 1.0});
  }
  if (sample_.empty()) return {at.lo, at.hi};
  const auto larger = [](const candidate& a, const candidate& b) { return a.logit > b.logit; };
  // Each sampled value stands for an equal share of the bracket's mass when that is known, else for
  // vocab / visited values of the row.
  double sampled = 0;
  for (const candidate& c : sample_) sampled += c.weight;
  double per = static_cast<double>(vocab) / static_cast<double>(visited), above = at.above;
  if (at.inside_mass >= 0 && sampled > 0) per = at.inside_mass / sampled;
  size_t r = sample_.size() - 1;
  if (kind == mass_kind::count) {
    // Equal masses: the rank follows from the target, and only the ranks up to it and its margin are sorted.
    r = std::min(r, static_cast<size_t>(std::max(0.0, std::ceil((target - above) / per) - 1)));
    const size_t sorted = std::min(sample_.size(), r + sample_margin + 1);
    if (sorted > sample_.size() / 4)
      std::sort(sample_.begin(), sample_.end(), larger);
    else
      std::partial_sort(sample_.begin(), sample_.begin() + static_cast<std::ptrdiff_t>(sorted), sample_.end(), larger);
    sample_.resize(sorted);
  } else {
    std::sort(sample_.begin(), sample_.end(), larger);
    for (size_t j = 0; j < sample_.size(); ++j) {
      above += sample_[j].weight * per;
      if (above >= target) {
        r = j;
        break;
      }
    }
  }
  // The estimate's error grows like the square root of its rank: a cut among the first few samples (top-k's
  // usual case) gets a bracket of a few samples, small enough to be sorted after one pass.
  const size_t margin = std::min(sample_margin, 2 + static_cast<size_t>(2 * std::sqrt(static_cast<double>(r))));
  const float hi = r >= margin ? sample_[r - margin].logit : at.hi;
  const float lo = r + margin < sample_.size() ? sample_[r + margin].logit : at.lo;
  return {lo, hi};
}

sampler::cut_point sampler::find_cut(const float* logits, const float* w, size_t vocab, double target,
                                     cut_search at, float lo, float hi, const bracket_sums& pass) {
  const sampler_row_ops& ops = sampler_rows();
  const auto mass = [&](size_t i) { return w != nullptr ? static_cast<double>(w[i]) : 1.0; };
  const auto take_list = [&](size_t count) {
    list_.clear();
    for (size_t i = 0; i < count; ++i)
      list_.push_back({logits[ids_[i]], static_cast<int32_t>(ids_[i]), mass(ids_[i])});
    cut_point cut = cut_in_list(at.above, target);
    if (at.above_n == 0) cut.covered = count;  // ids_ holds every value >= the cut
    return cut;
  };
  bracket_sums s = pass;
  for (;;) {
    // The pass summed [lo, hi] inside the bracket [at.lo, at.hi]: narrow the bracket to the part holding the cut.
    if (target <= s.above_mass && hi != at.hi) {  // above hi
      at.lo = std::nextafter(hi, infinity);
      at.inside_mass = s.above_mass - at.above;
      at.inside_n = s.above_count - at.above_n;
    } else if (target > s.above_mass + s.inside_mass && lo != at.lo) {  // below lo
      at.hi = std::nextafter(lo, -infinity);
      if (at.inside_n >= 0) at.inside_n -= s.above_count + s.inside_count - at.above_n;
      if (at.inside_mass >= 0) at.inside_mass -= s.above_mass + s.inside_mass - at.above;
      at.above = s.above_mass + s.inside_mass;
      at.above_n = s.above_count + s.inside_count;
    } else {
      const bool narrower = lo != at.lo || hi != at.hi;
      at = {lo, hi, s.above_mass, s.above_count, s.inside_mass, s.inside_count};
      if (static_cast<size_t>(at.inside_n) <= list_max) return take_list(s.collected);
      if (!narrower && at.lo != at.hi) {
        // The sample could not place a bracket (too few distinct values in it): take the whole bracket.
        return take_list(ops.collect(logits, vocab, at.lo, at.hi, ids_.data(), ids_.size()));
      }
    }
    if (at.inside_n == 0) return {};
    if (at.lo == at.hi) {
      // Every value in the bracket is the same: the cut is the k-th of them in id order.
      const double m = mass(ops.find(logits, vocab, at.lo));
      const int64_t n = at.inside_n >= 0 ? at.inside_n : static_cast<int64_t>(vocab);
      int64_t k = m > 0 ? static_cast<int64_t>(std::ceil((target - at.above) / m)) : n;
      k = std::clamp<int64_t>(k, 1, n);
      while (k > 1 && at.above + static_cast<double>(k - 1) * m >= target) --k;
      const size_t found = ops.collect(logits, vocab, at.lo, at.hi, ids_.data(), static_cast<size_t>(k));
      if (found == 0) return {};
      return {true, ids_[std::min(found, static_cast<size_t>(k)) - 1], at.lo};
    }
    if (at.inside_n >= 0 && static_cast<size_t>(at.inside_n) <= list_max)
      return take_list(ops.collect(logits, vocab, at.lo, at.hi, ids_.data(), list_max));
    std::tie(lo, hi) = place_bracket(logits, vocab, at, target, w != nullptr ? mass_kind::weight : mass_kind::count);
    ops.bracket(logits, w, vocab, lo, hi, &s, ids_.data(), list_max);
  }
}

sampler::cut_point sampler::cut_in_list(double above, double target) {
  const auto higher = [](const candidate& a, const candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  };
  while (list_.size() > sort_max) {
    // The same bracketing as over the row, in memory.
    const size_t stride = list_.size() / sample_size;
    sample_.clear();
    for (size_t i = stride / 2; i < list_.size(); i += stride) sample_.push_back(list_[i]);
    std::sort(sample_.begin(), sample_.end(), higher);
    const double per = static_cast<double>(list_.size()) / static_cast<double>(sample_.size());
    size_t r = sample_.size();
    double cumulative = above;
    for (size_t j = 0; j < sample_.size(); ++j) {
      cumulative += sample_[j].weight * per;
      if (cumulative >= target) {
        r = j;
        break;
      }
    }
    const bool top = r < sample_margin, bottom = r + sample_margin >= sample_.size();
    const candidate hi = top ? candidate{} : sample_[r - sample_margin];
    const candidate lo = bottom ? candidate{} : sample_[r + sample_margin];
    // In (logit desc, id asc) order: before HI, from HI to LO, after LO.
    double up = 0, in = 0;
    for (const candidate& c : list_) {
      if (!top && higher(c, hi))
        up += c.weight;
      else if (bottom || !higher(lo, c))
        in += c.weight;
    }
    size_t kept = 0;
    const size_t before = list_.size();
    if (!top && target <= above + up) {
      for (const candidate& c : list_)
        if (higher(c, hi)) list_[kept++] = c;
    } else if (!bottom && target > above + up + in) {
      for (const candidate& c : list_)
        if (higher(lo, c)) list_[kept++] = c;
      above += up + in;
    } else {
      for (const candidate& c : list_)
        if ((top || !higher(c, hi)) && (bottom || !higher(lo, c))) list_[kept++] = c;
      above += up;
    }
    list_.resize(kept);
    if (kept == before) break;
  }
  std::sort(list_.begin(), list_.end(), higher);
  double cumulative = above;
  const candidate* last = nullptr;
  for (const candidate& c : list_) {
    if (c.weight <= 0) continue;
    last = &c;
    cumulative += c.weight;
    if (cumulative >= target) break;
  }
  // Rounding can leave the mass short of the target by a hair: then nothing is cut, as with top_p = 1.
  if (last == nullptr || cumulative < target) return {};
  return {true, static_cast<size_t>(last->id), last->logit};
}

stop_reason check_stop(const stop_condition& stop, int32_t token, size_t generated) {
  if (std::find(stop.eos_ids.begin(), stop.eos_ids.end(), token) != stop.eos_ids.end())
    return stop_reason::eos;
  if (stop.max_tokens > 0 && generated >= stop.max_tokens) return stop_reason::max_tokens;
  return stop_reason::none;
}

}  // namespace rampart::model
