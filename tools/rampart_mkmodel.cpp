// rampart-mkmodel: writes a synthetic DeepSeek-architecture checkpoint (config.json + safetensors) whose
// weights follow the documented recipe; `--preset tiny` with the fixture flags rebuilds the test fixtures.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/synthetic_checkpoint.hpp"

namespace {

const char* const usage =
    "usage: rampart-mkmodel --out DIR [--variant v3|v2-lite] [--preset tiny|small|medium] [--seed S]\n"
    "                       [--dtype bf16|f32] [--fp8] [--vocab N] [--layers N] [--no-mtp | --mtp]\n"
    "                       [--shards N] [--threads N]\n";

bool parse_number(const std::string& text, unsigned long long max_value, unsigned long long* out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 20)
    return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v > max_value) return false;
  *out = v;
  return true;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "rampart-mkmodel: %s\n%s", message.c_str(), usage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rampart::model;
  std::string out, variant = "v3", preset = "tiny", dtype_text = "bf16";
  unsigned long long seed = 0, vocab = 0, layers = 0, shards = 1, threads = 0;
  bool fp8 = false, no_mtp = false, mtp = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= argc) return false;
      *v = argv[++i];
      return true;
    };
    auto number = [&](unsigned long long max_value, unsigned long long* v) {
      std::string text;
      return value(&text) && parse_number(text, max_value, v);
    };
    if (a == "--out") {
      if (!value(&out)) return fail("--out needs a directory");
    } else if (a == "--variant") {
      if (!value(&variant)) return fail("--variant needs v3 or v2-lite");
    } else if (a == "--preset") {
      if (!value(&preset)) return fail("--preset needs tiny, small or medium");
    } else if (a == "--dtype") {
      if (!value(&dtype_text) || (dtype_text != "bf16" && dtype_text != "f32"))
        return fail("--dtype needs bf16 or f32");
    } else if (a == "--seed") {
      if (!number(~0ull, &seed)) return fail("--seed needs a non-negative integer");
    } else if (a == "--vocab") {
      if (!number(1ull << 31, &vocab) || vocab < 2) return fail("--vocab needs an integer in [2, 2^31]");
    } else if (a == "--layers") {
      if (!number(4096, &layers) || layers < 1) return fail("--layers needs an integer in [1, 4096]");
    } else if (a == "--shards") {
      if (!number(99999, &shards) || shards < 1) return fail("--shards needs an integer in [1, 99999]");
    } else if (a == "--threads") {
      if (!number(1024, &threads)) return fail("--threads needs an integer in [0, 1024]");
    } else if (a == "--fp8") {
      fp8 = true;
    } else if (a == "--no-mtp") {
      no_mtp = true;
    } else if (a == "--mtp") {
      mtp = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    } else {
      return fail("unknown argument '" + a + "'");
    }
  }
  if (out.empty()) return fail("--out is required");
  if (mtp && no_mtp) return fail("--mtp and --no-mtp contradict each other");

  synthetic_spec spec;
  std::string err;
  if (!synthetic_preset(preset, variant, &spec, &err)) return fail(err);
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
    if (c.family != model_family::deepseek_v3) return fail("--mtp needs --variant v3");
    c.num_nextn_predict_layers = 1;
  }
  // The written config must be one the loader accepts.
  model_config check;
  if (!model_config::parse(synthetic_config_json(spec), "config.json", &check, &err)) return fail(err);

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
