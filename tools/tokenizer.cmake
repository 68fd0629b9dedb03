# rampart-tokenize: encode, decode, chat prompts and the tokenizer benchmark from the command line.
rampart_add_tool(rampart-tokenize SOURCES rampart_tokenize.cpp LIBS rampart_model)
