# GPU tests live in their own executable (CUDA libraries make process start slow). Without a device they
# report themselves skipped with the reason.
if(TARGET rampart_gpu)
  rampart_add_test(gpu_tests SOURCES gpu/device_test.cpp LIBS rampart_gpu rampart_test_support)
endif()
