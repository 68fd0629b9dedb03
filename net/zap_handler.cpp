#include "net/zap_handler.hpp"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <optional>
#include <vector>

namespace rampart::net {
namespace {

constexpr const char* kEndpoint = "inproc://zeromq.zap.01";

zap_reply reply(const char* code, const char* text, std::string user_id = {}) {
  return zap_reply{code, text, std::move(user_id), false};
}

zap_reply key_refusal(const char* text) {
  zap_reply r = reply("400", text);
  r.key_refused = true;
  return r;
}

void count(zap_counters* c, std::atomic<uint64_t> zap_counters::*field) {
  if (c) (c->*field).fetch_add(1, std::memory_order_relaxed);
}

// The Z85 text of a 32-byte CURVE public key.
std::string z85_key(std::string_view credential) {
  char z85[41];
  zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(credential.data()), 32);
  return std::string(z85, 40);
}

// The tenant whose key CREDENTIAL (a 32-byte CURVE public key) is, when it is exactly one tenant's and not
// the registration identity's; otherwise nothing.
std::optional<int64_t> tenant_of(std::string_view credential, const curve_allow_list* allow) {
  if (!allow || credential.size() != 32) return std::nullopt;
  const std::string key = z85_key(credential);
  if (!allow->registration_key.empty() && key == allow->registration_key) return std::nullopt;
  if (allow->ambiguous.count(key) != 0) return std::nullopt;
  auto it = allow->tenants.find(key);
  if (it == allow->tenants.end()) return std::nullopt;
  return it->second;
}

}  // namespace

zap_reply decide_zap(std::string_view address, std::string_view mechanism, std::string_view credential,
                     const admission::deny_list* deny, const curve_allow_list* allow, int64_t now_ms,
                     zap_counters* counters) {
  const admission::deny_match listed = deny ? deny->match(address, now_ms) : admission::deny_match::none;
  if (listed != admission::deny_match::none) {
    // An entry that spares tenants (any prefix, or an address listed on forgeable evidence) lets a registered
    // tenant's own CURVE key through: the key, not the address, identifies the client.
    const bool spared = listed == admission::deny_match::tenants_spared && mechanism == "CURVE";
    const std::optional<int64_t> tenant = spared ? tenant_of(credential, allow) : std::nullopt;
    if (!tenant) {
      count(counters, &zap_counters::denied_address);
      return reply("400", "address denied");
    }
    count(counters, &zap_counters::accepted);
    return reply("200", "OK", "tenant:" + std::to_string(*tenant));
  }
  if (mechanism == "NULL") {
    count(counters, &zap_counters::accepted);
    return reply("200", "OK");
  }
  if (mechanism != "CURVE") {
    count(counters, &zap_counters::denied_mechanism);
    return reply("400", "mechanism not supported");
  }
  if (credential.size() != 32) {
    count(counters, &zap_counters::malformed);
    return reply("500", "malformed CURVE credential");
  }
  const std::string key = z85_key(credential);
  if (allow) {
    if (!allow->registration_key.empty() && key == allow->registration_key) {
      if (allow->registration_open) {
        count(counters, &zap_counters::accepted_registration);
        return reply("200", "OK", "registration");
      }
      // Expected while closed (and retried every reconnect interval): not an authentication failure.
      count(counters, &zap_counters::denied_key);
      return reply("400", "registration closed");
    }
    if (allow->ambiguous.count(key) != 0) {
      count(counters, &zap_counters::denied_key);
      return key_refusal("key held by more than one tenant");
    }
    auto it = allow->tenants.find(key);
    if (it != allow->tenants.end()) {
      count(counters, &zap_counters::accepted);
      return reply("200", "OK", "tenant:" + std::to_string(it->second));
    }
  }
  count(counters, &zap_counters::denied_key);
  return key_refusal("unknown key");
}

zap_handler::zap_handler(void* context) : context_(context) {}

zap_handler::~zap_handler() { stop(); }

bool zap_handler::start(std::string* error) {
  if (thread_.joinable()) return true;
  void* s = zmq_socket(context_, ZMQ_REP);
  if (!s) {
    *error = std::string("ZAP handler socket: ") + zmq_strerror(zmq_errno());
    return false;
  }
  int linger = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_bind(s, kEndpoint) != 0) {
    *error = std::string("ZAP handler bind ") + kEndpoint + ": " + zmq_strerror(zmq_errno());
    zmq_close(s);
    return false;
  }
  socket_ = s;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });  // the socket moves to this thread; start() no longer touches it
  return true;
}

void zap_handler::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  thread_.join();
  zmq_close(socket_);
  socket_ = nullptr;
}

void zap_handler::set_deny_list(std::shared_ptr<const admission::deny_list> list) {
  std::atomic_store(&deny_, std::move(list));
}

void zap_handler::set_allow_list(std::shared_ptr<const curve_allow_list> list) {
  std::atomic_store(&allow_, std::move(list));
}

void zap_handler::run() {
  zmq::socket_ref sock(zmq::from_handle, socket_);
  std::vector<zmq::message_t> frames;
  while (!stopping_.load(std::memory_order_relaxed)) {
    zmq::pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
    frames.clear();
    try {
      // A short poll so stop() is noticed; requests are answered as soon as they arrive.
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0 || !(item.revents & ZMQ_POLLIN)) continue;
      if (!zmq::recv_multipart(sock, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
    } catch (const zmq::error_t&) {
      continue;  // EINTR: a signal, e.g. glibc's when rampartd switches every thread to another user
    }
    // Request: version, request id, domain, address, identity, mechanism, credentials...
    zap_reply r;
    std::string request_id;
    if (frames.size() < 6 || frames[0].to_string_view() != "1.0") {
      counters_.malformed.fetch_add(1, std::memory_order_relaxed);
      r = reply("500", "not a ZAP 1.0 request");
      if (frames.size() > 1) request_id = frames[1].to_string();
    } else {
      request_id = frames[1].to_string();
      auto deny = std::atomic_load(&deny_);
      auto allow = std::atomic_load(&allow_);
      std::string_view credential = frames.size() > 6 ? frames[6].to_string_view() : std::string_view();
      r = decide_zap(frames[3].to_string_view(), frames[5].to_string_view(), credential, deny.get(), allow.get(),
                     admission::monotonic_ms(), &counters_);
      if (on_key_denied_ && r.key_refused) {
        on_key_denied_(frames[3].to_string_view());
      }
    }
    std::vector<zmq::const_buffer> out = {zmq::str_buffer("1.0"), zmq::buffer(request_id),
                                          zmq::buffer(r.status_code), zmq::buffer(r.status_text),
                                          zmq::buffer(r.user_id), zmq::const_buffer()};
    zmq::send_multipart(sock, out, zmq::send_flags::dontwait);
  }
}

}  // namespace rampart::net
