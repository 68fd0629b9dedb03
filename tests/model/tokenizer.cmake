# Tokenizer, pre-tokenizer, streaming detokenizer and chat template. Tests that need the real DeepSeek-V3 files
# (models/deepseek-v3-tokenizer, fetched by tools/setup.sh) print SKIPPED when they are missing.
rampart_add_test(model_tokenizer_tests
                 SOURCES model/tokenizer_fixture_test.cpp model/tokenizer_spec_test.cpp
                         model/tokenizer_pretokenizer_test.cpp model/tokenizer_bpe_test.cpp model/tokenizer_chars_test.cpp
                         model/tokenizer_load_test.cpp model/detokenizer_test.cpp model/chat_template_test.cpp
                 LIBS rampart_model rampart_test_support TIMEOUT 300)

rampart_add_fuzzer(fuzz_tokenizer SOURCES fuzz/fuzz_tokenizer.cpp LIBS rampart_model)
if(TARGET fuzz_tokenizer)
  target_compile_definitions(fuzz_tokenizer PRIVATE
    RAMPART_DEFAULT_TOKENIZER_DIR="${PROJECT_SOURCE_DIR}/models/deepseek-v3-tokenizer")
endif()

# Stop-string matching and the chat path of a `generate`, on the real tokenizer.
rampart_add_fuzzer(fuzz_stop SOURCES fuzz/fuzz_stop.cpp LIBS rampart_model)
rampart_add_fuzzer(fuzz_chat SOURCES fuzz/fuzz_chat.cpp LIBS rampart_net rampart_model)
foreach(f fuzz_stop fuzz_chat)
  if(TARGET ${f})
    target_compile_definitions(${f} PRIVATE
      RAMPART_DEFAULT_TOKENIZER_DIR="${PROJECT_SOURCE_DIR}/models/deepseek-v3-tokenizer")
  endif()
endforeach()
