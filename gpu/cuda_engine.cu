#include "gpu/cuda_engine.hpp"

#include "gpu/cuda_exec.cuh"
#include "gpu/device_experts.hpp"
#include "gpu/exact_program.hpp"

namespace rampart::gpu {

namespace {

// cuda:INDEX's executor with its stream; false + *err when the device does not exist or cannot start.
bool make_exec(int index, cuda_exec* exec, std::string* err) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || index < 0 || index >= count) {
    *err = "cuda:" + std::to_string(index) + ": no such device (" +
           (e != cudaSuccess ? std::string(cudaGetErrorString(e)) : std::to_string(count) + " present") + ")";
    return false;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, index);
  exec->device = index;
  exec->label = "cuda:" + std::to_string(index) + " " + prop.name;
  try {
    exec->make_stream();
  } catch (const model::device_failure& f) {
    *err = exec->label + ": " + f.what();
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<model::expert_compute> cuda_shard_compute(int index, std::shared_ptr<const model::model_weights> w,
                                                          int hidden, std::string* err) {
  cuda_exec exec;
  if (!make_exec(index, &exec, err)) return nullptr;
  return std::make_unique<device_experts<cuda_exec>>(exec, std::move(w), hidden);
}

model::device_factory cuda_device(int index, bool graphs, precision mode) {
  return [index, graphs, mode](const model::model_config& c, const model::model_weights& w, int64_t n_blocks, int block_tokens,
                 std::string* err) -> std::unique_ptr<model::device_forward> {
    cuda_exec exec;
    if (!make_exec(index, &exec, err)) return nullptr;
    return exact_program<cuda_exec>::create(exec, c, w, n_blocks, block_tokens, err, graphs, mode);
  };
}

}  // namespace rampart::gpu
