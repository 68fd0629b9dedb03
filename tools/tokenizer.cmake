# Filled in by the tokenizer work.
