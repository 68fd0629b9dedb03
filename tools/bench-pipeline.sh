#!/usr/bin/env bash
# The pipeline's own cost: output tokens/s delivered to rampart-bench clients against the engine serving the same
# work in one process (rampart-generate --serve: the same clients, requests, prompt and output lengths, through the
# batch scheduler with the server's defaults), and against its pure decode rate at the same batch size
# (rampart-generate --bench, which has no prefill steps and no turnover between requests); and the latency the
# pipeline adds per token (client-observed time per output token minus the in-process one). Usage:
# tools/bench-pipeline.sh [BATCH] [TOKENS] [SAMPLING] [MODEL]
# SAMPLING is passed to all sides, e.g. "--temperature 0.7 --top-p 0.95" (default: greedy). MODEL: a checkpoint
# directory (default: the tiny demo model with DeepSeek-V3's vocabulary, made here).
# ENGINE_THREADS=N (environment): the engine runs N threads on both sides ([engine] threads, --threads), the
# server and the in-process runs are pinned to the first N CPUs and the clients to the others, so the load
# generator does not take the server's cores (on a machine where clients and server must share, as they do not
# in production); everything the server does besides the engine then runs on the engine's cores and counts.
# ENGINE_CPU=1 (environment) instead: the layout of a deployment with `[engine] cpus`: the engine runs one thread
# on the last CPU, alone; rampartd keeps its other threads (network, actors, detokenizer) off it, and the clients
# run on the other CPUs with them. The in-process runs get the last CPU to themselves too.
# Unset: all on all cores.
set -euo pipefail
bin=${BIN:-build/bin}
batch=${1:-8}
tokens=${2:-128}
sampling=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
model=$(mktemp -d)
trap 'rm -rf "$model"; [ -n "${server:-}" ] && kill -INT $server 2>/dev/null; wait 2>/dev/null || true' EXIT
checkpoint=${4:-$model/m}
[ -n "${4:-}" ] || "$bin/rampart-mkmodel" --out "$model/m" --variant v3 --seed 1 --preset tiny --vocab 129280 \
  --no-mtp >/dev/null
requests=3
threads=${ENGINE_THREADS:-0}
pin=()
server_pin=()
engine_pin=()
engine_cpus_line=""
if [ -n "${ENGINE_CPU:-}" ]; then
  cpus=$(nproc)
  [ "$cpus" -ge 2 ] || { echo "ENGINE_CPU needs two CPUs or more" >&2; exit 2; }
  threads=1
  last=$((cpus - 1))
  pin=(taskset -c "0-$((last - 1))")
  engine_pin=(taskset -c "$last")
  engine_cpus_line="cpus = [$last]"
elif [ "$threads" -gt 0 ]; then
  cpus=$(nproc)
  [ "$threads" -lt "$cpus" ] || { echo "ENGINE_THREADS must leave a CPU for the clients ($cpus CPUs)" >&2; exit 2; }
  pin=(taskset -c "$threads-$((cpus - 1))")
  server_pin=(taskset -c "0-$((threads - 1))")
fi
prompt_ids=$(seq -s ' ' 1000 1015)  # 16 prompt tokens, as the clients send

# shellcheck disable=SC2086 # SAMPLING is a list of options
[ -n "${ENGINE_CPU:-}" ] || engine_pin=("${server_pin[@]}")
engine=$("${engine_pin[@]}" "$bin/rampart-generate" --model "$checkpoint" --ids "$prompt_ids" -n "$tokens" --bench --threads "$threads" \
         --batch "$batch" $sampling | grep "^decode batch $batch:")
engine_tok_s=$(echo "$engine" | sed -E 's/.*: ([0-9.]+) tok\/s.*/\1/')
engine_step_ms=$(echo "$engine" | sed -E 's/.*\(([0-9.]+) ms\/step.*/\1/')
# shellcheck disable=SC2086
served=$("${engine_pin[@]}" "$bin/rampart-generate" --model "$checkpoint" --ids "$prompt_ids" -n "$tokens" --serve "$requests" --threads "$threads" \
         --batch "$batch" $sampling)
served_tok_s=$(echo "$served" | sed -E 's/.*: ([0-9.]+) tok\/s.*/\1/')
served_tpot_p50=$(echo "$served" | sed -E 's/.*p50 ([0-9.]+) ms.*/\1/')
served_tpot_p99=$(echo "$served" | sed -E 's/.*p99 ([0-9.]+) ms.*/\1/')

# The clients are a registered tenant: anonymous work would be held to its budget of the batch (policy).
api_key=$("$bin/rampart-admin" --db "$model/accounts.db" create bench --class registered | sed -n 's/^api_key: //p')
printf '[admission]\naccounts_db = "%s"\n[engine]\nthreads = %d\n%s\n' "$model/accounts.db" "$threads" "$engine_cpus_line" \
  > "$model/rampart.toml"
port=$((20000 + RANDOM % 20000))
"${server_pin[@]}" "$bin/rampartd" --config "$model/rampart.toml" --model "$checkpoint" --tokenizer "$here/models/deepseek-v3-tokenizer" \
  --endpoint "tcp://127.0.0.1:$port" --metrics-listen off --alerts-publish off --log-level warn &
server=$!
for _ in $(seq 1 100); do
  "$bin/rampart-client" --connect "tcp://127.0.0.1:$port" --ping --timeout-ms 200 >/dev/null 2>&1 && break
  sleep 0.1
done
# shellcheck disable=SC2086
bench=$("${pin[@]}" "$bin/rampart-bench" --connect "tcp://127.0.0.1:$port" --clients "$batch" --requests "$requests" \
        --prompt-tokens 16..16 --max-tokens "$tokens..$tokens" --api-key "$api_key" $sampling)
python3 - "$engine_tok_s" "$engine_step_ms" "$served_tok_s" "$served_tpot_p50" "$served_tpot_p99" "$bench" "$batch" \
  "${sampling:-greedy}" "$threads" <<'PY'
import json, sys
engine_tok_s, step_ms, served_tok_s, served_p50, served_p99 = map(float, sys.argv[1:6])
bench, batch, sampling, threads = json.loads(sys.argv[6]), int(sys.argv[7]), sys.argv[8], int(sys.argv[9])
tpot = bench["time_per_output_token_ms"]
print(json.dumps({
    "batch": batch,
    "sampling": sampling,
    "engine_threads": threads or "all cores",
    "engine_decode_tok_s": engine_tok_s,
    "engine_step_ms": step_ms,
    "engine_served_tok_s": served_tok_s,
    "pipeline_output_tok_s": round(bench["output_tokens_per_s"], 1),
    "pipeline_vs_served": round(bench["output_tokens_per_s"] / served_tok_s, 3),
    "pipeline_vs_decode": round(bench["output_tokens_per_s"] / engine_tok_s, 3),
    "added_latency_per_token_ms": {"p50": round(tpot["p50"] - served_p50, 3), "p99": round(tpot["p99"] - served_p99, 3)},
    "ttft_ms": bench["time_to_first_token_ms"],
    "done": bench["done"], "error": bench["error"], "shed": bench["shed"]}))
PY
