// Expert-parallel load balancing in the spirit of DeepSeek's EPLB: from the tokens each expert received in a
// window, give the hottest experts extra replicas and pack all copies onto shards so shard loads are even.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shards/expert_placement.hpp"

namespace rampart::model {

// Expected tokens per shard when each expert's load is split evenly over its copies (as the sharded backend
// spreads an expert's rows over its owners in turn).
std::vector<double> placement_loads(const expert_placement& p, const std::vector<uint64_t>& expert_load);
// Max over mean of placement_loads (1.0 when there is no load).
double placement_imbalance(const expert_placement& p, const std::vector<uint64_t>& expert_load);

// A placement of EXPERT_LOAD.size() experts over N_SHARDS with N_REPLICAS extra copies:
// 1. replicas: N_REPLICAS times, the expert with the largest load per copy (lowest id on ties) that is not yet
//    on every shard gets one more copy;
// 2. packing: copies sorted by load per copy, descending (ties: lower expert id first), each goes to the
//    least-loaded shard that has room (every shard holds at most ceil(copies / shards)) and does not yet hold
//    that expert (ties: lower shard id). An expert's primary is its first packed copy.
// False + *err when the shards cannot hold that (n_shards < 1, more shards than copies).
bool eplb_plan(const std::vector<uint64_t>& expert_load, int n_shards, int n_replicas, expert_placement* out,
               std::string* err);

}  // namespace rampart::model
