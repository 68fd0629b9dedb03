#include "net/frontend.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <unordered_map>

#include <zmq.hpp>

#include "net/source_budget.hpp"

namespace rampart::net {

struct outgoing {
  std::string peer;
  std::vector<std::string> frames;
};

// Bytes of client messages one loop iteration reads before it sends what is waiting: a client flooding
// 1 MiB messages delays other clients' events by one decode, not by a burst of them.
constexpr size_t kReadBudgetBytes = 1 << 20;
constexpr int kReadBudgetMessages = 256;
// Routing ids whose connection is remembered (for dropping a client that stopped reading); past this the
// table starts afresh rather than grow.
constexpr size_t kMaxTrackedPeers = 1 << 16;
// How long an address whose connection was dropped for flooding gives its new connections empty buckets.
constexpr int64_t kFlooderMemoryMs = 60000;

static int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
// Frames of one message kept for decoding (the routing id and the protocol's three, plus one so that a message
// with too many is still a short vector); further frames are read, counted and dropped, so a message of a
// million frames costs counting, not a million kept buffers.
constexpr size_t kKeptFrames = 5;

// The remote address and port of socket FD, as bytes ("" when FD is not a connected socket). When ADDRESS is
// given, also "" unless the remote IP reads as ADDRESS (ZeroMQ's Peer-Address of the message that named FD):
// a descriptor that a connection from elsewhere has taken over since is not recorded.
std::string remote_of(int fd, const std::string* address = nullptr) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  if (address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, text, sizeof text);
    } else if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, text, sizeof text);
    }
    if (*address != text) return {};
  }
  return std::string(reinterpret_cast<const char*>(&ss), len);
}

struct frontend::impl {
  frontend_options options;
  frontend_handler* handler;
  frontend_counters* counters;
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> router;
  std::unique_ptr<zmq::socket_t> monitor;
  std::thread thread;
  std::atomic<bool> running{false};
  std::mutex outbox_mutex;
  std::deque<outgoing> outbox;
  int wake_fd = -1;
  std::string bound;
  std::atomic<int> handshake_ivl_wanted{-1};
  std::shared_ptr<const registration_refusal> refusal;  // std::atomic_load / atomic_store only
  std::shared_ptr<const admission::deny_list> deny;      // std::atomic_load / atomic_store only
  std::atomic<uint64_t> deny_version{0};                 // bumped after each new deny list
  int handshake_ivl_applied = -1;
  // The connection each routing id last sent from: its file descriptor and the remote address and port that
  // descriptor had then. I/O thread only.
  struct connection {
    int fd = -1;
    std::string remote;
    std::string address;  // the peer's address as text (the monitor's key for it)
    uint64_t deny_version = 0;  // the deny list its address was last checked against (0: never)
    int64_t deny_checked_ms = 0;
    bool denied = false;
  };
  std::unordered_map<std::string, connection> connections;
  std::unique_ptr<source_budget> budget;             // bytes per source address (or CURVE tenant); I/O thread only
  std::unique_ptr<source_budget> connection_budget;  // messages per connection (routing id); I/O thread only
  // Addresses whose connection was dropped for flooding, and when: for kFlooderMemoryMs, a new connection from
  // one starts with a hundredth of a burst (10 messages by default), so reconnecting does not buy a fresh burst
  // while an innocent neighbour's new connection is served at the full rate. I/O thread only.
  std::unordered_map<std::string, int64_t> flooder_addresses;

  void run();
  void drop_slow_peer(const std::string& peer);
  // Closes PEER's TCP connection (libzmq then tears it down) and tells the handler it is gone.
  void drop_connection(const std::string& peer, bool report_gone = true);
  void drain_outbox();
  void handle_incoming();
  // One whole message from the ROUTER without waiting: the routing id, then at most kKeptFrames frames kept
  // (*FRAME_COUNT and *MESSAGE_BYTES count them all). False when nothing is ready.
  bool receive(std::vector<zmq::message_t>* parts, size_t* frame_count, size_t* message_bytes);
  // A connection seen for the first time: its address (getpeername), and its low budget if it flooded lately.
  void track_connection(const std::string& peer, const zmq::message_t& first_frame, std::string* peer_address);
  // Whether the deny list in force refuses everyone from PEER's address.
  bool denied(const std::string& peer, const std::string& peer_address);
  // Charges the message to its source's and its connection's budgets; true (answered, maybe dropped) when over.
  bool over_budget(const std::string& peer, const std::string& peer_address, const std::string& user_id,
                   size_t message_bytes);
  // Decodes the message and hands it on, or answers the error.
  void dispatch(const std::string& peer, const std::string& peer_address, const std::string& user_id,
                const std::vector<zmq::message_t>& parts, size_t frame_count);
  void handle_monitor();
  void send(const std::string& peer, const std::vector<std::string>& frames);
};

