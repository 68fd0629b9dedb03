#include "net/http_door.hpp"

#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "net/openai.hpp"
#include "net/source_budget.hpp"

namespace rampart::net {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using sys_error = boost::system::error_code;

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// A whole response with a JSON (or empty) body.
std::string response_text(int status, const std::string& body, bool keep_alive, int64_t retry_after_s = 0,
                          std::string_view extra_headers = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (!keep_alive) r += "Connection: close\r\n";
  if (retry_after_s > 0) r += "Retry-After: " + std::to_string(retry_after_s) + "\r\n";
  r += extra_headers;
  r += "\r\n";
  r += body;
  return r;
}

std::string error_response(const openai::api_error& e, bool keep_alive, std::string_view extra_headers = {}) {
  return response_text(e.status, openai::error_json(e).dump() + "\n", keep_alive, e.retry_after_s, extra_headers);
}

std::string door_error(int status, std::string code, std::string message, bool keep_alive,
                       std::string_view extra_headers = {}) {
  openai::api_error e;
  e.status = status;
  e.type = status >= 500 ? "server_error" : "invalid_request_error";
  e.code = std::move(code);
  e.message = std::move(message);
  return error_response(e, keep_alive, extra_headers);
}

std::string sse(const json& j) { return "data: " + j.dump() + "\n\n"; }

// "ip:port" or "[ipv6]:port".
bool parse_listen(const std::string& listen, asio::ip::address* address, uint16_t* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  sys_error ec;
  *address = asio::ip::make_address(host, ec);
  if (ec) return false;
  try {
    int p = std::stoi(listen.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

std::string address_text(const tcp::endpoint& remote) {
  asio::ip::address a = remote.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

using request_parser = http::request_parser<http::string_body>;

// The answer to a request the parser refused (request line, headers or body past a bound, or not HTTP).
std::string refusal_for(const sys_error& ec, const http_door_options& o) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return door_error(431, "bad_frame",
                      "the request line and headers are over " + std::to_string(o.max_header_bytes) + " bytes", false);
  }
  if (ec == http::error::body_limit) {  // a Content-Length past it is refused before any byte of the body
    return door_error(413, "bad_frame",
                      "the body is over " + std::to_string(o.limits.max_body_bytes) + " bytes (limit max_message_size)",
                      false);
  }
  return door_error(400, "bad_frame", "the request is not well-formed HTTP/1.1", false);
}

enum class route { chat, completions, models };

struct header_verdict {
  route what = route::chat;
  bool keep_alive = true;
  std::string refusal;  // non-empty: answer this instead
  bool ends_connection = false;
};

// What the door does with a request whose headers are read: the route, or the refusal.
header_verdict judge_header(const request_parser& parser, const http_door_options& o) {
  header_verdict v;
  const auto& req = parser.get();
  size_t fields = 0;
  for (auto it = req.begin(); it != req.end(); ++it) ++fields;
  if (fields > o.max_headers) {
    v.refusal = door_error(431, "bad_frame", "more than " + std::to_string(o.max_headers) + " header fields", false);
    v.ends_connection = true;
    return v;
  }
  v.keep_alive = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  if (target == "/v1/chat/completions" || target == "/v1/completions") {
    v.what = target == "/v1/completions" ? route::completions : route::chat;
    if (req.method() != http::verb::post) {
      v.refusal = door_error(405, "method_not_allowed", "use POST", false, "Allow: POST\r\n");
      v.ends_connection = true;
    }
    return v;
  }
  if (!parser.is_done()) v.keep_alive = false;  // a body that is not read: no other request can follow
  if (target == "/v1/models") {
    v.what = route::models;
    if (req.method() != http::verb::get) {
      v.refusal = door_error(405, "method_not_allowed", "use GET", false, "Allow: GET\r\n");
      v.ends_connection = true;
    }
    return v;
  }
  v.refusal = door_error(404, "not_found",
                         "no such endpoint: this server answers /v1/chat/completions, /v1/completions and /v1/models",
                         v.keep_alive);
  v.ends_connection = !v.keep_alive;
  return v;
}

// A whole request's body as the server's generate, or the refusal (*REFUSAL) when it cannot be one.
std::optional<openai::request> decode_generation(const http::request<http::string_body>& req, openai::endpoint kind,
                                                 const std::string& request_id, const http_door_options& o,
                                                 bool keep_alive, std::string* refusal) {
  const auto authorization = req[http::field::authorization];
  auto key = openai::bearer_key(std::string_view(authorization.data(), authorization.size()));
  if (!key) {
    openai::api_error e;
    e.status = 401;
    e.type = "authentication_error";
    e.code = "unauthorized";
    e.message = "the Authorization header must be \"Bearer <api key>\"";
    *refusal = error_response(e, keep_alive);
    return std::nullopt;
  }
  openai::api_error err;
  auto decoded = openai::decode_request(kind, req.body(), *key, request_id, o.model_name, o.limits, &err);
  if (!decoded) *refusal = error_response(err, keep_alive);
  return decoded;
}

class session;

}  // namespace

struct http_door::impl {
  impl(http_door_options o, frontend_handler* h, http_door_counters* c)
      : options(std::move(o)), handler(h), counters(c) {}

  http_door_options options;
  frontend_handler* handler;
  http_door_counters* counters;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::thread thread;
  uint16_t port = 0;
  bool stopped = false;
  // I/O thread only.
  std::unordered_map<std::string, std::shared_ptr<session>> sessions;
  std::unordered_map<std::string, size_t> per_source;
  uint64_t next_connection = 1;
  // Events posted from any thread, taken by the I/O thread.
  struct pending_event {
    std::string peer;
    std::string type;
    json body;
  };
  std::mutex inbox_mu;
  std::vector<pending_event> inbox;
  std::shared_ptr<const admission::deny_list> deny;  // std::atomic_load / atomic_store only
  // Read budgets (I/O thread only): bytes per address, requests per connection (keyed by peer name).
  source_budget address_budget{options.source_bytes_per_s, options.source_burst_bytes, 1e18, 1e18};
  source_budget connection_budget{1e18, 1e18, options.connection_requests_per_s, options.connection_request_burst};

  bool refused_outright(const std::string& address) const {
    auto list = std::atomic_load(&deny);
    return list && list->match(address, admission::monotonic_ms()) == admission::deny_match::everyone;
  }
  void accept();
  void on_accepted(tcp::socket socket);
  void forget(const std::string& peer, const std::string& address);
  void drain_inbox();
  void close_all();
  void begin_stop();
  std::vector<std::shared_ptr<session>> snapshot() const {
    std::vector<std::shared_ptr<session>> all;
    all.reserve(sessions.size());
    for (const auto& [peer, s] : sessions) all.push_back(s);
    return all;
  }
  static constexpr std::chrono::milliseconds stop_grace{1000};
};

namespace {

// One connection: requests in turn (HTTP/1.1 keep-alive; a pipelined request waits for the answer before it).
class session : public std::enable_shared_from_this<session> {
 public:
  session(http_door::impl* door, tcp::socket socket, std::string peer, std::string address, uint64_t number)
      : door_(door),
        socket_(std::move(socket)),
        read_timer_(door->io),
        write_timer_(door->io),
        buffer_(door->options.max_header_bytes + door->options.limits.max_body_bytes),
        peer_(std::move(peer)),
        address_(std::move(address)),
        number_(number) {}

  // The first request must arrive within the header timeout.
  void start() { wait_for_request(door_->options.header_timeout); }

  void on_event(std::string_view type, const json& body);
  void close();
  // Ends the connection once what is queued is written (at once when nothing is).
  void end_when_written() {
    keep_alive_ = false;
    close_after_write_ = true;
    if (!writing_ && out_.empty()) close();
  }

 private:
  enum class phase { idle, reading, handling };
  const http_door_options& options() const { return door_->options; }
  void arm_read_deadline(std::chrono::milliseconds after);
  void wait_for_request(std::chrono::milliseconds deadline);
  void on_readable(const sys_error& ec);
  void read_header();
  void on_header(const sys_error& ec);
  void on_body(const sys_error& ec);
  void start_generation(openai::endpoint kind);
  void finish_request();
  void refuse(std::string response);  // answered by the door; the connection ends after it
  void write(std::string bytes);
  void do_write();
  void on_written(const sys_error& ec, size_t n);
  void send_chunk(std::string_view data);
  void end_stream(const std::string* tail);

  http_door::impl* door_;
  tcp::socket socket_;
  asio::steady_timer read_timer_;
  asio::steady_timer write_timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const std::string peer_;
  const std::string address_;
  const uint64_t number_;
  phase phase_ = phase::idle;
  bool closed_ = false;
  bool waiting_ = false;        // an async_wait for readability is pending
  bool readable_ = false;       // bytes of a next request arrived while this one was being answered
  bool keep_alive_ = true;
  uint64_t read_generation_ = 0;
  uint64_t requests_ = 0;
  // The request under way.
  openai::request request_;
  std::string request_id_;
  int64_t created_ = 0;
  bool handed_ = false;        // the server has it and has not ended it
  bool streaming_ = false;     // the 200 and the stream's headers are sent
  bool chunked_ = true;        // HTTP/1.1: chunked; 1.0: the stream ends with the connection
  bool first_chunk_ = true;
  std::string text_;           // a non-streamed answer's text so far
  // Output.
  std::deque<std::string> out_;
  std::string writing_buf_;
  bool writing_ = false;
  bool close_after_write_ = false;
  size_t pending_ = 0;
};

void session::arm_read_deadline(std::chrono::milliseconds after) {
  const uint64_t generation = ++read_generation_;
  read_timer_.expires_after(after);
  read_timer_.async_wait([self = shared_from_this(), generation](const sys_error& ec) {
    if (ec || self->closed_ || generation != self->read_generation_) return;
    self->door_->counters->timed_out++;
    self->close();
  });
}

void session::wait_for_request(std::chrono::milliseconds deadline) {
  phase_ = phase::idle;
  arm_read_deadline(deadline);
  if (buffer_.size() > 0 || readable_) {
    readable_ = false;
    read_header();
    return;
  }
  if (waiting_) return;  // the wait started while answering will start the read
  waiting_ = true;
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](const sys_error& ec) { self->on_readable(ec); });
}

// Readable while idle: a request begins (or the client closed). Readable while answering: the client closed
// (cancel its generation), or it pipelined its next request (read once this one is answered).
void session::on_readable(const sys_error& ec) {
  waiting_ = false;
  if (closed_) return;
  sys_error aec;
  const size_t available = ec ? 0 : socket_.available(aec);
  if (ec || aec || available == 0) {
    close();
    return;
  }
  if (phase_ == phase::handling) {
    readable_ = true;
    return;
  }
  if (phase_ == phase::idle) read_header();
}

void session::read_header() {
  phase_ = phase::reading;
  arm_read_deadline(options().header_timeout);
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(options().max_header_bytes));
  parser_->body_limit(options().limits.max_body_bytes);
  http::async_read_header(socket_, buffer_, *parser_,
                          [self = shared_from_this()](const sys_error& ec, size_t) { self->on_header(ec); });
}

