"""Backend `llamacpp`: an in-process llama.cpp model (GGUF) through llama-cpp-python + Outlines.

JSON is constrained with llguidance: with llama.cpp, Outlines' outlines_core backend needs numba
and otherwise runs UNCONSTRAINED without a word (STACK_NOTES.md), and llama.cpp's own json_object
mode does not enforce enums/ranges. llama-cpp-python is an optional extra (it compiles for ~10
minutes): `pip install 'escpro[llamacpp]'`; it is imported only when this backend is used.
Requests run one at a time on the worker thread (llama.cpp has one context); the coalescer still
keeps the event loop free.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from escpro.errors import BackendUnavailable, ConfigError
from escpro.roles.backends.batching import BatchingModel, fold_system
from escpro.roles.backends.common import failed, finish
from escpro.roles.backends.transformers import llguidance_processor
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.config import RoleBinding
from escpro.roles.prompts import render_transcript

MISSING = (
    "backend llamacpp needs llama-cpp-python, which is not installed: pip install 'escpro[llamacpp]' "
    "(compiles llama.cpp, ~10 minutes on 2 cores), or use backend transformers with gguf_file"
)


def import_llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        raise BackendUnavailable(MISSING) from None
    return llama_cpp


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def llama_kwargs(b: RoleBinding) -> dict[str, Any]:
    """`llama_cpp.Llama` arguments for a binding. llama-cpp-python decodes on half the cores
    unless told (it assumes hyper-threads); the calls run one at a time while the event loop
    idles, so escpro gives it every usable core (measured in docs/demo.md). `engine_args` win."""
    kw: dict[str, Any] = {"n_ctx": b.n_ctx, "n_threads": usable_cores(), "verbose": False, **b.engine_args}
    if b.adapter:
        kw["lora_path"] = b.adapter
    return kw


class UsageRecorder:
    """Stands in for the `Llama` object inside Outlines' model: Outlines returns only the text
    of a completion, but llama.cpp's own `usage` (prompt and completion tokens) and finish reason
    are what the llm_calls rows should record. One call at a time (the worker thread), so the
    last completion is the current request's."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.last: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def _keep(self, completion: Any) -> Any:
        if isinstance(completion, dict):
            choices = completion.get("choices") or [{}]
            self.last = {**(completion.get("usage") or {}), "finish_reason": choices[0].get("finish_reason")}
        return completion

    def __call__(self, *args: Any, **kw: Any) -> Any:
        return self._keep(self._llm(*args, **kw))

    def create_chat_completion(self, *args: Any, **kw: Any) -> Any:
        return self._keep(self._llm.create_chat_completion(*args, **kw))


class LlamaCppModel(BatchingModel):
    backend = "llamacpp"

    def __init__(self, llm: Any, *, model_name: str, chat_template: str = "auto",
                 timeout_s: float | None = None) -> None:
        import outlines

        self.model = model_name
        self.llm = llm
        template = (getattr(llm, "metadata", None) or {}).get("tokenizer.chat_template")
        if chat_template == "always" and not template:
            raise ConfigError(f"roles: chat_template: always, but {model_name} has no chat template")
        self.use_chat = bool(template) and chat_template != "never"
        # llama-cpp-python warns once per vocabulary entry (262k for Gemma) about a deprecated
        # accessor that Outlines uses while indexing the vocabulary: silence just that.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.om = outlines.from_llamacpp(llm, chat_mode=self.use_chat)
        self.usage = UsageRecorder(llm)
        self.om.model = self.usage
        self._generators: dict[str, Any] = {}
        super().__init__(batch_size=1, batch_wait_ms=0.0, timeout_s=timeout_s)

    @classmethod
    def from_binding(cls, b: RoleBinding, *, timeout_s: float | None = None) -> LlamaCppModel:
        llama_cpp = import_llama_cpp()
        path = Path(b.model).expanduser()
        if b.gguf_file:
            path = path / b.gguf_file
        if not path.is_file():
            raise ConfigError(f"roles: model: GGUF file {path} not found (backend llamacpp needs a .gguf file)")
        llm = llama_cpp.Llama(model_path=str(path), **llama_kwargs(b))
        return cls(llm, model_name=path.name, chat_template=b.chat_template, timeout_s=timeout_s)

    @property
    def needs_transcript(self) -> bool:
        return not self.use_chat

    def _generator(self, schema: Any):
        import outlines

        key = json.dumps(schema, sort_keys=True) if schema is not None else ""
        gen = self._generators.get(key)
        if gen is None:
            if schema is None:
                gen = outlines.Generator(self.om)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    gen = outlines.Generator(self.om, processor=llguidance_processor(self, schema))
            self._generators[key] = gen
        return gen

    def _input(self, req: RoleRequest, fold: bool = False):
        if self.use_chat:
            from outlines.inputs import Chat

            msgs = [dict(m) for m in req.messages]
            return Chat(fold_system(msgs) if fold else msgs)
        return req.prompt if req.prompt is not None else render_transcript(req.messages)

    def _generate(self, req: RoleRequest, **kw: Any) -> str:
        gen = self._generator(req.schema)
        try:
            return gen(self._input(req), **kw)
        except Exception:
            if not self.use_chat:
                raise
            return gen(self._input(req, fold=True), **kw)  # a template without a system role

    def run_batch(self, reqs: list[RoleRequest]) -> list[RoleResult]:
        out = []
        for r in reqs:
            t0 = time.perf_counter()
            s = r.sampling
            kw: dict[str, Any] = {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p}
            if s.seed is not None:
                kw["seed"] = s.seed
            if s.stop:
                kw["stop"] = list(s.stop)
            self.usage.last = None
            try:
                text = self._generate(r, **kw)
            except Exception as exc:
                out.append(failed(r, "error", f"{type(exc).__name__}: {exc}", backend=self.backend,
                                  model=self.model, latency_ms=(time.perf_counter() - t0) * 1000))
                continue
            used = self.usage.last or {}
            ptoks = int(used.get("prompt_tokens") or 0)
            ctoks = used.get("completion_tokens")
            if ctoks is None:  # no usage reported: count the text's tokens
                ctoks = min(len(self.llm.tokenize(text.encode("utf-8"), add_bos=False)), s.max_tokens) if text else 0
            truncated = used.get("finish_reason") == "length" if used else ctoks >= s.max_tokens
            out.append(finish(r, text, backend=self.backend, model=self.model, prompt_tokens=ptoks,
                              completion_tokens=int(ctoks), latency_ms=(time.perf_counter() - t0) * 1000,
                              truncated=truncated))
        return out
