#include "net/shard_link.hpp"

#include <cstring>
#include <zmq.hpp>

#include "net/curve_gate.hpp"
#include "net/zap_handler.hpp"

namespace rampart::net {

using clock_type = std::chrono::steady_clock;
using model::decode_run_request;
using model::decode_run_result;
using model::decode_shard_frame;
using model::encode_error;
using model::encode_run_request;
using model::encode_run_result;
using model::encode_simple;
using model::encode_warm;
using model::shard_frame;
using model::shard_frame_kind;

// ---- attention-rank side --------------------------------------------------------------------------------------

std::shared_ptr<zmq_shard_transport> zmq_shard_transport::create(const std::vector<std::string>& endpoints,
                                                                 int64_t max_answer_bytes, const shard_link_keys& keys,
                                                                 std::string* err) {
  if (endpoints.empty()) return *err = "no shard endpoints", nullptr;
  if (keys.curve() && keys.peer_keys.size() != endpoints.size())
    return *err = "one shard public key per shard endpoint is needed", nullptr;
  if (keys.curve() && !curve_keys_match(keys.secret_key, keys.public_key))
    return *err = "the shard link's CURVE public key is not the public half of its secret key", nullptr;
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
    s->set(zmq::sockopt::maxmsgsize, max_answer_bytes);  // a shard cannot make the rank read more than a result
    try {
      if (keys.curve()) {
        s->set(zmq::sockopt::curve_serverkey, keys.peer_keys[t->endpoints_.size()]);
        s->set(zmq::sockopt::curve_publickey, keys.public_key);
        s->set(zmq::sockopt::curve_secretkey, keys.secret_key);
      }
      s->connect(ep);
    } catch (const zmq::error_t& e) {
      *err = "shard endpoint '" + ep + "': " + e.what();
      return nullptr;
    }
    t->socks_.push_back(std::move(s));
    t->endpoints_.push_back(ep);
  }
  t->expected_.assign(endpoints.size(), 0);
  t->sent_at_.assign(endpoints.size(), clock_type::time_point{});
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
        call->latency = clock_type::now() - sent_at_[static_cast<size_t>(shard)];
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
    sent_at_[static_cast<size_t>(c.shard)] = clock_type::now();  // after encoding: each shard's own round trip
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

namespace {

// One request frame D of SIZE bytes: the answer in *REPLY; *WHY says why it failed (then the answer is an
// error frame). Returns false when the frame itself was malformed or past the limits.
bool serve_frame(const uint8_t* d, size_t size, model::expert_compute& compute, const model::shard_frame_limits& limits,
                 model::shard_batch* batch, shard_server_stats* stats, std::vector<uint8_t>* reply, uint64_t* id,
                 std::string* why) {
  shard_frame f;
  const bool decoded = decode_shard_frame(d, size, &f, why, &limits);
  *id = f.request_id;  // read before anything past the header can fail: the error answer echoes it
  if (!decoded) return false;
  switch (f.kind) {
    case shard_frame_kind::run:
      if (!decode_run_request(d, size, limits, batch, why)) return false;
      if (!compute.run(*batch, why)) {
        ++stats->failed;
        return true;
      }
      ++stats->batches;
      stats->items += static_cast<uint64_t>(batch->n_items);
      encode_run_result(f.request_id, *batch, reply);
      return true;
    case shard_frame_kind::warm:
      if (!compute.warm(f.experts, why)) return false;
      encode_simple(shard_frame_kind::warm_done, f.request_id, reply);
      return true;
    case shard_frame_kind::ping:
      encode_simple(shard_frame_kind::pong, f.request_id, reply);
      return true;
    default:
      *why = "not a request";
      return false;
  }
}

}  // namespace

bool serve_shard(const std::string& endpoint, const shard_link_keys& keys, model::expert_compute& compute,
                 const model::shard_frame_limits& limits, const std::atomic<bool>& stop, shard_server_stats* stats,
                 void (*on_bound)(const std::string&), std::string* err) {
  zmq::context_t ctx(1);
  // The gate is declared before the socket so that it outlives it (it must outlive every guarded socket).
  std::unique_ptr<zap_handler> gate;
  if (keys.curve()) {
    if (keys.peer_keys.empty()) return *err = "a CURVE shard needs its clients' public keys", false;
    if (!curve_keys_match(keys.secret_key, keys.public_key))
      return *err = "the shard's CURVE public key is not the public half of its secret key", false;
    gate = std::make_unique<zap_handler>(ctx.handle());
    auto allow = std::make_shared<curve_allow_list>();
    for (size_t i = 0; i < keys.peer_keys.size(); ++i) allow->tenants.emplace(keys.peer_keys[i], int64_t(i) + 1);
    gate->set_allow_list(std::move(allow));
    gate->set_on_key_denied([stats](std::string_view) { ++stats->refused_keys; });
    if (!gate->start(err)) return false;
  }
  zmq::socket_t sock(ctx, zmq::socket_type::router);
  sock.set(zmq::sockopt::linger, 0);
  if (keys.curve()) {
    sock.set(zmq::sockopt::curve_server, 1);
    sock.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  }
  sock.set(zmq::sockopt::maxmsgsize, limits.max_request_bytes());
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
    std::string why;
    uint64_t id = 0;
    bool bad_frame = true;
    if (!well_formed) {
      why = "a request is exactly one frame";
    } else {
      try {
        bad_frame = !serve_frame(static_cast<const uint8_t*>(payload.data()), payload.size(), compute, limits,
                                 &batch, stats, &reply, &id, &why);
      } catch (const std::exception& e) {  // bad_alloc and the like: this frame fails, the shard goes on
        ++stats->failed;
        bad_frame = false;
        why = std::string("the shard could not compute this frame: ") + e.what();
      }
    }
    if (bad_frame) ++stats->malformed;
    if (!why.empty()) encode_error(id, why, &reply);
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
