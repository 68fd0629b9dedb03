#include "monitor/flow_table.hpp"

namespace rampart::monitor {

flow_table::flow_table(size_t entries, int64_t greeting_timeout_us) : timeout_us_(greeting_timeout_us) {
  size_t sets = 1;
  while (sets * ways < entries) sets <<= 1;
  entries_.assign(sets * ways, entry{});
  set_mask_ = sets - 1;
}

uint64_t flow_table::key_of(uint64_t a_hash, uint16_t ap, uint64_t b_hash, uint16_t bp) {
  uint64_t h = a_hash * 0x9e3779b97f4a7c15ULL + b_hash;
  h ^= (uint64_t{ap} << 16 | bp) * 0xd6e8feb86659fd93ULL;
  h ^= h >> 32;
  return h | 1;  // never 0, so a key cannot look like an empty slot's
}

flow_table::entry* flow_table::find(uint64_t key) {
  entry* set = &entries_[(key & set_mask_) * ways];
  for (size_t i = 0; i < ways; ++i) {
    if (set[i].state != empty && set[i].key == key) return &set[i];
  }
  return nullptr;
}

flow_table::entry* flow_table::insert(uint64_t key, int64_t ts_us, flow_outcome* out) {
  entry* set = &entries_[(key & set_mask_) * ways];
  entry* victim = &set[0];
  for (size_t i = 0; i < ways; ++i) {
    if (set[i].state == empty) {
      victim = &set[i];
      break;
    }
    if (set[i].ts_us < victim->ts_us) victim = &set[i];
  }
  if (victim->state != empty) {
    if (victim->state == awaiting_greeting && ts_us - victim->ts_us >= timeout_us_) {
      ++out->stalled;
      out->stalled_client = victim->client;
    } else {
      ++evictions_;
    }
  }
  *victim = entry{};
  victim->key = key;
  victim->ts_us = ts_us;
  victim->state = syn_seen;
  return victim;
}

flow_outcome flow_table::on_tcp(const packet_summary& p, uint64_t src_hash, uint64_t dst_hash) {
  flow_outcome out;
  const uint8_t f = p.tcp_flags;
  const bool syn = f & tcp_flag::syn, ack = f & tcp_flag::ack;
  const bool closing = f & (tcp_flag::fin | tcp_flag::rst);
  if (syn && !ack) {
    const uint64_t key = key_of(src_hash, p.src_port, dst_hash, p.dst_port);
    if (!find(key)) {  // a retransmitted SYN does not start a second connection
      entry* e = insert(key, p.ts_us, &out);
      e->client = p.src;
      out.started = true;
    }
    return out;
  }
  if (syn && ack) {
    entry* e = find(key_of(dst_hash, p.dst_port, src_hash, p.src_port));
    if (!e) {
      out.unsolicited_synack = true;
    } else if (e->state == syn_seen) {
      e->server_isn = p.tcp_seq;
      e->synack_seen = true;
    }
    return out;
  }
  // A packet from the client side of a tracked connection.
  if (entry* e = find(key_of(src_hash, p.src_port, dst_hash, p.dst_port))) {
    // Once the SYN-ACK was seen, only the ACK of it completes the handshake (sequence numbers wrap).
    const bool acknowledges = !e->synack_seen || p.tcp_ack == e->server_isn + 1;
    if (e->state == syn_seen && ack && !(f & tcp_flag::rst) && acknowledges) {
      out.completed = true;
      e->state = awaiting_greeting;
      e->ts_us = p.ts_us;
    }
    if (e->state == awaiting_greeting) {
      e->client_octets += p.payload_len;
      if (e->client_octets >= greeting_octets) {
        e->state = empty;  // greeting complete: nothing left to watch
      } else if (closing) {
        ++out.stalled;
        out.stalled_client = e->client;
        e->state = empty;
      }
    } else if (f & tcp_flag::rst) {
      e->state = empty;  // aborted before completing
    }
    return out;
  }
  // A close from the server side of a connection whose client never sent its greeting.
  if (closing) {
    if (entry* e = find(key_of(dst_hash, p.dst_port, src_hash, p.src_port))) {
      if (e->state == awaiting_greeting) {
        ++out.stalled;
        out.stalled_client = e->client;
      }
      e->state = empty;
    }
  }
  return out;
}

uint32_t flow_table::sweep(int64_t now_us, size_t parts, std::vector<ip_address>* stalled_clients) {
  const size_t sets = set_mask_ + 1;
  const size_t n = parts == 0 ? sets : (sets + parts - 1) / parts;
  uint32_t stalled = 0;
  for (size_t k = 0; k < n; ++k) {
    entry* set = &entries_[sweep_pos_ * ways];
    for (size_t i = 0; i < ways; ++i) {
      entry& e = set[i];
      if (e.state == empty || now_us - e.ts_us < timeout_us_) continue;
      if (e.state == awaiting_greeting) {
        ++stalled;
        if (stalled_clients) stalled_clients->push_back(e.client);
      } else {
        ++expired_half_open_;
      }
      e.state = empty;
    }
    sweep_pos_ = (sweep_pos_ + 1) & set_mask_;
  }
  return stalled;
}

size_t flow_table::occupied() const {
  size_t n = 0;
  for (const entry& e : entries_) n += e.state != empty;
  return n;
}

}  // namespace rampart::monitor
