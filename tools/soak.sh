#!/usr/bin/env bash
# The soak at benchmark size: 1,000 streams over 10 minutes from 16 clients (override with the first three
# arguments), against rampartd with two shard processes, with cancels, vanishing clients, malformed messages, a
# shard process killed and restarted, a policy reload and (as root) a packet flood at the monitor. Prints the
# figures docs/benchmarks.md records; exits non-zero when any check fails.
#   tools/soak.sh [STREAMS] [SECONDS] [CLIENTS]      (after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
export RAMPART_SOAK_STREAMS=${1:-1000} RAMPART_SOAK_SECONDS=${2:-600} RAMPART_SOAK_CLIENTS=${3:-16}
exec build/bin/integration_soak_tests "[soak]"
