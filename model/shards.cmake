# Expert shards: placement, load statistics, EPLB, the sharded backend and the per-shard compute.
target_sources(rampart_model PRIVATE expert_placement.cpp expert_stats.cpp eplb.cpp shard_compute.cpp
               sharded_expert_backend.cpp)