void session::on_header(const sys_error& ec) {
  if (closed_) return;
  if (ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted) {
      close();
    } else {
      refuse(refusal_for(ec, options()));
    }
    return;
  }
  // Charged before the body is read or anything is decoded, as on the ZeroMQ door.
  const int64_t now_ms = admission::monotonic_ms();
  int64_t retry_ms = 0;
  const auto length = parser_->content_length();
  const size_t bytes = static_cast<size_t>(length ? std::min<uint64_t>(*length, options().limits.max_body_bytes) : 0) +
                       options().max_header_bytes / 8;
  if (!door_->address_budget.take(address_, bytes, now_ms, &retry_ms) ||
      !door_->connection_budget.take(peer_, 0, now_ms, &retry_ms)) {
    door_->counters->rate_limited++;
    openai::api_error e = openai::from_shed_event({{"reason", "rate_limited"}, {"retry_after_ms", retry_ms}});
    keep_alive_ = false;
    write(error_response(e, false));
    finish_request();
    return;
  }
  header_verdict v = judge_header(*parser_, options());
  keep_alive_ = v.keep_alive;
  if (!v.refusal.empty()) {
    if (v.ends_connection) refuse(std::move(v.refusal));
    else {
      door_->counters->malformed++;
      write(std::move(v.refusal));
      finish_request();
    }
    return;
  }
  if (v.what == route::models) {
    write(response_text(200, openai::models_json(options().model_name, unix_seconds()).dump() + "\n", keep_alive_));
    finish_request();
    return;
  }
  if (door_->refused_outright(address_)) {
    door_->counters->denied++;
    refuse(door_error(403, "denied_source", "requests from this address are refused for now", false));
    return;
  }
  const auto expect = parser_->get()[http::field::expect];
  if (expect.size() == 12 && boost::beast::iequals(expect, "100-continue")) {
    write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  const auto kind = v.what == route::completions ? openai::endpoint::completions : openai::endpoint::chat_completions;
  arm_read_deadline(options().body_timeout);
  http::async_read(socket_, buffer_, *parser_, [self = shared_from_this(), kind](const sys_error& e, size_t) {
    if (self->closed_) return;
    if (e) {
      self->on_body(e);
      return;
    }
    self->start_generation(kind);
  });
}

