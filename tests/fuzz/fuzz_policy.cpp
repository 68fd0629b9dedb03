// Fuzzes the policy parser: any bytes must parse or fail with a located error, never crash; whatever is accepted
// must satisfy the invariants validation promises, and a refused input must leave the previous policy intact.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::config;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  policy p = base_policy();
  p.source = "untouched";
  config_error err;
  if (!parse_policy(text, "fuzz.toml", &p, &err)) {
    if (p.source != "untouched" || err.file != "fuzz.toml" || err.line < 0 || err.column < 0) __builtin_trap();
    return 0;
  }
  if (!p.levels[0].find_class(p.fallback_class)) __builtin_trap();
  if (!p.registration_curve_key.empty() && !is_valid_curve_key(p.registration_curve_key)) __builtin_trap();
  for (const auto& lv : p.levels) {
    if (!lv.find_class("registered") || !lv.find_class("trial") || !lv.find_class("anonymous")) __builtin_trap();
    if (lv.anonymous_share < 0 || lv.anonymous_share > 1) __builtin_trap();
    for (int i = 1; i < priority_count; ++i) {
      if (lv.queue_delay_ms[i] > lv.queue_delay_ms[i - 1]) __builtin_trap();
      if (lv.max_utilization[i] > lv.max_utilization[i - 1]) __builtin_trap();
    }
    for (const auto& c : lv.classes) {
      if (!is_valid_class_name(c.name) || c.requests_burst < 1 || c.requests_per_s <= 0) __builtin_trap();
      if (c.tokens_burst < static_cast<double>(lv.max_prompt_tokens + lv.max_tokens)) __builtin_trap();
    }
  }
  return 0;
}
