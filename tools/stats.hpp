// Small statistics the benchmark tools print.
#pragma once

#include <algorithm>
#include <vector>

namespace rampart::tools {

// The value at fraction P (0..1) of V's sorted order, rounded to the nearest rank; 0 for an empty V.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

}  // namespace rampart::tools