frontend::frontend(frontend_options options, frontend_handler* handler) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  impl_->handler = handler;
  impl_->counters = &counters_;
}

frontend::~frontend() { stop(); }

void* frontend::zmq_context() { return impl_->ctx.handle(); }

bool frontend::start(std::string* error) {
  auto& m = *impl_;
  try {
    m.router = std::make_unique<zmq::socket_t>(m.ctx, zmq::socket_type::router);
    auto& s = *m.router;
    s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(m.options.max_message_size));
    s.set(zmq::sockopt::handshake_ivl, m.options.handshake_ivl_ms);
    s.set(zmq::sockopt::rcvhwm, m.options.rcvhwm);
    s.set(zmq::sockopt::sndhwm, m.options.sndhwm);
    s.set(zmq::sockopt::backlog, m.options.backlog);
    s.set(zmq::sockopt::router_mandatory, m.options.router_mandatory);
    if (m.options.heartbeat_ivl_ms > 0) {
      s.set(zmq::sockopt::heartbeat_ivl, m.options.heartbeat_ivl_ms);
      s.set(zmq::sockopt::heartbeat_timeout, m.options.heartbeat_timeout_ms);
      s.set(zmq::sockopt::heartbeat_ttl, m.options.heartbeat_ttl_ms);
    }
    s.set(zmq::sockopt::tcp_keepalive, 1);
    s.set(zmq::sockopt::tcp_keepalive_idle, m.options.tcp_keepalive_idle_s);
    s.set(zmq::sockopt::tcp_keepalive_intvl, m.options.tcp_keepalive_intvl_s);
    s.set(zmq::sockopt::tcp_keepalive_cnt, m.options.tcp_keepalive_cnt);
    s.set(zmq::sockopt::linger, 200);
    if (!m.options.zap_domain.empty()) s.set(zmq::sockopt::zap_domain, m.options.zap_domain);
    if (!m.options.curve_secret_key.empty()) {
      s.set(zmq::sockopt::curve_server, true);
      s.set(zmq::sockopt::curve_secretkey, m.options.curve_secret_key);
    }
    // Handshake outcomes and disconnects feed the monitor's application signals.
    const std::string mon_ep = "inproc://rampart-frontend-monitor";
    if (zmq_socket_monitor(s.handle(), mon_ep.c_str(),
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
      *error = std::string("zmq_socket_monitor: ") + zmq_strerror(zmq_errno());
      return false;
    }
    m.monitor = std::make_unique<zmq::socket_t>(m.ctx, zmq::socket_type::pair);
    m.monitor->connect(mon_ep);
    s.bind(m.options.endpoint);
    m.bound = s.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    *error = "cannot bind " + m.options.endpoint + ": " + e.what();
    m.monitor.reset();
    m.router.reset();
    return false;
  }
  m.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m.wake_fd < 0) {
    *error = "eventfd failed";
    return false;
  }
  // Bytes are budgeted per address (or CURVE tenant); messages per connection, so that a flooding connection
  // costs clients behind the same address (a NAT, or a registered tenant's own machine) nothing.
  constexpr double unlimited = 1e18;
  m.budget = std::make_unique<source_budget>(m.options.source_bytes_per_s, m.options.source_burst_bytes, unlimited,
                                             unlimited);
  m.connection_budget = std::make_unique<source_budget>(unlimited, unlimited, m.options.connection_messages_per_s,
                                                        m.options.connection_message_burst);
  m.running = true;
  m.thread = std::thread([&m] { m.run(); });
  return true;
}

void frontend::stop() {
  auto& m = *impl_;
  if (m.running.exchange(false)) {
    uint64_t one = 1;
    (void)!write(m.wake_fd, &one, sizeof one);
    m.thread.join();
  }
  if (m.router) {
    zmq_socket_monitor(m.router->handle(), nullptr, 0);
    m.monitor.reset();
    m.router.reset();
  }
  if (m.wake_fd >= 0) {
    close(m.wake_fd);
    m.wake_fd = -1;
  }
}

