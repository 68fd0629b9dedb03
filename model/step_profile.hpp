// Where an engine step's time goes, phase by phase (engine_options::profile). The timers cost two clock reads
// per phase and layer, and nothing when profiling is off.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace rampart::model {

enum class step_phase : uint8_t {
  attention_projections,  // q (LoRA or not), kv_a, their norms and RoPE, the KV write, W_UK absorption
  attention_scores,       // scores, softmax and the weighted latent sums
  attention_output,       // W_UV and o_proj
  router,                 // router logits and top-k
  routed_experts,         // the expert backend's call: gather, the experts, weighted combine
  shared_experts,
  dense_mlp,
  lm_head,
  other,  // embedding, norms, residual adds, batch layout and checks: the step's time outside the phases above
};
inline constexpr size_t step_phase_count = 9;

inline const char* step_phase_name(step_phase p) {
  static constexpr std::array<const char*, step_phase_count> names = {
      "attention projections", "attention scores", "attention output", "router", "routed experts",
      "shared experts",        "dense mlp",        "lm_head",          "other"};
  return names[static_cast<size_t>(p)];
}

struct step_profile {
  std::array<double, step_phase_count> seconds{};  // summed over the steps
  double step_seconds = 0;                         // whole steps, summed
  uint64_t steps = 0;
  uint64_t tokens = 0;  // new tokens over the steps
};

// Adds the time from construction to destruction to PROFILE's PHASE; does nothing when PROFILE is null.
class phase_timer {
 public:
  phase_timer(step_profile* profile, step_phase phase) : profile_(profile), phase_(phase) {
    if (profile_ != nullptr) start_ = std::chrono::steady_clock::now();
  }
  ~phase_timer() {
    if (profile_ != nullptr)
      profile_->seconds[static_cast<size_t>(phase_)] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  phase_timer(const phase_timer&) = delete;
  phase_timer& operator=(const phase_timer&) = delete;

 private:
  step_profile* profile_;
  step_phase phase_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace rampart::model
