#!/usr/bin/env bash
# The HTTP door against the ZeroMQ door, on one rampartd: output tokens/s and client-observed time per output
# token at batch 8 and 32 (rampart-bench, the same requests through each door, alternating, ROUNDS rounds), then
# how many streaming HTTP connections it holds at once with the resident memory each costs
# (tools/bench-http-connections.py, CONNECTIONS connections). Usage:
# tools/bench-http.sh [ROUNDS] [CONNECTIONS] [MODEL]
# MODEL: a checkpoint directory (default: the tiny demo model with DeepSeek-V3's vocabulary, made here).
set -euo pipefail
bin=${BIN:-build/bin}
rounds=${1:-3}
connections=${2:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${server:-}" ] && kill -INT $server 2>/dev/null; wait 2>/dev/null || true' EXIT
checkpoint=${3:-$work/m}
[ -n "${3:-}" ] || "$bin/rampart-mkmodel" --out "$work/m" --variant v3 --seed 1 --preset tiny --vocab 129280 \
  --no-mtp >/dev/null
model_name=$(basename "$checkpoint")

# A registered tenant, allowed as many streams as the benchmark opens (the shipped policy caps a tenant at 256).
api_key=$("$bin/rampart-admin" --db "$work/accounts.db" create bench --class registered | sed -n 's/^api_key: //p')
cat > "$work/policy.toml" <<POLICY
[policy]
[policy.levels.green]
max_streams_per_source = 100000
[policy.levels.green.classes.registered]
max_streams = 100000
requests_per_s = 100000
requests_burst = 100000
POLICY
zport=$((20000 + RANDOM % 20000))
hport=$((zport + 1))
cat > "$work/rampart.toml" <<CONFIG
[frontend]
endpoint = "tcp://127.0.0.1:$zport"
max_queued_requests = 4096
[admission]
accounts_db = "$work/accounts.db"
policy_file = "$work/policy.toml"
[http]
enabled = true
listen = "127.0.0.1:$hport"
max_connections_per_source = 100000
[metrics]
enabled = false
[alerts]
enabled = false
[log]
level = "warn"
CONFIG
"$bin/rampartd" --config "$work/rampart.toml" --model "$checkpoint" --tokenizer "$here/models/deepseek-v3-tokenizer" &
server=$!
for _ in $(seq 1 100); do
  kill -0 "$server" 2>/dev/null || { echo "rampartd did not start" >&2; exit 1; }
  "$bin/rampart-client" --connect "tcp://127.0.0.1:$zport" --ping --timeout-ms 200 >/dev/null 2>&1 && break
  sleep 0.1
done

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
for batch in 8 32; do
  common=(--clients "$batch" --requests 3 --prompt-tokens 16 --max-tokens 128 --api-key "$api_key")
  "$bin/rampart-bench" --connect "tcp://127.0.0.1:$zport" "${common[@]}" --requests 1 >/dev/null  # warm up
  for r in $(seq 1 "$rounds"); do
    z=$("$bin/rampart-bench" --connect "tcp://127.0.0.1:$zport" "${common[@]}")
    h=$("$bin/rampart-bench" --http "127.0.0.1:$hport" --model "$model_name" "${common[@]}")
    zt=$(echo "$z" | field "['output_tokens_per_s']"); ht=$(echo "$h" | field "['output_tokens_per_s']")
    zp=$(echo "$z" | field "['time_per_output_token_ms']['p50']"); hp=$(echo "$h" | field "['time_per_output_token_ms']['p50']")
    zd=$(echo "$z" | field "['done']"); hd=$(echo "$h" | field "['done']")
    python3 -c "print(f'batch $batch round $r: zeromq {float($zt):.0f} tok/s tpot p50 {float($zp):.3f} ms ($zd done), http {float($ht):.0f} tok/s tpot p50 {float($hp):.3f} ms ($hd done): http/zeromq {float($ht)/float($zt):.3f}, added {float($hp)-float($zp):+.3f} ms/token')"
  done
done
echo "connections: $(python3 "$here/tools/bench-http-connections.py" "$server" "127.0.0.1:$hport" "$model_name" "$connections" "$api_key")"
