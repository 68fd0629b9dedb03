// The engine against the golden logits of an independent float32 reference (tests/fixtures/model): every case
// of every fixture, every recorded position within 1e-4, greedy continuations identical.
#include "tests/engine/engine_test_helpers.hpp"

namespace rampart::test {
namespace {

// Prefills the case's prompt in one step, then decodes greedily one token per step, checking the recorded
// logits and the greedy tokens on the way.
void check_golden(const std::string& name, bool pack_weights = true) {
  const nlohmann::json golden = load_golden(name);
  const double tol = golden.value("tolerance_abs_fp32", 1e-4);
  model::engine_options o;
  o.pack_weights = pack_weights;
  auto e = make_engine(name, o);
  INFO("pack_weights " << pack_weights << ", " << e->packed_weight_bytes() << " bytes packed");
  // bf16 matrices are rewritten exactly when asked and the chosen kernels read another layout.
  model::weight_matrix probe;
  probe.type = model::dtype::bf16;
  const bool kernels_pack = model::kernels().preferred_layout(probe) != model::weight_layout::natural;
  if (name.find("bf16") != std::string::npos) CHECK((e->packed_weight_bytes() > 0) == (pack_weights && kernels_pack));
  const int64_t V = e->config().vocab_size;
  for (const auto& c : golden["cases"]) {
    const std::string case_name = c["name"];
    INFO("fixture " << name << ", case " << case_name);
    const std::vector<int32_t> prompt = c["prompt"].get<std::vector<int32_t>>();
    const std::vector<int32_t> greedy = c["greedy"].get<std::vector<int32_t>>();
    // logits after fed position p: the prompt's rows come from the prefill, the rest from decode steps.
    std::vector<float> rows((prompt.size() + greedy.size()) * static_cast<size_t>(V));
    std::string err;
    model::kv_sequence seq;
    REQUIRE(e->start(&seq, nullptr, 0, &err) == 0);
    model::step_output out;
    REQUIRE(e->step({model::seq_input{&seq, prompt.data(), static_cast<int64_t>(prompt.size()), true}}, &out, &err));
    std::copy(out.row(0, 0), out.row(0, 0) + prompt.size() * V, rows.begin());
    std::vector<int32_t> generated;
    int32_t next = argmax(out.row(0), V);
    for (size_t i = 0; i < greedy.size(); ++i) {
      generated.push_back(next);
      if (i + 1 == greedy.size()) break;
      REQUIRE(e->step({model::seq_input{&seq, &next, 1, false}}, &out, &err));
      std::copy(out.row(0), out.row(0) + V, rows.begin() + (prompt.size() + i) * V);
      next = argmax(out.row(0), V);
    }
    CHECK(generated == greedy);
    for (const auto& rec : c["logits"]) {
      const int64_t pos = rec["position"];
      const std::vector<float> want = rec["values"].get<std::vector<float>>();
      REQUIRE(static_cast<int64_t>(want.size()) == V);
      INFO("position " << pos);
      CHECK(max_abs_diff(want.data(), &rows[pos * V], V) <= tol);
    }
    e->release(&seq);
  }
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
