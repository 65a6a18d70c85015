"""What the search asks of the world it searches (llm-reasoners' split of search and world model).

escpro.mcts.search knows nodes, values and the iteration recipe, and reaches the world only
through `World`: lay out the gold path, extend a node (give its action an outcome), expand one
(score the actions from it), roll out from one and judge. escpro.mcts.world.DialogueWorld is the
emotional-support dialogue with its four roles; any other object with these methods can be
searched the same way (tests/mcts/test_world_protocol.py drives the search with a number game).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from escpro.mcts.tree import Node
from escpro.roles.api import Judgement


class IterationFailed(Exception):
    """An iteration that could not make progress (the reason is the last failed call)."""


@dataclass(frozen=True)
class Action:
    """A child the world offers from a node: its index among the node's possible actions, its
    label (a strategy name), prior and raw score."""

    index: int
    label: str
    prior: float
    score: int | None = None


@dataclass(frozen=True)
class Extension:
    """The outcome of taking a node's action: the node's two texts and whether it ends the path."""

    supporter_text: str
    seeker_text: str
    is_end: bool


@dataclass(frozen=True)
class GoldStep:
    """One node of the gold path the tree starts from: its action, its texts and the actions that
    become its unexpanded siblings (the gold one included, with its prior)."""

    action: Action
    supporter_text: str
    seeker_text: str
    siblings: tuple[Action, ...]


@dataclass(frozen=True)
class GoldPath:
    root_seeker_text: str
    steps: tuple[GoldStep, ...]


@runtime_checkable
class World(Protocol):
    """The world one TreeSearch acts in. Calls are numbered per iteration (`start_iteration`) so
    a replayed iteration makes the same calls; a step that fails returns None (or raises
    IterationFailed from gold_path) and leaves its reason in `last_error`."""

    priority: float | None  # where this tree's calls queue (lower first); None: by iteration

    @property
    def last_error(self) -> str | None: ...

    def start_iteration(self, iteration: int, retry_round: int = 0) -> None: ...

    def drain_calls(self) -> list[dict]:
        """The llm_calls rows recorded since the last drain."""
        ...

    async def gold_path(
        self, retries: int, unscored_scale: float, unscored_prior: float
    ) -> GoldPath: ...

    async def extend(self, node: Node) -> Extension | None: ...

    async def expand(self, node: Node) -> Sequence[Action] | None: ...

    async def roll_out(self, node: Node, max_rounds: int) -> Sequence[Any]:
        """States to judge for a rollout from `node`: the node's own first, then one per rolled
        out step."""
        ...

    async def judge(self, node: Node, states: Sequence[Any] | None) -> list[Judgement | None]:
        """One judgement per state (None: `node` alone)."""
        ...