std::string frontend::bound_endpoint() const { return impl_->bound; }

const decode_limits& frontend::limits() const { return impl_->options.limits; }

void frontend::set_handshake_ivl(int ms) {
  impl_->handshake_ivl_wanted = ms;
  uint64_t one = 1;
  if (impl_->wake_fd >= 0) (void)!write(impl_->wake_fd, &one, sizeof one);
}

void frontend::set_registration_refusal(std::shared_ptr<const registration_refusal> refusal) {
  std::atomic_store(&impl_->refusal, std::move(refusal));
}

void frontend::set_deny_list(std::shared_ptr<const admission::deny_list> list) {
  std::atomic_store(&impl_->deny, std::move(list));
  impl_->deny_version++;
}

namespace {
// The front end whose wakes this thread holds (frontend::held_wakes), and whether one is owed.
thread_local frontend* wakes_held_for = nullptr;
thread_local bool wake_owed = false;
}  // namespace

void frontend::post(const std::string& peer, std::string_view type, const nlohmann::json& body) {
  post_frames(peer, encode_event(type, body));
}

void frontend::post_encoded(const std::string& peer, std::string_view type, std::string body) {
  post_frames(peer, {std::string(protocol_id), std::string(type), std::move(body)});
}

void frontend::post_frames(const std::string& peer, std::vector<std::string> frames) {
  auto& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.outbox_mutex);
    m.outbox.push_back(outgoing{peer, std::move(frames)});
  }
  if (wakes_held_for == this) {
    wake_owed = true;
    return;
  }
  uint64_t one = 1;
  (void)!write(m.wake_fd, &one, sizeof one);
}

frontend::held_wakes::held_wakes(frontend& f) : previous_(wakes_held_for) {
  if (previous_ != nullptr && previous_ != &f) {  // holding another front end's wakes: settle those first
    if (wake_owed) {
      uint64_t one = 1;
      (void)!write(previous_->impl_->wake_fd, &one, sizeof one);
    }
    wake_owed = false;
  }
  wakes_held_for = &f;
}

frontend::held_wakes::~held_wakes() {
  frontend* f = wakes_held_for;
  wakes_held_for = previous_;
  if (previous_ == f) return;  // an outer hold on the same front end wakes it
  if (wake_owed) {
    uint64_t one = 1;
    (void)!write(f->impl_->wake_fd, &one, sizeof one);
  }
  wake_owed = false;
}

void frontend::impl::send(const std::string& peer, const std::vector<std::string>& frames) {
  try {
    auto r = router->send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (!r) {  // sndhwm events wait for this peer: it stopped reading
      drop_slow_peer(peer);
      return;
    }
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      router->send(zmq::buffer(frames[i]), flags | zmq::send_flags::dontwait);
    }
    counters->events_out++;
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      counters->unroutable++;
      connections.erase(peer);
      handler->on_peer_gone(peer);
    }
  }
}

void frontend::impl::drop_slow_peer(const std::string& peer) {
  counters->unroutable++;
  auto it = connections.find(peer);
  if (it != connections.end()) {
    counters->slow_consumers++;
    if (!it->second.address.empty()) handler->on_slow_reader(it->second.address);
  }
  drop_connection(peer);
}

void frontend::impl::drop_connection(const std::string& peer, bool report_gone) {
  auto it = connections.find(peer);
  if (it == connections.end()) {  // already dropped, or forgotten: its work is cancelled all the same
    if (report_gone) handler->on_peer_gone(peer);
    return;
  }
  // ROUTER has no call to close one peer's connection; shutting its TCP socket down makes libzmq's own I/O
  // thread see the end of the stream and tear the connection down (the descriptor stays libzmq's to close).
  // The address-and-port check guards against a descriptor that a newer connection has taken over since.
  if (!it->second.remote.empty() && remote_of(it->second.fd) == it->second.remote) {
    ::shutdown(it->second.fd, SHUT_RDWR);
  }
  connections.erase(it);
  if (report_gone) handler->on_peer_gone(peer);
}

