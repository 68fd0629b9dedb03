#!/bin/sh
# Resident memory of each `rampartd --role shard` process for 1, 2 and 4 shards of MODEL (default models/medium,
# made by `rampart-mkmodel --preset medium --out models/medium`), after it warmed its experts and served a
# 32-token generation of batch 4 through rampart-generate --shard-endpoints: VmRSS, split into anonymous memory
# (heap, stacks) and pages of the mapped checkpoint. docs/benchmarks.md ("Memory per shard process") records it.
B=${BIN:-build/bin}
M=${MEDIUM:-models/medium}
echo "checkpoint $M: $(du -sm "$M" | cut -f1) MiB on disk"
for N in 1 2 4; do
  pids=""
  eps=""
  K=0
  while [ $K -lt $N ]; do
    port=$((17300 + K))
    $B/rampartd --role shard --shard-id $K --shards $N --listen tcp://127.0.0.1:$port --model "$M" --threads 1 \
      2>/dev/null &
    pids="$pids $!"
    eps="$eps${eps:+,}tcp://127.0.0.1:$port"
    K=$((K + 1))
  done
  $B/rampart-generate --model "$M" --ids "0 15 27 3 999 500 1 2" -n 32 --batch 4 --threads 1 \
    --shard-endpoints "$eps" >/dev/null || echo "generation failed"
  K=0
  for p in $pids; do
    awk -v n=$N -v k=$K '/^VmRSS|^RssAnon|^RssFile/ {v[$1]=$2} END {printf "%d shards, shard %d: VmRSS %d MiB (anonymous %d MiB, checkpoint pages %d MiB)\n", n, k, v["VmRSS:"]/1024, v["RssAnon:"]/1024, v["RssFile:"]/1024}' /proc/$p/status
    K=$((K + 1))
  done
  kill $pids
  wait $pids 2>/dev/null
done
