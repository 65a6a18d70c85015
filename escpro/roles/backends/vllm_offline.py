"""Backend `vllm-offline`: an in-process `vllm.LLM` (GPU only) with structured outputs.

vLLM pins its own torch and transformers, so it normally lives in its own environment and is
reached over HTTP (`escpro serve` + backend `openai`); this backend is for a machine where escpro
itself runs inside vLLM's environment. Coalesced requests go to ONE `LLM.generate` call with a
SamplingParams per request (vLLM batches them continuously); JSON answers use
`StructuredOutputsParams(json=schema)` (vLLM >= 0.12; the removed guided_* parameters are never
used). Imported lazily; on a machine without vLLM or a CUDA GPU it refuses with a clear message.
"""

from __future__ import annotations

import time
from typing import Any

from escpro.errors import BackendUnavailable
from escpro.roles.backends.batching import BatchingModel, fold_system
from escpro.roles.backends.common import finish
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.config import RoleBinding
from escpro.roles.prompts import render_transcript

CPU_HINT = (
    "on a CPU use backend transformers (or llamacpp) in-process, or serve the roles elsewhere and "
    "use backend openai (see docs/roles.md)"
)


def check_vllm_available() -> Any:
    """The vllm module, or BackendUnavailable saying why not (no CUDA GPU / vLLM missing)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        raise BackendUnavailable(f"backend vllm-offline needs an NVIDIA GPU with CUDA and none is visible; {CPU_HINT}")
    try:
        import vllm
    except ImportError:
        raise BackendUnavailable(
            f"backend vllm-offline needs vLLM, which is not installed in this environment "
            f"(pip install 'escpro[gpu]', ideally in vLLM's own environment); {CPU_HINT}"
        ) from None
    return vllm


class VLLMOfflineModel(BatchingModel):
    backend = "vllm-offline"

    def __init__(self, llm: Any, *, model_name: str, chat_template: str = "auto", lora: Any = None,
                 batch_size: int = 256, batch_wait_ms: float = 5.0, timeout_s: float | None = None) -> None:
        self.model = model_name
        self.llm = llm
        self.lora = lora
        self.tokenizer = llm.get_tokenizer()
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.use_chat = has_template and chat_template != "never"
        super().__init__(batch_size=batch_size, batch_wait_ms=batch_wait_ms, timeout_s=timeout_s)

    @classmethod
    def from_binding(cls, b: RoleBinding, *, timeout_s: float | None = None) -> VLLMOfflineModel:
        vllm = check_vllm_available()
        kw: dict[str, Any] = {"model": b.model, "enable_prefix_caching": True, **b.engine_args}
        if b.dtype != "auto":
            kw["dtype"] = b.dtype
        lora = None
        if b.adapter:
            from vllm.lora.request import LoRARequest

            kw["enable_lora"] = True
            lora = LoRARequest("adapter", 1, b.adapter)
        llm = vllm.LLM(**kw)
        return cls(llm, model_name=b.model, chat_template=b.chat_template, lora=lora,
                   batch_size=max(b.batch_size, 1), batch_wait_ms=b.batch_wait_ms, timeout_s=timeout_s)

    @property
    def needs_transcript(self) -> bool:
        return not self.use_chat

    def group_key(self, req: RoleRequest) -> str:
        return "all"  # one generate call takes a SamplingParams per request

    def render(self, req: RoleRequest) -> str:
        if not self.use_chat:
            return req.prompt if req.prompt is not None else render_transcript(req.messages)
        msgs = [dict(m) for m in req.messages]
        try:
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        except Exception:
            return self.tokenizer.apply_chat_template(fold_system(msgs), tokenize=False, add_generation_prompt=True)

    def run_batch(self, reqs: list[RoleRequest]) -> list[RoleResult]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        t0 = time.perf_counter()
        params = []
        for r in reqs:
            s = r.sampling
            kw: dict[str, Any] = {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p}
            if s.seed is not None:
                kw["seed"] = s.seed
            if s.stop:
                kw["stop"] = list(s.stop)
            if r.schema is not None:
                kw["structured_outputs"] = StructuredOutputsParams(json=dict(r.schema))
            params.append(SamplingParams(**kw))
        outputs = self.llm.generate([self.render(r) for r in reqs], params, use_tqdm=False, lora_request=self.lora)
        ms = (time.perf_counter() - t0) * 1000
        results = []
        for r, o in zip(reqs, outputs):
            c = o.outputs[0]
            results.append(finish(r, c.text, backend=self.backend, model=self.model,
                                  prompt_tokens=len(o.prompt_token_ids or ()), completion_tokens=len(c.token_ids),
                                  latency_ms=ms, truncated=c.finish_reason == "length"))
        return results
