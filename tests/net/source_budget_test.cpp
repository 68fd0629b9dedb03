// The per-source read budget, with an injected clock; every expected value is worked out by hand.
#include <catch2/catch.hpp>

#include "net/source_budget.hpp"

using rampart::net::source_budget;

TEST_CASE("a source's bucket pays for message bytes plus 256 and refills at its rate", "[source_budget]") {
  // 1000 bytes/s, burst 2000: a 744-byte message costs 1000, so two pass at once and the third waits.
  source_budget b(1000, 2000, 1000, 1000);  // messages never the limit here
  int64_t retry = 0;
  CHECK(b.take("10.0.0.1", 744, 0));
  CHECK(b.take("10.0.0.1", 744, 0));
  CHECK_FALSE(b.take("10.0.0.1", 744, 0, &retry));
  CHECK(retry == 1000);  // 1000 missing tokens at 1000/s
  CHECK_FALSE(b.take("10.0.0.1", 744, 999, &retry));
  CHECK(retry == 1);
  CHECK(b.take("10.0.0.1", 744, 1000));
  // Another source has its own full bucket.
  CHECK(b.take("10.0.0.2", 1744, 1000));
  // Refill stops at the burst: after 10 s idle only 2000 tokens are there.
  CHECK(b.take("10.0.0.1", 1744, 11000));
  CHECK_FALSE(b.take("10.0.0.1", 1, 11000));
}

TEST_CASE("a message larger than the burst never passes, and a refusal charges nothing", "[source_budget]") {
  source_budget b(100, 1000, 1000, 1000);
  int64_t retry = 0;
  CHECK_FALSE(b.take("s", 1000, 0, &retry));  // costs 1256 > 1000
  CHECK(b.take("s", 744, 0));                 // the refusal took nothing: 1000 were still there
}

TEST_CASE("past max_sources the table starts afresh instead of growing", "[source_budget]") {
  source_budget b(1, 300, 1000, 1000, 2);
  CHECK(b.take("a", 44, 0));
  CHECK(b.take("b", 44, 0));
  CHECK_FALSE(b.take("a", 44, 0));
  CHECK(b.sources() == 2);
  CHECK(b.take("c", 44, 0));  // a third source: the table is cleared first
  CHECK(b.sources() == 1);
  CHECK(b.take("a", 44, 0));  // so "a" has a full bucket again
}

TEST_CASE("refusals add up and wear off at the refill rate, admitted messages or not", "[source_budget]") {
  source_budget b(1000, 1000, 1000, 1000);
  CHECK(b.take("s", 744, 0));               // 1000 of 1000
  CHECK_FALSE(b.take("s", 744, 0));         // refused: 1000
  CHECK_FALSE(b.take("s", 244, 0));         // refused: 500 more
  CHECK(b.refused("s") == 1500);
  CHECK(b.refused("other") == 0);
  b.clear_refused("s");
  CHECK(b.refused("s") == 0);
  CHECK_FALSE(b.take("s", 744, 500));       // 500 tokens back, not enough: refused 1000
  CHECK(b.refused("s") == 1000);
  CHECK(b.take("s", 244, 500));             // 500 admitted: the refusals stay counted
  CHECK(b.refused("s") == 1000);
  CHECK(b.take("s", 0, 1000));              // 500 ms later: 500 bytes of them worn off (and 256 taken)
  CHECK(b.refused("s") == 500);
}

TEST_CASE("a source sending twenty times its message rate is flooding although a message gets through now and then",
          "[source_budget]") {
  // 500 messages/s, burst 1000: the front end's per-connection budget. 10,000 messages a second, one every 0.1 ms
  // (in 1 ms steps of ten): after the burst, one message in twenty is admitted as the bucket refills.
  source_budget b(1e12, 1e12, 500, 1000);
  int admitted = 0;
  int64_t flooding_at = -1;
  for (int64_t ms = 0; ms < 1000 && flooding_at < 0; ++ms) {
    for (int i = 0; i < 10; ++i) admitted += b.take("c", 10, ms);
    if (b.flooding("c")) flooding_at = ms;
  }
  CHECK(admitted > 1000);  // the burst and the trickle after it
  // 1000 refused beyond the refill (9.5 a millisecond net) takes a little over 200 ms after the burst is spent.
  CHECK(flooding_at > 100);
  CHECK(flooding_at < 400);
  // Sending at its rate is never a flood, however long it goes on: 500 a second for 10 s.
  source_budget steady(1e12, 1e12, 500, 1000);
  for (int64_t ms = 0; ms < 10000; ms += 2) steady.take("c", 10, ms);
  CHECK_FALSE(steady.flooding("c"));
}

TEST_CASE("small messages are held to the message rate, and a source refused a burst of messages is flooding",
          "[source_budget]") {
  // 10 messages/s, burst 5; bytes plentiful (1 MB/s).
  source_budget b(1e6, 1e6, 10, 5);
  int64_t retry = 0;
  for (int i = 0; i < 5; ++i) CHECK(b.take("s", 10, 0));
  CHECK_FALSE(b.take("s", 10, 0, &retry));
  CHECK(retry == 100);  // one message at 10/s
  CHECK_FALSE(b.take("s", 10, 50, &retry));
  CHECK(retry == 50);   // half a message back after 50 ms
  CHECK(b.take("s", 10, 100));
  // Two refusals so far, worn off by 100 ms at 10 a second to one. Four more make a burst's worth (5), not more;
  // the next makes it a flood. Byte refusals wear off at 1 MB/s: only this millisecond's count.
  for (int i = 0; i < 4; ++i) CHECK_FALSE(b.take("s", 10, 100));
  CHECK_FALSE(b.flooding("s"));
  CHECK_FALSE(b.take("s", 10, 100));
  CHECK(b.flooding("s"));
  CHECK(b.refused("s") == 5 * 266);
  b.clear_refused("s");
  CHECK_FALSE(b.flooding("s"));
  CHECK_FALSE(b.flooding("nobody"));
  // A byte flood is a flood too: 1 KB/s, burst 2000 bytes.
  source_budget bytes(1000, 2000, 1000, 1000);
  CHECK(bytes.take("s", 1744, 0));  // 2000
  for (int i = 0; i < 2; ++i) CHECK_FALSE(bytes.take("s", 744, 0));  // 2000 refused: not more than a burst
  CHECK_FALSE(bytes.flooding("s"));
  CHECK_FALSE(bytes.take("s", 0, 0));  // 256 more
  CHECK(bytes.flooding("s"));
}

TEST_CASE("a source started low holds a hundredth of each burst, then refills at its rates", "[source_budget]") {
  source_budget b(1000, 100000, 10, 500);  // 1000 bytes (a 744-byte message) and 5 messages to start with
  b.start_low("s", 0);
  CHECK(b.take("s", 744, 0));
  CHECK_FALSE(b.take("s", 0, 0));  // 256 bytes short
  CHECK(b.take("s", 0, 256));      // 256 ms refill 256 bytes; messages: 4 left + 2.56
  CHECK(b.take("other", 50000, 0));  // other sources start full
}
