#include "net/source_budget.hpp"

#include <algorithm>
#include <cmath>

namespace rampart::net {

source_budget::source_budget(double bytes_per_s, double burst_bytes, double messages_per_s, double message_burst,
                             size_t max_sources)
    : rate_(bytes_per_s),
      burst_(burst_bytes),
      message_rate_(messages_per_s),
      message_burst_(message_burst),
      max_sources_(max_sources) {}

bool source_budget::take(const std::string& source, size_t bytes, int64_t now_ms, int64_t* retry_after_ms) {
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_) buckets_.clear();
    bucket fresh;
    fresh.tokens = burst_;
    fresh.messages = message_burst_;
    fresh.last_ms = now_ms;
    it = buckets_.emplace(source, fresh).first;
  }
  bucket& b = it->second;
  if (now_ms > b.last_ms) {
    const double seconds = static_cast<double>(now_ms - b.last_ms) / 1000.0;
    b.tokens = std::min(burst_, b.tokens + rate_ * seconds);
    b.messages = std::min(message_burst_, b.messages + message_rate_ * seconds);
    // Refusals wear off at the rates too: what stays counted is what the source sent beyond its budget.
    b.refused = std::max(0.0, b.refused - rate_ * seconds);
    b.refused_messages = std::max(0.0, b.refused_messages - message_rate_ * seconds);
    b.last_ms = now_ms;
  }
  const double cost = static_cast<double>(bytes + message_overhead);
  if (b.tokens >= cost && b.messages >= 1.0) {
    b.tokens -= cost;
    b.messages -= 1.0;
    return true;
  }
  b.refused += cost;
  b.refused_messages += 1.0;
  if (retry_after_ms) {
    const double wait_bytes = b.tokens >= cost ? 0.0 : (cost - b.tokens) / rate_;
    const double wait_messages = b.messages >= 1.0 ? 0.0 : (1.0 - b.messages) / message_rate_;
    *retry_after_ms = static_cast<int64_t>(std::ceil(std::max(wait_bytes, wait_messages) * 1000.0));
  }
  return false;
}

void source_budget::start_low(const std::string& source, int64_t now_ms) {
  if (buckets_.size() >= max_sources_ && buckets_.count(source) == 0) buckets_.clear();
  bucket& b = buckets_[source];
  b = bucket{};
  b.tokens = burst_ / 100;
  b.messages = message_burst_ / 100;
  b.last_ms = now_ms;
}

bool source_budget::flooding(const std::string& source) const {
  auto it = buckets_.find(source);
  return it != buckets_.end() &&
         (it->second.refused > burst_ || it->second.refused_messages > message_burst_);
}

double source_budget::refused(const std::string& source) const {
  auto it = buckets_.find(source);
  return it == buckets_.end() ? 0.0 : it->second.refused;
}

void source_budget::clear_refused(const std::string& source) {
  auto it = buckets_.find(source);
  if (it != buckets_.end()) {
    it->second.refused = 0;
    it->second.refused_messages = 0;
  }
}

}  // namespace rampart::net
