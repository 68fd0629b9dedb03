target_sources(rampart_model PRIVATE tensor.cpp)
target_sources(rampart_model PRIVATE thread_pool.cpp kernels.cpp kernels_avx2.cpp kernels_avx512.cpp rope.cpp layers.cpp
                                     attention.cpp expert_backend.cpp moe.cpp block_manager.cpp engine.cpp)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set_source_files_properties(kernels_avx2.cpp PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(kernels_avx512.cpp PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx2;-mfma;-mf16c")
endif()
