#!/usr/bin/env bash
# tools/gpu-check.sh OUTDIR: the check of a GPU host, in one run of a few minutes. Probes the machine, builds the
# engine-only subset (CMake, the compiler, CUDA and the header-only copies in third_party/; nothing else needs to
# be installed), runs the GPU tests (golden fixtures on the device in exact mode, device against the host
# executor) and the device program's host tests, compares the device with the CPU engine on the medium preset
# (greedy tokens and logits), and benchmarks decode and prefill on the device. Each stage has its own timeout and
# log in OUTDIR; OUTDIR/summary.txt is the short table, printed last. Exit status 0 only when every stage passed.
set -uo pipefail
out=${1:-gpu-check-out}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
jobs=$(nproc)
build=${RAMPART_GPU_BUILD:-build-gpu}
summary="$out/summary.txt"
: > "$summary"
failed=0
t_start=$SECONDS

# The whole check stays under BUDGET seconds (default 330: a failed first run leaves room for a second within a
# GPU host's minutes); a stage gets at most what is left, and one with under 10 s left is skipped.
budget=${RAMPART_GPU_CHECK_BUDGET:-330}

# stage NAME SECONDS COMMAND...: runs COMMAND with a timeout, its output into OUTDIR/NAME.log; one summary line.
stage() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - (SECONDS - t_start)))
  if [ $left -lt 10 ]; then
    failed=1
    printf '%-22s %-16s %4ds\n' "$name" "SKIPPED (budget)" 0 | tee -a "$summary"
    return 1
  fi
  [ $limit -gt $left ] && limit=$left
  local t0=$SECONDS rc
  # Through bash -c so that shell functions (exported below) can be stages too.
  timeout "$limit" bash -c '"$@"' stage "$@" > "$out/$name.log" 2>&1
  rc=$?
  local verdict=PASS
  if [ $rc -eq 124 ]; then verdict="TIMEOUT (${limit}s)"; elif [ $rc -ne 0 ]; then verdict="FAIL (rc $rc)"; fi
  [ "$verdict" = PASS ] || failed=1
  printf '%-22s %-16s %4ds\n' "$name" "$verdict" $((SECONDS - t0)) | tee -a "$summary"
  return $rc
}

probe() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
  nvcc --version | tail -2
  cmake --version | head -1
  command -v ninja && ninja --version
  ls /usr/local/cuda/include | grep -E '^(cublasLt|cublas_v2|nccl)\.h$'
  nproc
  free -g | head -2
}

export -f probe
stage probe 30 probe
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
stage configure 90 cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DRAMPART_ENGINE_ONLY=ON \
  -DRAMPART_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 &&
  stage build 240 cmake --build "$build" -j"$jobs" --target gpu_tests gpu_program_tests rampart-generate rampart-mkmodel

export out bin="$build/bin" models="$build/test-models"
if [ -x "$bin/gpu_tests" ]; then
  fixtures() {
    mkdir -p "$models" && rm -rf "$models"/{v3-bf16,v3-fp8,v2lite-bf16} &&
      "$bin/rampart-mkmodel" --preset tiny --out "$models/v3-bf16" --dtype bf16 --seed 0 --vocab 1000 --no-mtp &&
      "$bin/rampart-mkmodel" --preset tiny --out "$models/v3-fp8" --dtype bf16 --fp8 --seed 0 --vocab 1000 --no-mtp &&
      "$bin/rampart-mkmodel" --preset tiny --out "$models/v2lite-bf16" --dtype bf16 --variant v2-lite --seed 0 \
        --vocab 1000 --no-mtp
  }
  export -f fixtures
  stage fixtures 60 fixtures
  # gpu_tests: a case prints SKIPPED only when no device answers; on a GPU host that is a failure too.
  gpu_tests() {
    "$bin/gpu_tests" -d yes
    local rc=$?
    if grep -q SKIPPED "$out/gpu_tests.log"; then echo "a GPU case was skipped: no usable device"; return 3; fi
    return $rc
  }
  export -f gpu_tests
  stage gpu_tests 150 gpu_tests
  # The device program's host tests without the golden cases (CI runs those; they take minutes on the host).
  stage gpu_program_tests 60 "$bin/gpu_program_tests" "~[golden]"

  export medium="$build/models/medium" ids="0 15 27 3 999 500 1 2 77 123 456 789"
  mkdir -p "$(dirname "$medium")"
  [ -d "$medium" ] || stage medium_model 120 "$bin/rampart-mkmodel" --preset medium --out "$medium"
  compare() {
    "$bin/rampart-generate" --model "$medium" --ids "$ids" -n 16 --logits "$out/medium-cpu.f32" > "$out/medium-cpu.txt" &&
      "$bin/rampart-generate" --model "$medium" --ids "$ids" -n 16 --device cuda:0 --logits "$out/medium-cuda.f32" \
        > "$out/medium-cuda.txt" || return 1
    echo "cpu:    $(cat "$out/medium-cpu.txt")"
    echo "cuda:0: $(cat "$out/medium-cuda.txt")"
    python3 -c '
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype=np.float32); b = np.fromfile(sys.argv[2], dtype=np.float32)
print("logits compared:", a.size, "max abs diff: %.3g" % float(np.max(np.abs(a - b))) if a.size == b.size else "sizes differ")
sys.exit(0 if a.size == b.size and np.max(np.abs(a - b)) <= 1e-4 else 1)' "$out/medium-cpu.f32" "$out/medium-cuda.f32" || return 1
    cmp -s "$out/medium-cpu.txt" "$out/medium-cuda.txt"
  }
  export -f compare
  [ -d "$medium" ] && stage medium_cpu_vs_cuda 120 compare
  for b in 8 64; do
    [ -d "$medium" ] && stage "bench_batch_$b" 150 "$bin/rampart-generate" --model "$medium" --ids "$ids" -n 32 \
      --device cuda:0 --bench --batch "$b"
  done
  [ -d "$medium" ] && stage bench_batch_64_fast 150 "$bin/rampart-generate" --model "$medium" --ids "$ids" -n 32 \
    --device cuda:0 --precision fast --bench --batch 64
fi

{
  echo
  echo "total $((SECONDS - t_start)) s"
  [ -f "$out/medium_cpu_vs_cuda.log" ] && grep -E "^(cpu|cuda|logits)" "$out/medium_cpu_vs_cuda.log"
  for b in 8 64 64_fast; do
    [ -f "$out/bench_batch_$b.log" ] && echo "-- $b" && grep -E "^(kernels|decode batch|median step|prefill)" "$out/bench_batch_$b.log"
  done
} >> "$summary"
echo "----- $summary"
cat "$summary"
exit $failed
