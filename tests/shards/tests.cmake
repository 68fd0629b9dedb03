# Expert shards: placement, EPLB and the wire format (no model), then the sharded engine on the fixtures.
rampart_add_test(shards_unit_tests SOURCES shards/placement_test.cpp shards/shard_link_test.cpp
                 LIBS rampart_model rampart_net)
rampart_add_test(shards_engine_tests
                 SOURCES shards/sharded_engine_test.cpp shards/shard_failure_test.cpp shards/rebalance_test.cpp
                 LIBS rampart_actors rampart_net rampart_model rampart_test_support FIXTURES model_fixtures
                 TIMEOUT 600 SERIAL)
add_dependencies(shards_engine_tests rampartd)
