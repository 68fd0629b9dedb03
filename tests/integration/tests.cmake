rampart_add_test(integration_server_tests SOURCES integration/rampartd_test.cpp
                 LIBS rampart_net rampart_test_support TIMEOUT 120)
add_dependencies(integration_server_tests rampartd rampart-client)
