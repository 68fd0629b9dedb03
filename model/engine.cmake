target_sources(rampart_model PRIVATE tensor.cpp)
target_sources(rampart_model PRIVATE safetensors.cpp checkpoint.cpp model_config.cpp)
