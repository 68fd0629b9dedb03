# Filled in by the engine work.
rampart_add_test(model_engine_tests
                 SOURCES model/engine_golden_test.cpp model/engine_consistency_test.cpp model/kv_cache_test.cpp
                         model/engine_experts_test.cpp
                 LIBS rampart_model rampart_test_support FIXTURES model_fixtures TIMEOUT 300)
rampart_add_test(model_kernel_tests SOURCES model/kernels_test.cpp model/rope_test.cpp model/engine_router_test.cpp
                 LIBS rampart_model)

# Checkpoint side of the engine: dtypes, safetensors, config.json, sampler; synthetic fixtures and their fuzzer.
find_package(OpenSSL REQUIRED)
rampart_add_test(model_checkpoint_tests
                 SOURCES model/tensor_test.cpp model/checkpoint_test.cpp model/checkpoint_open_test.cpp
                         model/checkpoint_config_test.cpp model/sampler_test.cpp
                         model/sampler_rows_test.cpp
                 LIBS rampart_model rampart_test_support)
# Rebuilds the three shared fixtures (args from each tests/fixtures/model/*.golden.json) for every test that
# declares FIXTURES model_fixtures.
set(RAMPART_TEST_MODELS_DIR ${CMAKE_BINARY_DIR}/test-models)
add_test(NAME model.fixtures.build
         COMMAND sh -c "mkdir -p \"$1\" && cd \"$1\" && rm -rf v3-bf16 v3-fp8 v2lite-bf16 \
&& \"$0\" --preset tiny --out \"$1/v3-bf16\" --dtype bf16 --seed 0 --vocab 1000 --no-mtp \
&& \"$0\" --preset tiny --out \"$1/v3-fp8\" --dtype bf16 --fp8 --seed 0 --vocab 1000 --no-mtp \
&& \"$0\" --preset tiny --out \"$1/v2lite-bf16\" --dtype bf16 --variant v2-lite --seed 0 --vocab 1000 --no-mtp"
                 $<TARGET_FILE:rampart-mkmodel> ${RAMPART_TEST_MODELS_DIR})
set_tests_properties(model.fixtures.build PROPERTIES FIXTURES_SETUP model_fixtures TIMEOUT 120)
rampart_add_test(model_fixture_tests SOURCES model/checkpoint_fixture_test.cpp model/checkpoint_mkmodel_test.cpp
                                           model/bench_tools_test.cpp
                 LIBS rampart_model rampart_test_support OpenSSL::Crypto FIXTURES model_fixtures)
target_compile_definitions(model_fixture_tests PRIVATE RAMPART_TEST_MODELS_DIR="${RAMPART_TEST_MODELS_DIR}")
add_dependencies(model_fixture_tests rampart-mkmodel rampart-generate rampart-kernels-bench)
rampart_add_fuzzer(fuzz_safetensors SOURCES fuzz/fuzz_safetensors.cpp LIBS rampart_model)
