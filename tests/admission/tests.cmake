# Tests of the load-shedding policy, the admission room, the ZAP gate and rampart-admin
# (included by tests/CMakeLists.txt).
rampart_add_test(policy_tests SOURCES config/policy_test.cpp
                 LIBS rampart_config rampart_test_support)
