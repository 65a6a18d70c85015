"""Seed loading: the policy of issue 2 on real ESConv data and on irregular ExTES fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from escpro.errors import DataError
from escpro.seeds.load import load_seeds

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_esconv_sample_counts_by_hand(shared_data: Path) -> None:
    """Counts written out by hand from the 12 dialogues (see the policy in seeds/normalise.py):
    merged runs of one speaker, a leading supporter turn made context, 'Others' kept (esconv8)."""
    s = load_seeds(shared_data / "esconv_valid_sample.jsonl", taxonomy="esconv8").summary()
    assert s["format"] == "esconv"
    assert s["dialogues_read"] == 12
    assert s["dialogues_kept"] == 12
    assert s["dropped"] == {}
    assert s["strategy_counts"] == {
        "Providing Suggestions": 22,
        "Question": 19,
        "Information": 18,
        "Others": 15,
        "Affirmation and Reassurance": 12,
        "Reflection of feelings": 11,
        "Self-disclosure": 9,
        "Restatement or Paraphrasing": 6,
    }
    # utterances after merging: 21+18+10+32+16+22+19+21+19+17+18+20 = 233 over 12 dialogues
    assert s["mean_turns"] == pytest.approx(233 / 12, abs=1e-4)
    # mixed merged supporter turns per dialogue: 1,1,2,0,2,2,0,0,1,1,3,2
    assert s["merged_mixed_strategy"] == 15


def test_esconv_sample_structure(shared_data: Path) -> None:
    load = load_seeds(shared_data / "esconv_valid_sample.jsonl", taxonomy="esconv8")
    d0 = load.dialogues[0]
    # the first supporter turn comes before any seeker turn: context only
    assert d0.turns[0].speaker == "supporter" and d0.turns[0].context_only
    assert d0.turns[1].speaker == "seeker"
    assert d0.scene == "academic pressure"
    # speakers alternate after merging
    for d in load.dialogues:
        for a, b in zip(d.turns, d.turns[1:]):
            assert a.speaker != b.speaker
    # dialogue 1: "Information", "Providing Suggestions" x2 merged -> keeps the first label
    d1 = load.dialogues[1]
    assert d1.turns[-2].strategy == "Information"


def test_esconv_under_cso8_drops_everything_as_unknown(shared_data: Path) -> None:
    s = load_seeds(shared_data / "esconv_valid_sample.jsonl", taxonomy="cso8").summary()
    assert s["dialogues_kept"] == 0
    assert s["dropped"] == {"unknown_strategy": 12}


def test_extes_irregular_records() -> None:
    load = load_seeds(FIXTURES / "extes_irregular.json", taxonomy="cso8")
    s = load.summary()
    assert s["format"] == "extes"
    assert s["dialogues_read"] == 9
    assert s["dropped"] == {
        "unknown_strategy": 2,  # "Others" (cso8 lacks it) and "Cheerleading"
        "missing_strategy": 1,  # a later supporter turn with no label
        "bad_record": 2,  # a string record, a record without 'content'
        "bad_turn_text": 1,  # a list where the reply text should be
        "no_supporter_turn": 1,  # only a greeting
    }
    assert s["dialogues_kept"] == 2
    first, grief = load.dialogues
    # greeting with empty strategy before the first seeker turn -> context only
    assert first.turns[0].context_only and first.turns[0].strategy is None
    # ExTES 16 -> 8 mapping, merged supporter turn keeps its first strategy
    assert [t.strategy for t in first.turns if t.speaker == "supporter"] == [
        None,
        "Emotional Validation",
        "Avoid Judgment and Criticism",
        "Collaborative Planning",
    ]
    merged = first.turns[4]
    assert merged.text == "Breakups rarely have one cause. You will get through this."
    # consecutive seeker turns merged; the empty one dropped; the dict read through its text
    assert first.turns[3].text == "Yes. I keep thinking it was my fault."
    assert first.turns[5].text == "Thanks, that means a lot."
    # label matching is case- and whitespace-insensitive
    assert grief.turns[1].strategy == "Emotional Validation"
    # AJC + Offer Hope (-> Affirmation) differ; Stress Management + Promote Self-Care Practices
    # both map to Collaborative Planning, so that merge is not mixed
    assert s["merged_mixed_strategy"] == 1
    assert s["strategy_counts"] == {
        "Emotional Validation": 2,
        "Avoid Judgment and Criticism": 1,
        "Collaborative Planning": 2,
    }
    # 7 + 4 utterances after normalisation; words by whitespace split, counted by hand:
    # first: 7 + 10 + 6 + 8 + 10 + 5 + 6 = 52; grief: 4 + 8 + 3 + 12 = 27
    assert s["mean_turns"] == pytest.approx((7 + 4) / 2)
    assert s["mean_words_per_utterance"] == pytest.approx((52 + 27) / 11, abs=1e-4)


def test_strict_stops_at_first_bad_record() -> None:
    with pytest.raises(DataError, match=r"extes_irregular.json: record 1: unknown_strategy"):
        load_seeds(FIXTURES / "extes_irregular.json", strict=True)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('[{"scene": "a", "content": []}, {"scene": ', r"record 1: bad JSON"),
        ('{"scene": "a"}', r"top level is an object"),
        ('[1, {"content": []}, 3', r"record 3: bad JSON"),
    ],
)
def test_corrupted_json_names_file_and_record(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "broken.json"
    p.write_text(content)
    with pytest.raises(DataError, match=match) as exc:
        load_seeds(p)
    assert str(p) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_corrupted_jsonl_names_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.jsonl"
    good = {"seed_id": "a", "scene": "s", "situation": "x", "turns": [
        {"speaker": "seeker", "text": "hi"},
        {"speaker": "supporter", "text": "hello", "strategy": "Affirmation"}]}
    p.write_text(json.dumps(good) + "\n" + json.dumps(good)[:-5] + "\n")
    with pytest.raises(DataError, match=r"broken.jsonl: record 1 \(line 2\): bad JSON"):
        load_seeds(p)


def test_canonical_roundtrip(tmp_path: Path) -> None:
    load = load_seeds(FIXTURES / "extes_irregular.json")
    out = tmp_path / "seeds.jsonl"
    out.write_text("".join(json.dumps(d.to_record()) + "\n" for d in load.dialogues))
    again = load_seeds(out)
    assert again.format == "jsonl"
    assert [d.turns for d in again.dialogues] == [d.turns for d in load.dialogues]
    assert [d.seed_id for d in again.dialogues] == [d.seed_id for d in load.dialogues]
