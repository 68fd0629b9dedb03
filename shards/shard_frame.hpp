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

// Encoders append nothing: *OUT is replaced (its capacity is reused).
void encode_run_request(uint64_t id, const model::shard_batch& b, std::vector<uint8_t>* out);
void encode_run_result(uint64_t id, const model::shard_batch& b, std::vector<uint8_t>* out);
void encode_simple(shard_frame_kind kind, uint64_t id, std::vector<uint8_t>* out);  // ping, pong, warm_done
void encode_warm(uint64_t id, const std::vector<int32_t>& experts, std::vector<uint8_t>* out);
void encode_error(uint64_t id, const std::string& message, std::vector<uint8_t>* out);

// Reads the header and, for warm and error frames, the body into *F. False + *err for a frame that is too
// short, has the wrong magic or version, an unknown kind, or a body whose size does not match.
bool decode_shard_frame(const uint8_t* data, size_t size, shard_frame* f, std::string* err);
// A run request into *B (layer, hidden, rows, items; sizes must match exactly). False + *err otherwise.
bool decode_run_request(const uint8_t* data, size_t size, model::shard_batch* b, std::string* err);
// A run result into B.out and B.compute_ns; its item count and width must be B's. False + *err otherwise.
bool decode_run_result(const uint8_t* data, size_t size, model::shard_batch* b, std::string* err);

}  // namespace rampart::model
