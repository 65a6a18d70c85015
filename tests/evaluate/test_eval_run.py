"""`escpro eval run` end to end on the sim backend, a model answering garbage, resume, report."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.dialogue import Utterance as Turn
from escpro.evaluate.config import EvalConfig
from escpro.evaluate.generate import parse_answer
from escpro.evaluate.run import run_eval
from escpro.evaluate.testsets import turn_items, write_items
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.config import RoleBinding
from escpro.seeds.model import Dialogue
from escpro.taxonomy import load_taxonomy

TAX = load_taxonomy("cso8")


def make_testset(path, n_dialogues=3):
    dialogues = []
    for d in range(n_dialogues):
        turns = [Turn("supporter", "Hi there.", None, True)]
        for k in range(4):
            turns.append(Turn("seeker", f"I feel bad about thing {d}-{k}."))
            turns.append(Turn("supporter", f"That sounds hard {d}-{k}.", TAX.names[(d + k) % 8]))
        dialogues.append(Dialogue(f"s{d}", d, "Work", "Boss trouble.", tuple(turns)))
    write_items(turn_items(dialogues), path)
    return path


@pytest.mark.parametrize(
    "text, strategy, reply, invalid",
    [
        ("(Affirmation) You are doing great.", "Affirmation", "You are doing great.", False),
        ("[affirmation]: You are doing great.", "Affirmation", "You are doing great.", False),
        ("(Aff) short label", "Affirmation", "short label", False),
        ("(Hugging) here is a hug", None, "here is a hug", True),
        ("You are doing great.", None, "You are doing great.", True),
        ("", None, "", True),
        (None, None, "", True),
        ("((((", None, "((((", True),
        ("(Affirmation", None, "(Affirmation", True),
    ],
)
def test_parse_malformed_answers(text, strategy, reply, invalid):
    got = parse_answer(text, TAX)
    assert got["strategy_pred"] == strategy and got["invalid"] is invalid
    assert got["response_pred"] == reply


class ScriptedModel:
    """A model that answers garbage in every way a real one can, and sometimes fails."""

    backend = "scripted"
    model = "scripted"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.n = 0

    async def generate(self, requests: Sequence[RoleRequest]) -> list[RoleResult]:
        self.batches.append(len(requests))
        out = []
        for req in requests:
            k = self.n
            self.n += 1
            answers = ["(Affirmation) fine", "no prefix at all", "(Telepathy) odd", "", None]
            text = answers[k % len(answers)]
            if text is None:
                out.append(RoleResult(req, "timeout", error="took too long"))
            else:
                out.append(RoleResult(req, "ok", text=text, value=text))
        return out

    async def aclose(self) -> None:
        pass


def test_garbage_model_is_counted_not_fatal(tmp_path):
    ts = make_testset(tmp_path / "t.jsonl")
    model = ScriptedModel()
    cfg = EvalConfig(model=RoleBinding(backend="sim", model="scripted"), chunk_size=5)
    res = run_eval(cfg, ts, tmp_path / "run", model_factory=lambda b: model, progress=False)
    assert res["items"] == 12 and res["generated"] == 12
    assert model.batches == [5, 5, 2]  # every chunk went to the backend as one batch
    rows = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    assert sum(r["invalid"] for r in rows) == res["scores"]["invalid_count"] > 0
    assert res["failed_calls"] == sum(r["status"] != "ok" for r in rows) > 0
    timeout = next(r for r in rows if r["status"] == "timeout")
    assert timeout["invalid"] and timeout["response_pred"] == "" and timeout["error"]
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert scores["n"] == 12 and 0 < scores["invalid"] < 1
    assert "Telepathy" in scores["invalid_labels"]


def test_sim_backend_run_resume_and_report(tmp_path):
    ts = make_testset(tmp_path / "t.jsonl")
    out = tmp_path / "run"
    args = ["eval", "run", "--backend", "sim", "--model", "sim", "--testset", str(ts), "--out", str(out),
            "--json", "--limit", "5"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    first = json.loads(res.output)
    assert first["generated"] == 5 and first["invalid"] == 0  # sim answers "(<Strategy>) ..."
    args[-1] = "12"
    res = CliRunner().invoke(cli, args)
    second = json.loads(res.output)
    assert second["resumed"] == 5 and second["generated"] == 7
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 12
    # a different run into the same directory is refused, not mixed
    res = CliRunner().invoke(cli, [*args[:-2], "--baseline", "direct-refine"])
    assert res.exit_code != 0 and "different run" in res.output
    # escpro score reads the run directory and agrees with scores.json
    scored = json.loads(CliRunner().invoke(cli, ["score", str(out), "--json"]).output)
    saved = json.loads((out / "scores.json").read_text())
    assert scored["Q"] == saved["Q"] and scored["B"] == saved["B"] and scored["n"] == 12
    # report
    rep_dir = tmp_path / "rep"
    res = CliRunner().invoke(cli, ["eval", "report", str(out), "--reference", "--reference-table", "Table 2",
                                   "--out", str(rep_dir)])
    assert res.exit_code == 0, res.output
    md = (rep_dir / "table.md").read_text()
    assert "| this run | sim | - | base |" in md
    assert "| paper Table 2 | Gemma-2-9b-it | LoRA | CSO | 35.77 | 1.23 | 52.34 | 26.61 |" in md
    assert (rep_dir / "table.png").stat().st_size > 10000
    csv_rows = (rep_dir / "table.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 1 + 24


@pytest.mark.parametrize("baseline", ["direct-refine", "self-refine", "example"])
def test_baselines_on_sim(tmp_path, baseline):
    ts = make_testset(tmp_path / "t.jsonl", n_dialogues=2)
    seeds = tmp_path / "train.jsonl"
    d = Dialogue("train0", 0, "Loss", "My dog died.", (
        Turn("seeker", "My dog died."), Turn("supporter", "I am so sorry.", "Empathetic Statements")))
    seeds.write_text(json.dumps(d.to_record()) + "\n")
    args = ["eval", "run", "--backend", "sim", "--model", "sim", "--testset", str(ts), "--out",
            str(tmp_path / baseline), "--baseline", baseline, "--json"]
    if baseline == "example":
        args += ["--examples", str(seeds)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (tmp_path / baseline / "predictions.jsonl").read_text().splitlines()]
    expected = {"direct-refine": {"answer", "refine"}, "self-refine": {"answer", "feedback", "refine"},
                "example": {"answer"}}[baseline]
    assert all(set(r["stages"]) == expected for r in rows)
    if baseline == "example":
        assert all(r["example_id"] == "train0" for r in rows)
    else:  # the final answer is the refined one
        assert all(r["raw"] == r["stages"]["refine"] for r in rows)


def test_example_baseline_needs_examples(tmp_path):
    ts = make_testset(tmp_path / "t.jsonl", n_dialogues=1)
    res = CliRunner().invoke(cli, ["eval", "run", "--backend", "sim", "--model", "sim", "--testset", str(ts),
                                   "--out", str(tmp_path / "r"), "--baseline", "example"])
    assert res.exit_code != 0 and "--examples" in res.output and "Traceback" not in res.output


def test_evaluate_entry_point_returns_a_typed_result_and_resumes(tmp_path):
    from escpro.evaluate.run import EvalOptions, EvalResult, evaluate

    ts = make_testset(tmp_path / "t.jsonl")
    cfg = EvalConfig(model=RoleBinding(backend="sim", model="scripted"), chunk_size=5)
    opts = EvalOptions(config=cfg, testset=ts, out=tmp_path / "run", name="scripted", limit=7,
                       progress=False, model_factory=lambda b: ScriptedModel())
    res = evaluate(opts)
    assert isinstance(res, EvalResult) and res.name == "scripted" and res.out == tmp_path / "run"
    assert (res.generated, res.resumed) == (7, 0) and res.scores["n"] == 7
    assert res.to_dict()["scores"] == json.loads((tmp_path / "run" / "scores.json").read_text())
    again = evaluate(opts)  # same run dir: every item is already there
    assert (again.generated, again.resumed) == (0, 7)
