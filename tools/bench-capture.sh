#!/usr/bin/env bash
# Live capture loss under load: rampartd serves a registered tenant's benchmark clients (rampart-bench) while
# rampart-flood sends UDP datagrams to its port at RATE packets/s for SECONDS; the monitor captures on lo.
# Prints the monitor's packet and kernel-drop counters (pcap_stats) before and after, and what the flood
# tool sent; generation_tokens_total over the flood against the same time before it shows the serving kept up.
# Needs root (live capture, raw sockets). Usage:
#   tools/bench-capture.sh [RATE] [SECONDS] [PAYLOAD] [FLOOD_THREADS]
set -euo pipefail
bin=${BIN:-build/bin}
rate=${1:-250000}
seconds=${2:-10}
payload=${3:-18}
threads=${4:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"; [ -n "${server:-}" ] && kill -INT $server 2>/dev/null; wait 2>/dev/null || true' EXIT
"$bin/rampart-mkmodel" --out "$dir/m" --variant v3 --seed 1 --preset tiny --vocab 129280 --no-mtp >/dev/null
port=$((20000 + RANDOM % 20000))
metrics=$((40000 + RANDOM % 10000))
cat > "$dir/rampart.toml" <<TOML
[frontend]
endpoint = "tcp://127.0.0.1:$port"
[model]
path = "$dir/m"
tokenizer = "$here/models/deepseek-v3-tokenizer"
[engine]
threads = 1
[metrics]
listen = "127.0.0.1:$metrics"
[monitor]
stats_interval_s = 1.0
[admission]
accounts_db = "$dir/accounts.db"
TOML
key=$("$bin/rampart-admin" --db "$dir/accounts.db" create bench --class registered | sed -n 's/.*api_key: \([^ ]*\).*/\1/p')
"$bin/rampartd" --config "$dir/rampart.toml" --alerts-publish "tcp://127.0.0.1:$((metrics + 1))" --log-level warn &
server=$!
for _ in $(seq 1 100); do
  "$bin/rampart-client" --connect "tcp://127.0.0.1:$port" --ping --timeout-ms 200 >/dev/null 2>&1 && break
  sleep 0.1
done
counters() {
  curl -s "http://127.0.0.1:$metrics/metrics" | grep -E '^rampart:(monitor_packets|monitor_kernel_drops|generation_tokens_total)' |
    tr '\n' ' '
}
kernel() {  # packets lo received, and the per-CPU backlog drops (second column of softnet_stat), in total
  echo "lo_rx_packets $(cat /sys/class/net/lo/statistics/rx_packets) lo_rx_dropped $(cat /sys/class/net/lo/statistics/rx_dropped)" \
       "softnet_dropped $(python3 -c 'import sys; print(sum(int(l.split()[1], 16) for l in open("/proc/net/softnet_stat")))')"
}
sleep 1.5  # one stats period ([monitor].stats_interval_s), so the counters are current
echo "before: $(counters)$(kernel)"
"$bin/rampart-bench" --connect "tcp://127.0.0.1:$port" --clients 4 --api-key "$key" --requests 1000000 --prompt-tokens 16..16 \
  --max-tokens 8..8 --timeout-ms $(( (seconds + 5) * 1000 )) > "$dir/bench.json" 2>&1 &
bench=$!
sleep 1
echo "load:   $(counters)"
sleep "$seconds"  # the same time without the flood: the serving baseline
echo "flood:  $(counters)$(kernel)"
"$bin/rampart-flood" --kind udp --target "127.0.0.1:$port" --rate "$rate" --duration "$seconds" \
  --payload "$payload" --threads "$threads" --sources 127.88.0.0/16
sleep 1.5
echo "after:  $(counters)$(kernel)"
sleep 3
echo "later:  $(counters)$(kernel)"
kill -INT $bench 2>/dev/null || true
wait $bench 2>/dev/null || true
grep -o '"done":[0-9]*' "$dir/bench.json" | head -1 || true
