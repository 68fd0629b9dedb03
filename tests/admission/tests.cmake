# Tests of the load-shedding policy, the admission room, the ZAP gate and rampart-admin
# (included by tests/CMakeLists.txt).
rampart_add_test(policy_tests SOURCES config/policy_test.cpp
                 LIBS rampart_config rampart_test_support)
find_package(OpenSSL REQUIRED)
rampart_add_test(accounts_tests SOURCES admission/accounts_test.cpp
                 LIBS rampart_admission rampart_test_support SQLite::SQLite3 OpenSSL::Crypto)
rampart_add_test(admin_tool_tests SOURCES admission/admin_tool_test.cpp
                 LIBS rampart_admission rampart_test_support)
rampart_add_test(shedder_tests SOURCES admission/shedder_test.cpp admission/threat_deny_test.cpp
                 LIBS rampart_admission)
rampart_add_test(zap_tests SOURCES net/zap_test.cpp LIBS rampart_net TIMEOUT 60)
rampart_add_fuzzer(fuzz_policy SOURCES fuzz/fuzz_policy.cpp LIBS rampart_config)
