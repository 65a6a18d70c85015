"""The llamacpp backend records llama.cpp's own token usage: Outlines returns only a completion's
text, so the backend puts a recorder in front of the `Llama` object. This checks the recorder on
the completion shapes llama-cpp-python returns (text and chat); the real model runs in
test_llamacpp_backend.py where llama-cpp-python is installed."""

from __future__ import annotations

from escpro.roles.backends.llamacpp import UsageRecorder


class Completions:
    """A `Llama`-shaped object that answers with the dicts llama-cpp-python documents."""

    n_ctx_value = 2048

    def n_ctx(self) -> int:
        return self.n_ctx_value

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
