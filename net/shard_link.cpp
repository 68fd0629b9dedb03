#include "net/shard_link.hpp"

#include <cstring>
#include <zmq.hpp>

namespace rampart::net {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the shard link writes host floats as little-endian");

namespace {

constexpr uint32_t kMagic = 0x4b485352;  // bytes "RSHK"
constexpr uint8_t kVersion = 1;
constexpr size_t kHeader = 16;
constexpr uint32_t kMaxCount = 1u << 24, kMaxHidden = 1u << 16;

using clock_type = std::chrono::steady_clock;

void put(std::vector<uint8_t>* out, const void* p, size_t n) {
  const size_t at = out->size();
  out->resize(at + n);
  if (n) std::memcpy(out->data() + at, p, n);
}
template <class T>
void put(std::vector<uint8_t>* out, T v) {
  put(out, &v, sizeof v);
}
void header(std::vector<uint8_t>* out, shard_frame_kind kind, uint64_t id) {
  out->clear();
  put(out, kMagic);
  put(out, kVersion);
  put(out, static_cast<uint8_t>(kind));
  put(out, uint16_t{0});
  put(out, id);
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
bool known_kind(uint8_t k) {
  return k == 1 || k == 2 || k == 3 || k == 0x81 || k == 0x82 || k == 0x83 || k == 0xff;
}

}  // namespace

void encode_run_request(uint64_t id, const model::shard_batch& b, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::run, id);
  put(out, static_cast<uint32_t>(b.layer));
  put(out, static_cast<uint32_t>(b.hidden));
  put(out, static_cast<uint32_t>(b.n_rows));
  put(out, static_cast<uint32_t>(b.n_items));
  put(out, b.item_row.data(), sizeof(int32_t) * static_cast<size_t>(b.n_items));
  put(out, b.item_expert.data(), sizeof(int32_t) * static_cast<size_t>(b.n_items));
  put(out, b.rows.data(), sizeof(float) * static_cast<size_t>(b.n_rows) * static_cast<size_t>(b.hidden));
}

void encode_run_result(uint64_t id, const model::shard_batch& b, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::run_result, id);
  put(out, static_cast<uint32_t>(b.n_items));
  put(out, static_cast<uint32_t>(b.hidden));
  put(out, b.compute_ns);
  put(out, b.out.data(), sizeof(float) * static_cast<size_t>(b.n_items) * static_cast<size_t>(b.hidden));
}

void encode_simple(shard_frame_kind kind, uint64_t id, std::vector<uint8_t>* out) { header(out, kind, id); }

void encode_warm(uint64_t id, const std::vector<int32_t>& experts, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::warm, id);
  put(out, static_cast<uint32_t>(experts.size()));
  put(out, experts.data(), sizeof(int32_t) * experts.size());
}

void encode_error(uint64_t id, const std::string& message, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::error, id);
  put(out, static_cast<uint32_t>(message.size()));
  put(out, message.data(), message.size());
}

bool decode_shard_frame(const uint8_t* d, size_t size, shard_frame* f, std::string* err) {
  if (size < kHeader) return *err = "frame of " + std::to_string(size) + " bytes is shorter than the header", false;
  if (get<uint32_t>(d) != kMagic) return *err = "bad magic", false;
  if (d[4] != kVersion) return *err = "unsupported version " + std::to_string(d[4]), false;
  if (!known_kind(d[5])) return *err = "unknown kind " + std::to_string(d[5]), false;
  f->kind = static_cast<shard_frame_kind>(d[5]);
  f->request_id = get<uint64_t>(d + 8);
  const uint8_t* body = d + kHeader;
  const size_t left = size - kHeader;
  auto counted = [&](size_t unit, uint32_t* n) {
    if (left < 4) return *err = "body too short", false;
    *n = get<uint32_t>(body);
    if (*n > kMaxCount || left != 4 + unit * *n)
      return *err = "body of " + std::to_string(left) + " bytes does not hold " + std::to_string(*n) + " entries", false;
    return true;
  };
  uint32_t n = 0;
  switch (f->kind) {
    case shard_frame_kind::warm:
      if (!counted(4, &n)) return false;
      f->experts.resize(n);
      if (n) std::memcpy(f->experts.data(), body + 4, 4 * static_cast<size_t>(n));
      return true;
    case shard_frame_kind::error:
      if (!counted(1, &n)) return false;
      f->message.assign(reinterpret_cast<const char*>(body + 4), n);
      return true;
    case shard_frame_kind::ping:
    case shard_frame_kind::pong:
    case shard_frame_kind::warm_done:
      if (left != 0) return *err = "unexpected body", false;
      return true;
    default:
      return true;  // run and run_result bodies: decode_run_request / decode_run_result
  }
}

