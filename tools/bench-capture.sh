#!/usr/bin/env bash
# Live capture under load: rampartd serves a registered tenant's benchmark clients (rampart-bench, 4 clients) on a
# tiny model while rampart-flood floods its port; the monitor captures on lo. Needs root (live capture, raw
# sockets). Two measurements:
#
#   tools/bench-capture.sh [RATE] [SECONDS] [PAYLOAD] [FLOOD_THREADS]
#     Loss: UDP datagrams at RATE packets/s for SECONDS. Prints the monitor's packet and kernel-drop counters
#     (pcap_stats) before and after, the kernel's own, and what the flood tool sent; generation_tokens_total over
#     the flood against the same time before it shows the serving kept up.
#
#   tools/bench-capture.sh --cpu [SECONDS] [UDP_RATE] [SYN_RATE]
#     Cost: the CPU of the monitor's capture thread (the thread named rampart-capture: utime + stime from
#     /proc/PID/task/TID/stat, and its on-CPU time from .../schedstat) over SECONDS (default 10) of the serving
#     load alone, of the load plus a UDP_RATE (default 70000) packets/s UDP flood, and of the load plus a
#     SYN_RATE (default 20000)/s spoofed SYN flood, with the monitor's packet and drop counts and the alerts
#     raised. BEFORE=1 runs the same binary with the capture as it was before the cheap capture: immediate
#     mode and the filter "tcp port P or udp port P" (both copies of every packet on lo, the server's own
#     replies included).
set -euo pipefail
bin=${BIN:-build/bin}
mode=loss
if [ "${1:-}" = --cpu ]; then
  mode=cpu
  shift
  seconds=${1:-10}
  udp_rate=${2:-70000}
  syn_rate=${3:-20000}
else
  rate=${1:-250000}
  seconds=${2:-10}
  payload=${3:-18}
  threads=${4:-2}
fi
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"; [ -n "${server:-}" ] && kill -INT $server 2>/dev/null; wait 2>/dev/null || true' EXIT
"$bin/rampart-mkmodel" --out "$dir/m" --variant v3 --seed 1 --preset tiny --vocab 129280 --no-mtp >/dev/null
port=$((20000 + RANDOM % 20000))
metrics=$((40000 + RANDOM % 10000))
capture_before=""
if [ "${BEFORE:-0}" = 1 ]; then
  capture_before="immediate_mode = true
bpf_filter = \"tcp port $port or udp port $port\""
fi
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
$capture_before
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
start_load() {  # SECONDS_TOTAL: the registered tenant's 4 benchmark clients, in the background
  "$bin/rampart-bench" --connect "tcp://127.0.0.1:$port" --clients 4 --api-key "$key" --requests 1000000 \
    --prompt-tokens 16..16 --max-tokens 8..8 --timeout-ms $(( ($1 + 5) * 1000 )) > "$dir/bench.json" 2>&1 &
  bench=$!
}
stop_load() {
  kill -INT $bench 2>/dev/null || true
  for _ in $(seq 50); do kill -0 $bench 2>/dev/null || break; sleep 0.1; done
  kill -KILL $bench 2>/dev/null || true  # a client still waiting on a reply it will not get
  wait $bench 2>/dev/null || true
  grep -o '"done":[0-9]*' "$dir/bench.json" | head -1 || true
}

if [ $mode = loss ]; then
  sleep 1.5  # one stats period ([monitor].stats_interval_s), so the counters are current
  echo "before: $(counters)$(kernel)"
  start_load "$seconds"
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
  stop_load
  exit 0
fi

# --cpu: the capture thread, found by its name.
capture_tid=""
for _ in $(seq 1 50); do
  for task in /proc/$server/task/*; do
    if [ "$(cat "$task/comm" 2>/dev/null)" = rampart-capture ]; then capture_tid=${task##*/}; fi
  done
  if [ -n "$capture_tid" ]; then break; fi
  sleep 0.1
done
if [ -z "$capture_tid" ]; then
  echo "rampartd ($server) has no thread named rampart-capture: not root, or the live capture failed (see its log)" >&2
  exit 1
fi
hz=$(getconf CLK_TCK)
thread_cpu() {  # "<utime + stime in clock ticks> <on-CPU nanoseconds, 0 without schedstat>" of the capture thread
  local stat ns
  stat=$(cat "/proc/$server/task/$capture_tid/stat")
  stat=${stat##*") "}  # from field 3 (state) on: the name in parentheses may hold spaces
  local -a f
  read -r -a f <<< "$stat"
  ns=$(cut -d' ' -f1 "/proc/$server/task/$capture_tid/schedstat" 2>/dev/null || echo 0)
  echo "$(( f[11] + f[12] )) $ns"  # fields 14 (utime) and 15 (stime)
}
metric() {  # the value of the metric named $1 (0 when absent)
  curl -s "http://127.0.0.1:$metrics/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
phase() {  # NAME COMMAND...: runs COMMAND (a flood, or sleep) and prints the capture thread's CPU over it
  local name=$1 ticks0 ns0 ticks1 ns1 t0 t1 packets0 drops0 out
  shift
  packets0=$(metric rampart:monitor_packets)
  drops0=$(metric rampart:monitor_kernel_drops)
  read -r ticks0 ns0 <<< "$(thread_cpu)"
  t0=$(date +%s.%N)
  out=$("$@")
  read -r ticks1 ns1 <<< "$(thread_cpu)"
  t1=$(date +%s.%N)
  sleep 1.5  # one stats period, so the monitor's counters include the phase
  awk -v name="$name" -v ticks=$((ticks1 - ticks0)) -v ns=$((ns1 - ns0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" \
    'BEGIN { w = t1 - t0; printf "%-14s capture thread %.3f of a core (utime+stime), %.3f (schedstat) over %.1f s\n",
             name, ticks / hz / w, ns / 1e9 / w, w }'
  echo "               monitor_packets +$(( $(metric rampart:monitor_packets) - packets0 ))" \
       "kernel_drops +$(( $(metric rampart:monitor_kernel_drops) - drops0 )) ${out}"
}
label="as configured (defaults)"
if [ "${BEFORE:-0}" = 1 ]; then label="as before: immediate mode, filter \"tcp port $port or udp port $port\""; fi
echo "capture $label; thread $capture_tid of rampartd $server; $hz ticks/s"
sleep 1.5
start_load $((3 * seconds + 15))
sleep 2
phase "load alone" sleep "$seconds"
phase "udp $udp_rate/s" "$bin/rampart-flood" --kind udp --target "127.0.0.1:$port" --rate "$udp_rate" \
  --duration "$seconds" --payload 18 --threads 1 --sources 127.88.0.0/16
sleep 3  # let the UDP flood's windows empty before the next one
phase "syn $syn_rate/s" "$bin/rampart-flood" --kind syn --target "127.0.0.1:$port" --rate "$syn_rate" \
  --duration "$seconds" --threads 1 --sources 127.66.0.0/16
echo "alerts: $(curl -s "http://127.0.0.1:$metrics/metrics" | grep '^rampart:alerts_total' | tr '\n' ' ')"
echo "load: $(stop_load)"
