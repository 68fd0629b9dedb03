#include <catch2/catch.hpp>

#include <iostream>

#include "gpu/device.hpp"

using namespace rampart::gpu;

TEST_CASE("the CUDA runtime, cuBLAS and NCCL libraries load and report versions", "[gpu]") {
  auto r = probe_devices();
  CHECK(r.runtime_version >= 12000);
  CHECK(r.nccl_version > 0);
  CHECK(r.cublas_version > 0);
}

TEST_CASE("saxpy and cuBLAS SGEMM on device 0 match a CPU reference", "[gpu]") {
  auto r = probe_devices();
  if (r.device_count == 0) {
    std::cout << "SKIPPED: no usable CUDA device (" << r.error << ")\n";
    return;
  }
  CHECK(r.compute_major >= 9);
  auto t = run_self_test(64);
  INFO(t.error);
  REQUIRE(t.ran);
  CHECK(t.saxpy_max_error == 0.0);
  CHECK(t.sgemm_max_error < 1e-3);
}