bool decode_run_request(const uint8_t* d, size_t size, model::shard_batch* b, std::string* err) {
  shard_frame f;
  if (!decode_shard_frame(d, size, &f, err)) return false;
  if (f.kind != shard_frame_kind::run) return *err = "not a run request", false;
  if (size < kHeader + 16) return *err = "run request too short", false;
  const uint8_t* p = d + kHeader;
  const uint32_t layer = get<uint32_t>(p), hidden = get<uint32_t>(p + 4), n_rows = get<uint32_t>(p + 8),
                 n_items = get<uint32_t>(p + 12);
  if (hidden < 1 || hidden > kMaxHidden || n_rows > kMaxCount || n_items > kMaxCount || layer > kMaxCount)
    return *err = "run request counts out of range", false;
  const uint64_t want = kHeader + 16 + 8ull * n_items + 4ull * n_rows * hidden;
  if (size != want)
    return *err = "run request of " + std::to_string(size) + " bytes, its counts need " + std::to_string(want), false;
  b->layer = static_cast<int32_t>(layer);
  b->hidden = static_cast<int32_t>(hidden);
  b->n_rows = static_cast<int32_t>(n_rows);
  b->n_items = static_cast<int32_t>(n_items);
  grow(b->item_row, n_items);
  grow(b->item_expert, n_items);
  grow(b->rows, static_cast<size_t>(n_rows) * hidden);
  p += 16;
  std::memcpy(b->item_row.data(), p, 4ull * n_items);
  std::memcpy(b->item_expert.data(), p + 4ull * n_items, 4ull * n_items);
  std::memcpy(b->rows.data(), p + 8ull * n_items, 4ull * n_rows * hidden);
  return true;
}

bool decode_run_result(const uint8_t* d, size_t size, model::shard_batch* b, std::string* err) {
  shard_frame f;
  if (!decode_shard_frame(d, size, &f, err)) return false;
  if (f.kind != shard_frame_kind::run_result) return *err = "not a run result", false;
  if (size < kHeader + 16) return *err = "run result too short", false;
  const uint8_t* p = d + kHeader;
  const uint32_t n_items = get<uint32_t>(p), hidden = get<uint32_t>(p + 4);
  if (n_items != static_cast<uint32_t>(b->n_items) || hidden != static_cast<uint32_t>(b->hidden))
    return *err = "run result for " + std::to_string(n_items) + " items of width " + std::to_string(hidden) +
                  ", sent " + std::to_string(b->n_items) + " of " + std::to_string(b->hidden),
           false;
  if (size != kHeader + 16 + 4ull * n_items * hidden) return *err = "run result size does not match", false;
  grow(b->out, static_cast<size_t>(n_items) * hidden);
  b->compute_ns = get<uint64_t>(p + 8);
  std::memcpy(b->out.data(), p + 16, 4ull * n_items * hidden);
  return true;
}

// ---- attention-rank side --------------------------------------------------------------------------------------

std::shared_ptr<zmq_shard_transport> zmq_shard_transport::create(const std::vector<std::string>& endpoints,
                                                                 std::string* err) {
  if (endpoints.empty()) return *err = "no shard endpoints", nullptr;
  std::shared_ptr<zmq_shard_transport> t(new zmq_shard_transport());
  t->ctx_ = std::make_unique<zmq::context_t>(1);
  for (const std::string& ep : endpoints) {
    auto s = std::make_unique<zmq::socket_t>(*t->ctx_, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::immediate, 1);  // no queueing for a shard that is not connected: fail at once
    s->set(zmq::sockopt::reconnect_ivl, 100);
    s->set(zmq::sockopt::reconnect_ivl_max, 1000);
    s->set(zmq::sockopt::heartbeat_ivl, 500);
    s->set(zmq::sockopt::heartbeat_timeout, 1500);
    try {
      s->connect(ep);
    } catch (const zmq::error_t& e) {
      *err = "shard endpoint '" + ep + "': " + e.what();
      return nullptr;
    }
    t->socks_.push_back(std::move(s));
    t->endpoints_.push_back(ep);
  }
  t->expected_.assign(endpoints.size(), 0);
  t->ponged_.assign(endpoints.size(), false);
  return t;
}

