"""Finding, fingerprinting and loading models and tokenizers; reading earlier training outputs.

An `escpro train` output directory records in `escpro_train.json` how to rebuild its model: a full
`base` model plus an ordered list of LoRA `adapters` merged on top. That is how a DPO run started
from an SFT LoRA stage gets the SFT model (base + SFT adapter, merged) both as its starting point
and as its reference, and how `escpro eval` loads any output (`load_trained`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escpro.errors import ConfigError, EscproError

MANIFEST = "escpro_train.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


class ModelLoadError(EscproError):
    """A model or tokenizer cannot be loaded."""


@dataclass
class ModelSource:
    """A full model plus LoRA adapters merged on top, in order."""

    base: str
    revision: str | None = None
    adapters: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return " + ".join([self.base, *self.adapters])


def resolve_model_name(name: str | None) -> str:
    if not name:
        raise ConfigError("train.model is not set (a local dir, an HF id, or 'tiny')")
    if name == "tiny":
        from escpro.tiny_model import ensure_tiny_model

        return str(ensure_tiny_model())
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").is_file() and not (p / MANIFEST).is_file():
            raise ModelLoadError(f"model {name}: directory has no config.json (not a model directory)")
        return str(p.resolve())
    if name.startswith((".", "/", "~")):
        raise ModelLoadError(f"model {name}: directory not found")
    return name


def is_local(name: str) -> bool:
    return Path(name).exists()


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    p = Path(out_dir) / MANIFEST
    if not p.is_file():
        raise ConfigError(f"{out_dir}: not an `escpro train` output (no {MANIFEST})")
    return json.loads(p.read_text(encoding="utf-8"))


def source_of_output(out_dir: str | Path) -> ModelSource:
    """How to rebuild the model an earlier run produced."""
    m = read_manifest(out_dir)
    out = Path(out_dir).resolve()
    if m.get("merged"):
        return ModelSource(str(out / m["merged"]))
    return ModelSource(m["base"], m.get("revision"), list(m.get("adapters", [])))


def start_source(cfg: Any) -> ModelSource:
    """The model a run starts from: `init_from`'s result, else `model`."""
    if cfg.init_from:
        return source_of_output(cfg.init_from)
    return ModelSource(resolve_model_name(cfg.model), cfg.revision)


def fingerprint(src: ModelSource) -> str:
    """Identity of a model's weights for caches: local files by name/size/mtime (no 16 GB hashing),
    hub ids by id@revision."""
    h = hashlib.sha256()
    for name in [src.base, *src.adapters]:
        p = Path(name)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.suffix in WEIGHT_SUFFIXES or f.name in ("config.json", "adapter_config.json"):
                    st = f.stat()
                    h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        else:
            h.update(f"{name}@{src.revision or 'main'}\n".encode())
    return h.hexdigest()


def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    """AutoTokenizer, except tokenizers saved as a bare `tokenizer.json` (the tiny model): those
    load with PreTrainedTokenizerFast, which keeps their tokenisation (STACK_NOTES.md)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    p = Path(name)
    try:
        cls = None
        if (p / "tokenizer_config.json").is_file():
            cls = json.loads((p / "tokenizer_config.json").read_text()).get("tokenizer_class")
        if p.is_dir() and cls in ("PreTrainedTokenizerFast", "TokenizersBackend") and (p / "tokenizer.json").is_file():
            tok = PreTrainedTokenizerFast.from_pretrained(str(p))
        else:
            tok = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any loader failure is one user-facing line
        raise ModelLoadError(f"tokenizer of {name} cannot be loaded: {_first_line(exc)}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(src: ModelSource, *, dtype: Any = None, trust_remote_code: bool = False,
               attn_implementation: str | None = None) -> Any:
    """The full model with every adapter of `src` merged in."""
    from transformers import AutoModelForCausalLM

    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            src.base, revision=src.revision, dtype=dtype, trust_remote_code=trust_remote_code, **extra
        )
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"model {src.base} cannot be loaded: {_first_line(exc)}") from None
    for adapter in src.adapters:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"adapter {adapter} cannot be merged: {_first_line(exc)}") from None
    if src.adapters:
        model.requires_grad_(True)  # PeftModel.from_pretrained froze the base; full training needs it back
    return model


def load_trained(out_dir: str | Path, *, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) of an `escpro train` output, adapters merged; for evaluation."""
    m = read_manifest(out_dir)
    src = source_of_output(out_dir)
    tok_dir = Path(out_dir) / m["tokenizer"]
    return load_model(src, dtype=dtype), load_tokenizer(str(tok_dir))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
