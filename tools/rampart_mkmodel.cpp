// rampart-mkmodel: writes a synthetic DeepSeek-architecture checkpoint (config.json + safetensors) whose
// weights follow the documented recipe; `--preset tiny` with the fixture flags rebuilds the test fixtures.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "testkit/synthetic_checkpoint.hpp"
#include "tools/flags.hpp"

namespace {

const char* const usage =
    "usage: rampart-mkmodel --out DIR [--variant v3|v2-lite] [--preset tiny|small|medium] [--seed S]\n"
    "                       [--dtype bf16|f32] [--fp8] [--vocab N] [--layers N] [--no-mtp | --mtp]\n"
    "                       [--shards N] [--threads N]\n"
    "\n"
    "Writes a synthetic DeepSeek-architecture checkpoint (config.json + safetensors) whose weights follow the\n"
    "documented recipe from SEED. --fp8 stores attention projections, the dense MLP and experts as fp8 e4m3 with\n"
    "128x128 block scales; --vocab and --layers override the preset; --shards splits the weights over N\n"
    "files; --threads sets the writer threads (0: one per core).\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace rampart::model;
  std::string out, variant = "v3", preset = "tiny", dtype_text = "bf16";
  unsigned long long seed = 0, vocab = 0, layers = 0, shards = 1, threads = 0;
  bool fp8 = false, no_mtp = false, mtp = false;
  rampart::tools::flags f(argc, argv, "rampart-mkmodel", usage);
  while (f.next()) {
    if (f.is("--out")) out = f.value();
    else if (f.is("--variant")) variant = f.value();
    else if (f.is("--preset")) preset = f.value();
    else if (f.is("--dtype")) {
      dtype_text = f.value();
      if (dtype_text != "bf16" && dtype_text != "f32") f.fail("--dtype needs bf16 or f32");
    } else if (f.is("--seed")) seed = f.uinteger(0, ~0ull);
    else if (f.is("--vocab")) vocab = f.uinteger(2, 1ull << 31);
    else if (f.is("--layers")) layers = f.uinteger(1, 4096);
    else if (f.is("--shards")) shards = f.uinteger(1, 99999);
    else if (f.is("--threads")) threads = f.uinteger(0, 1024);
    else if (f.is("--fp8")) fp8 = true;
    else if (f.is("--no-mtp")) no_mtp = true;
    else if (f.is("--mtp")) mtp = true;
    else f.unknown();
  }
  if (out.empty()) f.fail("--out is required");
  if (mtp && no_mtp) f.fail("--mtp and --no-mtp contradict each other");

  synthetic_spec spec;
  std::string err;
  if (!synthetic_preset(preset, variant, &spec, &err)) f.fail(err);
  spec.seed = seed;
  spec.storage = dtype_text == "f32" ? dtype::f32 : dtype::bf16;
  spec.fp8 = fp8;
  spec.shards = static_cast<int>(shards);
  model_config& c = spec.config;
  if (vocab) c.vocab_size = static_cast<int64_t>(vocab);
  if (layers) {
    c.num_hidden_layers = static_cast<int64_t>(layers);
    if (c.first_k_dense_replace > c.num_hidden_layers) c.first_k_dense_replace = c.num_hidden_layers;
  }
  if (no_mtp) c.num_nextn_predict_layers = 0;
  if (mtp) {
    if (c.family != model_family::deepseek_v3) f.fail("--mtp needs --variant v3");
    c.num_nextn_predict_layers = 1;
  }
  // The written config must be one the loader accepts.
  model_config check;
  if (!model_config::parse(synthetic_config_json(spec), "config.json", &check, &err)) f.fail(err);

  const auto start = std::chrono::steady_clock::now();
  if (!write_synthetic_checkpoint(spec, out, static_cast<unsigned>(threads), &err)) {
    std::fprintf(stderr, "rampart-mkmodel: %s\n", err.c_str());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "rampart-mkmodel: wrote %s (%s, %s%s, seed %llu) in %.1f s\n", out.c_str(),
               variant.c_str(), dtype_text.c_str(), fp8 ? " + fp8" : "", seed, seconds);
  return 0;
}
