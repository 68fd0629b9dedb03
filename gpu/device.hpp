// The CUDA backend's plain C++ face: device discovery and a numerical self-test. No CUDA types cross this
// header, so CPU-only code can include it.
#pragma once

#include <string>

namespace rampart::gpu {

struct device_report {
  int device_count = 0;  // 0 when no usable device (also when the driver is missing)
  std::string error;     // why there is no device, when device_count == 0
  std::string name;      // device 0
  int compute_major = 0;
  int compute_minor = 0;
  size_t memory_bytes = 0;
  int runtime_version = 0;  // e.g. 13000
  int nccl_version = 0;     // e.g. 22809
  int cublas_version = 0;   // major*10000 + minor*100 + patch
};

// Never fails: a machine without a GPU gives device_count 0 and the reason.
device_report probe_devices();

struct self_test_result {
  bool ran = false;
  double saxpy_max_error = 0;  // against a CPU reference computed in double
  double sgemm_max_error = 0;  // cuBLAS SGEMM against a CPU reference computed in double
  std::string error;
};

// Runs a saxpy kernel and a cuBLAS SGEMM of size N on device 0 and compares with CPU references.
self_test_result run_self_test(int n);

}  // namespace rampart::gpu