void frontend::impl::drain_outbox() {
  std::deque<outgoing> batch;
  {
    std::lock_guard<std::mutex> lock(outbox_mutex);
    batch.swap(outbox);
  }
  for (auto& o : batch) send(o.peer, o.frames);
}

bool frontend::impl::receive(std::vector<zmq::message_t>* parts, size_t* frame_count, size_t* message_bytes) {
  try {
    zmq::message_t part;
    if (!router->recv(part, zmq::recv_flags::dontwait)) return false;
    bool more = part.more();
    parts->push_back(std::move(part));
    while (more) {
      zmq::message_t next;
      (void)router->recv(next, zmq::recv_flags::none);
      more = next.more();
      ++*frame_count;
      *message_bytes += next.size();
      if (parts->size() < kKeptFrames) parts->push_back(std::move(next));
    }
  } catch (const zmq::error_t&) {
    return false;
  }
  return true;
}

void frontend::impl::track_connection(const std::string& peer, const zmq::message_t& first_frame,
                                      std::string* peer_address) {
  const int fd = zmq_msg_get(first_frame.handle(), ZMQ_SRCFD);
  auto known = connections.find(peer);
  if (known != connections.end() && known->second.fd == fd) return;  // one getpeername per new connection
  if (known == connections.end() && connections.size() >= kMaxTrackedPeers) connections.clear();
  connections[peer] = connection{fd, remote_of(fd, peer_address), *peer_address};
  auto flooder = flooder_addresses.find(*peer_address);
  if (flooder != flooder_addresses.end()) {
    const int64_t now_ms = steady_ms();
    if (now_ms - flooder->second < kFlooderMemoryMs) connection_budget->start_low(peer, now_ms);
    else flooder_addresses.erase(flooder);
  }
}

bool frontend::impl::denied(const std::string& peer, const std::string& peer_address) {
  auto c = connections.find(peer);
  if (c == connections.end()) return false;
  // Checked once per connection, again when the list changes, and each second (entries expire).
  const uint64_t version = deny_version.load() + 1;
  const int64_t now_ms = steady_ms();
  if (c->second.deny_version != version || now_ms - c->second.deny_checked_ms > 1000) {
    auto list = std::atomic_load(&deny);
    c->second.denied =
        list && list->match(peer_address, admission::monotonic_ms()) == admission::deny_match::everyone;
    c->second.deny_version = version;
    c->second.deny_checked_ms = now_ms;
  }
  return c->second.denied;
}

bool frontend::impl::over_budget(const std::string& peer, const std::string& peer_address,
                                 const std::string& user_id, size_t message_bytes) {
  // Charged before anything is decoded: a CURVE tenant pays from its own bucket, everyone else from its
  // address's.
  const int64_t now_ms = steady_ms();
  int64_t retry_after_ms = 0;
  const std::string& source = user_id.rfind("tenant:", 0) == 0 ? user_id : peer_address;
  source_budget* refused = nullptr;
  const std::string* key = nullptr;
  if (!budget->take(source, message_bytes, now_ms, &retry_after_ms)) {
    refused = budget.get();
    key = &source;
  } else if (!connection_budget->take(peer, 0, now_ms, &retry_after_ms)) {
    refused = connection_budget.get();
    key = &peer;
  }
  if (!refused) return false;
  counters->rate_limited_in++;
  send(peer, encode_event("shed", shed_body("", "rate_limited", retry_after_ms)));
  // Still sending a burst's worth after being told to wait: a flood. Its connection is dropped, so libzmq stops
  // reading (and copying) what it sends; a reconnect meets the same empty bucket (a reconnect with the same
  // routing id, or an address's byte bucket).
  if (refused->flooding(*key)) {
    refused->clear_refused(*key);
    counters->flooders_dropped++;
    if (flooder_addresses.size() >= kMaxTrackedPeers) flooder_addresses.clear();
    flooder_addresses[peer_address] = now_ms;
    drop_connection(peer);
  }
  return true;
}

