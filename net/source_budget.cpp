#include "net/source_budget.hpp"

#include <algorithm>
#include <cmath>

namespace rampart::net {

source_budget::source_budget(double bytes_per_s, double burst_bytes, size_t max_sources)
    : rate_(bytes_per_s), burst_(burst_bytes), max_sources_(max_sources) {}

bool source_budget::take(const std::string& source, size_t bytes, int64_t now_ms, int64_t* retry_after_ms) {
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_) buckets_.clear();
    it = buckets_.emplace(source, bucket{burst_, now_ms}).first;
  }
  bucket& b = it->second;
  if (now_ms > b.last_ms) {
    b.tokens = std::min(burst_, b.tokens + rate_ * static_cast<double>(now_ms - b.last_ms) / 1000.0);
    b.last_ms = now_ms;
  }
  const double cost = static_cast<double>(bytes + message_overhead);
  if (b.tokens >= cost) {
    b.tokens -= cost;
    b.refused = 0;
    return true;
  }
  b.refused += cost;
  if (retry_after_ms) *retry_after_ms = static_cast<int64_t>(std::ceil((cost - b.tokens) / rate_ * 1000.0));
  return false;
}

double source_budget::refused_since_admitted(const std::string& source) const {
  auto it = buckets_.find(source);
  return it == buckets_.end() ? 0.0 : it->second.refused;
}

void source_budget::clear_refused(const std::string& source) {
  auto it = buckets_.find(source);
  if (it != buckets_.end()) it->second.refused = 0;
}

}  // namespace rampart::net
