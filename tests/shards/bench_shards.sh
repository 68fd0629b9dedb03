#!/bin/sh
# Expert-shard dispatch/combine cost: single engine, 2 in-process shards, 2 shard processes over ZeroMQ.
B=${BIN:-build/bin}
for M in ${TINY:-build/test-models/v3-bf16} ${MEDIUM:-models/medium}; do
  echo "== $M single"; $B/rampart-generate --model $M --ids "0 15 27" -n 32 --batch 4 --bench | grep -E "decode|prefill"
  echo "== $M --shards 2"; $B/rampart-generate --model $M --ids "0 15 27" -n 32 --batch 4 --bench --shards 2 | grep -E "decode batch|prefill|expert shards"
  $B/rampartd --role shard --shard-id 0 --shards 2 --listen tcp://127.0.0.1:17201 --model $M --threads 1 2>/dev/null & P1=$!
  $B/rampartd --role shard --shard-id 1 --shards 2 --listen tcp://127.0.0.1:17202 --model $M --threads 1 2>/dev/null & P2=$!
  echo "== $M --shard-endpoints (2 processes)"; $B/rampart-generate --model $M --ids "0 15 27" -n 32 --batch 4 --bench --shard-endpoints tcp://127.0.0.1:17201,tcp://127.0.0.1:17202 | grep -E "decode batch|prefill|expert shards"
  kill $P1 $P2; wait $P1 $P2 2>/dev/null
done
