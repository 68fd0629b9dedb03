rampart_add_test(model_scheduler_tests SOURCES model/scheduler_test.cpp
                 LIBS rampart_model rampart_test_support FIXTURES model_fixtures TIMEOUT 300)
