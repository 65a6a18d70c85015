"""TrainConfig (paper tables, aliases, global batch arithmetic), data validation and selection,
chat-template handling (system folding, left truncation, assistant masks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from escpro import paper_defaults as P
from escpro.errors import DataError
from escpro.train.config import TrainConfig, parse_overrides
from escpro.train.data import load_train_data
from tests.helpers import GEMMA2_TEMPLATE

REPO = Path(__file__).resolve().parents[2]



def test_importing_train_config_does_not_import_torch():
    code = "import sys, escpro.train.config, escpro.train.plan; print('torch' in sys.modules, 'trl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_llamafactory_aliases_map_to_fields():
    cfg = TrainConfig(pref_beta=0.7, simpo_gamma=2.0, kto_chosen_weight=1.0, kto_rejected_weight=0.5,
                      cutoff_len=4096, lora_r=16, num_train_epochs=2)
    assert (cfg.beta, cfg.simpo_gamma, cfg.desirable_weight, cfg.undesirable_weight) == (0.7, 2.0, 1.0, 0.5)
    assert (cfg.max_length, cfg.lora_rank, cfg.epochs) == (4096, 16, 2)


def test_global_batch_is_split_over_devices_and_accumulation():
    cfg = TrainConfig(global_batch_size=32, per_device_batch_size=1)
    assert cfg.accumulation(8) == 4 and cfg.accumulation(1) == 32
    cfg = TrainConfig(global_batch_size=128, per_device_batch_size=2)
    assert cfg.accumulation(8) == 8
    with pytest.raises(ValueError, match="not divisible"):
        TrainConfig(global_batch_size=8, per_device_batch_size=2).accumulation(8)
    assert TrainConfig(gradient_accumulation_steps=3).accumulation(8) == 3


def test_lengths_default_to_paper_completion_limit():
    cfg = TrainConfig()
    assert cfg.max_completion_length == P.MAX_TARGET_LENGTH.value == 512
    assert cfg.prompt_budget == cfg.max_length - 512
    with pytest.raises(ValueError, match="no room for a prompt"):
        TrainConfig(max_length=512, max_completion_length=512)


def test_parse_overrides_reads_yaml_scalars():
    assert parse_overrides(["beta=0.1", "train.mode=full", "lora_target=[q_proj, v_proj]", "merge=true"]) == {
        "beta": 0.1, "mode": "full", "lora_target": ["q_proj", "v_proj"], "merge": True}
    with pytest.raises(ValueError):
        parse_overrides(["beta"])


def test_recipes_carry_table_13_and_14_values():
    import yaml

    for (backbone, mode), losses in P.TRAIN_TABLE14.items():
        for method in ("sft", "dpo", "ipo", "simpo", "kto", "orpo"):
            doc = yaml.safe_load((REPO / "configs/train" / f"{backbone}_{mode}_{method}.yaml").read_text())["train"]
            epochs, batch, lr = P.TRAIN_TABLE13[(backbone, mode, "sft" if method == "sft" else "pref")]
            assert (doc["epochs"], doc["global_batch_size"], doc["learning_rate"]) == (epochs, batch, lr)
            for k, v in ({} if method == "sft" else losses[method]).items():
                assert doc[k] == v
            assert doc["max_completion_length"] == 512 and doc["model"] == P.TRAIN_BACKBONES[backbone]
            if mode == "lora":
                assert (doc["lora_alpha"], doc["lora_dropout"], doc["lora_rank"], doc["lora_target"]) == (8, 0, 8, "all")
            TrainConfig.model_validate(doc)


def test_committed_recipes_match_the_generator(tmp_path):
    subprocess.run([sys.executable, str(REPO / "scripts/gen_train_recipes.py"), "--out", str(tmp_path)],
                   check=True, cwd=REPO, capture_output=True)
    for p in tmp_path.glob("*.yaml"):
        assert p.read_text() == (REPO / "configs/train" / p.name).read_text(), f"{p.name} is stale: re-run the script"


# --- data -----------------------------------------------------------------------------------

def test_method_picks_its_file(extract_dir):
    assert load_train_data(extract_dir, "dpo").path.name == "pairs.jsonl"
    assert load_train_data(extract_dir, "kto").path.name == "kto.jsonl"
    assert load_train_data(extract_dir, "sft").path.name == "sft.jsonl"


def test_dialogues_selects_first_n_paths_in_sft_order(extract_dir):
    full = load_train_data(extract_dir, "dpo")
    two = load_train_data(extract_dir, "dpo", dialogues=2)
    assert two.selected_paths == ["t0-p0", "t1-p0"]
    assert len(two.records) == 4 and len(full.records) == 8
    assert {p for r in two.records for p in r["path_ids"]} == {"t0-p0", "t1-p0"}
    assert len(load_train_data(extract_dir, "sft", dialogues=3).records) == 3


def test_kto_accepts_a_pairs_file_by_unpairing(extract_dir):
    data = load_train_data(extract_dir / "pairs.jsonl", "kto")
    assert data.kind == "kto" and len(data.records) == 16
    assert sum(r["label"] for r in data.records) == 8


def test_bad_roles_and_prompts_are_reported(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": [{"role": "seeker", "content": "x"}], "chosen": [], "rejected": []}) + "\n")
    with pytest.raises(DataError, match="record 1: 'prompt'\\[0\\] has unknown role 'seeker'"):
        load_train_data(f, "dpo")
    f.write_text(json.dumps({"prompt": [{"role": "user", "content": "x"}],
                             "chosen": [{"role": "user", "content": "y"}],
                             "rejected": [{"role": "assistant", "content": "z"}]}) + "\n")
    with pytest.raises(DataError, match="'chosen' must contain assistant messages only"):
        load_train_data(f, "dpo")


# --- templates ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tok(tiny_model):
    from escpro.train.models import load_tokenizer

    return load_tokenizer(str(tiny_model))


def test_fold_system_when_template_rejects_it(tok):
    from escpro.train.template import fold_system, should_fold, template_rejects_system

    assert not template_rejects_system(tok)
    gemma = type(tok).from_pretrained(tok.name_or_path)
    gemma.chat_template = GEMMA2_TEMPLATE
    assert template_rejects_system(gemma) and should_fold(gemma, "auto") and not should_fold(gemma, "never")
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    folded = fold_system(msgs)
    assert folded == [{"role": "user", "content": "S\n\nU"}, {"role": "assistant", "content": "A"}]
    gemma.apply_chat_template(folded, tokenize=False)  # renders now
    assert fold_system([msgs[0], msgs[2]])[0] == {"role": "user", "content": "S"}


def test_prompts_truncate_from_the_left_and_completions_at_the_limit(tok):
    from escpro.train.template import cut_completion, render, truncate_left

    prompt = [{"role": "system", "content": "S"}]
    for i in range(6):
        prompt += [{"role": "user", "content": f"user turn {i} I feel lonely"},
                   {"role": "assistant", "content": f"(Affirmation) reply {i}"}]
    prompt += [{"role": "user", "content": "last question"}]
    full = len(render(tok, prompt, generation_prompt=True))
    cut, dropped = truncate_left(tok, prompt, full // 2, fold=False)
    assert dropped and len(render(tok, cut, generation_prompt=True)) <= full // 2
    assert cut[0]["role"] == "system" and cut[1]["role"] == "user" and cut[-1]["content"] == "last question"
    long = [{"role": "assistant", "content": "(Affirmation) " + "you are strong " * 100}]
    short, was_cut = cut_completion(tok, long, 20)
    assert was_cut and len(tok(short[0]["content"], add_special_tokens=False)["input_ids"]) <= 20


def test_assistant_mask_covers_assistant_turns_only(tok):
    from escpro.train.template import assistant_mask

    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "(Affirmation) well done"}, {"role": "user", "content": "thanks"},
            {"role": "assistant", "content": "(Emotional Validation) sure"}]
    ids, mask = assistant_mask(tok, msgs)
    learned = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert learned == "(Affirmation) well done<|im_end|>(Emotional Validation) sure<|im_end|>"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_gemma2_style_template_trains_with_the_system_prompt_folded(make_cfg, tmp_path, method):
    from escpro.train.run import train

    tpl = tmp_path / "gemma2.jinja"
    tpl.write_text(GEMMA2_TEMPLATE)
    s = train(make_cfg(method=method, chat_template=str(tpl), max_steps=2))
    assert s["fold_system"] is True and s["steps"] == 2


def test_model_without_template_needs_chat_template(make_cfg, tiny_model, tmp_path):
    import shutil

    from escpro.errors import ConfigError
    from escpro.train.run import train

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    (bare / "chat_template.jinja").unlink()
    cfg = json.loads((bare / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="has no chat template; set train.chat_template"):
        train(make_cfg(model=str(bare)))
    s = train(make_cfg(model=str(bare), chat_template="trl:qwen2_5", method="sft", max_steps=1))
    assert s["steps"] == 1
