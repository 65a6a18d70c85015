"""What each role is shown during a real build (bundled seeds, real RoleSet, sim backend, DuckDB).

The simulator's answer function is wrapped by a recorder that keeps every request the backend
receives and then answers it as usual, so these tests see exactly the prompts a served model
would get (issue 14 items 1 and 2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import escpro.data
from escpro.build.run import BuildOptions, run_build
from escpro.config import load_config
from escpro.paths import configs_dir
from escpro.roles.backends.sim import SimEngine

SEEDS = Path(escpro.data.__file__).parent / "demo_seeds.json"
_TURN = re.compile(r"^(Seeker|Supporter)\b(?: \(([^)]*)\))?: (.*)$")


def _spy_build(tmp_path, monkeypatch, **roles_extra):
    seen: list[tuple[str, list[dict]]] = []
    real = SimEngine.answer

    def answer(self, role, messages, schema, **kw):
        seen.append((role, [dict(m) for m in messages]))
        return real(self, role, messages, schema, **kw)

    monkeypatch.setattr(SimEngine, "answer", answer)
    cfg = load_config(configs_dir() / "build" / "tiny.yaml")
    if roles_extra:
        cfg = cfg.model_copy(update={"roles": cfg.roles.model_copy(update=roles_extra)})
    cfg = cfg.model_copy(update={"build": cfg.build.model_copy(update={"reuse_answers": False})})
    summary = run_build(BuildOptions(seeds=SEEDS, db=tmp_path / "t.duckdb", config=cfg, random_seed=0)).to_dict()
    assert summary["trees"]["failed"] == 0
    return seen


def _dialogue_lines(user: str) -> list[tuple[str, str | None, str]]:
    out = []
    for line in user.splitlines():
        m = _TURN.match(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


@pytest.fixture(scope="module")
def seeds():
    return json.loads(SEEDS.read_text(encoding="utf-8"))


def test_every_judged_dialogue_ends_with_the_judged_supporter_turn(tmp_path, monkeypatch, seeds):
    seen = _spy_build(tmp_path, monkeypatch)
    rewards = [msgs for role, msgs in seen if role == "reward"]
    assert len(rewards) > 100  # every judgement of the build, none answered from a cache
    greetings = {s["content"][0]["AI"] for s in seeds if "AI" in s["content"][0]}
    assert len(greetings) == 2
    for msgs in rewards:
        user = msgs[1]["content"]
        turns = _dialogue_lines(user)
        assert turns, user
        speaker, strategy, _ = turns[-1]
        assert speaker == "Supporter", user  # no seeker reply to the judged turn
        assert f"(strategy: {strategy})" in user  # the judged turn is the one named
        assert turns[0][0] == "Seeker", user  # no opening greeting
        assert not any(g in user for g in greetings)
    # the seeker's replies to judged turns did reach the other roles (so the cut is real)
    assert any(_dialogue_lines(m[1]["content"])[-1][0] == "Seeker" for r, m in seen if r == "strategy")


def test_scene_and_situation_reach_only_the_seeker(tmp_path, monkeypatch, seeds):
    seen = _spy_build(tmp_path, monkeypatch)
    private = [s["description"] for s in seeds] + [s["scene"] for s in seeds]
    by_role: dict[str, list[str]] = {}
    for role, msgs in seen:
        by_role.setdefault(role, []).append("\n".join(m["content"] for m in msgs))
    assert set(by_role) == {"seeker", "supporter", "strategy", "reward"}
    for text in by_role["seeker"]:
        assert any(p in text for p in private[: len(seeds)])  # the description
        assert any(p in text for p in private[len(seeds):])  # the scene
    for role in ("supporter", "strategy", "reward"):
        for text in by_role[role]:
            assert not any(p in text for p in private), (role, text)
            assert "Scene:" not in text and "Situation:" not in text


def test_share_situation_switch_shows_the_background_to_every_role(tmp_path, monkeypatch, seeds):
    seen = _spy_build(tmp_path, monkeypatch, share_situation=True)
    descriptions = [s["description"] for s in seeds]
    for role in ("seeker", "supporter", "strategy", "reward"):
        texts = ["\n".join(m["content"] for m in msgs) for r, msgs in seen if r == role]
        assert texts and all(any(d in t for d in descriptions) for t in texts), role


def test_paper_faithful_differs_from_paper_only_in_sampling():
    """configs/build/paper-faithful.yaml = paper.yaml with the authors' sampling (every role at
    the API default temperature 1.0, top_p 1.0) and no answer reuse; nothing else."""
    paper = load_config(configs_dir() / "build" / "paper.yaml").model_dump(mode="json")
    faithful = load_config(configs_dir() / "build" / "paper-faithful.yaml").model_dump(mode="json")
    for role in ("seeker", "supporter", "strategy", "reward"):
        assert (faithful["roles"][role]["temperature"], faithful["roles"][role]["top_p"]) == (1.0, 1.0)
        for key in ("temperature", "top_p"):
            paper["roles"][role].pop(key)
            faithful["roles"][role].pop(key)
    assert paper["roles"]["strategy"] and paper["build"]["reuse_answers"] is True
    assert faithful["build"].pop("reuse_answers") is False
    paper["build"].pop("reuse_answers")
    assert faithful == paper
    assert faithful["roles"]["share_situation"] is False
