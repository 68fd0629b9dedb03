#include "gpu/cublas_loader.hpp"

#include <dlfcn.h>

#include <mutex>

namespace rampart::gpu {

namespace {

template <class F>
bool bind(void* lib, const char* name, F* out, std::string* missing) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) *missing = name;
  return *out != nullptr;
}

}  // namespace

const cublas_api* cublas(std::string* err) {
  static std::once_flag once;
  static cublas_api api;
  static std::string error;
  std::call_once(once, [] {
    void* lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) lib = dlopen(RAMPART_CUDA_LIB_DIR "/libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = dlerror();
      error = std::string("cannot load libcublas.so.13: ") + (why != nullptr ? why : "not found");
      return;
    }
    std::string missing;
    if (!(bind(lib, "cublasCreate_v2", &api.create, &missing) && bind(lib, "cublasDestroy_v2", &api.destroy, &missing) &&
          bind(lib, "cublasSetStream_v2", &api.set_stream, &missing) &&
          bind(lib, "cublasSetWorkspace_v2", &api.set_workspace, &missing) &&
          bind(lib, "cublasGemmEx", &api.gemm_ex, &missing) && bind(lib, "cublasSgemm_v2", &api.sgemm, &missing) &&
          bind(lib, "cublasGetProperty", &api.get_property, &missing)))
      error = "libcublas.so.13 has no " + missing;
  });
  if (!error.empty()) {
    *err = error;
    return nullptr;
  }
  return &api;
}

}  // namespace rampart::gpu
