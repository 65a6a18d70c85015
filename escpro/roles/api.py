"""What the search (and demo, extraction ablation, evaluation) asks of the four roles.

`RoleSet` is the seam between the MCTS and the models: the search passes a DialogueContext and
gets back parsed values plus the RoleResult of the call (for the llm_calls table). A failed call
gives value None and a RoleResult whose status says why; it never raises.

`cache`, when given, is a dict the caller scopes (one per tree): an identical request
(RoleRequest.key with the model name) is answered from it instead of being sent again, and the
returned RoleResult then has cached=True. `priority` becomes the request's typed priority
(where it waits for a backend slot, lower first); `retry_round` > 0 says the caller's previous
try of this step failed, so the request varies its sampling (escpro.roles.roleset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from escpro.dialogue import Utterance
from escpro.roles.base import RoleResult
from escpro.taxonomy import Taxonomy

T = TypeVar("T")


@dataclass(frozen=True)
class DialogueContext:
    """The dialogue so far, as a role sees it."""

    scene: str
    situation: str
    history: tuple[Utterance, ...]

    def extend(self, *utts: Utterance) -> DialogueContext:
        return DialogueContext(self.scene, self.situation, self.history + tuple(utts))


@dataclass(frozen=True)
class SeekerTurn:
    text: str  # cleaned; "" allowed when the seeker only ended the dialogue
    is_end: bool


@dataclass(frozen=True)
class Judgement:
    empathy: int
    information: int
    humanoid: int
    strategy: int
    reward: float  # escpro.roles.scoring.turn_reward of the four


@dataclass
class Outcome(Generic[T]):
    value: T | None
    result: RoleResult

    @property
    def ok(self) -> bool:
        return self.value is not None


__all__ = ["DialogueContext", "Judgement", "Outcome", "RoleSet", "SeekerTurn", "Utterance"]


class RoleSet(Protocol):
    taxonomy: Taxonomy

    async def score_strategies(
        self, ctx: DialogueContext, *, meta: dict[str, Any] | None = None, cache: dict | None = None,
        priority: float = 0.0, retry_round: int = 0,
    ) -> Outcome[dict[str, int]]:
        """Strategy role: one integer score per strategy of the taxonomy (all keys present, in
        taxonomy order), for the next supporter turn after ctx (which ends with a seeker turn)."""
        ...

    def prior(self, scores: dict[str, int]) -> dict[str, float]:
        """softmax(score / T) with the configured T."""
        ...

    async def support(
        self,
        ctx: DialogueContext,
        strategy: str,
        *,
        meta: dict[str, Any] | None = None,
        cache: dict | None = None,
        priority: float = 0.0,
        retry_round: int = 0,
    ) -> Outcome[str]:
        """Supporter role: a cleaned reply using `strategy`."""
        ...

    async def seek(
        self, ctx: DialogueContext, *, meta: dict[str, Any] | None = None, cache: dict | None = None,
        priority: float = 0.0, retry_round: int = 0,
    ) -> Outcome[SeekerTurn]:
        """Seeker role: the next seeker turn after ctx (which ends with a supporter turn)."""
        ...

    async def judge(
        self, ctx: DialogueContext, *, meta: dict[str, Any] | None = None, cache: dict | None = None,
        priority: float = 0.0, retry_round: int = 0,
    ) -> Outcome[Judgement]:
        """Reward role: rates the last supporter turn of ctx on the four criteria; the reward uses
        the configured alpha and b. The search passes the dialogue cut after the judged turn
        (escpro.mcts.world.judged_context: no seeker reply, no opening greeting)."""
        ...

    async def aclose(self) -> None: ...
