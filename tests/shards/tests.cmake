# Expert shards: placement, EPLB and the wire format (no model), then the sharded engine on the fixtures.
rampart_add_test(shards_unit_tests SOURCES shards/placement_test.cpp shards/shard_link_test.cpp
                                           shards/shard_config_test.cpp
                 LIBS rampart_model rampart_net rampart_config)
rampart_add_test(shards_engine_tests
                 SOURCES shards/sharded_engine_test.cpp shards/shard_failure_test.cpp shards/rebalance_test.cpp
                 LIBS rampart_actors rampart_net rampart_model rampart_test_support FIXTURES model_fixtures
                 TIMEOUT 600 SERIAL)
add_dependencies(shards_engine_tests rampartd)

# End to end: rampartd whose experts live in two shard processes (the server model of tests/integration).
rampart_add_test(integration_shard_tests SOURCES integration/shard_test.cpp
                 LIBS rampart_actors rampart_net rampart_model rampart_test_support FIXTURES server_model
                 TIMEOUT 180 SERIAL)
target_compile_definitions(integration_shard_tests PRIVATE RAMPART_SERVER_MODEL_DIR="${RAMPART_SERVER_MODEL_DIR}")
add_dependencies(integration_shard_tests rampartd)