void session::on_body(const sys_error& ec) {
  if (ec == asio::error::operation_aborted || ec == asio::error::eof || ec == http::error::end_of_stream ||
      ec == asio::error::connection_reset || ec == http::error::partial_message) {
    close();
  } else {
    refuse(refusal_for(ec, options()));
  }
}

void session::start_generation(openai::endpoint kind) {
  ++read_generation_;  // no read deadline while the answer is made: the wait is the server's
  read_timer_.cancel();
  ++requests_;
  request_id_ = std::string(kind == openai::endpoint::chat_completions ? "chatcmpl-" : "cmpl-") +
                std::to_string(number_) + "-" + std::to_string(requests_);
  std::string refusal;
  auto decoded = decode_generation(parser_->get(), kind, request_id_, options(), keep_alive_, &refusal);
  if (!decoded) {
    door_->counters->malformed++;
    if (refusal.rfind("HTTP/1.1 401", 0) == 0) door_->handler->on_auth_refused(address_);
    write(std::move(refusal));
    finish_request();
    return;
  }
  request_ = std::move(*decoded);
  chunked_ = parser_->get().version() >= 11;
  if (!chunked_ && request_.stream) keep_alive_ = false;  // an HTTP/1.0 stream ends with its connection
  parser_.reset();  // the body is decoded: its bytes are not kept for the whole generation
  created_ = unix_seconds();
  text_.clear();
  streaming_ = false;
  first_chunk_ = true;
  handed_ = true;
  phase_ = phase::handling;
  door_->counters->requests++;
  if (!waiting_ && buffer_.size() == 0) {  // notice a client that goes away while its answer is made
    waiting_ = true;
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](const sys_error& ec) { self->on_readable(ec); });
  }
  door_->handler->on_message(peer_, address_, "", std::move(request_.message));
}

