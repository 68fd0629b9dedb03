#!/usr/bin/env bash
# `make run`: starts rampartd on its embedded default configuration, shows that it answers, streams a chat
# completion from the demo model when there is one, and keeps serving until Ctrl-C (a clean drain, exit 0).
set -euo pipefail
bin=${1:-build/bin}
here=$(cd "$(dirname "$0")/.." && pwd)
demo_model="$here/models/demo"
tokenizer="$here/models/deepseek-v3-tokenizer"

args=()
if [ -x "$bin/rampart-mkmodel" ] && [ -f "$tokenizer/tokenizer.json" ]; then
  if [ ! -f "$demo_model/config.json" ]; then
    echo "run: writing the demo model (real DeepSeek-V3 tokenizer, tiny RANDOM weights) to $demo_model"
    "$bin/rampart-mkmodel" --out "$demo_model" --variant v3 --seed 1 --preset tiny --vocab 129280 --no-mtp >/dev/null
  fi
  args=(--model "$demo_model" --tokenizer "$tokenizer")
fi

"$bin/rampartd" "${args[@]}" &
server=$!
trap 'kill -INT $server 2>/dev/null || true' INT TERM
for _ in $(seq 1 100); do
  if "$bin/rampart-client" --ping --timeout-ms 200 >/dev/null 2>&1; then break; fi
  sleep 0.1
done
echo "run: health check:"
"$bin/rampart-client" --ping --timeout-ms 2000
if [ ${#args[@]} -gt 0 ]; then
  chat=$(mktemp)
  echo '[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the operators."}]' > "$chat"
  echo "run: streaming a chat completion (the demo weights are random, so the text is too):"
  "$bin/rampart-client" --chat "$chat" --max-tokens 32 --temperature 0.8 --seed 7 || true
  rm -f "$chat"
fi
echo "run: rampartd is serving on tcp://127.0.0.1:5555 and, for OpenAI clients, http://127.0.0.1:8000/v1 (model \"demo\");"
echo "     metrics on http://127.0.0.1:9464/metrics; Ctrl-C stops it"
set +e
wait $server
status=$?
if kill -0 $server 2>/dev/null; then wait $server; status=$?; fi
echo "run: rampartd exited with status $status"
exit 0
