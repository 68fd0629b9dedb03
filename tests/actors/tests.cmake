rampart_add_test(actors_tests SOURCES actors/supervisor_test.cpp actors/logging_test.cpp actors/admission_gate_test.cpp
                 LIBS rampart_actors rampart_test_support)
