"""Seed files and build configs for the build/store tests (real seed loader, sim backend)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

STRATS = [
    "Emotional Validation", "Affirmation", "Collaborative Planning", "Empathetic Statements",
    "Avoid Judgment and Criticism", "Provide Different Perspectives", "Reframe Negative Thoughts",
    "Share Information",
]


def seed_record(i: int, n_gold: int = 3) -> dict:
    turns = [{"speaker": "supporter", "text": "Hi, what's on your mind today?"},
             {"speaker": "seeker", "text": f"I have a problem number {i} that keeps me awake."}]
    for k in range(n_gold):
        turns.append({"speaker": "supporter", "text": f"Supporter reply {k} for seed {i}.",
                      "strategy": STRATS[(i + k) % len(STRATS)]})
        turns.append({"speaker": "seeker", "text": f"Seeker answer {k} in seed {i}."})
    return {"seed_id": f"s{i}", "scene": "Work stress", "situation": f"Situation {i}.",
            "turns": turns}


def write_seeds(path: Path, n: int, extra_lines: list[str] = ()) -> Path:
    lines = [json.dumps(seed_record(i)) for i in range(n)] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_config(path: Path, *, latency_ms: float = 0.0, failure_rate: float = 0.0,
                 **build) -> Path:
    sim = {"latency_ms": latency_ms, "failure_rate": failure_rate}
    cfg = {
        "roles": {r: {"backend": "sim", "model": "sim", "sim": sim}
                  for r in ("seeker", "supporter", "strategy", "reward")},
        "build": {"sim_max_rounds": 2, "min_iterations": 8, "max_iterations": 12,
                  "min_end_nodes": 1, "max_end_nodes": 10, "concurrent_trees": 4,
                  "commit_interval_s": 0.05, **build},
    }
    cfg["roles"]["strategy"]["temperature"] = 0.0
    cfg["roles"]["reward"]["temperature"] = 0.0
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture
def seeds_file(tmp_path):
    return write_seeds(tmp_path / "seeds.jsonl", 5)


@pytest.fixture
def build_helpers():
    return {"write_seeds": write_seeds, "write_config": write_config, "seed_record": seed_record}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small real build file (the simulator, asked for by name in the config)."""
    from escpro.build.run import BuildOptions, run_build
    from escpro.config import load_config

    d = tmp_path_factory.mktemp("good")
    seeds = write_seeds(d / "seeds.jsonl", 2)
    cfg = write_config(d / "c.yaml")
    db = d / "good.duckdb"
    run_build(BuildOptions(seeds=seeds, db=db, config=load_config(cfg), random_seed=1))
    return {"db": db, "seeds": seeds, "cfg": cfg}
