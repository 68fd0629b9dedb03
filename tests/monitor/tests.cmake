# Monitor tests (included by tests/CMakeLists.txt). The live-capture test needs root / CAP_NET_RAW and
# prints SKIPPED without it; it runs alone because it binds a port on lo.
rampart_add_test(monitor_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/packet_parser_test.cpp ${CMAKE_CURRENT_LIST_DIR}/synthetic_pcap_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/real_pcap_test.cpp ${CMAKE_CURRENT_LIST_DIR}/app_signal_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/eve_test.cpp ${CMAKE_CURRENT_LIST_DIR}/monitor_config_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/inspect_tool_test.cpp ${CMAKE_CURRENT_LIST_DIR}/features_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/capture_filter_test.cpp ${CMAKE_CURRENT_LIST_DIR}/culprits_test.cpp
  LIBS rampart_monitor rampart_config rampart_test_support nlohmann_json::nlohmann_json
  TIMEOUT 120)
add_dependencies(monitor_tests rampart-inspect)  # inspect_tool_test runs the built tool
rampart_add_test(monitor_live_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/live_capture_test.cpp
  LIBS rampart_monitor rampart_test_support
  TIMEOUT 60 SERIAL)
rampart_add_fuzzer(fuzz_packet SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_packet.cpp LIBS rampart_monitor)
