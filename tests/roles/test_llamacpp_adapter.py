"""The parts of the llamacpp backend that do not need llama-cpp-python, so CI checks them: the
`Llama` arguments a binding gives, and the recorder that keeps llama.cpp's own token usage
(Outlines returns only a completion's text). The real model runs in test_llamacpp_backend.py
where llama-cpp-python is installed."""

from __future__ import annotations

import os

from escpro.roles.backends.llamacpp import UsageRecorder, llama_kwargs
from escpro.roles.config import RoleBinding


def test_llama_decodes_on_every_usable_core_unless_engine_args_say() -> None:
    kw = llama_kwargs(RoleBinding(backend="llamacpp", model="m.gguf", n_ctx=1024))
    assert kw == {"n_ctx": 1024, "n_threads": len(os.sched_getaffinity(0)), "verbose": False}
    kw = llama_kwargs(RoleBinding(backend="llamacpp", model="m.gguf", adapter="a.gguf",
                                  engine_args={"n_threads": 1, "n_gpu_layers": 0}))
    assert kw["n_threads"] == 1 and kw["n_gpu_layers"] == 0 and kw["lora_path"] == "a.gguf"


class Completions:
    """A `Llama`-shaped object answering with the dicts llama-cpp-python documents."""

    def n_ctx(self) -> int:
        return 2048

    def __call__(self, prompt: str, **kw):
        return {"choices": [{"text": "hi", "finish_reason": "length"}],
                "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 7, "total_tokens": 0}}

    def create_chat_completion(self, messages, **kw):
        return {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}}


def test_recorder_keeps_the_usage_of_the_last_completion_and_delegates_the_rest() -> None:
    rec = UsageRecorder(Completions())
    assert rec.last is None
    assert rec("one two three")["choices"][0]["text"] == "hi"
    assert rec.last == {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 0, "finish_reason": "length"}
    rec.create_chat_completion([{"role": "user", "content": "x"}])
    assert rec.last["prompt_tokens"] == 11 and rec.last["finish_reason"] == "stop"
    assert rec.n_ctx() == 2048  # everything else reaches the real object


def test_recorder_passes_streams_through_untouched() -> None:
    class Streaming(Completions):
        def __call__(self, prompt: str, **kw):
            return iter([{"choices": [{"text": "a"}]}])

    rec = UsageRecorder(Streaming())
    assert next(rec("p"))["choices"][0]["text"] == "a"
    assert rec.last is None
