rampart_add_test(net_tests SOURCES net/protocol_test.cpp net/protocol_limits_test.cpp net/source_budget_test.cpp LIBS rampart_net rampart_test_support)
rampart_add_fuzzer(fuzz_protocol SOURCES fuzz/fuzz_protocol.cpp LIBS rampart_net)
