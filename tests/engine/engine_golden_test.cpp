// The engine against the golden logits of an independent float32 reference (tests/fixtures/model): every case
// of every fixture, every recorded position within 1e-4, greedy continuations identical.
#include "tests/engine/engine_test_helpers.hpp"

namespace rampart::test {
namespace {

// The CPU engine, packed or not, against every golden case.
void check_golden(const std::string& name, bool pack_weights = true) {
  model::engine_options o;
  o.pack_weights = pack_weights;
  auto e = make_engine(name, o);
  INFO("pack_weights " << pack_weights << ", " << e->packed_weight_bytes() << " bytes packed");
  // bf16 matrices are rewritten exactly when asked and the chosen kernels read another layout.
  model::weight_matrix probe;
  probe.type = model::dtype::bf16;
  const bool kernels_pack = model::kernels().preferred_layout(probe) != model::weight_layout::natural;
  if (name.find("bf16") != std::string::npos) CHECK((e->packed_weight_bytes() > 0) == (pack_weights && kernels_pack));
  check_golden_cases(*e, name);
}

TEST_CASE("engine matches the v3-bf16 golden logits on every case", "[engine][golden]") { check_golden("v3-bf16"); }
TEST_CASE("engine matches the v3-fp8 golden logits on every case", "[engine][golden]") { check_golden("v3-fp8"); }
TEST_CASE("engine matches the v2lite-bf16 golden logits on every case", "[engine][golden]") {
  check_golden("v2lite-bf16");
}
TEST_CASE("engine computing from the mapped checkpoint (pack_weights = false) matches the bf16 goldens",
          "[engine][golden]") {
  check_golden("v3-bf16", false);
  check_golden("v2lite-bf16", false);
}

}  // namespace
}  // namespace rampart::test
