"""Fitting role prompts into the serving model's context window.

A served model has a context length (vLLM's max_model_len); a prompt plus the answer's
max_tokens beyond it is refused with HTTP 400. Long dialogues (deep tree nodes, long seeds) reach
that easily with small models, so each role knows its model's length (roles.<role>.max_model_len,
the endpoints file written by `escpro serve`, or the server's /v1/models) and fits its prompt
before sending it: the oldest dialogue turns go first, never the turn being answered or judged
(`protected_tail`). How many turns were dropped is recorded per call (llm_calls.truncated_turns).

Token counts: a conservative byte estimate (`BYTES_PER_TOKEN`, measured on Gemma 3's tokenizer
over the role prompts: docs/serving.md) decides cheaply that most prompts fit; only a prompt the
estimate puts over the limit is counted exactly by the server's own tokenizer (vLLM's
`/tokenize`, one extra request, then at most a few more while turns are dropped). Where the
server has no /tokenize, the estimate alone decides. Without a known length nothing is fitted.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.prompts import Prompt

log = logging.getLogger(__name__)

# Measured: Gemma 3's tokenizer gives 3.9-4.4 UTF-8 bytes per token on the four role prompts
# (docs/serving.md, "Context length"); 3.0 overestimates every prompt we measured by >= 25%, so
# a prompt the estimate accepts fits. Chat templates add a few tokens per message.
BYTES_PER_TOKEN = 3.0
CHAT_OVERHEAD_TOKENS = 16
SAFETY_TOKENS = 8
MIN_ANSWER_TOKENS = 16


def estimate_tokens(prompt: Prompt, api: str) -> int:
    """An upper-bound guess of the prompt's tokens, without a tokenizer."""
    if api == "completions" and prompt.transcript is not None:
        n = len(prompt.transcript.encode("utf-8"))
        return math.ceil(n / BYTES_PER_TOKEN) + 2
    n = sum(len(m.get("content", "").encode("utf-8")) for m in prompt.messages)
    return math.ceil(n / BYTES_PER_TOKEN) + CHAT_OVERHEAD_TOKENS * len(prompt.messages)


def protected_tail(role: str, history: Sequence[Utterance]) -> int:
    """How many final turns may never be dropped: the Reward role judges the last supporter turn
    (and the seeker's reply to it, when there is one); every other role answers the last turn."""
    if not history:
        return 0
    if role == "reward":
        for i in range(len(history) - 1, -1, -1):
            if history[i].speaker == "supporter":
                return len(history) - i
    return 1


@dataclass(frozen=True)
class Fitted:
    prompt: Prompt
    dropped: int = 0  # oldest dialogue turns left out
    max_tokens: int | None = None  # a lowered answer budget, when even the protected turns barely fit


