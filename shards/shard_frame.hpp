// The expert-shard frame codec (docs/protocol.md, "Expert-shard link"): what the attention rank and a shard process
// say to each other, one frame per MoE layer per step. Pure and fuzzed: every decode failure is an error with a
// reason, never a crash; sizes are checked against the frame before anything is copied or allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shards/shard_transport.hpp"

namespace rampart::model {

enum class shard_frame_kind : uint8_t {
  run = 1,
  warm = 2,
  ping = 3,
  run_result = 0x81,
  warm_done = 0x82,
  pong = 0x83,
  error = 0xff,
};

// What a frame carries besides its kind and request id.
struct shard_frame {
  shard_frame_kind kind = shard_frame_kind::ping;
  uint64_t request_id = 0;
  std::vector<int32_t> experts;  // warm
  std::string message;           // error
};

// What a shard accepts, from its model and the attention rank's step size: a frame past these is refused before
// anything is sized from it, so one small frame cannot make a shard allocate for 2^24 items.
struct shard_frame_limits {
  int64_t max_rows = 1024;      // rows in one run: the attention rank's step slice (engine_options::max_step_tokens)
  int64_t experts_per_row = 8;  // routed experts per token (num_experts_per_tok): items <= rows x this
  int64_t hidden = 0;           // the model's hidden size (0: any, up to 65536)
  int64_t n_experts = 0;        // routed experts per MoE layer: a warm list holds at most this many (0: any)
  // The largest frame a valid request can be under these limits (the shard socket's maxmsgsize).
  int64_t max_request_bytes() const;
  // The largest run result (or error frame) a shard can owe (the attention rank's maxmsgsize).
  int64_t max_answer_bytes() const;
};
// An error frame's text is cut to this many bytes when encoded and refused past it when decoded.
constexpr size_t max_error_bytes = 4096;

// Encoders append nothing: *OUT is replaced (its capacity is reused).
void encode_run_request(uint64_t id, const model::shard_batch& b, std::vector<uint8_t>* out);
void encode_run_result(uint64_t id, const model::shard_batch& b, std::vector<uint8_t>* out);
void encode_simple(shard_frame_kind kind, uint64_t id, std::vector<uint8_t>* out);  // ping, pong, warm_done
void encode_warm(uint64_t id, const std::vector<int32_t>& experts, std::vector<uint8_t>* out);
void encode_error(uint64_t id, const std::string& message, std::vector<uint8_t>* out);

// Reads the header and, for warm and error frames, the body into *F. False + *err for a frame that is too
// short, has the wrong magic or version, an unknown kind, a body whose size does not match, or an error text
// over max_error_bytes. With LIMITS (a shard's), a warm list longer than n_experts is refused before it is
// read, and the list is returned sorted without duplicates.
bool decode_shard_frame(const uint8_t* data, size_t size, shard_frame* f, std::string* err,
                        const shard_frame_limits* limits = nullptr);
// A run request into *B (layer, hidden, rows, items; sizes must match exactly). False + *err otherwise, and
// for counts past LIMITS (rows over max_rows, items over rows x experts_per_row, another hidden size), which
// are checked before anything is allocated.
bool decode_run_request(const uint8_t* data, size_t size, const shard_frame_limits& limits, shard_batch* b,
                        std::string* err);
// A run result into B.out and B.compute_ns; its item count and width must be B's, every value finite and the
// compute time under an hour. False + *err otherwise: the shard failed the step.
bool decode_run_result(const uint8_t* data, size_t size, shard_batch* b, std::string* err);

}  // namespace rampart::model
