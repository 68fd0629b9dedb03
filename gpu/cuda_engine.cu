#include "gpu/cuda_engine.hpp"

#include "gpu/cuda_exec.cuh"
#include "gpu/exact_program.hpp"

namespace rampart::gpu {

model::device_factory cuda_device(int index, bool graphs, precision mode) {
  return [index, graphs, mode](const model::model_config& c, const model::model_weights& w, int64_t n_blocks, int block_tokens,
                 std::string* err) -> std::unique_ptr<model::device_forward> {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || index < 0 || index >= count) {
      *err = "cuda:" + std::to_string(index) + ": no such device (" +
             (e != cudaSuccess ? std::string(cudaGetErrorString(e)) : std::to_string(count) + " present") + ")";
      return nullptr;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, index);
    cuda_exec exec;
    exec.device = index;
    exec.label = "cuda:" + std::to_string(index) + " " + prop.name;
    try {
      exec.make_stream();
    } catch (const model::device_failure& f) {
      *err = exec.label + ": " + f.what();
      return nullptr;
    }
    return exact_program<cuda_exec>::create(exec, c, w, n_blocks, block_tokens, err, graphs, mode);
  };
}

}  // namespace rampart::gpu
