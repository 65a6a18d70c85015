"""Evaluate an `escpro train` output directory directly: `escpro eval run --model runs/cso`.

A train output records how to rebuild its model (escpro_train.json): a base plus one LoRA
adapter, or a merged/full model directory. Evaluating it must use the tokenizer saved with the
run, since that is where a `chat_template` supplied at training time lives (a base model like
Gemma 3 270M has none), so the eval prompt is rendered exactly as the training text was.
"""

from __future__ import annotations

from pathlib import Path

from escpro.errors import ConfigError

MANIFEST = "escpro_train.json"


def is_train_output(path: str | None) -> bool:
    return bool(path) and (Path(path) / MANIFEST).is_file()


def resolve_train_output(path: str | Path) -> dict[str, str | None]:
    """{model, adapter, tokenizer} for the transformers backend from a train output dir."""
    from escpro.train.models import read_manifest, source_of_output

    out = Path(path)
    manifest = read_manifest(out)
    src = source_of_output(out)
    if len(src.adapters) > 1:
        raise ConfigError(
            f"{out}: stacked adapters without a merged/ model; re-run `escpro train --merge`"
        )
    tok = manifest.get("tokenizer")
    return {
        "model": src.base,
        "adapter": src.adapters[0] if src.adapters else None,
        "tokenizer": str(out / tok) if tok else None,
    }
