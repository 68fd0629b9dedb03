#include "net/client.hpp"

#include <zmq.hpp>

#include "net/protocol.hpp"

namespace rampart::net {

struct client_context::impl {
  zmq::context_t ctx{1};
};

client_context::client_context() : impl_(std::make_unique<impl>()) {}
client_context::~client_context() = default;

struct client::impl {
  explicit impl(client_context* shared) : ctx(shared ? nullptr : std::make_unique<zmq::context_t>(1)),
                                          sock(shared ? shared->impl_->ctx : *ctx, zmq::socket_type::dealer) {}
  client_options options;
  std::unique_ptr<zmq::context_t> ctx;  // own context, when none is shared
  zmq::socket_t sock;
};

client::client(client_options options, client_context* context) : impl_(std::make_unique<impl>(context)) {
  impl_->options = std::move(options);
  auto& s = impl_->sock;
  s.set(zmq::sockopt::linger, impl_->options.linger_ms);
  s.set(zmq::sockopt::heartbeat_ivl, impl_->options.heartbeat_ivl_ms);
  s.set(zmq::sockopt::heartbeat_timeout, impl_->options.heartbeat_timeout_ms);
  s.set(zmq::sockopt::rcvhwm, 100000);
  s.set(zmq::sockopt::sndhwm, 100000);
  // A DEALER with no connected peer blocks on send; a client must not hang when the server is unreachable.
  s.set(zmq::sockopt::sndtimeo, 5000);
}

client::~client() = default;

bool client::connect(const std::string& endpoint, std::string* error) {
  std::string ep = endpoint;
  if (!impl_->options.source_address.empty() && ep.rfind("tcp://", 0) == 0) {
    ep = "tcp://" + impl_->options.source_address + ":0;" + ep.substr(6);
  }
  try {
    const auto& o = impl_->options;
    if (!o.curve_server_key.empty() || !o.curve_public_key.empty() || !o.curve_secret_key.empty()) {
      impl_->sock.set(zmq::sockopt::curve_serverkey, o.curve_server_key);
      impl_->sock.set(zmq::sockopt::curve_publickey, o.curve_public_key);
      impl_->sock.set(zmq::sockopt::curve_secretkey, o.curve_secret_key);
    }
    impl_->sock.connect(ep);
  } catch (const zmq::error_t& e) {
    if (error) *error = "cannot connect to " + endpoint + ": " + e.what();
    return false;
  }
  return true;
}

bool client::send_frames(const std::vector<std::string>& frames) {
  try {
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!impl_->sock.send(zmq::buffer(frames[i]), flags)) return false;
    }
  } catch (const zmq::error_t&) {
    return false;
  }
  return true;
}

bool client::send(std::string_view type, const nlohmann::json& body) {
  return send_frames(encode_client_message(type, body));
}

std::optional<client_event> client::receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{impl_->sock.handle(), 0, ZMQ_POLLIN, 0};
  try {
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    zmq::message_t part;
    if (!impl_->sock.recv(part, zmq::recv_flags::dontwait)) return std::nullopt;
    parts.push_back(std::move(part));
    while (parts.back().more()) {
      zmq::message_t next;
      (void)impl_->sock.recv(next, zmq::recv_flags::none);
      parts.push_back(std::move(next));
    }
    client_event ev;
    if (parts.size() != 3 || parts[0].to_string_view() != protocol_id) {
      ev.type = "malformed";
      std::string raw;
      for (auto& p : parts) raw += p.to_string() + "|";
      ev.body = {{"raw", raw}};
      return ev;
    }
    ev.type = parts[1].to_string();
    ev.body = nlohmann::json::parse(parts[2].to_string_view(), nullptr, false);
    if (ev.body.is_discarded()) {
      ev.type = "malformed";
      ev.body = {{"raw", parts[2].to_string()}};
    }
    return ev;
  } catch (const zmq::error_t&) {
    return std::nullopt;
  }
}

bool client::ping(std::chrono::milliseconds timeout, nlohmann::json* pong) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!send("ping", nlohmann::json::object())) return false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto ev = receive(left);
    if (!ev) return false;
    if (ev->type == "pong") {
      if (pong) *pong = ev->body;
      return true;
    }
  }
}

}  // namespace rampart::net
