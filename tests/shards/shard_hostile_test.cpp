// A shard process against a hostile peer on its link: frames past its model's limits, over-long warm lists,
// garbage and an oversized message are refused (answered, or dropped unread by the socket) and the shard keeps
// serving. The limits come from the fixture's config.json (hidden size, experts per token, expert count).
#include <zmq.hpp>

#include <cstring>

#include "model/checkpoint.hpp"
#include "net/shard_link.hpp"
#include "tests/shards/shard_test_helpers.hpp"

namespace rampart::test {
namespace {

// A raw DEALER to a shard: sends one frame and waits for one answer.
struct raw_peer {
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  explicit raw_peer(const std::string& endpoint) {
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(endpoint);
  }
  // The answer's decoded frame, or nullopt when none came within TIMEOUT.
  std::optional<model::shard_frame> ask(const std::vector<uint8_t>& frame, std::chrono::milliseconds timeout) {
    sock.send(zmq::buffer(frame), zmq::send_flags::none);
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t msg;
    if (!sock.recv(msg, zmq::recv_flags::none)) return std::nullopt;
    model::shard_frame f;
    std::string err;
    if (!model::decode_shard_frame(static_cast<const uint8_t*>(msg.data()), msg.size(), &f, &err)) return std::nullopt;
    return f;
  }
};

}  // namespace

TEST_CASE("a shard process refuses frames past its model's limits and keeps serving", "[shards][hostile]") {
  const std::string dir = test_model_dir("v3-bf16");
  model::load_error lerr;
  auto ck = model::checkpoint::open(dir, &lerr);
  REQUIRE(ck);
  const auto& c = ck->config();
  shard_process shard(dir, 0, 1);
  raw_peer peer(shard.endpoint);
  const auto wait = std::chrono::seconds(5);

  // One row asking for one expert more than a token is routed to.
  model::shard_batch b;
  b.layer = static_cast<int32_t>(c.first_k_dense_replace);
  b.hidden = static_cast<int32_t>(c.hidden_size);
  b.n_rows = 1;
  b.rows.assign(static_cast<size_t>(c.hidden_size), 0.25f);
  b.n_items = static_cast<int32_t>(c.num_experts_per_tok + 1);
  b.item_row.assign(static_cast<size_t>(b.n_items), 0);
  b.item_expert.assign(static_cast<size_t>(b.n_items), 0);
  std::vector<uint8_t> frame;
  model::encode_run_request(11, b, &frame);
  auto answer = peer.ask(frame, wait);
  REQUIRE(answer);
  CHECK(answer->kind == model::shard_frame_kind::error);
  CHECK(answer->request_id == 11);
  CHECK(answer->message.find("experts each") != std::string::npos);

  // A warm list longer than the model's experts.
  std::vector<int32_t> all(static_cast<size_t>(c.n_routed_experts + 1), 0);
  model::encode_warm(12, all, &frame);
  answer = peer.ask(frame, wait);
  REQUIRE(answer);
  CHECK(answer->kind == model::shard_frame_kind::error);
  CHECK(answer->message.find("warm lists") != std::string::npos);

  // Garbage.
  frame.assign(64, 0xAB);
  answer = peer.ask(frame, wait);
  REQUIRE(answer);
  CHECK(answer->kind == model::shard_frame_kind::error);

  // A message larger than any request the model allows is dropped by the socket, unread and unanswered.
  model::shard_frame_limits limits;
  limits.experts_per_row = c.num_experts_per_tok;
  limits.hidden = c.hidden_size;
  frame.assign(static_cast<size_t>(limits.max_request_bytes()) + 4096, 0);
  CHECK_FALSE(peer.ask(frame, std::chrono::milliseconds(1500)));

  // The shard still serves: a fresh peer's ping gets its pong, and a valid run its result.
  raw_peer again(shard.endpoint);
  model::encode_simple(model::shard_frame_kind::ping, 13, &frame);
  answer = again.ask(frame, wait);
  REQUIRE(answer);
  CHECK(answer->kind == model::shard_frame_kind::pong);
  CHECK(answer->request_id == 13);
  b.n_items = 1;
  b.item_row = {0};
  b.item_expert = {0};
  model::encode_run_request(14, b, &frame);
  answer = again.ask(frame, wait);
  REQUIRE(answer);
  CHECK(answer->kind == model::shard_frame_kind::run_result);
  CHECK(shard.proc->running());
}

}  // namespace rampart::test