void session::on_event(std::string_view type, const json& body) {
  if (closed_) return;
  const auto id = body.find("request_id");
  // One request at a time per connection: an error or shed that names no request is this one's.
  const bool unnamed_refusal = (type == "error" || type == "shed") &&
                               (id == body.end() || !id->is_string() || id->get_ref<const std::string&>().empty());
  if (!handed_ || (!unnamed_refusal && (id == body.end() || !id->is_string() ||
                                        id->get_ref<const std::string&>() != request_id_))) {
    door_->counters->unroutable++;
    return;
  }
  const auto kind = request_.kind;
  const std::string& model = request_.model;
  auto open_stream = [&] {
    if (streaming_) return;
    streaming_ = true;
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
    if (chunked_) head += "Transfer-Encoding: chunked\r\n";
    if (!keep_alive_) head += "Connection: close\r\n";
    write(head + "\r\n");
  };
  if (type == "accepted") {
    if (request_.stream) {
      open_stream();
      send_chunk(sse(openai::chunk_json(kind, request_id_, created_, model, "", true, nullptr)));
      first_chunk_ = false;
    }
    return;
  }
  if (type == "token") {
    const std::string text = body.value("text", std::string());
    if (!request_.stream) {
      text_ += text;
      return;
    }
    open_stream();
    if (text.empty() && !first_chunk_) return;
    send_chunk(sse(openai::chunk_json(kind, request_id_, created_, model, text, first_chunk_, nullptr)));
    first_chunk_ = false;
    return;
  }
  if (type == "done") {
    const std::string finish = body.value("finish_reason", std::string("stop"));
    const json usage = openai::usage_json(body);
    if (request_.stream) {
      open_stream();
      std::string tail = sse(openai::chunk_json(kind, request_id_, created_, model, "", first_chunk_, &finish));
      if (request_.include_usage) tail += sse(openai::usage_chunk_json(kind, request_id_, created_, model, usage));
      tail += "data: [DONE]\n\n";
      end_stream(&tail);
    } else {
      write(response_text(200, openai::completion_json(kind, request_id_, created_, model, text_, finish, usage).dump() + "\n",
                          keep_alive_));
    }
    finish_request();
    return;
  }
  if (type == "error" || type == "shed") {
    const auto e = type == "error" ? openai::from_error_event(body) : openai::from_shed_event(body);
    if (streaming_) {  // the status is sent: the error goes in the stream, which then ends
      std::string tail = sse(openai::error_json(e)) + "data: [DONE]\n\n";
      end_stream(&tail);
    } else {
      write(error_response(e, keep_alive_));
    }
    finish_request();
  }
}

