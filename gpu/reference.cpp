#include "gpu/reference.hpp"

#include "gpu/exact_program.hpp"
#include "gpu/host_exec.hpp"

namespace rampart::gpu {

model::device_factory host_reference_device(int threads, bool graphs, precision mode) {
  return [threads, graphs, mode](const model::model_config& c, const model::model_weights& w, int64_t n_blocks, int block_tokens,
            std::string* err) -> std::unique_ptr<model::device_forward> {
    return exact_program<host_exec>::create(host_exec{std::make_shared<model::thread_pool>(threads)}, c, w, n_blocks, block_tokens, err, graphs, mode);
  };
}

}  // namespace rampart::gpu