class ServerTokenizer:
    """vLLM's /tokenize (at the server root, beside /v1) and /v1/models, over aiohttp."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.v1 = base_url.rstrip("/")
        self.root = self.v1[:-3] if self.v1.endswith("/v1") else self.v1
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.available = True  # set False after the first failure: the estimate decides from then on

    async def _request(self, method: str, url: str, body: dict | None = None) -> Any:
        async with aiohttp.ClientSession(timeout=self.timeout, headers=self.headers) as s:
            async with s.request(method, url, json=body) as resp:
                if resp.status != 200:
                    return None
                return await resp.json(content_type=None)

    async def max_model_len(self) -> int | None:
        try:
            data = await self._request("GET", f"{self.v1}/models")
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        for card in (data or {}).get("data") or []:
            if card.get("id") == self.model and isinstance(card.get("max_model_len"), int):
                return card["max_model_len"]
        # LoRA adapters are listed with their parent's length under "parent"/"root"; take any.
        lens = [c.get("max_model_len") for c in (data or {}).get("data") or []]
        lens = [n for n in lens if isinstance(n, int)]
        return min(lens) if lens else None

    async def count(self, prompt: Prompt, api: str) -> int | None:
        if not self.available:
            return None
        body: dict[str, Any] = {"model": self.model}
        if api == "completions" and prompt.transcript is not None:
            body["prompt"] = prompt.transcript
        else:
            body.update(messages=[dict(m) for m in prompt.messages], add_generation_prompt=True)
        try:
            data = await self._request("POST", f"{self.root}/tokenize", body)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("count"), int):
            log.info("no usable /tokenize at %s: prompt lengths are estimated", self.root)
            self.available = False
            return None
        return data["count"]


@dataclass
class RoleWindow:
    """One role's context window: the model's length (known or asked once), its answer budget."""

    max_model_len: int | None
    max_tokens: int
    api: str = "chat"
    tokenizer: ServerTokenizer | None = None
    _asking: asyncio.Future | None = None  # the one /v1/models request all first calls wait for

    async def limit(self) -> int | None:
        if self.max_model_len is None and self.tokenizer is not None:
            if self._asking is None:
                self._asking = asyncio.ensure_future(self.tokenizer.max_model_len())
            self.max_model_len = await asyncio.shield(self._asking)
        if self.max_model_len is None:
            return None
        return self.max_model_len - self.max_tokens - SAFETY_TOKENS

    @property
    def unbounded(self) -> bool:
        """The server was asked and named no length: nothing to fit, ever (the role set then
        drops the window, so calls to such servers pay nothing)."""
        return self.max_model_len is None and self._asking is not None and self._asking.done()

    async def count(self, prompt: Prompt) -> tuple[int, bool]:
        """(tokens, exact?)"""
        if self.tokenizer is not None:
            n = await self.tokenizer.count(prompt, self.api)
            if n is not None:
                return n, True
        return estimate_tokens(prompt, self.api), False


async def fit_prompt(
    role: str, window: RoleWindow | None, ctx: DialogueContext, render: Callable[[DialogueContext], Prompt]
) -> Fitted:
    """The prompt for ctx, with the oldest turns dropped until it fits the role's window."""
    prompt = render(ctx)
    if window is None:
        return Fitted(prompt)
    limit = await window.limit()
    if limit is None or estimate_tokens(prompt, window.api) <= limit:
        return Fitted(prompt)
    n, exact = await window.count(prompt)
    history = ctx.history
    droppable = len(history) - protected_tail(role, history)
    dropped = 0
    while n > limit and dropped < droppable:
        # Skip ahead by the estimate scaled to the exact count, then verify (usually 1-2 counts).
        ratio = n / max(1, estimate_tokens(prompt, window.api))
        step = 1
        while dropped + step < droppable:
            cand = render(DialogueContext(ctx.scene, ctx.situation, history[dropped + step:]))
            if estimate_tokens(cand, window.api) * ratio <= limit:
                break
            step += 1
        dropped += step
        prompt = render(DialogueContext(ctx.scene, ctx.situation, history[dropped:]))
        n, exact = await window.count(prompt)
    max_tokens = None
    if n > limit:  # the protected turns alone are too long: shorten the answer if that is enough
        room = window.max_tokens + (limit - n)
        if room >= MIN_ANSWER_TOKENS:
            max_tokens = room
    if dropped:
        log.debug("%s: dropped %d oldest turns to fit %d tokens (%s)", role, dropped, limit,
                  "counted" if exact else "estimated")
    return Fitted(prompt, dropped, max_tokens)


def windows_for(cfg: Any, models: dict[str, Any]) -> dict[str, RoleWindow | None]:
    """Each role's window from its binding (escpro.roles.config.RolesConfig) and model instance:
    openai -> the configured or served max_model_len, counted by the server's tokenizer;
    llamacpp -> its n_ctx, estimated; other backends are not fitted."""
    import os

    out: dict[str, RoleWindow | None] = {}
    for role, model in models.items():
        b = cfg.binding(role)
        window = None
        if model.backend == "openai" and b.base_url:
            key = os.environ.get(b.api_key_env) if b.api_key_env else None
            tok = ServerTokenizer(b.base_url, b.model, key, timeout_s=b.request_timeout_s or cfg.timeout_s)
            window = RoleWindow(b.max_model_len, b.max_tokens, b.api, tok)
        elif model.backend == "llamacpp":
            window = RoleWindow(b.max_model_len or b.n_ctx, b.max_tokens, "completions")
        out[role] = window
    return out
