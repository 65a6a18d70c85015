"""`escpro stats --toxicity`: a tiny random multi-label classifier built here (no model hub)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.extract import toxicity as T

LABELS = ["toxicity", "severe_toxicity", "identity_attack", "insult", "obscene", "threat"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tox") / "tiny-tox"
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["I lost my job . It is hard", "You are strong", "Bye thanks", "Nobody is judging you here"]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=len(LABELS),
                     id2label=dict(enumerate(LABELS)), label2id={x: i for i, x in enumerate(LABELS)},
                     problem_type="multi_label_classification", pad_token_id=0)
    BertForSequenceClassification(cfg).save_pretrained(d)
    fast.save_pretrained(d)
    return d


def _stats(*args: str):
    return CliRunner().invoke(cli, ["stats", *args], catch_exceptions=False)


@pytest.mark.slow  # three model loads through the CLI
def test_stats_toxicity_table_and_plot(db_path: Path, classifier: Path, tmp_path: Path):
    out = tmp_path / "stats"
    res = _stats("--db", str(db_path), "--toxicity", str(classifier), "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # stderr may carry the model-loading progress bar
    tox, t5 = data["toxicity"], data["table5"]
    assert tox["labels"] == LABELS and tox["activation"] == "sigmoid"
    rows = {r["row"]: r for r in tox["rows"]}
    # the same utterances as Table 5's columns
    assert rows["ESC-Pro(+)"]["utterances"] == t5["esc_pro_preferred"]["utterances"] == 6
    assert rows["ESC-Pro(-)"]["utterances"] == t5["esc_pro_non_preferred"]["utterances"] == 9
    assert rows["ESC-Pro(seeker)"]["utterances"] == t5["esc_pro_seeker"]["utterances"]
    assert rows["Seeds"]["utterances"] == t5["seed"]["utterances"]
    assert rows["ESC-Pro"]["utterances"] == t5["esc_pro"]["utterances"]
    for r in rows.values():
        assert all(0.0 < v < 1.0 for v in r["means"].values())
    # a pooled row is the utterance-weighted mean of its parts
    parts = [rows[k] for k in ("ESC-Pro(seeker)", "ESC-Pro(+)", "ESC-Pro(-)")]
    for lab in LABELS:
        pooled = sum(p["means"][lab] * p["utterances"] for p in parts) / sum(p["utterances"] for p in parts)
        assert rows["ESC-Pro"]["means"][lab] == pytest.approx(pooled)
    assert (out / "toxicity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "toxicity.csv").read_text().splitlines()[0].startswith("row,utterances,toxicity,")
    text = _stats("--db", str(db_path), "--toxicity", str(classifier), "--toxicity-labels", "insult,threat").stdout
    assert "Toxicity (" in text and "ESC-Pro(-)" in text and "insult" in text and "obscene" not in text


def test_batching_does_not_change_scores(classifier: Path):
    texts = ["I lost my job .", "You are strong", "Nobody is judging you here , bye thanks", "  "]
    groups = {"esc_pro_preferred": texts, "esc_pro_seeker": texts[:2]}
    one = T.score_groups(groups, T.ToxicityOptions(str(classifier), batch_size=1))
    many = T.score_groups(groups, T.ToxicityOptions(str(classifier), batch_size=64))
    assert one.distinct_texts == 3  # an empty utterance is not scored
    assert next(r for r in one.rows if r.row == "ESC-Pro(+)").utterances == 3
    for a, b in zip(one.rows, many.rows, strict=True):
        assert a.utterances == b.utterances
        for lab in LABELS:
            if a.means[lab] is None:
                assert b.means[lab] is None
            else:
                assert a.means[lab] == pytest.approx(b.means[lab], abs=1e-5)
    soft = T.score_groups(groups, T.ToxicityOptions(str(classifier), activation="softmax"))
    row = next(r for r in soft.rows if r.row == "ESC-Pro(+)")
    assert sum(row.means.values()) == pytest.approx(1.0)  # softmax rows sum to 1


def test_bad_model_and_labels_are_one_line_errors(db_path: Path, classifier: Path, tmp_path: Path):
    res = CliRunner().invoke(cli, ["stats", "--db", str(db_path), "--toxicity", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "--toxicity" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = CliRunner().invoke(cli, ["stats", "--db", str(db_path), "--toxicity", str(classifier),
                                   "--toxicity-labels", "toxic"])
    assert res.exit_code != 0 and "'toxic' is not a label" in res.stderr


@pytest.mark.parametrize("cfg, want", [
    (SimpleNamespace(problem_type="multi_label_classification", num_labels=2), "sigmoid"),
    (SimpleNamespace(problem_type="single_label_classification", num_labels=6), "softmax"),
    (SimpleNamespace(problem_type=None, function_to_apply="sigmoid", num_labels=2), "sigmoid"),
    (SimpleNamespace(problem_type=None, num_labels=2), "softmax"),  # neutral / toxic
    (SimpleNamespace(problem_type=None, num_labels=6), "sigmoid"),
    (SimpleNamespace(problem_type=None, num_labels=1), "sigmoid"),
])
def test_activation_auto(cfg, want):
    assert T.resolve_activation(cfg, "auto") == want
    assert T.resolve_activation(cfg, "softmax") == "softmax"
