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

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from escpro.errors import BackendUnavailable, ConfigError
from escpro.roles.backends.batching import BatchingModel, fold_system
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


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = min((i for i in (text.find(st) for st in stops) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def stop_criteria(tokenizer: Any, stops: Sequence[str]) -> Any:
    """Stop each row once its generated text contains a stop string. transformers' own
    `stop_strings` re-scans the whole vocabulary on every call (~17 s per call for Gemma 3's
    262k tokens on this CPU); decoding the last few generated tokens is enough here."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    window = max(8, 2 * max(len(st) for st in stops))

    class _Stop(StoppingCriteria):
        prompt_len: int | None = None

        def __call__(self, input_ids, scores, **kwargs):  # noqa: ARG002
            if self.prompt_len is None:
                self.prompt_len = input_ids.shape[1] - 1
            tail = input_ids[:, max(self.prompt_len, input_ids.shape[1] - window):]
            texts = tokenizer.batch_decode(tail, skip_special_tokens=True)
            return torch.tensor([any(st in t for st in stops) for t in texts], device=input_ids.device)

    return StoppingCriteriaList([_Stop()])


def llguidance_processor(owner: Any, schema: Any) -> Any:
    """A JSON-schema logits processor over ONE llguidance tokenizer per model: Outlines builds a
    new one for every Generator, which takes a minute for a 262k-token vocabulary (Gemma 3)."""
    from outlines.backends.llguidance import LLGuidanceBackend

    backend = getattr(owner, "_llg_backend", None)
    if backend is None:
        backend = owner._llg_backend = LLGuidanceBackend(owner.om)
    return backend.get_json_schema_logits_processor(constrained_schema(schema, "llguidance"))


def gguf_cache_dir(path: str, gguf_file: str) -> Path:
    """Where the dequantised copy of a GGUF file lives (keyed by its path, size and mtime)."""
    f = Path(path) / gguf_file
    st = f.stat()
    key = hashlib.sha256(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("ESCPRO_CACHE", Path.home() / ".cache" / "escpro"))
    return base / "gguf" / f"{f.stem}-{key}"


def save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Best effort: parsing a GGUF file (transformers reads its 262k-entry vocabulary in Python)
    takes minutes on a small CPU; a saved safetensors copy loads in seconds."""
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    # The weights are already dequantised floats; transformers only keeps a GGUF marker
    # (hf_quantizer / quantization_config) that makes save_pretrained refuse. Drop it while saving.
    quantizer = getattr(model, "hf_quantizer", None)
    qconfig = getattr(model.config, "quantization_config", None)
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        model.hf_quantizer = None
        if qconfig is not None:
            delattr(model.config, "quantization_config")
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    except Exception as exc:  # caching is an optimisation: never fail the load for it
        log.warning("could not cache the converted GGUF model in %s: %s", target, exc)
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        model.hf_quantizer = quantizer
        if qconfig is not None:
            model.config.quantization_config = qconfig


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


class TransformersModel(BatchingModel):
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
        timeout_s: float | None = None,
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
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if chat_template == "always" and not has_template:
            raise ConfigError(f"roles: chat_template: always, but {model_name} has no chat template")
        self.use_chat = has_template and chat_template != "never"
        self._generators: dict[str, Any] = {}
        super().__init__(batch_size=batch_size, batch_wait_ms=batch_wait_ms, timeout_s=timeout_s)

    @classmethod
    def from_binding(cls, b: RoleBinding, *, timeout_s: float | None = None) -> TransformersModel:
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
        cache = gguf_cache_dir(path, gguf) if gguf and b.gguf_cache else None
        if cache is not None and (cache / "config.json").is_file():
            path, gguf = str(cache), None  # converted before: a plain model directory
            cache = None
        kw: dict[str, Any] = {}
        if gguf:
            kw["gguf_file"] = gguf
        if b.dtype != "auto":
            kw["dtype"] = getattr(torch, b.dtype)
        try:
            tok = load_tokenizer(b.tokenizer, None) if b.tokenizer else load_tokenizer(path, gguf)
            model = AutoModelForCausalLM.from_pretrained(path, **kw)
        except OSError as exc:
            raise ConfigError(f"roles: model '{b.model}' could not be loaded: {str(exc).splitlines()[0]}") from None
        if cache is not None:
            save_converted(model, tok, cache)
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
                   batch_size=b.batch_size, batch_wait_ms=b.batch_wait_ms, chat_template=b.chat_template,
                   timeout_s=timeout_s)

    @property
    def needs_transcript(self) -> bool:
        return not self.use_chat

    # --- prompt ---------------------------------------------------------------------------------
    def render(self, req: RoleRequest) -> str:
        if not self.use_chat:
            return req.prompt if req.prompt is not None else render_transcript(req.messages)
        msgs = [dict(m) for m in req.messages]
        try:
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        except Exception:  # e.g. Gemma-2: no system role; fold it into the first user turn
            return self.tokenizer.apply_chat_template(fold_system(msgs), tokenize=False, add_generation_prompt=True)

    # --- batching -------------------------------------------------------------------------------
    def group_key(self, req: RoleRequest) -> str:
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
                gen = outlines.Generator(self.om, processor=llguidance_processor(self, schema))
            else:
                gen = outlines.Generator(self.om, JsonSchema(json.dumps(schema), whitespace_pattern=""),
                                         backend="outlines_core")
            self._generators[key] = gen
        return gen

    def run_batch(self, reqs: list[RoleRequest]) -> list[RoleResult]:
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
                kw["stopping_criteria"] = stop_criteria(self.tokenizer, s.stop)
            with torch.inference_mode():
                texts = gen.batch(prompts, **kw) if len(prompts) > 1 else [gen(prompts[0], **kw)]
        except Exception as exc:  # one bad batch is a recorded failure of its requests
            log.warning("transformers batch of %d failed: %s", len(reqs), exc)
            ms = (time.perf_counter() - t0) * 1000
            return [failed(r, "error", f"{type(exc).__name__}: {exc}", backend=self.backend,
                           model=self.model, latency_ms=ms) for r in reqs]
        ms = (time.perf_counter() - t0) * 1000
        out = []
        for r, p, text in zip(reqs, prompts, texts):
            text = cut_at_stop(text, r.sampling.stop)
            # Outlines returns text only: re-encoding counts the completion (capped at max_tokens).
            ctoks = min(len(self.tokenizer.encode(text, add_special_tokens=False)), r.sampling.max_tokens) if text else 0
            out.append(finish(
                r, text, backend=self.backend, model=self.model,
                prompt_tokens=len(self.tokenizer.encode(p, add_special_tokens=False)),
                completion_tokens=ctoks, latency_ms=ms, truncated=ctoks >= r.sampling.max_tokens,
            ))
        return out
