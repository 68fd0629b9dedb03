// The DeepSeek-V3 tokenizer for fuzz targets: loaded once from RAMPART_TOKENIZER_DIR, else the repository's
// models/deepseek-v3-tokenizer (RAMPART_DEFAULT_TOKENIZER_DIR); aborts with a hint when it is missing.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "tokenizer/tokenizer.hpp"

namespace rampart::fuzz {

inline const model::tokenizer& real_tokenizer(const char* fuzzer) {
  static std::unique_ptr<model::tokenizer> tok = [fuzzer] {
    const char* env = std::getenv("RAMPART_TOKENIZER_DIR");
    std::string error;
    auto t = model::tokenizer::load(env != nullptr ? env : RAMPART_DEFAULT_TOKENIZER_DIR, &error);
    if (!t) {
      std::fprintf(stderr, "%s: %s (set RAMPART_TOKENIZER_DIR or run tools/setup.sh)\n", fuzzer, error.c_str());
      std::abort();
    }
    return t;
  }();
  return *tok;
}

// Aborts (a crash libFuzzer reports) with WHAT when OK is false.
inline void check(bool ok, const char* fuzzer, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "%s: %s\n", fuzzer, what);
    std::abort();
  }
}

}  // namespace rampart::fuzz
