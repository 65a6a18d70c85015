"""The concrete RoleSet: four roles over RoleModels, with validation, bounded retries and reuse.

A call is tried at most 1 + max_retries times. A retry of a greedy call raises the temperature to
`retry_temperature` and changes the sampling seed (a greedy retry would only repeat itself);
after the last attempt the failure is returned as a value (Outcome(None, result)) with the
status of the last attempt, never raised and never retried further. Each attempt is bounded by
`timeout_s`, or by the backend itself where it keeps its own limits (`handles_timeout`: the
in-process batching backends time a request from its batch's start, the openai backend has a
timer per HTTP attempt), so no call can hang.

The per-tree `cache` holds a future per RoleRequest.key(model): concurrent identical requests in
one tree wait for one call, and later ones are answered at once (RoleResult.cached=True).
Failures are not cached.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from escpro.roles.api import DialogueContext, Judgement, Outcome, SeekerTurn
from escpro.roles.base import RoleModel, RoleRequest, RoleResult, Sampling
from escpro.roles.config import RolesConfig
from escpro.roles.context import fit_prompt, windows_for
from escpro.roles.prompts import (
    SEEKER_LABEL,
    SUPPORTER_LABEL,
    Prompt,
    PromptBuilder,
    load_templates,
    template_record,
)
from escpro.roles.schemas import REWARD_KEYS
from escpro.roles.scoring import strategy_prior, turn_reward
from escpro.roles.text import clean_seeker, clean_supporter
from escpro.taxonomy import Taxonomy

log = logging.getLogger(__name__)
_timeout = getattr(asyncio, "timeout", None)
TURN_STOPS = (f"\n{SEEKER_LABEL}:", f"\n{SUPPORTER_LABEL}:")


class ConcreteRoleSet:
    """Implements escpro.roles.api.RoleSet."""

    def __init__(
        self,
        cfg: RolesConfig,
        taxonomy: Taxonomy,
        models: dict[str, RoleModel],
        *,
        random_seed: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.taxonomy = taxonomy
        self.models = models
        self.random_seed = random_seed
        self.templates = load_templates(cfg.prompts_dir)
        self.prompts = PromptBuilder(
            taxonomy, self.templates, end_marker=cfg.end_marker, share_situation=cfg.share_situation
        )
        # Chat backends never read the base-model transcript: skip rendering it for them.
        self._transcript = {r: bool(getattr(m, "needs_transcript", True)) for r, m in models.items()}
        # Free-text roles stop where a base model would start the other speaker's turn.
        self._sampling = {
            r: Sampling(temperature=cfg.binding(r).temperature, top_p=cfg.binding(r).top_p,
                        max_tokens=cfg.binding(r).max_tokens, seed=random_seed,
                        stop=TURN_STOPS if r in ("seeker", "supporter") else ())
            for r in models
        }
        self.windows = windows_for(cfg, models)  # context lengths (roles/context.py)
        self.stats: dict[str, int] = {"calls": 0, "attempts": 0, "cached": 0, "failed": 0, "retried": 0}

    # --- record -----------------------------------------------------------------------------
    def template_record(self) -> dict[str, dict[str, str]]:
        return template_record(templates=self.templates)

    def describe(self) -> dict[str, dict[str, str]]:
        return {role: {"backend": m.backend, "model": m.model} for role, m in self.models.items()}

    # --- plumbing -----------------------------------------------------------------------------
    def _request(
        self, role: str, prompt: Prompt, meta: dict[str, Any] | None = None,
        priority: float = 0.0, rnd: int = 0,
    ) -> RoleRequest:
        req = RoleRequest(
            role=role,
            messages=prompt.messages,
            schema=prompt.schema,
            sampling=self._sampling[role],
            meta=dict(meta or {}),
            prompt=prompt.transcript,
            priority=priority,
        )
        if rnd:
            # The caller's previous try of this step failed: begin where its retries ended, so a
            # request whose answer fails (bad JSON at temperature 0, a server that rejects that
            # very body) is not sent again unchanged. The first try (round 0) is untouched, so
            # answer reuse and replay-exact resume are unchanged when nothing fails.
            req = self._retry_request(req, rnd * (1 + self.cfg.max_retries))
        return req

    async def _fit(self, role: str, ctx: DialogueContext, render: Callable[[DialogueContext], Prompt],
                   meta: dict[str, Any] | None, priority: float = 0.0,
                   rnd: int = 0) -> tuple[RoleRequest, int]:
        """The request with its prompt fitted into the role's context window, and the turns dropped."""
        window = self.windows.get(role)
        if window is None:
            return self._request(role, render(ctx), meta, priority, rnd), 0
        fit = await fit_prompt(role, window, ctx, render)
        if window.unbounded:
            self.windows[role] = None
        req = self._request(role, fit.prompt, meta, priority, rnd)
        if fit.max_tokens is not None:
            req = dataclasses.replace(req, sampling=dataclasses.replace(req.sampling, max_tokens=fit.max_tokens))
        return req, fit.dropped

    @staticmethod
    def _mark(outcome: Outcome[Any], dropped: int) -> Outcome[Any]:
        if dropped:
            outcome.result.truncated_turns = dropped
        return outcome

    def _retry_request(self, req: RoleRequest, attempt: int) -> RoleRequest:
        s = req.sampling
        seed = (s.seed if s.seed is not None else 0) + 7919 * attempt
        temp = s.temperature if s.temperature > 0 else self.cfg.retry_temperature
        return dataclasses.replace(req, sampling=dataclasses.replace(s, seed=seed, temperature=temp))

    async def _attempt(self, model: RoleModel, req: RoleRequest) -> RoleResult:
        # A backend with its own bounded retries (openai) states its worst case; others get timeout_s.
        budget = getattr(model, "call_budget_s", None) or self.cfg.timeout_s
        try:
            if getattr(model, "handles_timeout", False):  # bounded by the backend itself
                return (await model.generate([req]))[0]
            if _timeout is not None:  # asyncio.timeout (3.11+) creates no extra task per call
                async with _timeout(budget):
                    return (await model.generate([req]))[0]
            return (await asyncio.wait_for(model.generate([req]), budget))[0]
        except TimeoutError:
            return RoleResult(req, "timeout", error=f"no answer within {budget:g} s",
                              backend=model.backend, model=model.model, latency_ms=budget * 1000)
        except Exception as exc:  # a backend bug must not take the tree down
            log.exception("backend %s raised", model.backend)
            return RoleResult(req, "error", error=f"{type(exc).__name__}: {exc}",
                              backend=model.backend, model=model.model)

    async def _call(
        self,
        req: RoleRequest,
        parse: Callable[[RoleResult], Any],
        cache: dict | None,
    ) -> Outcome[Any]:
        model = self.models[req.role]
        if cache is None:
            self.stats["calls"] += 1
            return await self._call_uncached(model, req, parse)
        key = req.key(model.model)
        hit = cache.get(key)
        if hit is not None:
            value, result = await asyncio.shield(hit) if isinstance(hit, asyncio.Future) else hit
            if value is not None:
                self.stats["cached"] += 1
                res = dataclasses.replace(result, request=req, cached=True, latency_ms=0.0,
                                          prompt_tokens=0, completion_tokens=0)
                return Outcome(value, res)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        cache[key] = fut
        outcome: Outcome[Any] | None = None
        try:
            self.stats["calls"] += 1
            outcome = await self._call_uncached(model, req, parse)
            return outcome
        finally:
            # Waiters must never hang: they get the value, or (None, None) and call themselves.
            if outcome is not None and outcome.value is not None:
                cache[key] = (outcome.value, outcome.result)
                fut.set_result((outcome.value, outcome.result))
            else:
                if cache.get(key) is fut:
                    del cache[key]
                fut.set_result((None, None))

    async def _call_uncached(
        self, model: RoleModel, req: RoleRequest, parse: Callable[[RoleResult], Any]
    ) -> Outcome[Any]:
        attempts = 1 + self.cfg.max_retries
        result: RoleResult | None = None
        sent = 0  # requests actually sent, including a backend's own transport retries
        spent_ms = 0.0
        for i in range(attempts):
            attempt_req = req if i == 0 else self._retry_request(req, i)
            self.stats["attempts"] += 1
            if i:
                self.stats["retried"] += 1
            result = await self._attempt(model, attempt_req)
            sent += max(1, result.attempts)
            spent_ms += result.latency_ms
            result.attempts = sent
            result.latency_ms = spent_ms
            if result.status == "ok":
                try:
                    value = parse(result)
                except ValueError as exc:
                    result.status = "invalid"
                    result.error = str(exc)
                    result.value = None
                else:
                    result.request = req
                    return Outcome(value, result)
        assert result is not None
        result.request = req
        result.value = None
        self.stats["failed"] += 1
        return Outcome(None, result)

    # --- parsers --------------------------------------------------------------------------------
    def _is_strategy(self, label: str) -> bool:
        return self.taxonomy.canonical(label) is not None

    def _parse_scores(self, res: RoleResult) -> dict[str, int]:
        value = res.value
        return {name: int(value[name]) for name in self.taxonomy.names}

    def _parse_judgement(self, res: RoleResult) -> Judgement:
        v = res.value
        e, i, h, s = (int(v[k]) for k in REWARD_KEYS)
        reward = turn_reward(e, i, h, s, alpha=self.cfg.reward_alpha, bias=self.cfg.reward_bias)
        return Judgement(e, i, h, s, reward)

    def _parse_support(self, res: RoleResult) -> str:
        text = clean_supporter(res.text, self.cfg.end_marker, self._is_strategy)
        if not text:
            raise ValueError("empty supporter reply after cleaning")
        res.value = text
        return text

    def _parse_seek(self, res: RoleResult) -> SeekerTurn:
        text, ended = clean_seeker(res.text, self.cfg.end_marker)
        if not text and not ended:
            raise ValueError("empty seeker reply after cleaning")
        turn = SeekerTurn(text, ended)
        res.value = text
        return turn

    # --- the RoleSet protocol -------------------------------------------------------------------
    async def score_strategies(
        self, ctx: DialogueContext, *, meta: dict[str, Any] | None = None, cache: dict | None = None,
        priority: float = 0.0, retry_round: int = 0,
    ) -> Outcome[dict[str, int]]:
        req, cut = await self._fit("strategy", ctx, lambda c: self.prompts.strategy(
            c, transcript=self._transcript["strategy"]), meta, priority, retry_round)
        return self._mark(await self._call(req, self._parse_scores, cache), cut)

    def prior(self, scores: dict[str, int]) -> dict[str, float]:
        return strategy_prior(scores, self.cfg.prior_temperature)

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
        req, cut = await self._fit("supporter", ctx, lambda c: self.prompts.supporter(
            c, strategy, transcript=self._transcript["supporter"]), meta, priority, retry_round)
        return self._mark(await self._call(req, self._parse_support, cache), cut)

    async def seek(
        self, ctx: DialogueContext, *, meta: dict[str, Any] | None = None, cache: dict | None = None,
        priority: float = 0.0, retry_round: int = 0,
    ) -> Outcome[SeekerTurn]:
        req, cut = await self._fit("seeker", ctx, lambda c: self.prompts.seeker(
            c, transcript=self._transcript["seeker"]), meta, priority, retry_round)
        return self._mark(await self._call(req, self._parse_seek, cache), cut)

    async def judge(
        self, ctx: DialogueContext, *, meta: dict[str, Any] | None = None, cache: dict | None = None,
        priority: float = 0.0, retry_round: int = 0,
    ) -> Outcome[Judgement]:
        req, cut = await self._fit("reward", ctx, lambda c: self.prompts.reward(
            c, transcript=self._transcript["reward"]), meta, priority, retry_round)
        return self._mark(await self._call(req, self._parse_judgement, cache), cut)

    async def aclose(self) -> None:
        seen: set[int] = set()
        for m in self.models.values():
            if id(m) not in seen:
                seen.add(id(m))
                await m.aclose()


