// What one source may make the front end read and decode: two token buckets per source, of bytes and of
// messages, charged before a message is decoded, so a client flooding large or many messages costs the server
// a bounded share of its I/O thread and of the stages behind it however fast it sends. A message costs its
// size plus a fixed overhead in bytes, and one message. Not thread-safe: the front end's I/O thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace rampart::net {

class source_budget {
 public:
  static constexpr size_t message_overhead = 256;  // bytes charged per message on top of its size

  // BYTES_PER_S refills each source's byte bucket up to BURST_BYTES, MESSAGES_PER_S its message bucket up to
  // MESSAGE_BURST; at most MAX_SOURCES sources are kept (past that the table starts afresh: every source gets
  // full buckets again, which errs towards serving).
  source_budget(double bytes_per_s, double burst_bytes, double messages_per_s, double message_burst,
                size_t max_sources = 65536);

  // Charges a message of BYTES from SOURCE at NOW_MS. True when both buckets held the cost (now deducted);
  // false, with *RETRY_AFTER_MS when given, when either did not (nothing is deducted).
  bool take(const std::string& source, size_t bytes, int64_t now_ms, int64_t* retry_after_ms = nullptr);

  // True when SOURCE's refusals, worn off at the bucket's rates, add up to more than a burst's worth (of bytes,
  // or of messages): it goes on sending after being told to wait, so it is flooding, not bursting. Admitted
  // messages do not reset the count: a flooder sending twenty times its rate has one message in twenty
  // admitted as the bucket refills, and is still flooding.
  bool flooding(const std::string& source) const;
  // Bytes refused to SOURCE, less what its byte rate has refilled since each refusal.
  double refused(const std::string& source) const;
  // Gives SOURCE buckets holding a hundredth of a burst as of NOW_MS (they refill at their rates from then on).
  void start_low(const std::string& source, int64_t now_ms);
  // Forgets SOURCE's refusals (its bucket stays as it is).
  void clear_refused(const std::string& source);

  size_t sources() const { return buckets_.size(); }

 private:
  struct bucket {
    double tokens = 0;    // bytes
    double messages = 0;
    int64_t last_ms = 0;
    double refused = 0;   // bytes refused since the last admitted message
    double refused_messages = 0;
  };
  double rate_, burst_, message_rate_, message_burst_;
  size_t max_sources_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace rampart::net
