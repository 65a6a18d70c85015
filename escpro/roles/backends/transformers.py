"""Backend `transformers`: an in-process Hugging Face model with Outlines-constrained JSON.

Many coroutines (hundreds of trees) call generate() one request at a time; a small coalescer
collects what arrives within `batch_wait_ms` (up to `batch_size`), groups requests that can share
one generate call (same schema and decoding settings), and runs each group as ONE left-padded
batched generate on a worker thread, so the event loop stays free while the model computes.

The model is a local directory, a hub id, or a GGUF file (`gguf_file=`, dequantised by
transformers; needs `gguf`), optionally with a PEFT LoRA adapter (evaluation of a trained
supporter). Chat models get their chat template (a template that rejects the system role gets the
system text folded into the first user turn); models without one get the role's transcript.
JSON answers are constrained by llguidance with flexible whitespace OFF (a weak model otherwise
pads with whitespace until max_tokens; STACK_NOTES.md) or by outlines_core, and always validated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from escpro.errors import BackendUnavailable, ConfigError
from escpro.roles.backends.common import failed, finish
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.config import RoleBinding
from escpro.roles.prompts import render_transcript

log = logging.getLogger(__name__)


def constrained_schema(schema: dict, structured_backend: str) -> str:
    s = dict(schema)
    if structured_backend == "llguidance":
        s["x-guidance"] = {"whitespace_flexible": False}
    return json.dumps(s)


def resolve_model_path(model: str, gguf_file: str | None) -> tuple[str, str | None]:
    """(directory or hub id, GGUF file name or None); `model` may itself name a .gguf file."""
    p = Path(model).expanduser()
    if gguf_file is None and p.suffix == ".gguf":
        if not p.is_file():
            raise ConfigError(f"roles: model: GGUF file {p} not found")
        return str(p.parent), p.name
    if gguf_file is not None and p.is_dir() and not (p / gguf_file).is_file():
        raise ConfigError(f"roles: gguf_file: {gguf_file} not found in {p}")
    return (str(p) if p.exists() else model), gguf_file


def load_tokenizer(path: str, gguf_file: str | None = None):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg = Path(path) / "tokenizer_config.json"
    if gguf_file is None and cfg.is_file():
        try:
            cls = json.loads(cfg.read_text()).get("tokenizer_class")
        except ValueError:
            cls = None
        if cls in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            # Load the tokenizer as saved (AutoTokenizer may re-tokenise; STACK_NOTES.md).
            return PreTrainedTokenizerFast.from_pretrained(path)
    kw = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoTokenizer.from_pretrained(path, **kw)


class TransformersModel:
    backend = "transformers"

    def __init__(
        self,
        hf_model: Any,
        tokenizer: Any,
        *,
        model_name: str,
        structured_backend: str = "llguidance",
        batch_size: int = 8,
        batch_wait_ms: float = 5.0,
        chat_template: str = "auto",
    ) -> None:
        import outlines

        self.model = model_name
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.om = outlines.from_transformers(hf_model, tokenizer)
        self.structured_backend = structured_backend
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_ms / 1000.0
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if chat_template == "always" and not has_template:
            raise ConfigError(f"roles: chat_template: always, but {model_name} has no chat template")
        self.use_chat = has_template and chat_template != "never"
        self._generators: dict[str, Any] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="escpro-tf")
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # generate calls made (for tests and stats)
        self.batched_requests = 0

    @classmethod
    def from_binding(cls, b: RoleBinding) -> TransformersModel:
        try:
            import outlines  # noqa: F401
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as exc:
            raise BackendUnavailable(
                f"backend transformers needs torch, transformers and outlines ({exc.name} missing): "
                "pip install 'escpro[cpu]'"
            ) from None
        path, gguf = resolve_model_path(b.model, b.gguf_file)
        kw: dict[str, Any] = {}
        if gguf:
            kw["gguf_file"] = gguf
        if b.dtype != "auto":
            kw["dtype"] = getattr(torch, b.dtype)
        try:
            tok = load_tokenizer(path, gguf)
            model = AutoModelForCausalLM.from_pretrained(path, **kw)
        except OSError as exc:
            raise ConfigError(f"roles: model '{b.model}' could not be loaded: {str(exc).splitlines()[0]}") from None
        if b.adapter:
            try:
                from peft import PeftModel
            except ImportError:
                raise BackendUnavailable("roles: adapter needs peft: pip install 'escpro[train]'") from None
            if not Path(b.adapter).is_dir():
                raise ConfigError(f"roles: adapter: {b.adapter} is not a directory")
            model = PeftModel.from_pretrained(model, b.adapter)
        if b.device != "cpu":
            model = model.to(b.device)
        model.eval()
        name = b.model if not b.adapter else f"{b.model}+{Path(b.adapter).name}"
        return cls(model, tok, model_name=name, structured_backend=b.structured_backend,
                   batch_size=b.batch_size, batch_wait_ms=b.batch_wait_ms, chat_template=b.chat_template)

    # --- prompt ---------------------------------------------------------------------------------
    def render(self, req: RoleRequest) -> str:
        if not self.use_chat:
            return req.prompt if req.prompt is not None else render_transcript(req.messages)
        msgs = [dict(m) for m in req.messages]
        try:
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        except Exception:  # e.g. Gemma-2: no system role; fold it into the first user turn
            if msgs and msgs[0]["role"] == "system" and len(msgs) > 1:
                folded = [{"role": msgs[1]["role"], "content": msgs[0]["content"] + "\n\n" + msgs[1]["content"]}]
                return self.tokenizer.apply_chat_template(folded + msgs[2:], tokenize=False, add_generation_prompt=True)
            raise

    # --- batching -------------------------------------------------------------------------------
    @staticmethod
    def _group_key(req: RoleRequest) -> str:
        s = req.sampling
        schema = json.dumps(req.schema, sort_keys=True) if req.schema is not None else ""
        return f"{schema}|{s.temperature}|{s.top_p}|{s.max_tokens}|{list(s.stop)}"

    def _generator(self, schema: Any):
        import outlines
        from outlines.types import JsonSchema

        key = json.dumps(schema, sort_keys=True) if schema is not None else ""
        gen = self._generators.get(key)
        if gen is None:
            if schema is None:
                gen = outlines.Generator(self.om)
            elif self.structured_backend == "llguidance":
                gen = outlines.Generator(self.om, JsonSchema(constrained_schema(schema, "llguidance")),
                                         backend="llguidance")
            else:
                gen = outlines.Generator(self.om, JsonSchema(json.dumps(schema), whitespace_pattern=""),
                                         backend="outlines_core")
            self._generators[key] = gen
        return gen

    def _run_batch(self, reqs: list[RoleRequest]) -> list[RoleResult]:
        """One generate call for requests sharing schema and decoding settings (worker thread)."""
        import torch

        t0 = time.perf_counter()
        first = reqs[0]
        s = first.sampling
        try:
            prompts = [self.render(r) for r in reqs]
            gen = self._generator(first.schema)
            kw: dict[str, Any] = {"max_new_tokens": s.max_tokens}
            if s.temperature > 0:
                kw.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
                seeds = [r.sampling.seed for r in reqs if r.sampling.seed is not None]
                if seeds:
                    torch.manual_seed(hash(tuple(seeds)) & 0x7FFFFFFF)
            else:
                kw["do_sample"] = False
            if s.stop:
                kw.update(stop_strings=list(s.stop), tokenizer=self.tokenizer)
            with torch.inference_mode():
                texts = gen.batch(prompts, **kw) if len(prompts) > 1 else [gen(prompts[0], **kw)]
        except Exception as exc:  # one bad batch is a recorded failure of its requests
            log.warning("transformers batch of %d failed: %s", len(reqs), exc)
            ms = (time.perf_counter() - t0) * 1000
            return [failed(r, "error", f"{type(exc).__name__}: {exc}", backend=self.backend,
                           model=self.model, latency_ms=ms) for r in reqs]
        self.batches += 1
        self.batched_requests += len(reqs)
        ms = (time.perf_counter() - t0) * 1000
        out = []
        for r, p, text in zip(reqs, prompts, texts):
            # Outlines returns text only: re-encoding counts the completion (capped at max_tokens).
            ctoks = min(len(self.tokenizer.encode(text, add_special_tokens=False)), r.sampling.max_tokens) if text else 0
            out.append(finish(
                r, text, backend=self.backend, model=self.model,
                prompt_tokens=len(self.tokenizer.encode(p, add_special_tokens=False)),
                completion_tokens=ctoks, latency_ms=ms, truncated=ctoks >= r.sampling.max_tokens,
            ))
        return out

    async def _worker_loop(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.batch_size:
                try:
                    batch.append(queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            groups: dict[str, list[tuple[RoleRequest, asyncio.Future]]] = {}
            for req, fut in batch:
                if not fut.cancelled():
                    groups.setdefault(self._group_key(req), []).append((req, fut))
            for items in groups.values():
                try:
                    results = await loop.run_in_executor(self._executor, self._run_batch, [r for r, _ in items])
                except Exception as exc:  # executor shut down, etc.
                    results = [failed(r, "error", f"{type(exc).__name__}: {exc}", backend=self.backend,
                                      model=self.model) for r, _ in items]
                for (_, fut), res in zip(items, results):
                    if not fut.done():
                        fut.set_result(res)

    def _ensure_worker(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._loop = loop
            self._worker = loop.create_task(self._worker_loop(self._queue))
        return self._queue

    async def generate(self, requests: Sequence[RoleRequest]) -> list[RoleResult]:
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        futs = []
        for r in requests:
            fut = loop.create_future()
            queue.put_nowait((r, fut))
            futs.append(fut)
        return list(await asyncio.gather(*futs))

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
        self._worker = None

    def close_sync(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
