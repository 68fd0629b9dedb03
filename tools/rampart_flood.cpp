// rampart-flood: loopback-only attack traffic for tests and demonstrations of the monitor and the policy.
// Refuses any target outside 127.0.0.0/8. syn and udp need root (raw sockets); connect and register do not.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "net/client.hpp"
#include "tools/flags.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-flood --kind syn|udp|connect|register|bigmsg|malformed|generate|http --target 127.0.0.1:PORT\n"
    "                     [--rate PPS]\n"
    "                     [--duration S] [--sources 127.66.0.0/16] [--connections N] [--threads N]\n"
    "                     [--payload BYTES] [--source 127.0.0.2]\n"
    "\n"
    "  syn       raw TCP SYNs from random sources in --sources (spoofed; needs root)\n"
    "  udp       UDP datagrams (--payload bytes, default 512) from random sources in --sources (needs root)\n"
    "  connect   --connections TCP connections that never send a ZMTP greeting, held for --duration\n"
    "  register  protocol `register` requests at --rate over one DEALER connection\n"
    "  bigmsg    1 MiB `ping` messages (thousands of small strings each) as fast as the server takes them\n"
    "  malformed small malformed messages (`{bad` bodies) at --rate over one DEALER connection\n"
    "  generate  anonymous `generate` requests (16 prompt tokens, max_tokens 16) at --rate over one DEALER\n"
    "  http      the same anonymous requests to the HTTP door (--target is its port: POST /v1/completions, not\n"
    "            streamed) at --rate, pipelined over --connections keep-alive connections (reopened when the\n"
    "            server closes one), reading every answer\n"
    "  (bigmsg and malformed read their answers, so the server keeps them as readers)\n"
    "Only loopback targets (127.0.0.0/8) are accepted. Prints what it sent as JSON.\n";

uint16_t checksum(const void* data, size_t len, uint32_t sum = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// The sum over the IPv4 pseudo-header, folded later by checksum().
uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len) {
  uint32_t s = 0;
  s += (ntohl(src) >> 16) + (ntohl(src) & 0xffff) + (ntohl(dst) >> 16) + (ntohl(dst) & 0xffff);
  s += proto;
  s += len;
  return s;
}

struct options {
  std::string kind;
  in_addr target{};
  uint16_t port = 0;
  double rate = 1000;
  double duration = 5;
  uint32_t src_base = 0, src_mask = 0;  // host order
  int connections = 200;
  int threads = 1;    // syn/udp: sending threads, each with its own socket
  int payload = 512;  // udp: payload bytes
  std::string source;  // bigmsg/malformed/generate/http: connect from this local address ("" = any)
};

