// What one source may make the front end read and decode: a token bucket of bytes per source, charged before a
// message is decoded, so a client flooding large or many messages costs the server a bounded share of its I/O
// thread however fast it sends. A message costs its size plus a fixed overhead, which bounds small-message
// floods too. Not thread-safe: the front end's I/O thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace rampart::net {

class source_budget {
 public:
  static constexpr size_t message_overhead = 256;  // bytes charged per message on top of its size

  // BYTES_PER_S refills each source's bucket up to BURST_BYTES; at most MAX_SOURCES buckets are kept (past
  // that the table starts afresh: every source gets a full bucket again, which errs towards serving).
  source_budget(double bytes_per_s, double burst_bytes, size_t max_sources = 65536);

  // Charges a message of BYTES from SOURCE at NOW_MS. True when its bucket held the cost (now deducted); false,
  // with *RETRY_AFTER_MS when given, when it did not (nothing is deducted).
  bool take(const std::string& source, size_t bytes, int64_t now_ms, int64_t* retry_after_ms = nullptr);

  // Cost refused to SOURCE since its last admitted message. A source that goes on sending after being told to
  // wait runs this up; past a burst's worth it is flooding, not bursting.
  double refused_since_admitted(const std::string& source) const;
  // Forgets SOURCE's refusals (its bucket stays as it is).
  void clear_refused(const std::string& source);

  size_t sources() const { return buckets_.size(); }

 private:
  struct bucket {
    double tokens = 0;
    int64_t last_ms = 0;
    double refused = 0;
  };
  double rate_, burst_;
  size_t max_sources_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace rampart::net
