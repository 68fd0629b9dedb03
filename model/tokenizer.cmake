# The tokenizer, chat template and streaming detokenizer (paths relative to model/).
target_sources(rampart_model PRIVATE
  chat_template.cpp
  detokenizer.cpp
  tokenizer.cpp
  tokenizer_bpe.cpp
  tokenizer_checks.cpp
  tokenizer_json_reader.cpp
  tokenizer_load.cpp
  tokenizer_pretokenizer.cpp
  unicode_tables.cpp
  utf8.cpp)
