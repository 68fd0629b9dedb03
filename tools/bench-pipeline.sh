#!/usr/bin/env bash
# The pipeline's own cost: output tokens/s delivered to rampart-bench clients against the engine's decode rate at
# the same batch size (rampart-generate --bench), and the latency the pipeline adds per token (client-observed
# time per output token minus the engine's step time). Usage: tools/bench-pipeline.sh [BATCH] [TOKENS] [SAMPLING]
# SAMPLING is passed to both sides, e.g. "--temperature 0.7 --top-p 0.95" (default: greedy).
set -euo pipefail
bin=${BIN:-build/bin}
batch=${1:-8}
tokens=${2:-128}
sampling=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
model=$(mktemp -d)
trap 'rm -rf "$model"; [ -n "${server:-}" ] && kill -INT $server 2>/dev/null; wait 2>/dev/null || true' EXIT
"$bin/rampart-mkmodel" --out "$model/m" --variant v3 --seed 1 --preset tiny --vocab 129280 --no-mtp >/dev/null

# shellcheck disable=SC2086 # SAMPLING is a list of options
engine=$("$bin/rampart-generate" --model "$model/m" --ids "$(seq -s ' ' 1000 1015)" -n "$tokens" --bench \
         --batch "$batch" $sampling | grep "^decode batch $batch:")
engine_tok_s=$(echo "$engine" | sed -E 's/.*: ([0-9.]+) tok\/s.*/\1/')
engine_step_ms=$(echo "$engine" | sed -E 's/.*\(([0-9.]+) ms\/step.*/\1/')

# The clients are a registered tenant: anonymous work would be held to its budget of the batch (policy).
api_key=$("$bin/rampart-admin" --db "$model/accounts.db" create bench --class registered | sed -n 's/^api_key: //p')
printf '[admission]\naccounts_db = "%s"\n' "$model/accounts.db" > "$model/rampart.toml"
port=$((20000 + RANDOM % 20000))
"$bin/rampartd" --config "$model/rampart.toml" --model "$model/m" --tokenizer "$here/models/deepseek-v3-tokenizer" \
  --endpoint "tcp://127.0.0.1:$port" --metrics-listen off --alerts-publish off --log-level warn &
server=$!
for _ in $(seq 1 100); do
  "$bin/rampart-client" --connect "tcp://127.0.0.1:$port" --ping --timeout-ms 200 >/dev/null 2>&1 && break
  sleep 0.1
done
# shellcheck disable=SC2086
bench=$("$bin/rampart-bench" --connect "tcp://127.0.0.1:$port" --clients "$batch" --requests 3 \
        --prompt-tokens 16..16 --max-tokens "$tokens..$tokens" --api-key "$api_key" $sampling)
python3 - "$engine_tok_s" "$engine_step_ms" "$bench" "$batch" "${sampling:-greedy}" <<'PY'
import json, sys
engine_tok_s, step_ms, bench, batch = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
sampling = sys.argv[5]
tpot = bench["time_per_output_token_ms"]
print(json.dumps({
    "batch": int(batch),
    "sampling": sampling,
    "engine_decode_tok_s": engine_tok_s,
    "engine_step_ms": step_ms,
    "pipeline_output_tok_s": round(bench["output_tokens_per_s"], 1),
    "pipeline_vs_engine": round(bench["output_tokens_per_s"] / engine_tok_s, 3),
    "added_latency_per_token_ms": {"p50": round(tpot["p50"] - step_ms, 3), "p99": round(tpot["p99"] - step_ms, 3)},
    "ttft_ms": bench["time_to_first_token_ms"],
    "done": bench["done"], "error": bench["error"], "shed": bench["shed"]}))
PY
