target_sources(rampart_model PRIVATE tensor.cpp)
target_sources(rampart_model PRIVATE safetensors.cpp checkpoint.cpp model_config.cpp)
target_sources(rampart_model PRIVATE safetensors_writer.cpp synthetic_checkpoint.cpp synthetic_config.cpp)
target_sources(rampart_model PRIVATE thread_pool.cpp kernels.cpp kernels_avx2.cpp kernels_avx512.cpp rope.cpp layers.cpp
                                     attention.cpp expert_backend.cpp moe.cpp block_manager.cpp engine.cpp kernels_bench.cpp)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set_source_files_properties(kernels_avx2.cpp PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  # Scheduled for an AVX-512 server core (instruction choice only; any AVX-512 CPU runs it): the 12-token x
  # 2-panel tile then keeps its accumulators in place, about 3% more FLOP/s than the generic tuning.
  set_source_files_properties(kernels_avx512.cpp PROPERTIES COMPILE_OPTIONS
                              "-mavx512f;-mavx512bw;-mavx512vl;-mavx2;-mfma;-mf16c;-mtune=icelake-server")
endif()
target_sources(rampart_model PRIVATE sampler.cpp sampler_rows_portable.cpp sampler_rows_avx2.cpp sampler_rows_avx512.cpp)
# The sampler's row passes are selects over floats: without trapping math they vectorise as blends.
set_source_files_properties(sampler_rows_portable.cpp PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set_source_files_properties(sampler_rows_avx2.cpp PROPERTIES COMPILE_OPTIONS "-fno-trapping-math;-mavx2;-mfma;-mpopcnt")
  set_source_files_properties(sampler_rows_avx512.cpp PROPERTIES COMPILE_OPTIONS
                              "-fno-trapping-math;-mavx512f;-mavx512bw;-mavx512vl;-mavx2;-mfma;-mpopcnt")
endif()