def build_roleset(
    roles_cfg: RolesConfig,
    taxonomy: Taxonomy,
    *,
    backend_override: str | None = None,
    endpoints: Path | str | None = None,
    random_seed: int | None = None,
) -> ConcreteRoleSet:
    """A RoleSet for a config. `backend_override` puts every role on one backend (e.g. "sim" to
    plan a build's cost); `endpoints` (written by `escpro serve`) points roles at served models.
    Roles whose bindings agree on the engine share one model instance."""
    from escpro.roles.backends import make_model
    from escpro.roles.endpoints import apply_endpoints

    cfg = roles_cfg
    if endpoints is not None:
        cfg = apply_endpoints(cfg, endpoints)
    if backend_override is not None:
        updates = {}
        for role in ("seeker", "supporter", "strategy", "reward"):
            b = cfg.binding(role)
            updates[role] = b.model_copy(update={"backend": backend_override})
        cfg = cfg.model_copy(update=updates)
    instances: dict[str, RoleModel] = {}
    models: dict[str, RoleModel] = {}
    try:
        for role in ("seeker", "supporter", "strategy", "reward"):
            b = cfg.binding(role)
            key = b.instance_key()
            if key not in instances:
                instances[key] = make_model(b, timeout_s=cfg.timeout_s, end_marker=cfg.end_marker)
            models[role] = instances[key]
    except BaseException:
        for m in instances.values():
            close = getattr(m, "close_sync", None)
            if close:
                close()
        raise
    return ConcreteRoleSet(cfg, taxonomy, models, random_seed=random_seed)
