"""The training method registry: one row per method says everything escpro needs to train it.

TRL's pattern (one config class + one trainer class per method) made into a table, so that a new
method is one new row: which TRL classes run it, which file of an `escpro extract` directory it
reads, whether its loss compares against a reference model, which `train:` keys are its loss
parameters (paper Table 14) and the fixed TRL settings that select its loss. Importing this module
never imports torch or TRL (the classes are named, and imported only by `trl_classes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DataKind = Literal["sft", "pairs", "kto"]

# What each kind of record holds (the keys every record must have) and how errors name it.
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "pairs": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
    "sft": ("messages",),
}
KIND_NAMES: dict[str, str] = {
    "pairs": "preference pairs (prompt/chosen/rejected)",
    "kto": "KTO records (prompt/completion/label)",
    "sft": "SFT dialogues (messages)",
}
# The file of an `escpro extract` directory holding each kind.
KIND_FILES: dict[str, str] = {"sft": "sft.jsonl", "pairs": "pairs.jsonl", "kto": "kto.jsonl"}


@dataclass(frozen=True)
class TrainMethod:
    """One training method. `loss` keys are shown by `escpro train --check` and passed to TRL
    under the same names; `passthrough` keys are passed too but are not paper loss parameters."""

    name: str
    trl_config: str  # "module:Class"
    trl_trainer: str  # "module:Class"
    data: DataKind
    reference: bool  # the loss uses pi_ref (a reference model or its cached log-probs)
    loss: tuple[str, ...] = ()
    passthrough: tuple[str, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)  # TRL settings that select the loss
    completion_limit: bool = False  # TRL's config takes max_completion_length
    min_per_device_batch: int = 1
    min_per_device_reason: str = ""
    ref_depends_on_batch: bool = False  # cached reference log-probs change with the per-device batch
    lf_stage: str = ""  # LLaMA-Factory's (stage, pref_loss) for this method, when it has one
    lf_pref_loss: str | None = None

    @property
    def data_file(self) -> str:
        return KIND_FILES[self.data]

    @property
    def preference(self) -> bool:
        """Trained on chosen/rejected pairs."""
        return self.data == "pairs"

    @property
    def trainer_label(self) -> str:
        """How plans and summaries name the trainer, e.g. `trl.DPOTrainer (loss_type=ipo)`."""
        module, cls = self.trl_trainer.split(":")
        label = f"{module}.{cls}"
        shown = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in self.fixed.items()
                 if k in ("loss_type", "cpo_alpha")}
        return f"{label} ({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else label


_KTO_BATCH = "TRL estimates its KL term from mismatched pairs within a per-device batch"

REGISTRY: dict[str, TrainMethod] = {m.name: m for m in (
    TrainMethod("sft", "trl:SFTConfig", "trl:SFTTrainer", "sft", reference=False,
                fixed={"packing": False, "assistant_only_loss": False}, lf_stage="sft"),
    TrainMethod("dpo", "trl:DPOConfig", "trl:DPOTrainer", "pairs", reference=True,
                loss=("beta",), passthrough=("label_smoothing",), fixed={"loss_type": ["sigmoid"]},
                lf_stage="dpo", lf_pref_loss="sigmoid"),
    TrainMethod("ipo", "trl:DPOConfig", "trl:DPOTrainer", "pairs", reference=True,
                loss=("beta",), passthrough=("label_smoothing",), fixed={"loss_type": ["ipo"]},
                lf_stage="dpo", lf_pref_loss="ipo"),
    TrainMethod("simpo", "trl.experimental.cpo:CPOConfig", "trl.experimental.cpo:CPOTrainer", "pairs",
                reference=False, loss=("beta", "simpo_gamma"), passthrough=("label_smoothing",),
                fixed={"loss_type": "simpo", "cpo_alpha": 0.0}, completion_limit=True,
                lf_stage="dpo", lf_pref_loss="simpo"),
    TrainMethod("kto", "trl:KTOConfig", "trl:KTOTrainer", "kto", reference=True,
                loss=("beta", "desirable_weight", "undesirable_weight"),
                min_per_device_batch=2, min_per_device_reason=_KTO_BATCH,
                ref_depends_on_batch=True,  # its KL completions rotate within each per-device batch
                lf_stage="kto"),
    TrainMethod("orpo", "trl.experimental.orpo:ORPOConfig", "trl.experimental.orpo:ORPOTrainer", "pairs",
                reference=False, loss=("beta",), completion_limit=True,
                lf_stage="dpo", lf_pref_loss="orpo"),
)}

METHODS: tuple[str, ...] = tuple(REGISTRY)
MethodName = Literal[METHODS]  # type: ignore[valid-type]  # the registry's names, for pydantic


def method(name: str) -> TrainMethod:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown training method {name!r} (one of {', '.join(METHODS)})") from None


def _import(spec: str) -> type:
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def trl_classes(name: str) -> tuple[type, type]:
    """The TRL config and trainer classes of a method; trainers with a reference model learn to
    read escpro's cached reference log-probs (escpro/train/refcache.py)."""
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    m = method(name)
    config_cls, trainer_cls = _import(m.trl_config), _import(m.trl_trainer)
    if not m.reference:
        return config_cls, trainer_cls
    from escpro.train.refcache import CachedRefLogpsMixin

    def __init__(self: Any, *args: Any, escpro_cache: Any = None, **kwargs: Any) -> None:
        self.escpro_cache = escpro_cache
        super(cls, self).__init__(*args, **kwargs)

    cls = type(f"Escpro{trainer_cls.__name__}", (CachedRefLogpsMixin, trainer_cls), {"__init__": __init__})
    return config_cls, cls
