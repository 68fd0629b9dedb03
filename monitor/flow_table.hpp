// TCP handshake tracking over a fixed-size, 4-way set-associative table keyed by the connection 4-tuple.
// It answers, per packet and without allocation: did this SYN start a connection, did this ACK complete one,
// was this SYN-ACK unsolicited (no SYN seen for it), and did a connection close or time out before its client
// sent a complete 64-octet ZMTP greeting (a stalled handshake), and from which client. A full set evicts its
// oldest entry. When the server's SYN-ACK was seen, only an ACK that acknowledges it completes the handshake:
// a sender that forges its source address never sees the SYN-ACK, so it cannot complete (or stall) one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "monitor/packet.hpp"

namespace rampart::monitor {

// What one TCP packet did to the handshake state; several may be set at once.
struct flow_outcome {
  bool started = false;             // first SYN of a connection
  bool completed = false;           // client's ACK finishing the three-way handshake
  bool unsolicited_synack = false;  // SYN-ACK answering no SYN seen
  uint32_t stalled = 0;             // connections found stalled (closed or evicted without greeting): 0 or 1
  ip_address stalled_client;        // the client of that stalled connection
};

class flow_table {
 public:
  // ENTRIES is rounded up to a power of two (at least 4). GREETING_TIMEOUT_US: age after which a connection
  // still waiting for its greeting counts as stalled.
  flow_table(size_t entries, int64_t greeting_timeout_us);

  // Updates the state for one parsed TCP packet (p.proto == tcp, not a later fragment). SRC_HASH and
  // DST_HASH are p.src.hash() and p.dst.hash(), which the caller has computed already.
  flow_outcome on_tcp(const packet_summary& p, uint64_t src_hash, uint64_t dst_hash);

  // Sweeps 1/PARTS of the table (round robin) for entries older than the timeout at NOW_US: waiting-for-
  // greeting entries count as stalled, half-open ones simply expire. Returns the number found stalled and,
  // when STALLED_CLIENTS is given, appends the client of each.
  uint32_t sweep(int64_t now_us, size_t parts, std::vector<ip_address>* stalled_clients = nullptr);

  uint64_t evictions() const { return evictions_; }
  uint64_t expired_half_open() const { return expired_half_open_; }
  size_t occupied() const;

  static constexpr uint32_t greeting_octets = 64;  // ZMTP 3.x greeting size

 private:
  enum state : uint8_t { empty = 0, syn_seen = 1, awaiting_greeting = 2 };
  struct entry {
    uint64_t key = 0;
    int64_t ts_us = 0;  // SYN time, then handshake completion time
    uint32_t client_octets = 0;
    uint32_t server_isn = 0;  // sequence number of the server's SYN-ACK, when synack_seen
    ip_address client;        // the address that sent the SYN
    uint8_t state = empty;
    bool synack_seen = false;
  };
  static constexpr size_t ways = 4;

  entry* find(uint64_t key);
  entry* insert(uint64_t key, int64_t ts_us, flow_outcome* out);
  static uint64_t key_of(uint64_t a_hash, uint16_t ap, uint64_t b_hash, uint16_t bp);

  std::vector<entry> entries_;
  size_t set_mask_;
  int64_t timeout_us_;
  size_t sweep_pos_ = 0;
  uint64_t evictions_ = 0;
  uint64_t expired_half_open_ = 0;
};

}  // namespace rampart::monitor
