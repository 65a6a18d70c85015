"""The training method registry, checked row by row against the installed TRL (as TRL tests its
trainers: one parameterised test per property, over every method)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from escpro.train.config import TrainConfig
from escpro.train.lf_yaml import PREF_LOSS, STAGES
from escpro.train.methods import KIND_FILES, KIND_KEYS, METHODS, REGISTRY, method, trl_classes
from escpro.train.trainers import method_kwargs


def test_every_method_is_a_config_choice_and_the_names_agree():
    assert set(METHODS) == set(REGISTRY) and all(REGISTRY[n].name == n for n in METHODS)
    for name in METHODS:
        assert TrainConfig(method=name).method == name
    with pytest.raises(ValueError, match="unknown training method 'ppo'"):
        method("ppo")


@pytest.mark.parametrize("name", METHODS)
def test_trl_classes_exist_and_take_every_kwarg(name):
    """Every kwarg escpro passes is a field of the method's TRL config (a typo would raise)."""
    config_cls, trainer_cls = trl_classes(name)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    kwargs = method_kwargs(TrainConfig(method=name))
    assert set(kwargs) <= fields, sorted(set(kwargs) - fields)
    args = config_cls(output_dir="unused", use_cpu=True, report_to="none", **kwargs)
    for k, v in REGISTRY[name].fixed.items():
        assert getattr(args, k) == v
    assert trainer_cls.__module__.startswith("trl") or trainer_cls.__name__.startswith("Escpro")


@pytest.mark.parametrize("name", METHODS)
def test_reference_methods_read_the_cached_reference_log_probs(name):
    from escpro.train.refcache import CachedRefLogpsMixin

    _, trainer_cls = trl_classes(name)
    m = REGISTRY[name]
    assert issubclass(trainer_cls, CachedRefLogpsMixin) == m.reference
    assert ("precompute_ref_log_probs" in method_kwargs(TrainConfig(method=name))) == m.reference
    assert TrainConfig(method=name).uses_reference == m.reference


@pytest.mark.parametrize("name", METHODS)
def test_loss_keys_are_train_config_fields(name):
    m = REGISTRY[name]
    for key in (*m.loss, *m.passthrough):
        assert key in TrainConfig.model_fields, key
    assert KIND_FILES[m.data] == m.data_file and KIND_KEYS[m.data]
    assert TrainConfig(method=name).data_file_name() == m.data_file


@pytest.mark.parametrize("name", METHODS)
def test_plan_shows_the_method_row(name, tmp_path):
    """`escpro train --check` names the trainer and loss keys from the registry row."""
    from escpro.train.plan import resolve_plan

    m = REGISTRY[name]
    rec = {"sft": {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
           "pairs": {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}],
                     "rejected": [{"role": "assistant", "content": "b"}]},
           "kto": None}[m.data]
    if rec is None:  # KTO needs both labels
        recs = [{"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": c}],
                 "label": lab} for c, lab in (("a", True), ("b", False))]
    else:
        recs = [rec]
    (tmp_path / m.data_file).write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = TrainConfig(method=name, model="tiny", data=str(tmp_path), per_device_batch_size=m.min_per_device_batch,
                      global_batch_size=m.min_per_device_batch)
    plan, data = resolve_plan(cfg)
    assert data is not None and data.kind == m.data
    assert plan["trainer"] == m.trainer_label
    assert set(plan["loss"]) == set(m.loss)


def test_llamafactory_stages_cover_the_registry():
    """Every method LLaMA-Factory can name maps back to its row, and only those."""
    named = set(STAGES.values()) | set(PREF_LOSS.values())
    assert named == {n for n in METHODS if REGISTRY[n].lf_stage}
