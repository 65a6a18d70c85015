"""Tiny-model training runs on the CPU: every method x mode, LoRA merge, SFT -> DPO reference,
the reference log-prob cache, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from escpro.train.methods import METHODS, REGISTRY

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["lora", "full"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_and_loss_moves(make_cfg, method, mode):
    from escpro.train.run import train

    s = train(make_cfg(method=method, mode=mode))
    out = Path(s["out"])
    assert s["steps"] == 3
    assert s["first_loss"] != pytest.approx(s["last_loss"], abs=1e-6), "loss did not move"
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["step"] for r in metrics["steps"]] == [1, 2, 3]
    if REGISTRY[method].preference:
        assert any("rewards/margins" in r or "rewards/accuracies" in r for r in metrics["steps"])
    assert (out / "training_curve.png").stat().st_size > 1000
    assert "train:" in (out / "config.yaml").read_text()
    weights = out / ("adapter" if mode == "lora" else "model")
    assert (weights / ("adapter_model.safetensors" if mode == "lora" else "model.safetensors")).is_file()
    assert not (weights / "ref").exists() and not (weights / "training_args.bin").exists()


def _logits(model, tok):
    import torch

    ids = tok.apply_chat_template([{"role": "user", "content": "I cannot sleep."}], add_generation_prompt=True,
                                  return_dict=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_lora_adapter_saves_merges_and_reloads_identically(make_cfg, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from escpro.train.models import load_tokenizer, load_trained
    from escpro.train.run import train

    s = train(make_cfg(method="dpo", mode="lora", merge=True))
    out = Path(s["out"])
    tok = load_tokenizer(str(out / "adapter"))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    base_logits = _logits(base, tok)
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model)), str(out / "adapter"))
    merged = AutoModelForCausalLM.from_pretrained(str(out / "merged"))
    reloaded, _ = load_trained(out)
    a, m, r = _logits(with_adapter, tok), _logits(merged, tok), _logits(reloaded, tok)
    assert torch.allclose(a, m, atol=1e-5) and torch.allclose(m, r, atol=1e-5)
    assert not torch.allclose(a, base_logits, atol=1e-4), "adapter changed nothing"


def _completion_logp(model, tok, prompt, completion):
    import torch

    p = tok.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"]
    full = tok.apply_chat_template(prompt + completion, return_dict=True)["input_ids"]
    assert full[: len(p)] == p
    ids = torch.tensor([full])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    targets = ids[0, 1:]
    tok_logp = logp.gather(-1, targets[:, None])[:, 0]
    return float(tok_logp[len(p) - 1:].sum())


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_sft_then_dpo_uses_the_sft_model_as_reference(make_cfg, tiny_model, extract_dir, tmp_path, mode):
    """DPO after an SFT LoRA stage: pi_ref is base + SFT adapter (merged), not the bare base."""
    import pyarrow.parquet as pq

    from escpro.train.data import read_jsonl
    from escpro.train.models import load_model, load_tokenizer, source_of_output
    from escpro.train.run import train

    sft = train(make_cfg(method="sft", mode="lora", out=str(tmp_path / "sft"), max_steps=4))
    dpo = train(make_cfg(method="dpo", mode=mode, init_from=sft["out"], precompute_ref_log_probs=True,
                         out=str(tmp_path / f"dpo-{mode}")))
    cached = pq.read_table(Path(dpo["ref_cache"]["dir"]) / "train.parquet").to_pydict()["ref_chosen_logps"]

    tok = load_tokenizer(str(Path(sft["out"]) / "adapter"))
    rec = read_jsonl(extract_dir / "pairs.jsonl")[0]
    sft_model = load_model(source_of_output(sft["out"]))
    from escpro.train.models import ModelSource

    base_model = load_model(ModelSource(str(tiny_model)))
    want = _completion_logp(sft_model, tok, rec["prompt"], rec["chosen"])
    base = _completion_logp(base_model, tok, rec["prompt"], rec["chosen"])
    assert abs(want - base) > 1e-2, "SFT stage did not change the model"
    assert cached[0] == pytest.approx(want, abs=1e-3)
    manifest = json.loads((Path(dpo["out"]) / "escpro_train.json").read_text())
    if mode == "lora":  # rebuilding the DPO model stacks SFT adapter then DPO adapter on the base
        assert manifest["adapters"][0].endswith("sft/adapter") and len(manifest["adapters"]) == 2
        # ...and since adapter/ alone does not apply to the bare base, merged/ is written anyway
        assert manifest["merged"] == "merged" and (Path(dpo["out"]) / "merged" / "model.safetensors").is_file()


def test_reference_logps_cache_is_reused_by_the_next_run(make_cfg, tmp_path):
    from escpro.train.run import train

    first = train(make_cfg(method="dpo", precompute_ref_log_probs=True, out=str(tmp_path / "a")))
    assert first["ref_cache"]["misses"] == 1 and first["ref_cache"]["hits"] == 0
    # A different loss parameter does not change pi_ref's log-probs: same cache entry.
    second = train(make_cfg(method="ipo", beta=0.5, precompute_ref_log_probs=True, out=str(tmp_path / "b")))
    assert second["ref_cache"]["hits"] == 1 and second["ref_cache"]["misses"] == 0
    assert second["ref_cache"]["key"] == first["ref_cache"]["key"]
    # A different length limit changes the inputs: recomputed under a new key.
    third = train(make_cfg(method="dpo", max_length=900, precompute_ref_log_probs=True, out=str(tmp_path / "c")))
    assert third["ref_cache"]["misses"] == 1 and third["ref_cache"]["key"] != first["ref_cache"]["key"]
    kto1 = train(make_cfg(method="kto", precompute_ref_log_probs=True, out=str(tmp_path / "k1")))
    kto2 = train(make_cfg(method="kto", precompute_ref_log_probs=True, out=str(tmp_path / "k2")))
    assert kto1["ref_cache"]["misses"] == 1 and kto2["ref_cache"]["hits"] == 1


def test_resume_from_checkpoint_continues(make_cfg, tmp_path):
    from escpro.train.run import train

    out = str(tmp_path / "resume")
    first = train(make_cfg(method="dpo", out=out, max_steps=2, save_steps=2))
    assert first["steps"] == 2 and (Path(out) / "checkpoints" / "checkpoint-2").is_dir()
    second = train(make_cfg(method="dpo", out=out, max_steps=4, save_steps=2, resume=True))
    assert second["steps"] == 4
    steps = [r["step"] for r in json.loads((Path(out) / "metrics.json").read_text())["steps"]]
    assert steps == [1, 2, 3, 4]  # history restored from the checkpoint, then continued