// Sends packets built by MAKE at RATE per second for the configured duration, in sendmmsg batches of up to
// 64 (one system call per batch is what lets one core reach a few hundred thousand packets per second);
// returns how many went out.
template <class Make>
uint64_t paced_send(const options& o, double rate, int fd, Make make) {
  using clock = std::chrono::steady_clock;
  constexpr int batch = 64;
  const auto start = clock::now();
  const auto end = start + std::chrono::duration<double>(o.duration);
  uint64_t sent = 0;
  std::vector<uint8_t> pkts(static_cast<size_t>(batch) * 1500);
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr = o.target;
  for (int i = 0; i < batch; ++i) {
    iov[i].iov_base = pkts.data() + static_cast<size_t>(i) * 1500;
    msgs[i].msg_hdr = msghdr{};
    msgs[i].msg_hdr.msg_name = &dst;
    msgs[i].msg_hdr.msg_namelen = sizeof dst;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  while (clock::now() < end) {
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    const uint64_t due = static_cast<uint64_t>(elapsed * rate);
    while (sent < due) {
      const int n = static_cast<int>(std::min<uint64_t>(batch, due - sent));
      for (int i = 0; i < n; ++i) iov[i].iov_len = make(static_cast<uint8_t*>(iov[i].iov_base));
      const int done = sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
      if (done <= 0) break;  // the socket buffer is full: try again after the pause
      sent += static_cast<uint64_t>(done);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return sent;
}

// One sender: its own raw socket and random stream, RATE packets per second.
uint64_t raw_sender(const options& o, double rate, uint32_t seed) {
  const bool syn = o.kind == "syn";
  int fd = socket(AF_INET, SOCK_RAW, syn ? IPPROTO_TCP : IPPROTO_UDP);
  if (fd < 0) return 0;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
  std::mt19937 rng(seed);
  const uint64_t sent = paced_send(o, rate, fd, [&](uint8_t* buf) -> size_t {
    const size_t l4 = syn ? sizeof(tcphdr) : sizeof(udphdr) + static_cast<size_t>(o.payload);
    const size_t total = sizeof(iphdr) + l4;
    std::memset(buf, 0, total);
    auto* ip = reinterpret_cast<iphdr*>(buf);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = syn ? IPPROTO_TCP : IPPROTO_UDP;
    ip->tot_len = htons(static_cast<uint16_t>(total));
    ip->id = htons(static_cast<uint16_t>(rng()));
    ip->saddr = htonl(o.src_base | (rng() & ~o.src_mask));
    ip->daddr = o.target.s_addr;
    ip->check = htons(checksum(ip, sizeof(iphdr)));
    uint8_t* l4p = buf + sizeof(iphdr);
    if (syn) {
      auto* t = reinterpret_cast<tcphdr*>(l4p);
      t->source = htons(static_cast<uint16_t>(1024 + rng() % 60000));
      t->dest = htons(o.port);
      t->seq = htonl(rng());
      t->doff = 5;
      t->syn = 1;
      t->window = htons(64240);
      t->check = htons(checksum(t, sizeof(tcphdr), pseudo_sum(ip->saddr, ip->daddr, IPPROTO_TCP, sizeof(tcphdr))));
    } else {
      auto* u = reinterpret_cast<udphdr*>(l4p);
      u->source = htons(static_cast<uint16_t>(1024 + rng() % 60000));
      u->dest = htons(o.port);
      u->len = htons(static_cast<uint16_t>(l4));
      u->check = htons(checksum(u, l4, pseudo_sum(ip->saddr, ip->daddr, IPPROTO_UDP, static_cast<uint16_t>(l4))));
    }
    return total;
  });
  close(fd);
  return sent;
}

int raw_flood(const options& o) {
  {
    int probe = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
    if (probe < 0) {
      std::fprintf(stderr, "rampart-flood: raw socket: %s (needs root or CAP_NET_RAW)\n", std::strerror(errno));
      return 77;
    }
    close(probe);
  }
  std::vector<uint64_t> sent_by(static_cast<size_t>(o.threads), 0);
  std::vector<std::thread> senders;
  for (int t = 0; t < o.threads; ++t) {
    senders.emplace_back([&, t] { sent_by[static_cast<size_t>(t)] = raw_sender(o, o.rate / o.threads, 12345u + static_cast<uint32_t>(t)); });
  }
  for (auto& s : senders) s.join();
  uint64_t sent = 0;
  for (uint64_t s : sent_by) sent += s;
  std::printf("{\"kind\":\"%s\",\"sent\":%llu,\"duration_s\":%g}\n", o.kind.c_str(),
              static_cast<unsigned long long>(sent), o.duration);
  return 0;
}

int connect_flood(const options& o) {
  std::vector<int> fds;
  std::mt19937 rng(7);
  int failed = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(
                           static_cast<double>(o.connections) / std::max(1.0, o.rate) + 5.0);
  for (int i = 0; i < o.connections && std::chrono::steady_clock::now() < give_up; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(o.src_base | (rng() & ~o.src_mask));
    bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_addr = o.target;
    dst.sin_port = htons(o.port);
    // A full accept queue must not stall the generator: each connect gets 200 ms.
    bool connected = connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0;
    if (!connected && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      connected = poll(&p, 1, 200) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
    if (!connected) {
      ++failed;
      close(fd);
      continue;
    }
    fds.push_back(fd);  // never sends a ZMTP greeting
    std::this_thread::sleep_for(std::chrono::duration<double>(1.0 / std::max(1.0, o.rate)));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration));
  for (int fd : fds) close(fd);
  std::printf("{\"kind\":\"connect\",\"connected\":%zu,\"failed\":%d}\n", fds.size(), failed);
  return 0;
}

int register_flood(const options& o) {
  rampart::net::client c;
  char ep[64];
  std::snprintf(ep, sizeof ep, "tcp://%s:%u", inet_ntoa(o.target), o.port);
  if (!c.connect(ep, nullptr)) return 1;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  uint64_t sent = 0, answered = 0;
  while (clock::now() - start < std::chrono::duration<double>(o.duration)) {
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    while (sent < static_cast<uint64_t>(elapsed * o.rate)) {
      c.send("register", {{"name", "flood-" + std::to_string(sent)}});
      ++sent;
    }
    while (c.receive(std::chrono::milliseconds(0))) ++answered;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  while (c.receive(std::chrono::milliseconds(200))) ++answered;
  std::printf("{\"kind\":\"register\",\"sent\":%llu,\"answered\":%llu}\n", static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(answered));
  return 0;
}

// Messages of KIND ("bigmsg": as fast as the socket takes them; "malformed": at --rate) over one DEALER with a
// small send queue, reading every answer. Counts what went out, what was answered and how often the server
// pushed back (the send queue was full).
int message_flood(const options& o, const std::string& kind) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::sndhwm, 16);
  s.set(zmq::sockopt::linger, 0);
  char ep[128];
  if (o.source.empty()) std::snprintf(ep, sizeof ep, "tcp://%s:%u", inet_ntoa(o.target), o.port);
  else std::snprintf(ep, sizeof ep, "tcp://%s:0;%s:%u", o.source.c_str(), inet_ntoa(o.target), o.port);
  s.connect(ep);
  std::string body;
  std::string type = kind == "generate" ? "generate" : "ping";
  if (kind == "generate") {
    body = "{\"request_id\":\"%\",\"ids\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],\"max_tokens\":16,"
           "\"ignore_eos\":true}";
  } else if (kind == "bigmsg") {  // just under 1 MiB: a valid object the decoder must read to its end
    body = "{\"a\":[";
    const std::string item = "\"" + std::string(998, 'x') + "\",";
    while (body.size() + item.size() + 8 < (1u << 20) - 64) body += item;
    body += "\"x\"]}";
  } else {
    body = "{bad";
  }
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  uint64_t sent = 0, answered = 0, pushed_back = 0;
  auto drain = [&] {
    zmq::message_t m;
    while (s.recv(m, zmq::recv_flags::dontwait)) {
      if (!m.more()) ++answered;
    }
  };
  auto send_one = [&] {
    if (!s.send(zmq::str_buffer("rampart/1"), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      ++pushed_back;
      return false;
    }
    s.send(zmq::buffer(type), zmq::send_flags::sndmore);
    if (kind == "generate") {  // a fresh request id each time
      std::string b = body;
      b.replace(b.find('%'), 1, "g" + std::to_string(sent));
      s.send(zmq::buffer(b), zmq::send_flags::none);
    } else {
      s.send(zmq::buffer(body), zmq::send_flags::none);
    }
    ++sent;
    return true;
  };
  while (clock::now() - start < std::chrono::duration<double>(o.duration)) {
    if (kind == "bigmsg") {
      if (!send_one()) std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else {
      const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
      while (sent < static_cast<uint64_t>(elapsed * o.rate) && send_one()) {
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    drain();
  }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  std::printf("{\"kind\":\"%s\",\"sent\":%llu,\"answered\":%llu,\"pushed_back\":%llu,\"per_s\":%.0f}\n",
              kind.c_str(), static_cast<unsigned long long>(sent), static_cast<unsigned long long>(answered),
              static_cast<unsigned long long>(pushed_back), static_cast<double>(sent) / seconds);
  return 0;
}

// Anonymous completions to the HTTP door at --rate, pipelined over --connections keep-alive connections from
// --source. Counts what was sent, the answers by status, and how often the server closed a connection.
int http_flood(const options& o) {
  const std::string body = "{\"model\":\"m\",\"prompt\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"
                           "\"max_tokens\":16,\"ignore_eos\":true}";
  std::string model_probe;
  struct conn {
    int fd = -1;
    std::string in;
  };
  auto open_one = [&]() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (!o.source.empty()) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      inet_pton(AF_INET, o.source.c_str(), &src.sin_addr);
      bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_addr = o.target;
    dst.sin_port = htons(o.port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
      close(fd);
      return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
  };
  // The served model's name, from GET /v1/models, so the requests are valid ones.
  std::string model = "m";
  if (int fd = open_one(); fd >= 0) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const std::string get = "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)send(fd, get.data(), get.size(), MSG_NOSIGNAL);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) model_probe.append(buf, static_cast<size_t>(n));
    close(fd);
    const auto at = model_probe.find("\"id\":\"");
    if (at != std::string::npos) model = model_probe.substr(at + 6, model_probe.find('"', at + 6) - at - 6);
  }
  std::string b = body;
  b.replace(b.find("\"m\""), 3, "\"" + model + "\"");
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
  std::vector<conn> conns(static_cast<size_t>(std::max(1, o.connections)));
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  uint64_t sent = 0, ok = 0, limited = 0, other = 0, reopened = 0, received = 0, closed_by_server = 0;
  size_t next = 0;
  auto count_answers = [&](conn& c) {
    size_t at;
    while ((at = c.in.find("HTTP/1.1 ")) != std::string::npos && c.in.size() >= at + 12) {
      const int status = std::atoi(c.in.c_str() + at + 9);
      if (status == 200) ++ok;
      else if (status == 429) ++limited;
      else ++other;
      c.in.erase(0, at + 12);
    }
  };
  while (clock::now() - start < std::chrono::duration<double>(o.duration)) {
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    while (sent < static_cast<uint64_t>(elapsed * o.rate)) {
      conn& c = conns[next++ % conns.size()];
      if (c.fd < 0) {
        c.fd = open_one();
        c.in.clear();
        if (c.fd < 0) break;
        ++reopened;
      }
      if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        close(c.fd);
        c.fd = -1;
        break;  // its buffer is full or it was closed: the next one takes the next request
      }
      ++sent;
    }
    for (auto& c : conns) {
      if (c.fd < 0) continue;
      char buf[65536];
      ssize_t n;
      while ((n = recv(c.fd, buf, sizeof buf, 0)) > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        received += static_cast<uint64_t>(n);
      }
      count_answers(c);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        ++closed_by_server;
        close(c.fd);
        c.fd = -1;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  for (auto& c : conns) {
    if (c.fd >= 0) close(c.fd);
  }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  std::printf("{\"kind\":\"http\",\"model\":\"%s\",\"sent\":%llu,\"ok\":%llu,\"rate_limited_or_shed\":%llu,"
              "\"other\":%llu,\"bytes_received\":%llu,\"connections_opened\":%llu,\"closed_by_server\":%llu,"
              "\"per_s\":%.0f}\n",
              model.c_str(), static_cast<unsigned long long>(sent), static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(limited), static_cast<unsigned long long>(other),
              static_cast<unsigned long long>(received), static_cast<unsigned long long>(reopened),
              static_cast<unsigned long long>(closed_by_server), static_cast<double>(sent) / seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  std::string target, sources = "127.66.0.0/16";
  rampart::tools::flags f(argc, argv, "rampart-flood", kUsage);
  while (f.next()) {
    if (f.is("--kind")) o.kind = f.value();
    else if (f.is("--target")) target = f.value();
    else if (f.is("--rate")) o.rate = f.real(1e-3, 1e9);
    else if (f.is("--duration")) o.duration = f.real(0, 1e6);
    else if (f.is("--sources")) sources = f.value();
    else if (f.is("--connections")) o.connections = static_cast<int>(f.integer(0, 1000000));
    else if (f.is("--threads")) o.threads = static_cast<int>(f.integer(1, 64));
    else if (f.is("--payload")) o.payload = static_cast<int>(f.integer(0, 1400));
    else if (f.is("--source")) o.source = f.value();
    else f.unknown();
  }
  auto colon = target.rfind(':');
  if (colon == std::string::npos || inet_pton(AF_INET, target.substr(0, colon).c_str(), &o.target) != 1) {
    f.fail("--target must be IPV4:PORT");
  }
  try {
    int port = std::stoi(target.substr(colon + 1));
    if (port < 1 || port > 65535) f.fail("bad port");
    o.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    f.fail("bad port");
  }
  if ((ntohl(o.target.s_addr) >> 24) != 127) f.fail("only loopback targets (127.0.0.0/8) are allowed");
  auto slash = sources.find('/');
  in_addr base{};
  if (slash == std::string::npos || inet_pton(AF_INET, sources.substr(0, slash).c_str(), &base) != 1) {
    f.fail("--sources must be an IPv4 prefix like 127.66.0.0/16");
  }
  int bits = std::atoi(sources.c_str() + slash + 1);
  if (bits < 8 || bits > 32 || (ntohl(base.s_addr) >> 24) != 127) {
    f.fail("--sources must be a prefix inside 127.0.0.0/8 of length 8..32");
  }
  o.src_mask = bits == 32 ? 0xffffffffu : ~((1u << (32 - bits)) - 1);
  o.src_base = ntohl(base.s_addr) & o.src_mask;
  if (o.kind == "syn" || o.kind == "udp") return raw_flood(o);
  if (o.kind == "connect") return connect_flood(o);
  if (o.kind == "register") return register_flood(o);
  if (o.kind == "bigmsg" || o.kind == "malformed" || o.kind == "generate") return message_flood(o, o.kind);
  if (o.kind == "http") return http_flood(o);
  f.fail("--kind must be syn, udp, connect, register, bigmsg, malformed, generate or http");
}