zmq_shard_transport::~zmq_shard_transport() = default;

std::string zmq_shard_transport::name(int shard) const {
  return "expert shard " + std::to_string(shard) + " (" + endpoints_[static_cast<size_t>(shard)] + ")";
}

bool zmq_shard_transport::send(int shard) {
  try {
    return socks_[static_cast<size_t>(shard)]->send(zmq::buffer(buf_), zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

void zmq_shard_transport::drain(int shard, std::vector<model::shard_call>* calls) {
  zmq::socket_t& s = *socks_[static_cast<size_t>(shard)];
  for (;;) {
    zmq::message_t msg;
    if (!s.recv(msg, zmq::recv_flags::dontwait)) return;
    const auto* d = static_cast<const uint8_t*>(msg.data());
    shard_frame f;
    std::string err;
    if (!decode_shard_frame(d, msg.size(), &f, &err)) {
      ++malformed_;
      continue;
    }
    const uint64_t want = expected_[static_cast<size_t>(shard)];
    model::shard_call* call = nullptr;
    if (calls != nullptr && want != 0 && f.request_id == want)
      for (auto& c : *calls)
        if (c.shard == shard) call = &c;
    switch (f.kind) {
      case shard_frame_kind::run_result:
        if (call == nullptr) break;  // a late answer to a request already given up on
        expected_[static_cast<size_t>(shard)] = 0;
        call->ok = decode_run_result(d, msg.size(), call->batch.get(), &err);
        if (!call->ok) {
          ++malformed_;
          call->error = name(shard) + ": malformed answer: " + err;
        }
        break;
      case shard_frame_kind::error:
        if (call != nullptr) {
          expected_[static_cast<size_t>(shard)] = 0;
          call->error = name(shard) + ": " + f.message;
        } else if (auto w = warms_.find(f.request_id); w != warms_.end()) {
          w->second.state->store(-1);
          warms_.erase(w);
        }
        break;
      case shard_frame_kind::warm_done:
        if (auto w = warms_.find(f.request_id); w != warms_.end()) {
          w->second.state->store(1);
          warms_.erase(w);
        }
        break;
      case shard_frame_kind::pong:
        ponged_[static_cast<size_t>(shard)] = true;
        break;
      default:
        ++malformed_;  // requests never travel towards the attention rank
    }
  }
}

void zmq_shard_transport::exchange(std::vector<model::shard_call>& calls, clock_type::time_point deadline) {
  for (auto& c : calls) {
    const uint64_t id = next_id_++;
    encode_run_request(id, *c.batch, &buf_);
    if (send(c.shard)) {
      expected_[static_cast<size_t>(c.shard)] = id;
    } else {
      c.ok = false;
      c.error = name(c.shard) + ": not connected";
    }
  }
  std::vector<zmq::pollitem_t> items;
  items.reserve(calls.size());
  for (;;) {
    items.clear();
    for (auto& c : calls)
      if (expected_[static_cast<size_t>(c.shard)] != 0)
        items.push_back({socks_[static_cast<size_t>(c.shard)]->handle(), 0, ZMQ_POLLIN, 0});
    const auto now = clock_type::now();
    if (items.empty() || now >= deadline) break;
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    zmq::poll(items.data(), items.size(), wait);
    for (auto& c : calls)
      if (expected_[static_cast<size_t>(c.shard)] != 0) drain(c.shard, &calls);
  }
  for (auto& c : calls)
    if (expected_[static_cast<size_t>(c.shard)] != 0) {
      expected_[static_cast<size_t>(c.shard)] = 0;
      c.ok = false;
      c.error = name(c.shard) + ": no answer before the deadline";
    }
}

std::shared_ptr<model::warm_state> zmq_shard_transport::warm(int shard, const std::vector<int32_t>& experts) {
  auto state = std::make_shared<model::warm_state>(0);
  const uint64_t id = next_id_++;
  encode_warm(id, experts, &buf_);
  if (!send(shard)) {
    state->store(-1);
    return state;
  }
  warms_[id] = pending_warm{state, clock_type::now() + std::chrono::seconds(60)};
  return state;
}

void zmq_shard_transport::poll() {
  for (int s = 0; s < size(); ++s) drain(s, nullptr);
  const auto now = clock_type::now();
  for (auto w = warms_.begin(); w != warms_.end();) {
    if (now < w->second.deadline) {
      ++w;
      continue;
    }
    w->second.state->store(-1);  // the shard went away with the request
    w = warms_.erase(w);
  }
}

bool zmq_shard_transport::wait_ready(std::chrono::milliseconds timeout, std::string* err) {
  const auto deadline = clock_type::now() + timeout;
  std::fill(ponged_.begin(), ponged_.end(), false);
  while (clock_type::now() < deadline) {
    bool all = true;
    for (int s = 0; s < size(); ++s)
      if (!ponged_[static_cast<size_t>(s)]) {
        all = false;
        encode_simple(shard_frame_kind::ping, next_id_++, &buf_);
        send(s);
      }
    if (all) return true;
    std::vector<zmq::pollitem_t> items;
    for (auto& s : socks_) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
    for (int s = 0; s < size(); ++s) drain(s, nullptr);
  }
  std::string silent;
  for (int s = 0; s < size(); ++s)
    if (!ponged_[static_cast<size_t>(s)]) silent += (silent.empty() ? "" : ", ") + name(s);
  if (silent.empty()) return true;
  *err = "no answer within " + std::to_string(timeout.count()) + " ms from " + silent;
  return false;
}

// ---- shard side -----------------------------------------------------------------------------------------------

bool serve_shard(const std::string& endpoint, model::shard_compute& compute, const std::atomic<bool>& stop,
                 shard_server_stats* stats, void (*on_bound)(const std::string&), std::string* err) {
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::router);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::maxmsgsize, int64_t{1} << 31);
  sock.set(zmq::sockopt::heartbeat_ivl, 500);
  sock.set(zmq::sockopt::heartbeat_timeout, 1500);
  try {
    sock.bind(endpoint);
  } catch (const zmq::error_t& e) {
    *err = "cannot listen on " + endpoint + ": " + e.what();
    return false;
  }
  if (on_bound) on_bound(sock.get(zmq::sockopt::last_endpoint));
  model::shard_batch batch;
  std::vector<uint8_t> reply;
  while (!stop.load()) {
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {
      continue;  // EINTR: a signal; the loop condition decides
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t identity, payload;
    if (!sock.recv(identity, zmq::recv_flags::dontwait)) continue;
    bool well_formed = identity.more() && sock.recv(payload, zmq::recv_flags::dontwait).has_value();
    while (sock.get(zmq::sockopt::rcvmore)) {  // extra frames: drop them with the message
      zmq::message_t rest;
      (void)sock.recv(rest, zmq::recv_flags::dontwait);
      well_formed = false;
    }
    const auto* d = static_cast<const uint8_t*>(payload.data());
    shard_frame f;
    std::string why;
    bool bad_frame = true;
    if (!well_formed) {
      why = "a request is exactly one frame";
    } else if (decode_shard_frame(d, payload.size(), &f, &why)) {
      if (f.kind == shard_frame_kind::run) {
        bad_frame = !decode_run_request(d, payload.size(), &batch, &why);
        if (!bad_frame && compute.run(batch, &why)) {
          ++stats->batches;
          stats->items += static_cast<uint64_t>(batch.n_items);
          encode_run_result(f.request_id, batch, &reply);
        } else if (!bad_frame) {
          ++stats->failed;
        }
      } else if (f.kind == shard_frame_kind::warm) {
        bad_frame = !compute.warm(f.experts, &why);
        if (!bad_frame) encode_simple(shard_frame_kind::warm_done, f.request_id, &reply);
      } else if (f.kind == shard_frame_kind::ping) {
        bad_frame = false;
        encode_simple(shard_frame_kind::pong, f.request_id, &reply);
      } else {
        why = "not a request";
      }
    }
    if (bad_frame) ++stats->malformed;
    if (!why.empty()) encode_error(f.request_id, why, &reply);
    try {
      sock.send(identity, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      sock.send(zmq::buffer(reply), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The peer is gone; its request dies with it.
    }
  }
  return true;
}

}  // namespace rampart::net
