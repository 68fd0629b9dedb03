target_sources(rampart_model PRIVATE tensor.cpp)
target_sources(rampart_model PRIVATE safetensors.cpp checkpoint.cpp model_config.cpp)
target_sources(rampart_model PRIVATE safetensors_writer.cpp synthetic_checkpoint.cpp synthetic_config.cpp)
