// The exact program on CUDA device 0 (gpu::cuda_device): the golden fixtures, and the host executor's results
// for the same steps. Without a device each case prints SKIPPED with the reason; with one, a failure fails.
#include <catch2/catch.hpp>

#include <iostream>

#include "gpu/cuda_engine.hpp"
#include "gpu/device_experts.hpp"
#include "gpu/host_exec.hpp"
#include "gpu/device.hpp"
#include "gpu/reference.hpp"
#include "tests/engine/engine_test_helpers.hpp"

namespace rampart::test {
namespace {

bool have_device() {
  const gpu::device_report r = gpu::probe_devices();
  if (r.device_count == 0) std::cout << "SKIPPED: no usable CUDA device (" << r.error << ")\n";
  return r.device_count > 0;
}

std::unique_ptr<model::engine> device_engine(const std::string& name, model::engine_options o = {}) {
  o.device = gpu::cuda_device(0);
  return make_engine(name, o);
}

TEST_CASE("cuda:0 exact engine matches the v3-bf16 golden logits on every case", "[gpu][device][golden]") {
  if (!have_device()) return;
  auto e = device_engine("v3-bf16");
  INFO(e->kernel_name());
  check_golden_cases(*e, "v3-bf16");
}

TEST_CASE("cuda:0 exact engine matches the v3-fp8 golden logits on every case", "[gpu][device][golden]") {
  if (!have_device()) return;
  auto e = device_engine("v3-fp8");
  check_golden_cases(*e, "v3-fp8");
}

TEST_CASE("cuda:0 exact engine matches the v2lite-bf16 golden logits on every case", "[gpu][device][golden]") {
  if (!have_device()) return;
  auto e = device_engine("v2lite-bf16");
  check_golden_cases(*e, "v2lite-bf16");
}

TEST_CASE("cuda:0 exact engine equals the host executor's results within 1e-5, and is batch-independent",
          "[gpu][device]") {
  if (!have_device()) return;
  model::engine_options o;
  o.kv_block_tokens = 4;
  auto dev = device_engine("v3-fp8", o);
  o.device = gpu::host_reference_device(0);
  auto host = make_engine("v3-fp8", o);
  std::vector<int32_t> t(40);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>((i * 53 + 7) % 1000);
  const int64_t V = dev->config().vocab_size;
  const std::vector<float> want = feed(*host, t, 0), got = feed(*dev, t, 0), got_chunked = feed(*dev, t, 3);
  CHECK(max_abs_diff(want.data(), got.data(), static_cast<int64_t>(t.size()) * V) <= 1e-5);
  CHECK(got == got_chunked);  // chunked prefill: the same bits, whatever the step's other tokens
}

TEST_CASE("cuda:0 samples where the logits are: greedy tokens equal the CPU engine's, seeds repeat",
          "[gpu][device][sampling]") {
  if (!have_device()) return;
  auto dev = device_engine("v3-bf16");
  REQUIRE(dev->samples_on_device());
  auto cpu = make_engine("v3-bf16");
  CHECK(scheduler_tokens(*dev, 0.0f) == scheduler_tokens(*cpu, 0.0f));
  const auto first = scheduler_tokens(*dev, 1.0f);
  CHECK(first == scheduler_tokens(*dev, 1.0f));
  CHECK(first.at(2).size() == 6);
}

TEST_CASE("cuda:0 replays decode steps as graphs with the bits of op-by-op launches", "[gpu][device][graphs]") {
  if (!have_device()) return;
  model::engine_options a, b;
  a.device = gpu::cuda_device(0, true);
  b.device = gpu::cuda_device(0, false);
  auto e1 = make_engine("v3-bf16", a), e2 = make_engine("v3-bf16", b);
  std::vector<int32_t> t(24);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>((i * 29 + 3) % 1000);
  CHECK(feed(*e1, t, 1) == feed(*e2, t, 1));  // one token a step: every step a decode step (bucket 1)
  CHECK(scheduler_tokens(*e1, 1.0f) == scheduler_tokens(*e2, 1.0f));  // batches of 3: bucket 4, padded
}

TEST_CASE("cuda:0 fast precision: within 0.1 of the bf16 goldens and within 2e-3 of the host's emulation",
          "[gpu][device][fast]") {
  if (!have_device()) return;
  for (const char* name : {"v3-bf16", "v2lite-bf16"}) {
    INFO(name);
    model::engine_options o;
    o.device = gpu::cuda_device(0, true, gpu::precision::fast);
    auto dev = make_engine(name, o);
    o.device = gpu::host_reference_device(0, true, gpu::precision::fast);
    auto host = make_engine(name, o);
    const nlohmann::json golden = load_golden(name);
    const int64_t V = dev->config().vocab_size;
    const std::vector<int32_t> prompt = golden["cases"][0]["prompt"].get<std::vector<int32_t>>();
    const std::vector<float> d = feed(*dev, prompt, 0), h = feed(*host, prompt, 0);
    CHECK(max_abs_diff(d.data(), h.data(), static_cast<int64_t>(prompt.size()) * V) <= 2e-3);
    for (const auto& rec : golden["cases"][0]["logits"]) {
      const int64_t pos = rec["position"];
      if (pos >= static_cast<int64_t>(prompt.size())) continue;
      const std::vector<float> want = rec["values"].get<std::vector<float>>();
      CHECK(max_abs_diff(want.data(), &d[pos * V], V) <= 0.1f);
    }
  }
}

TEST_CASE("a GPU expert shard computes the host executor's outputs, and two GPU shards the bits of one",
          "[gpu][device][shards]") {
  if (!have_device()) return;
  auto ck = open_checkpoint("v3-fp8");
  std::string err;
  auto w = model::load_shared_weights(ck, &err);
  REQUIRE(w);
  const int D = static_cast<int>(ck->config().hidden_size);
  auto one = gpu::cuda_shard_compute(0, w, D, &err), a = gpu::cuda_shard_compute(0, w, D, &err),
       b = gpu::cuda_shard_compute(0, w, D, &err);
  INFO(err);
  REQUIRE(one);
  gpu::device_experts<gpu::host_exec> host(gpu::host_exec{std::make_shared<model::thread_pool>(0)}, w, D);
  auto batch = [&](model::shard_batch& x, const std::vector<int>& items) {
    x.layer = static_cast<int32_t>(ck->config().first_k_dense_replace);
    x.hidden = D;
    x.n_rows = 4;
    for (int i = 0; i < 4 * D; ++i) x.rows.push_back(static_cast<float>((i * 37) % 101 - 50) / 25.0f);
    for (int i : items) {
      x.item_row.push_back(i % 4);
      x.item_expert.push_back((i * 7 + 1) % one->n_experts());
    }
    x.n_items = static_cast<int32_t>(items.size());
  };
  model::shard_batch all, ref, even, odd;
  batch(all, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  batch(ref, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  REQUIRE(one->run(all, &err));
  REQUIRE(host.run(ref, &err));
  CHECK(max_abs_diff(all.out.data(), ref.out.data(), 9 * D) <= 1e-5);
  batch(even, {0, 2, 4, 6, 8});
  batch(odd, {1, 3, 5, 7});
  REQUIRE(a->run(even, &err));
  REQUIRE(b->run(odd, &err));
  for (int i = 0; i < 9; ++i) {
    const float* got = &(i % 2 == 0 ? even : odd).out[static_cast<size_t>(i / 2) * D];
    CHECK(std::equal(got, got + D, &all.out[static_cast<size_t>(i) * D]));
  }
}

TEST_CASE("a device that does not exist is refused with a clear error", "[gpu][device]") {
  model::engine_options o;
  o.device = gpu::cuda_device(250);
  std::string err;
  auto e = model::engine::create(open_checkpoint("v3-bf16"), o, &err);
  CHECK(e == nullptr);
  CHECK(err.find("cuda:250: no such device") == 0);
}

}  // namespace
}  // namespace rampart::test
