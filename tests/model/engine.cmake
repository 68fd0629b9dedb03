# Filled in by the engine work.
rampart_add_test(model_engine_tests SOURCES model/engine_golden_test.cpp
                 LIBS rampart_model rampart_test_support FIXTURES model_fixtures TIMEOUT 300)
