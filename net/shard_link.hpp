// The expert-shard link over ZeroMQ (docs/protocol.md, "Expert-shard link"): the attention rank holds one DEALER
// per shard process and sends each shard one frame per MoE layer per step; a shard process serves its ROUTER.
// The frame codec lives in shards/shard_frame.hpp; this file is the ZeroMQ transport and the serve loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "shards/shard_compute.hpp"
#include "shards/shard_frame.hpp"
#include "shards/shard_transport.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace rampart::net {

// CURVE on the shard link (Z85 keys, 40 characters each). Empty keys: a plain link, for loopback only.
struct shard_link_keys {
  std::string public_key;  // this end's keypair
  std::string secret_key;
  // The attention rank: each shard's public key, in the order of its endpoints. A shard process: the public keys
  // of the attention ranks it serves; a connection with any other key is refused at the handshake.
  std::vector<std::string> peer_keys;

  bool curve() const { return !secret_key.empty(); }
};

class zmq_shard_transport final : public model::shard_transport {
 public:
  // Connects (in the background) to every endpoint. A shard's message larger than MAX_ANSWER_BYTES (the largest
  // answer the model allows: shard_frame_limits::max_answer_bytes) drops its connection unread. With KEYS
  // (curve()), shard I is trusted only if it proves it holds the secret half of KEYS.peer_keys[I]. nullptr + *err
  // for a malformed endpoint, a key count that does not match the endpoints, or a keypair whose halves differ.
  static std::shared_ptr<zmq_shard_transport> create(const std::vector<std::string>& endpoints,
                                                     int64_t max_answer_bytes, const shard_link_keys& keys,
                                                     std::string* err);
  ~zmq_shard_transport() override;

  // Pings every shard until all answered (true) or TIMEOUT passed (false + *err naming the silent ones).
  bool wait_ready(std::chrono::milliseconds timeout, std::string* err);

  int size() const override { return static_cast<int>(endpoints_.size()); }
  std::string name(int shard) const override;
  void exchange(std::vector<model::shard_call>& calls, std::chrono::steady_clock::time_point deadline) override;
  std::shared_ptr<model::warm_state> warm(int shard, const std::vector<int32_t>& experts) override;
  void poll() override;

  uint64_t malformed_frames() const { return malformed_.load(); }

 private:
  zmq_shard_transport() = default;
  bool send(int shard);
  // Receives every frame waiting on SHARD's socket; answers to CALLS (by request id) are filled in.
  void drain(int shard, std::vector<model::shard_call>* calls);

  std::unique_ptr<zmq::context_t> ctx_;
  std::vector<std::unique_ptr<zmq::socket_t>> socks_;
  std::vector<std::string> endpoints_;
  std::vector<uint64_t> expected_;  // per shard: the run request id awaiting an answer, 0 none
  std::vector<bool> ponged_;
  struct pending_warm {
    std::shared_ptr<model::warm_state> state;
    std::chrono::steady_clock::time_point deadline;
  };
  std::map<uint64_t, pending_warm> warms_;
  uint64_t next_id_ = 1;
  std::vector<std::chrono::steady_clock::time_point> sent_at_;  // per shard: when its batch in flight was sent
  std::vector<uint8_t> buf_;
  std::atomic<uint64_t> malformed_{0};
};

struct shard_server_stats {
  std::atomic<uint64_t> batches{0}, items{0}, malformed{0}, failed{0};
  std::atomic<uint64_t> refused_keys{0};  // CURVE handshakes refused: the client's key is not in peer_keys
};

// Binds a ROUTER to ENDPOINT and serves COMPUTE until STOP becomes true (checked at least every 100 ms).
// With KEYS (curve()) the ROUTER is a CURVE server that admits only KEYS.peer_keys (a ZAP handler in the socket's
// context decides at the handshake, before any frame is read). ON_BOUND gets the bound endpoint once listening.
// False + *err when the endpoint cannot be bound or the keys are unusable. Messages
// larger than LIMITS allow are dropped by ZeroMQ unread; frames past LIMITS, malformed ones and any that make
// the computation throw get an error answer and are counted; none of them stops the loop.
bool serve_shard(const std::string& endpoint, const shard_link_keys& keys, model::expert_compute& compute,
                 const model::shard_frame_limits& limits, const std::atomic<bool>& stop, shard_server_stats* stats,
                 void (*on_bound)(const std::string&), std::string* err);

}  // namespace rampart::net
