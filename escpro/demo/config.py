"""The demo's settings: escpro/data/demo/{sim,gemma}.yaml, with an optional user file merged on top.

A demo config is an ordinary escpro config (roles, build, extract, train, eval) plus a `demo:`
section. Two placeholders name models the demo provides: `embedded` (Gemma 3 270M: its GGUF for
llama.cpp, its converted HF directory for transformers and training) and, for `eval.model.model`,
`trained-base` (the model training started from; the trained adapter is evaluated on it).

Training is two stages: a short SFT stage on the valid paths (sft.jsonl) teaches the
"(<Strategy>) <reply>" format that evaluation parses, then DPO on the pairs starts from it
(`init_from`). `demo.sft_train` holds the SFT stage's train keys, applied over `train:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from escpro.config import AppConfig
from escpro.config_base import Section
from escpro.errors import ConfigError
from escpro.paths import data_path
from escpro.train.config import TrainConfig
from escpro.yamlfile import deep_merge, format_validation_error, read_yaml

EMBEDDED = "embedded"
TRAINED_BASE = "trained-base"


class DemoSettings(Section):
    seeds: int = Field(6, ge=1, description="bundled training seed dialogues to build")
    test_items: int = Field(0, ge=0, description="held-out test items to score (0 = all)")
    eval_base: bool = Field(False, description="also score the untrained model, for comparison")
    sft: bool = Field(True, description="run a short SFT stage on sft.jsonl before DPO (DPO starts from it)")
    sft_train: dict[str, Any] = Field(
        default_factory=dict, description="train keys of the SFT stage, applied over the `train:` section")


def sft_train_config(train: TrainConfig, demo: DemoSettings, source: str = "demo") -> TrainConfig:
    """The SFT stage's settings: the `train:` section, method sft, then `demo.sft_train` over it."""
    data = {**train.model_dump(), "method": "sft", **demo.sft_train}
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(f"{source}: demo.sft_train", exc)) from None


def default_config_path(kind: str) -> Path:
    """escpro/data/demo/sim.yaml for the simulator, escpro/data/demo/gemma.yaml for the real model."""
    return data_path("demo") / ("sim.yaml" if kind == "sim" else "gemma.yaml")


def load_demo_config(kind: str, user_file: Path | None) -> tuple[DemoSettings, AppConfig, dict[str, Any]]:
    """(demo settings, the pipeline's config, the merged raw mapping)."""
    base_path = default_config_path(kind)
    data = read_yaml(base_path)
    source = str(base_path)
    if user_file is not None:
        data = deep_merge(data, read_yaml(user_file))
        source = f"{base_path} + {user_file}"
    demo_raw = data.pop("demo", None) or {}
    try:
        demo = DemoSettings.model_validate(demo_raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(f"{source}: demo", exc)) from None
    try:
        cfg = AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None
    if demo.sft:
        sft_train_config(cfg.train, demo, source)  # a bad key stops here, before any long work
    return demo, cfg, data
