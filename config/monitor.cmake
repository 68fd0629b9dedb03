# The [monitor] table parser; included by config/CMakeLists.txt.
target_sources(rampart_config PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/monitor_config.cpp)
target_link_libraries(rampart_config PUBLIC rampart_monitor)