void session::send_chunk(std::string_view data) {
  if (!chunked_) {
    write(std::string(data));
    return;
  }
  char size[20];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string c(size, static_cast<size_t>(n));
  c.append(data);
  c += "\r\n";
  write(std::move(c));
}

void session::end_stream(const std::string* tail) {
  if (tail && !tail->empty()) send_chunk(*tail);
  if (chunked_) write("0\r\n\r\n");
}

void session::finish_request() {
  handed_ = false;
  request_ = openai::request();
  text_.clear();
  parser_.reset();
  if (!keep_alive_) {
    close_after_write_ = true;
    if (!writing_ && out_.empty()) close();
    return;
  }
  wait_for_request(options().idle_timeout);
}

void session::refuse(std::string response) {
  door_->counters->malformed++;
  keep_alive_ = false;
  write(std::move(response));
  finish_request();
}

void session::write(std::string bytes) {
  if (closed_) return;
  pending_ += bytes.size();
  if (pending_ > options().max_pending_bytes) {  // the client does not read what it asked for
    door_->counters->slow_readers++;
    door_->handler->on_slow_reader(address_);
    close();
    return;
  }
  out_.push_back(std::move(bytes));
  if (!writing_) do_write();
}

void session::do_write() {
  writing_ = true;
  writing_buf_.clear();
  for (auto& s : out_) writing_buf_ += s;
  out_.clear();
  write_timer_.expires_after(options().write_timeout);
  write_timer_.async_wait([self = shared_from_this()](const sys_error& ec) {
    if (ec || self->closed_ || !self->writing_) return;
    self->door_->counters->slow_readers++;
    self->door_->handler->on_slow_reader(self->address_);
    self->close();
  });
  asio::async_write(socket_, asio::buffer(writing_buf_),
                    [self = shared_from_this()](const sys_error& ec, size_t n) { self->on_written(ec, n); });
}

void session::on_written(const sys_error& ec, size_t n) {
  writing_ = false;
  write_timer_.cancel();
  if (closed_) return;
  if (ec) {
    close();
    return;
  }
  pending_ -= std::min(pending_, n);
  if (!out_.empty()) {
    do_write();
    return;
  }
  if (close_after_write_) {
    sys_error ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    close();
  }
}

void session::close() {
  if (closed_) return;
  closed_ = true;
  ++read_generation_;
  sys_error ignored;
  read_timer_.cancel();
  write_timer_.cancel();
  socket_.close(ignored);
  const bool gone_with_work = handed_;
  handed_ = false;
  auto keep = shared_from_this();  // forget() drops the door's reference
  door_->forget(peer_, address_);
  if (gone_with_work) door_->handler->on_peer_gone(peer_);
}

}  // namespace

void http_door::impl::accept() {
  acceptor.async_accept([this](const sys_error& ec, tcp::socket socket) {
    if (stopped) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors or memory: try again shortly rather than spin.
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](const sys_error& e) {
        if (!e && !stopped) accept();
      });
      return;
    }
    on_accepted(std::move(socket));
    accept();
  });
}

void http_door::impl::on_accepted(tcp::socket socket) {
  sys_error ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;
  const std::string address = address_text(remote);
  if (refused_outright(address)) {
    counters->denied++;
    return;  // the socket closes here, unread
  }
  size_t& from_source = per_source[address];
  if (sessions.size() >= options.max_connections || from_source >= options.max_connections_per_source) {
    counters->refused_connections++;
    if (from_source == 0) per_source.erase(address);
    return;
  }
  ++from_source;
  socket.set_option(tcp::no_delay(true), ec);
  const uint64_t number = next_connection++;
  std::string peer = http_peer_prefix + std::to_string(number);
  auto s = std::make_shared<session>(this, std::move(socket), peer, address, number);
  sessions.emplace(std::move(peer), s);
  counters->accepted++;
  counters->open++;
  s->start();
}

