rampart_add_test(integration_server_tests SOURCES integration/rampartd_test.cpp
                 LIBS rampart_net rampart_test_support TIMEOUT 120)
add_dependencies(integration_server_tests rampartd rampart-client)

# A model for end-to-end tests: the real DeepSeek-V3 vocabulary (129280 rows) with tiny random weights.
set(RAMPART_SERVER_MODEL_DIR ${CMAKE_BINARY_DIR}/test-models/server-v3)
add_test(NAME integration.model.build
         COMMAND sh -c "rm -rf \"$1\" && mkdir -p \"$(dirname \"$1\")\" && \"$0\" --preset tiny --variant v3 --seed 1 --vocab 129280 --no-mtp --out \"$1\""
                 $<TARGET_FILE:rampart-mkmodel> ${RAMPART_SERVER_MODEL_DIR})
set_tests_properties(integration.model.build PROPERTIES FIXTURES_SETUP server_model TIMEOUT 120)
rampart_add_test(integration_pipeline_tests SOURCES integration/pipeline_test.cpp
                 LIBS rampart_net rampart_test_support FIXTURES server_model TIMEOUT 180 SERIAL)
target_compile_definitions(integration_pipeline_tests PRIVATE
                           RAMPART_SERVER_MODEL_DIR="${RAMPART_SERVER_MODEL_DIR}")
add_dependencies(integration_pipeline_tests rampartd rampart-client rampart-generate)

rampart_add_test(integration_monitor_tests SOURCES integration/monitor_test.cpp
                 LIBS rampart_net rampart_test_support TIMEOUT 120 SERIAL)
add_dependencies(integration_monitor_tests rampartd rampart-flood rampart-alerts)

rampart_add_test(integration_admission_tests SOURCES integration/admission_test.cpp
                 LIBS rampart_net rampart_config rampart_test_support FIXTURES server_model TIMEOUT 120)
target_compile_definitions(integration_admission_tests PRIVATE
                           RAMPART_SERVER_MODEL_DIR="${RAMPART_SERVER_MODEL_DIR}")
add_dependencies(integration_admission_tests rampartd rampart-admin rampart-client)

rampart_add_test(integration_attack_tests SOURCES integration/attack_test.cpp
                 LIBS rampart_net rampart_test_support FIXTURES server_model TIMEOUT 300 SERIAL)
target_compile_definitions(integration_attack_tests PRIVATE RAMPART_SERVER_MODEL_DIR="${RAMPART_SERVER_MODEL_DIR}")
add_dependencies(integration_attack_tests rampartd rampart-flood rampart-admin)

rampart_add_test(integration_hostile_tests SOURCES integration/hostile_client_test.cpp
                 LIBS rampart_net rampart_test_support FIXTURES server_model TIMEOUT 180 SERIAL)
target_compile_definitions(integration_hostile_tests PRIVATE RAMPART_SERVER_MODEL_DIR="${RAMPART_SERVER_MODEL_DIR}")
add_dependencies(integration_hostile_tests rampartd rampart-admin)
