"""`roles:` config section: which backend and model plays each role, and the role math.

Several roles may name the same model: bindings that agree on everything that identifies an
engine (backend, model, endpoint, adapter, GGUF file, device, ...) share ONE model instance
(`RoleBinding.instance_key`); per-role decoding settings (temperature, max_tokens) stay per role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from escpro import paper_defaults as P
from escpro.config_base import Section

Backend = Literal["openai", "transformers", "llamacpp", "vllm-offline", "sim"]


SIM_MODEL = "sim"  # the model name of the simulator, in process and served (`escpro serve --engine sim`)


def is_simulator(backend: str | None, model: str | None) -> bool:
    """Answers from the simulator: the sim backend, or the sim server over HTTP (model 'sim')."""
    return backend == "sim" or model == SIM_MODEL


class SimSettings(Section):
    """The simulator's knobs (backend `sim`, and `escpro serve --engine sim`)."""

    latency_ms: float = Field(0.0, ge=0, description="mean answer latency")
    jitter_ms: float = Field(0.0, ge=0, description="uniform +/- jitter on the latency")
    capacity: int = Field(64, ge=1, description="answers computed at once (like a server's slots)")
    end_probability: float = Field(
        0.08, ge=0, le=1, description="chance the seeker ends the dialogue at its first reply"
    )
    end_growth: float = Field(
        0.04, ge=0, le=1, description="added to the end chance per supporter turn already spoken"
    )
    failure_rate: float = Field(0.0, ge=0, le=1, description="share of calls answered by an error")
    invalid_rate: float = Field(
        0.0, ge=0, le=1, description="share of schema calls answered by truncated JSON"
    )
    seed: int = 0


class RoleBinding(Section):
    backend: Backend | None = Field(
        None, description="no default: a role is played by the backend named here, by --endpoints "
        "or by --backend (the simulator only when asked for by name: sim)",
    )
    model: str = "sim"
    # --- openai backend ---------------------------------------------------------------------
    base_url: str | None = None
    replica_urls: list[str] = Field(
        default_factory=list, description="more base URLs serving the same model: calls go to the "
        "replica with the fewest outstanding requests, failing over when one is down")
    max_model_len: int | None = Field(
        None, ge=64, description="the server's context length; default: asked from its /v1/models. "
        "Prompts are fitted within it, leaving max_tokens for the answer")
    api_key_env: str | None = None
    structured: Literal["vllm", "response_format", "none"] = Field(
        "vllm",
        description="how JSON answers are constrained over HTTP: vLLM's structured_outputs "
        "(vLLM >= 0.12), OpenAI response_format json_schema, or not at all (validated only)",
    )
    api: Literal["chat", "completions"] = Field(
        "chat", description="/v1/chat/completions, or /v1/completions with a rendered transcript"
    )
    concurrency: int = Field(64, ge=1, description="requests in flight per endpoint")
    request_timeout_s: float | None = Field(None, gt=0, description="per HTTP attempt; default roles.timeout_s")
    http_retries: int = Field(3, ge=0, le=10, description="retries on 5xx/timeouts/connection errors")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay, doubled each retry")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="merged into every request body")
    # --- in-process backends ----------------------------------------------------------------
    adapter: str | None = Field(None, description="PEFT LoRA adapter directory (transformers)")
    tokenizer: str | None = Field(
        None, description="tokenizer directory when it differs from `model` (transformers; e.g. an "
        "`escpro train` output whose tokenizer carries the chat template it was trained with)"
    )
    gguf_file: str | None = Field(None, description="GGUF file name inside `model` (transformers)")
    gguf_cache: bool = Field(
        True, description="transformers: keep the dequantised GGUF model + tokenizer under "
        "~/.cache/escpro/gguf so later loads skip the slow GGUF parsing"
    )
    device: str = "cpu"
    dtype: str = "auto"
    batch_size: int = Field(8, ge=1, description="requests coalesced into one generate call")
    batch_wait_ms: float = Field(5.0, ge=0, description="how long a batch waits to fill")
    chat_template: Literal["auto", "always", "never"] = Field(
        "auto", description="auto = use the tokenizer's chat template when it has one"
    )
    structured_backend: Literal["llguidance", "outlines_core"] = "llguidance"
    n_ctx: int = Field(4096, ge=256, description="context length (llamacpp)")
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for llama_cpp.Llama / vllm.LLM"
    )
    # --- decoding (per role; not part of the instance key) -----------------------------------
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    # --- sim backend -------------------------------------------------------------------------
    sim: SimSettings = Field(default_factory=SimSettings)

    def instance_key(self) -> str:
        """Bindings with equal keys share one engine (decoding settings excluded)."""
        data = self.model_dump(mode="json", exclude={"temperature", "top_p", "max_tokens"})
        return repr(sorted(data.items()))


class RolesConfig(Section):
    seeker: RoleBinding = Field(default_factory=RoleBinding)
    supporter: RoleBinding = Field(default_factory=RoleBinding)
    strategy: RoleBinding = Field(default_factory=lambda: RoleBinding(temperature=0.0, max_tokens=200))
    reward: RoleBinding = Field(default_factory=lambda: RoleBinding(temperature=0.0, max_tokens=120))
    prior_temperature: float = Field(P.PRIOR_TEMPERATURE.value, gt=0)
    reward_alpha: float = Field(
        P.REWARD_ALPHA.value, ge=0,
        description="strategy weight in R = (E + I + H + alpha*S)/(3 + alpha) + b; >= 0 keeps R a "
        "weighted mean of the 0..4 scores (a negative weight would reward ignoring the strategy, "
        "and -3 divides by zero)",
    )
    reward_bias: float = Field(P.REWARD_BIAS.value, description="b: rewards lie in [b, b + 4]")
    max_retries: int = Field(2, ge=0, le=10)
    timeout_s: float = Field(120.0, gt=0)
    retry_temperature: float = Field(
        0.7, ge=0, description="temperature for retries of a greedy call (a greedy retry repeats itself)"
    )
    end_marker: str = Field("[END]", min_length=1, description="the seeker's end-of-dialogue marker")
    share_situation: bool = Field(
        False, description="also show the seed's scene and situation to the Supporter, Strategy "
        "and Reward roles (a deviation: in the paper only the Seeker sees them; docs/fidelity.md)"
    )
    prompts_dir: str | None = Field(
        None, description="directory of role templates; default escpro/data/prompts (missing files fall back)"
    )

    @field_validator("prompts_dir")
    @classmethod
    def _prompts_dir_exists(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).is_dir():
            raise ValueError(f"{v}: no such directory (a typo would silently use the shipped prompts)")
        return v

    def binding(self, role: str) -> RoleBinding:
        return getattr(self, role)
