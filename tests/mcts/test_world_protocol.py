"""The search knows its world only through escpro.mcts.protocol.World: a number game (no
dialogue, no roles) is searched by the same TreeSearch / TreeParallelSearch classes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from escpro.mcts.config import BuildConfig
from escpro.mcts.protocol import Action, Extension, GoldPath, GoldStep, World
from escpro.mcts.scheduler import search_class
from escpro.mcts.state import TreeState
from escpro.mcts.tree import Node, walk
from escpro.roles.api import Judgement

LABELS = ("one", "two", "three")  # action i adds i + 1 to the running total
GOAL = 6  # a path ends once its total reaches GOAL


def total(node: Node) -> int:
    return sum(i + 1 for i in node.path)


class NumberGame:
    """Reach GOAL by adding 1, 2 or 3; the reward prefers short paths (fewer steps)."""

    def __init__(self, goal: int = GOAL) -> None:
        self.goal = goal
        self.priority: float | None = None
        self.iteration = -1
        self.calls: list[dict] = []
        self.steps: list[str] = []

    @property
    def last_error(self) -> str | None:
        return None

    def start_iteration(self, iteration: int, retry_round: int = 0) -> None:
        self.iteration = iteration

    def drain_calls(self) -> list[dict]:
        out, self.calls = self.calls, []
        return out

    def _actions(self) -> tuple[Action, ...]:
        return tuple(Action(i, lab, (i + 1) / 6, i + 1) for i, lab in enumerate(LABELS))

    async def gold_path(self, retries, unscored_scale, unscored_prior) -> GoldPath:
        acts = self._actions()
        self.steps.append("gold")
        return GoldPath("0", (GoldStep(acts[0], "+1", "1", acts),))  # the gold path: a single +1

    async def extend(self, node: Node) -> Extension:
        self.steps.append("extend")
        t = total(node)
        return Extension(f"+{node.path[-1] + 1}", str(t), t >= self.goal)

    async def expand(self, node: Node) -> tuple[Action, ...]:
        self.steps.append("expand")
        return self._actions()

    async def roll_out(self, node: Node, max_rounds: int) -> list[int]:
        """Greedy +3 steps: the totals reached, the node's own first."""
        self.steps.append("roll_out")
        t = total(node)
        states = [t]
        for _ in range(max_rounds):
            if t >= self.goal:
                break
            t += 3
            states.append(t)
        return states

    async def judge(self, node: Node, states) -> list[Judgement]:
        self.steps.append("judge")
        states = [total(node)] if states is None else states
        return [Judgement(0, 0, 0, 0, 1.0 if s >= self.goal and node.depth <= 2 else -0.5) for s in states]


def run(world, **cfg):
    base = dict(min_iterations=0, max_iterations=6, min_end_nodes=99, max_end_nodes=99,
                sim_max_rounds=2, gold_q=1.0, gold_n=1)
    base.update(cfg)
    config = BuildConfig(**base)
    deltas = []

    async def commit(d):
        deltas.append(d)

    search = search_class(config)(TreeState("game", "run"), world, config, commit)
    asyncio.run(search.run())
    return search, deltas


def test_a_non_dialogue_world_satisfies_the_protocol():
    assert isinstance(NumberGame(), World)
    assert not isinstance(object(), World)
    search, deltas = run(NumberGame())
    s = search.s
    assert s.status == "done" and s.stop_reason == "max_iterations" and s.iterations == 6
    nodes = {nd.path: nd for nd in walk(s.root)}
    # the gold path and its two unexpanded siblings, then one expansion per iteration at most
    assert nodes[(0,)].is_gold and nodes[(0,)].supporter_text == "+1"
    assert {nodes[(1,)].kind, nodes[(2,)].kind} <= {"unexpanded", "expanded", "end"}
    for nd in nodes.values():
        if nd.kind in ("expanded", "end") and not nd.is_gold:
            assert nd.supporter_text == f"+{nd.path[-1] + 1}" and nd.seeker_text == str(total(nd))
            assert nd.is_end == (total(nd) >= GOAL)
    # the root's visits: the gold initialisation's plus one per backpropagated iteration
    assert s.root.n == 1 + 6
    # every node the search created was committed, and the judgements carry the game's rewards
    committed = {r["node_id"] for d in deltas for r in d.nodes}
    assert len(committed) == s.node_count == len(nodes)
    rewards = {j["reward"] for d in deltas for j in d.judgements}
    assert rewards <= {1.0, -0.5} and rewards


def test_the_search_takes_the_steps_of_the_iteration_recipe():
    world = NumberGame(goal=8)
    search, deltas = run(world, max_iterations=1, gold_q=0.0)
    # With a gold value of 0, PUCB picks the root's unexpanded child of highest prior (+3, total
    # 3): it is extended and expanded, its highest-prior child (+3, total 6 < 8) extended, a
    # rollout from it adds +3 (9: the goal) and both states are judged.
    assert world.steps == ["gold", "extend", "expand", "extend", "roll_out", "judge"]
    nodes = {nd.path: nd for nd in walk(search.s.root)}
    assert nodes[(2,)].kind == "expanded" and nodes[(2, 2)].kind == "expanded"
    assert [j["turn_offset"] for d in deltas for j in d.judgements] == [0, 1]
    # rewards: total 6 at depth 2 misses the goal (-0.5), the rollout's 9 reaches it (1.0)
    assert nodes[(2, 2)].q == pytest.approx(0.25) and nodes[(2, 2)].n == 1


def test_tree_parallel_search_runs_the_same_world():
    search, _ = run(NumberGame(), max_iterations=8, tree_parallel=3)
    assert type(search).__name__ == "TreeParallelSearch"
    assert search.s.status == "done" and search.s.iterations == 8


@pytest.mark.parametrize("module", ["escpro.mcts.search", "escpro.mcts.protocol"])
def test_the_search_imports_no_dialogue_world(module):
    code = (f"import sys, {module}; bad = [m for m in ('escpro.mcts.world', 'escpro.mcts.parallel', "
            "'escpro.roles.roleset', 'escpro.seeds.model') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
