target_sources(rampart_model PRIVATE tensor.cpp)