void http_door::impl::forget(const std::string& peer, const std::string& address) {
  if (sessions.erase(peer) == 0) return;
  counters->open--;
  auto it = per_source.find(address);
  if (it != per_source.end() && --it->second == 0) per_source.erase(it);
  if (stopped && sessions.empty()) io.stop();
}

void http_door::impl::drain_inbox() {
  std::vector<pending_event> events;
  {
    std::lock_guard<std::mutex> lock(inbox_mu);
    events.swap(inbox);
  }
  for (auto& e : events) {
    auto it = sessions.find(e.peer);
    if (it == sessions.end()) {
      counters->unroutable++;
      continue;
    }
    auto s = it->second;  // the event may close it
    s->on_event(e.type, e.body);
  }
}

void http_door::impl::close_all() {
  stopped = true;
  sys_error ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  for (auto& s : snapshot()) s->close();
  io.stop();
}

void http_door::impl::begin_stop() {
  drain_inbox();
  stopped = true;
  sys_error ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  for (auto& s : snapshot()) s->end_when_written();
  if (sessions.empty()) {
    io.stop();
    return;
  }
  accept_retry.expires_after(stop_grace);
  accept_retry.async_wait([this](const sys_error&) { close_all(); });
}

http_door::http_door(http_door_options options, frontend_handler* handler)
    : impl_(std::make_unique<impl>(std::move(options), handler, &counters_)) {}

http_door::~http_door() { stop(); }

bool http_door::start(std::string* error) {
  asio::ip::address address;
  uint16_t port = 0;
  if (!parse_listen(impl_->options.listen, &address, &port)) {
    *error = "http: cannot read listen address \"" + impl_->options.listen + "\" (want ip:port)";
    return false;
  }
  sys_error ec;
  const tcp::endpoint endpoint(address, port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(1024, ec);
  if (ec) {
    *error = "http: cannot listen on " + impl_->options.listen + ": " + ec.message();
    return false;
  }
  impl_->port = impl_->acceptor.local_endpoint(ec).port();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return true;
}

void http_door::stop() {
  if (!impl_->thread.joinable()) return;
  // Events posted before stop() are written first (the server's terminal events at the end of a drain); each
  // connection then ends once its answer is out, and whatever is left after stop_grace is closed.
  asio::post(impl_->io, [this] { impl_->begin_stop(); });
  impl_->thread.join();
}

void http_door::post(const std::string& peer, std::string_view type, const nlohmann::json& body) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(impl_->inbox_mu);
    wake = impl_->inbox.empty();
    impl_->inbox.push_back({peer, std::string(type), body});
  }
  if (wake) asio::post(impl_->io, [this] { impl_->drain_inbox(); });
}

void http_door::set_deny_list(std::shared_ptr<const admission::deny_list> list) {
  std::atomic_store(&impl_->deny, std::move(list));
}

http_reading read_http_request(std::string_view raw, const http_door_options& options) {
  http_reading out;
  request_parser parser;
  parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
  parser.body_limit(options.limits.max_body_bytes);
  parser.eager(true);
  sys_error ec;
  std::string_view rest = raw;
  while (!rest.empty() && !parser.is_done()) {
    const size_t used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
    if (ec == http::error::need_more) {
      ec = {};
      if (used == 0) break;
    }
    if (ec) break;
    rest.remove_prefix(used);
    if (used == 0) break;
  }
  if (ec) {
    out.response = refusal_for(ec, options);
    return out;
  }
  if (!parser.is_header_done()) return out;  // incomplete: the door would wait for more (within its timeout)
  header_verdict v = judge_header(parser, options);
  if (!v.refusal.empty()) {
    out.response = std::move(v.refusal);
    return out;
  }
  if (v.what == route::models) {
    out.response = response_text(200, openai::models_json(options.model_name, 0).dump() + "\n", v.keep_alive);
    return out;
  }
  if (!parser.is_done()) return out;
  const auto kind = v.what == route::completions ? openai::endpoint::completions : openai::endpoint::chat_completions;
  out.request = decode_generation(parser.get(), kind, "r", options, v.keep_alive, &out.response);
  return out;
}

uint16_t http_door::bound_port() const { return impl_->port; }
const http_door_options& http_door::options() const { return impl_->options; }

}  // namespace rampart::net
