"""Batched generation of predictions for test items, with the paper's decoding baselines.

Each stage of a chunk of items goes to the backend as one RoleModel.generate call, so the
backend batches (transformers/llama.cpp coalesce, vLLM and servers run them concurrently).
A failed call or an answer without a known strategy becomes a counted, recorded invalid
prediction; it never stops the run.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from typing import Any

from escpro.evaluate import prompts as PR
from escpro.evaluate.testsets import TestItem
from escpro.formatting import parse_supporter_turn
from escpro.roles.base import RoleModel, RoleRequest, RoleResult, Sampling
from escpro.seeds.model import Dialogue
from escpro.taxonomy import Taxonomy

ROLE = "eval"


def pick_example(examples: Sequence[Dialogue], item_id: str, seed: int) -> Dialogue:
    """One training dialogue per item, fixed by (seed, item id) so reruns show the same one."""
    digest = hashlib.sha256(f"{seed}\x1f{item_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big")).choice(list(examples))


def parse_answer(text: str | None, taxonomy: Taxonomy) -> dict[str, Any]:
    """The strategy and reply of an answer. No prefix, or a prefix naming no strategy of the
    taxonomy, is invalid; the reply is kept either way so ROUGE-L can still score it."""
    canon, reply, label = parse_supporter_turn(text or "", taxonomy)
    return {
        "strategy_pred": canon,
        "strategy_label": label,
        "response_pred": reply,
        "invalid": canon is None,
    }


class Generator:
    def __init__(
        self,
        model: RoleModel,
        taxonomy: Taxonomy,
        *,
        baseline: str = "none",
        sampling: Sampling | None = None,
        feedback_sampling: Sampling | None = None,
        examples: Sequence[Dialogue] | None = None,
        seed: int = 0,
    ) -> None:
        if baseline == "example" and not examples:
            raise ValueError("the example baseline needs training dialogues")
        self.model = model
        self.taxonomy = taxonomy
        self.baseline = baseline
        self.sampling = sampling or Sampling(temperature=0.0, max_tokens=256)
        self.feedback_sampling = feedback_sampling or self.sampling
        self.examples = list(examples or [])
        self.seed = seed

    def _req(self, messages: list[dict[str, str]], item: TestItem, stage: str, fb: bool = False) -> RoleRequest:
        return RoleRequest(
            role=ROLE,
            messages=tuple(messages),
            sampling=self.feedback_sampling if fb else self.sampling,
            meta={"item": item.id, "stage": stage},
        )

    async def _stage(self, reqs: list[tuple[int, RoleRequest]]) -> dict[int, RoleResult]:
        if not reqs:
            return {}
        results = await self.model.generate([r for _, r in reqs])
        return {i: res for (i, _), res in zip(reqs, results)}

    async def run(self, items: Sequence[TestItem]) -> list[dict[str, Any]]:
        """Prediction rows for items, in order."""
        tax = self.taxonomy
        first = []
        example_ids: dict[int, str] = {}
        for i, it in enumerate(items):
            ex = None
            if self.baseline == "example":
                ex = pick_example(self.examples, it.id, self.seed)
                example_ids[i] = ex.seed_id
            first.append((i, self._req(PR.answer_messages(it, tax, ex), it, "answer")))
        stages: dict[str, dict[int, RoleResult]] = {"answer": await self._stage(first)}
        ok = {i for i, r in stages["answer"].items() if r.ok}

        if self.baseline == "direct-refine":
            reqs = [
                (i, self._req(PR.direct_refine_messages(items[i], tax, stages["answer"][i].text or ""), items[i], "refine"))
                for i in sorted(ok)
            ]
            stages["refine"] = await self._stage(reqs)
        elif self.baseline == "self-refine":
            reqs = [
                (i, self._req(PR.feedback_messages(items[i], tax, stages["answer"][i].text or ""), items[i], "feedback", fb=True))
                for i in sorted(ok)
            ]
            stages["feedback"] = await self._stage(reqs)
            reqs = [
                (
                    i,
                    self._req(
                        PR.rewrite_messages(items[i], tax, stages["answer"][i].text or "", stages["feedback"][i].text or ""),
                        items[i],
                        "refine",
                    ),
                )
                for i in sorted(ok)
                if stages["feedback"][i].ok
            ]
            stages["refine"] = await self._stage(reqs)

        rows = []
        for i, it in enumerate(items):
            rows.append(self._row(i, it, stages, example_ids.get(i)))
        return rows

    def _row(
        self, i: int, it: TestItem, stages: dict[str, dict[int, RoleResult]], example_id: str | None
    ) -> dict[str, Any]:
        answer = stages["answer"][i]
        final = answer
        stage_errors = {}
        for name in ("feedback", "refine"):
            res = stages.get(name, {}).get(i)
            if name in stages and answer.ok and (res is None or not res.ok):
                stage_errors[name] = (res.error or res.status) if res is not None else "skipped"
        refine = stages.get("refine", {}).get(i)
        if refine is not None and refine.ok:
            final = refine
        # A failed refine stage falls back to the model's first answer (recorded in stage_errors).
        text = final.text if final.ok else None
        row: dict[str, Any] = {
            "id": it.id,
            "strategy_gold": it.strategy_gold,
            **parse_answer(text, self.taxonomy),
            "response_gold": it.gold_response,
            "raw": text,
            "status": final.status,
            "error": final.error,
            "baseline": self.baseline,
            "completion_tokens": sum(
                s[i].completion_tokens for s in stages.values() if i in s
            ),
            "latency_ms": round(sum(s[i].latency_ms for s in stages.values() if i in s), 1),
        }
        if not final.ok:
            row["response_pred"] = ""
        if self.baseline != "none":
            row["stages"] = {
                name: s[i].text for name, s in stages.items() if i in s and s[i].ok
            }
            if stage_errors:
                row["stage_errors"] = stage_errors
        if example_id is not None:
            row["example_id"] = example_id
        return row


async def generate_all(
    gen: Generator,
    items: Sequence[TestItem],
    *,
    chunk_size: int,
    on_chunk: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Run items chunk by chunk, handing each finished chunk to on_chunk (which persists it)."""
    for start in range(0, len(items), chunk_size):
        rows = await gen.run(items[start : start + chunk_size])
        on_chunk(rows)
