#!/usr/bin/env bash
# Runs every libFuzzer binary in BIN_DIR (named fuzz_*) for SECONDS on its corpus in CORPUS_DIR/<name>/, with
# the extra libFuzzer flags in CORPUS_DIR/../<name>.flags when that file exists (e.g. -max_len, -dict).
# New inputs found go to a scratch folder, not into the repository. Exit status is non-zero on any crash.
set -euo pipefail
bin_dir=$1; corpus_root=$2; seconds=${3:-10}
shopt -s nullglob
status=0
for fuzzer in "$bin_dir"/fuzz_*; do
  name=$(basename "$fuzzer")
  seeds="$corpus_root/$name"
  flags_file="$(dirname "$corpus_root")/$name.flags"
  flags=()
  if [ -f "$flags_file" ]; then read -r -a flags < "$flags_file"; fi
  scratch=$(mktemp -d)
  echo "fuzz: $name for ${seconds}s"
  if ! "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 ${flags[@]+"${flags[@]}"} "$scratch" ${seeds:+$( [ -d "$seeds" ] && echo "$seeds")} \
      > "$scratch.log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -n 40 "$scratch.log"; status=1
  else
    grep -E 'stat::number_of_executed_units' "$scratch.log" || true
  fi
  rm -rf "$scratch" "$scratch.log"
done
exit $status
