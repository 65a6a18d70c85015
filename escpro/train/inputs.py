"""What a run trains on and with, loaded once its plan holds: the tokenizer and records after the
chat template and truncation (split into train/validation), the model and its reference, and the
cache of reference log-probs. Heavy libraries (torch, transformers, TRL) are imported here only
inside functions, so `escpro train --check` never pays for them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escpro.errors import ConfigError
from escpro.train.config import TrainConfig
from escpro.train.data import TrainData
from escpro.train.methods import method
from escpro.train.models import (
    MANIFEST,
    ModelSource,
    fingerprint,
    load_model,
    load_tokenizer,
    read_manifest,
    resolve_model_name,
    source_of_output,
    start_source,
)
from escpro.train.refcache import RefLogpCache, cache_key, default_cache_dir
from escpro.train.split import Split
from escpro.train.template import install_template, prepare_records, should_fold


@dataclass(frozen=True)
class TokenizedData:
    """The records as the trainer sees them (chat template applied, system folded if needed,
    prompts and completions cut to the length limits), plus what that did."""

    source: ModelSource  # the starting model the tokenizer belongs to
    tokenizer: Any
    kind: str
    fold: bool
    split: Split
    records: list[dict[str, Any]]
    val_records: list[dict[str, Any]]
    truncation: dict[str, Any]


@dataclass(frozen=True)
class Models:
    """The model to train and, for reference-based losses, where pi_ref comes from: `ref_model`
    is None when TRL derives it itself (LoRA: the adapter disabled)."""

    model: Any
    dtype: Any
    ref_source: ModelSource | None
    ref_model: Any


def tokenize_data(cfg: TrainConfig, data: TrainData) -> TokenizedData:
    src = start_source(cfg)
    tok_dir = str(Path(cfg.init_from) / read_manifest(cfg.init_from)["tokenizer"]) if cfg.init_from else src.base
    tokenizer = load_tokenizer(tok_dir, src.revision if not cfg.init_from else None, cfg.trust_remote_code)
    install_template(tokenizer, cfg.chat_template, src.base)
    fold = should_fold(tokenizer, cfg.fold_system)
    split = _split(cfg, data.records)
    limits = {"fold": fold, "prompt_budget": cfg.prompt_budget, "completion_limit": cfg.max_completion_length,
              "max_length": cfg.max_length}
    records, stats = prepare_records(tokenizer, data.kind, split.train, **limits)
    val_records = prepare_records(tokenizer, data.kind, split.val, **limits)[0] if split.val else []
    if cfg.shuffle_seed is not None:
        random.Random(cfg.shuffle_seed).shuffle(records)
    return TokenizedData(source=src, tokenizer=tokenizer, kind=data.kind, fold=fold, split=split,
                         records=records, val_records=val_records, truncation=stats)


def _split(cfg: TrainConfig, records: list[dict[str, Any]]) -> Split:
    from escpro.train.split import split_by_tree

    try:
        return split_by_tree(records, cfg.val_size, cfg.seed)
    except ValueError as exc:
        raise ConfigError(f"train: {exc}") from None


def load_models(cfg: TrainConfig, src: ModelSource, *, use_cpu: bool) -> Models:
    import torch

    bf16 = (not use_cpu) if cfg.bf16 is None else cfg.bf16
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = load_model(src, dtype=dtype, trust_remote_code=cfg.trust_remote_code,
                       attn_implementation=cfg.attn_implementation)
    model.config.use_cache = False
    if not cfg.uses_reference:
        return Models(model=model, dtype=dtype, ref_source=None, ref_model=None)
    if cfg.ref_model:
        ref_src = (source_of_output(cfg.ref_model) if (Path(cfg.ref_model) / MANIFEST).is_file()
                   else ModelSource(resolve_model_name(cfg.ref_model), None))
    else:
        ref_src = src
    ref_model = None
    if cfg.ref_model or cfg.mode == "full":
        # Full mode: TRL would reload the reference from config._name_or_path, which for a model
        # merged from an SFT adapter is the BASE; load the starting model explicitly instead.
        ref_model = load_model(ref_src, dtype=dtype, trust_remote_code=cfg.trust_remote_code,
                               attn_implementation=cfg.attn_implementation)
    # LoRA without ref_model: the new adapter sits on the starting model (an SFT adapter is
    # already merged into it), so TRL's "adapter disabled" reference IS the starting model.
    return Models(model=model, dtype=dtype, ref_source=ref_src, ref_model=ref_model)


def ref_cache(cfg: TrainConfig, data: TrainData, tokenized: TokenizedData, models: Models) -> RefLogpCache | None:
    """The on-disk cache of reference log-probs, keyed by everything they depend on; None when the
    run computes no reference log-probs ahead of training."""
    if not (cfg.precompute_ref_log_probs and cfg.uses_reference):
        return None
    import trl

    ref_src = models.ref_source
    parts = {
        "kind": data.kind,
        "reference": ref_src.describe() if ref_src else None,
        "reference_fingerprint": fingerprint(ref_src) if ref_src else None,
        "revision": ref_src.revision if ref_src else None,
        "data_file_sha256": data.file_sha256,
        "records_sha256": _records_sha(tokenized.records),
        "max_length": cfg.max_length,
        "max_prompt_length": cfg.prompt_budget,
        "max_completion_length": cfg.max_completion_length,
        "template_sha256": _sha(tokenized.tokenizer.chat_template),
        "fold_system": tokenized.fold,
        "dtype": str(models.dtype),
        "trl": trl.__version__,
    }
    if method(cfg.method).ref_depends_on_batch:
        parts["per_device_batch_size"] = cfg.per_device_batch_size
    root = Path(cfg.ref_cache_dir) if cfg.ref_cache_dir else default_cache_dir()
    return RefLogpCache(root, cache_key(parts), parts)


def _sha(text: str | None) -> str:
    from escpro.atomic import sha256_text

    return sha256_text(text or "")


def _records_sha(records: list[dict[str, Any]]) -> str:
    import hashlib
    import json

    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()