void frontend::impl::dispatch(const std::string& peer, const std::string& peer_address, const std::string& user_id,
                              const std::vector<zmq::message_t>& parts, size_t frame_count) {
  std::vector<std::string_view> frames;
  for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string_view());
  decode_error err;
  std::optional<client_message> msg;
  if (frame_count == frames.size()) {
    msg = decode_client_message(frames, options.limits, &err);
  } else {
    err.code = error_code::bad_frame;
    err.message = "expected 3 frames (protocol, type, body), got " + std::to_string(frame_count);
  }
  if (!msg) {
    counters->malformed_in++;
    handler->on_malformed(err.code);
    send(peer, encode_event("error", error_body(err.request_id, err.code, err.message)));
    return;
  }
  if (msg->type == message_type::register_tenant) {
    if (auto refusal = std::atomic_load(&this->refusal)) {
      handler->on_register_refused(peer_address);
      auto body = shed_body("", refusal->reason, refusal->retry_after_ms);
      if (!refusal->message.empty()) body["message"] = refusal->message;
      send(peer, encode_event("shed", body));
      return;
    }
  }
  handler->on_message(peer, peer_address, user_id, std::move(*msg));
}

void frontend::impl::handle_incoming() {
  // Read what is ready up to a budget in bytes and messages, so no client's burst holds back the events
  // waiting for everyone (ZeroMQ queues incoming messages fairly across connections).
  size_t bytes = 0;
  for (int n = 0; n < kReadBudgetMessages && bytes < kReadBudgetBytes; ++n) {
    std::vector<zmq::message_t> parts;
    size_t frame_count = 0, message_bytes = 0;  // without the routing id
    if (!receive(&parts, &frame_count, &message_bytes)) return;
    counters->messages_in++;
    bytes += parts[0].size() + message_bytes;
    std::string peer = parts[0].to_string();
    const char* address = parts.size() > 1 ? zmq_msg_gets(parts[1].handle(), "Peer-Address") : nullptr;
    std::string peer_address = address ? address : "";
    if (parts.size() > 1) track_connection(peer, parts[1], &peer_address);
    if (denied(peer, peer_address)) {
      counters->denied_dropped++;
      drop_connection(peer);
      continue;
    }
    if (is_http_peer(peer)) {  // a client-set id posing as an HTTP door's peer: its name belongs to the other
      counters->malformed_in++;  // door, whose connection it must not cancel by going
      drop_connection(peer, /*report_gone=*/false);
      continue;
    }
    const char* user = parts.size() > 1 ? zmq_msg_gets(parts[1].handle(), "User-Id") : nullptr;
    const std::string user_id = user ? user : "";
    if (over_budget(peer, peer_address, user_id, message_bytes)) continue;
    dispatch(peer, peer_address, user_id, parts, frame_count);
  }
}

void frontend::impl::handle_monitor() {
  for (;;) {
    zmq::message_t ev, addr;
    try {
      if (!monitor->recv(ev, zmq::recv_flags::dontwait)) return;
      if (ev.more()) (void)monitor->recv(addr, zmq::recv_flags::none);
    } catch (const zmq::error_t&) {
      return;
    }
    if (ev.size() < 6) continue;
    uint16_t event;
    std::memcpy(&event, ev.data(), 2);
    using ce = frontend_handler::connection_event;
    switch (event) {
      case ZMQ_EVENT_ACCEPTED:
        counters->accepted_connections++;
        handler->on_connection_event(ce::accepted);
        break;
      case ZMQ_EVENT_DISCONNECTED:
        counters->disconnects++;
        handler->on_connection_event(ce::disconnected);
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        counters->handshakes_succeeded++;
        handler->on_connection_event(ce::handshake_succeeded);
        break;
      default:
        counters->handshakes_failed++;
        handler->on_connection_event(ce::handshake_failed);
        break;
    }
  }
}

void frontend::impl::run() {
  zmq::pollitem_t items[3] = {{router->handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_fd, ZMQ_POLLIN, 0},
                              {monitor->handle(), 0, ZMQ_POLLIN, 0}};
  while (running.load(std::memory_order_relaxed)) {
    try {
      zmq::poll(items, 3, std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {
      continue;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t v;
      (void)!read(wake_fd, &v, sizeof v);
    }
    const int ivl = handshake_ivl_wanted.load();
    if (ivl >= 0 && ivl != handshake_ivl_applied) {
      router->set(zmq::sockopt::handshake_ivl, ivl);
      handshake_ivl_applied = ivl;
    }
    drain_outbox();
    if (items[0].revents & ZMQ_POLLIN) handle_incoming();
    if (items[2].revents & ZMQ_POLLIN) handle_monitor();
  }
  drain_outbox();  // what was posted before stop() still goes out
}

}  // namespace rampart::net
