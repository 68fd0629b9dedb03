// rampart-kernels-bench: the weight-matrix kernels alone, on synthetic bf16 matrices with the shapes of the
// medium preset: GEMV bandwidth (batch-1 decode) and GEMM FLOP/s (prefill and decode batches), each the best of
// several runs, next to the machine's read bandwidth and FMA peak measured by the same binary.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/kernels_parallel.hpp"
#include "kernels/thread_pool.hpp"
#include "testkit/kernels_bench.hpp"
#include "tools/flags.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-kernels-bench [--threads N] [--offset BYTES] [--layout engine|natural]\n"
    "\n"
    "GEMV and GEMM rates of the bf16 kernels on medium-preset shapes.\n"
    "  --threads N       worker threads (default 2)\n"
    "  --offset BYTES    weight data this many bytes past a 64-byte boundary, even, 0-62 (default 8, as in\n"
    "                    safetensors files)\n"
    "  --layout L        engine: the panel layout the engine rewrites weights into (default); natural: the\n"
    "                    checkpoint's own\n";

using namespace rampart::model;
using clock_type = std::chrono::steady_clock;

// A rows x cols bf16 matrix whose data starts OFFSET bytes past a 64-byte boundary (safetensors data is only
// 8-byte aligned), with values uniform in [-1, 1).
struct bf16_matrix {
  std::vector<uint16_t> storage;
  weight_matrix w;
  bf16_matrix(int64_t rows, int64_t cols, uint32_t seed, int offset) : storage(static_cast<size_t>(rows * cols) + 64) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto base = reinterpret_cast<uintptr_t>(storage.data());
    auto* data = reinterpret_cast<uint16_t*>((base + 63) / 64 * 64 + static_cast<uintptr_t>(offset));
    for (int64_t i = 0; i < rows * cols; ++i) {
      const float f = u(g);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      data[i] = static_cast<uint16_t>(bits >> 16);
    }
    w.type = dtype::bf16;
    w.rows = rows;
    w.cols = cols;
    w.data = reinterpret_cast<const std::byte*>(data);
  }
  // Rewrites the matrix into LAYOUT (as model_weights::pack_for does for the engine).
  void relayout(weight_layout layout) {
    if (layout != weight_layout::panels16) return;
    packed.resize(static_cast<size_t>(panel_count(w.rows) * panel_bytes(w.cols)) / 8 + 8);
    auto* out = reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(packed.data()) + 63) / 64 * 64);
    pack_panels16(w, false, out);
    w = panels16_view(out, w.rows, w.cols);
    storage = {};
  }
  std::vector<uint64_t> packed;
};

template <class F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = clock_type::now();
    f();
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, offset = 8;
  std::string layout_name = "engine";
  rampart::tools::flags f(argc, argv, "rampart-kernels-bench", kUsage);
  while (f.next()) {
    if (f.is("--threads")) threads = static_cast<int>(f.integer(1, 1024));
    else if (f.is("--layout")) layout_name = f.value();
    else if (f.is("--offset")) offset = static_cast<int>(f.integer(0, 62));
    else f.unknown();
  }
  if (offset % 2 != 0) f.fail("--offset must be even");
  if (layout_name != "engine" && layout_name != "natural") f.fail("--layout is engine or natural");
  thread_pool pool(threads);
  const kernel_ops& k = kernels();
  weight_matrix probe;
  probe.type = dtype::bf16;
  const weight_layout layout = layout_name == "engine" ? k.preferred_layout(probe) : weight_layout::natural;
  std::printf("kernels %s, %d threads, %s layout, weights %d bytes past a 64-byte boundary\n", k.name, threads,
              layout == weight_layout::panels16 ? "panels16" : "natural", offset);
  std::vector<float> x(static_cast<size_t>(2816) * 512, 0.01f), y(static_cast<size_t>(129280) * 32);

  // Decode from memory: 768 expert-shaped matrices in turn (768 MiB, past any last-level cache; a batch-32
  // step reads about 2.2 GiB of experts) at 1 and 4 tokens, and the lm_head at 1.
  {
    constexpr int n_experts = 768;
    std::vector<bf16_matrix> experts;
    for (int i = 0; i < n_experts; ++i) {
      experts.emplace_back(512, 1024, static_cast<uint32_t>(i), offset);
      experts.back().relayout(layout);
    }
    bf16_matrix lm_head(129280, 1024, 7, offset);
    lm_head.relayout(layout);
    const double bytes = static_cast<double>(n_experts) * 512 * 1024 * 2;
    const double s1 = best_seconds(5, [&] {
      for (auto& m : experts) matmul(pool, k, m.w, x.data(), 1024, 1, y.data(), 512);
    });
    const double s4 = best_seconds(5, [&] {
      for (auto& m : experts) matmul(pool, k, m.w, x.data(), 1024, 4, y.data(), 512);
    });
    const double s_lm = best_seconds(9, [&] { matmul(pool, k, lm_head.w, x.data(), 1024, 1, y.data(), 129280); });
    const double bw = measure_read_bandwidth(pool, size_t{1} << 30);
    std::printf("experts 512x1024 from memory: 1 token %.1f GB/s, 4 tokens %.1f GB/s; lm_head 129280x1024: %.1f GB/s; "
                "measured read bandwidth %.1f GB/s\n",
                bytes / s1 / 1e9, bytes / s4 / 1e9, 129280.0 * 1024 * 2 / s_lm / 1e9, bw / 1e9);
  }
  // Products: prefill shapes (dense MLP, attention, 512 tokens), experts at a prefill's and a batch's share.
  struct shape {
    int64_t rows, cols, tokens;
    const char* what;
  };
  const double peak = measure_fma_peak(pool);
  for (const shape s : {shape{2816, 1024, 512, "dense gate/up, prefill"}, shape{1024, 2816, 512, "dense down, prefill"},
                        shape{1536, 1024, 512, "attention, prefill"}, shape{512, 1024, 64, "expert gate/up, prefill"},
                        shape{1024, 512, 64, "expert down, prefill"}, shape{512, 1024, 12, "expert, 12 tokens"},
                        shape{512, 1024, 4, "expert, batch 32 decode"}, shape{1024, 512, 4, "expert down, batch 32"},
                        shape{129280, 1024, 32, "lm_head, batch 32 decode"}}) {
    bf16_matrix m(s.rows, s.cols, 3, offset);
    m.relayout(layout);
    const int reps = s.rows > 100000 ? 5 : (s.tokens >= 64 ? 15 : 200);
    const double sec = best_seconds(reps, [&] {
      matmul(pool, k, m.w, x.data(), s.cols, s.tokens, y.data(), s.rows);
    });
    const double flops = 2.0 * static_cast<double>(s.rows * s.cols * s.tokens) / sec;
    std::printf("gemm %5lldx%-5lld %3lld tokens: %6.1f GFLOP/s = %2.0f%% of measured FMA peak %.1f GFLOP/s  (%s)\n",
                static_cast<long long>(s.rows), static_cast<long long>(s.cols), static_cast<long long>(s.tokens),
                flops / 1e9, 100.0 * flops / peak, peak / 1e9, s.what);
  }
  return 0;
}
