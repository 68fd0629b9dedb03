// cuBLAS, loaded when first used rather than linked: libcublasLt's static TLS (94 KB) would otherwise be reserved
// in every thread's stack of every program that links the CUDA backend, and a library that starts its threads
// with small stacks (civetweb, rampartd's metrics listener) then cannot start them at all. A library loaded with
// dlopen keeps its TLS out of thread stacks.
#pragma once

#include <cublas_v2.h>

#include <string>

namespace rampart::gpu {

struct cublas_api {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  decltype(&cublasSgemm_v2) sgemm;
  decltype(&cublasGetProperty) get_property;
};

// The functions, loaded once from libcublas.so.13 (the loader's search path, then the CUDA toolkit's library
// folder this was built against); nullptr + *err when the library or a symbol is missing.
const cublas_api* cublas(std::string* err);

}  // namespace rampart::gpu
