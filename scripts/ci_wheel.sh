#!/usr/bin/env bash
# Build escpro's wheel, install it (not editable) into a fresh venv, and run the sim demo from an
# empty directory: proves every run-time file ships inside the package (docs/packaging.md).
# Usage: scripts/ci_wheel.sh [WORKDIR]   (pip's cache makes the install fast on a warm machine)
set -euo pipefail
unset PYTHONPATH  # the installed wheel, never a checkout, must answer
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
t0=$(date +%s)
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
# Build from the tracked files only (what a clone holds; setuptools also writes build/ there).
src="$work/src"
mkdir -p "$src"
git -C "$repo" ls-files -z | (cd "$repo" && tar --null -T - -cf -) | tar -xf - -C "$src"
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$src"
# The sim demo trains and scores the tiny random model: CPU torch first (pinned, as scripts/setup.sh
# does), then the wheel with the cpu (scoring: transformers + Outlines) and train extras: the
# smallest install that runs the demo.
"$py" -m pip install -q -c "$repo/constraints.txt" "torch==2.13.0"
whl=$(ls "$work"/dist/escpro-*.whl)
"$py" -m pip install -q -c "$repo/constraints.txt" "$whl[cpu,train]"
echo "wheel built and installed in $(( $(date +%s) - t0 )) s"
empty="$work/empty"
mkdir -p "$empty"
cd "$empty"
"$py" -c "import escpro, pathlib, sys; p = pathlib.Path(escpro.__file__); sys.exit('escpro imported from the checkout' if str(p).startswith('$repo/') else 0)"
"$work/venv/bin/escpro" demo --backend sim --out "$empty/demo" --no-progress
test -s "$empty/demo/summary.json"
"$py" -c "from escpro.taxonomy import load_taxonomy; t = load_taxonomy('cso8'); assert len(t.strategies) == 8, t; print('cso8 loads:', len(t.strategies), 'strategies')"
echo "wheel install + sim demo from $empty: ok"
