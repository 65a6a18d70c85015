"""Helpers every backend shares: turning raw answer text into a validated RoleResult."""

from __future__ import annotations

from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.schemas import SchemaError, parse_json_answer


def finish(
    request: RoleRequest,
    text: str | None,
    *,
    backend: str,
    model: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_ms: float = 0.0,
    attempts: int = 1,
    truncated: bool = False,
) -> RoleResult:
    """A schema request's text is parsed and validated (status "invalid" with the reason when it
    fails); a free-text answer is returned as is."""
    res = RoleResult(
        request=request,
        status="ok",
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
        attempts=attempts,
        backend=backend,
        model=model,
    )
    if request.schema is not None:
        try:
            res.value = parse_json_answer(text, request.schema)
        except SchemaError as exc:
            res.status = "invalid"
            res.error = f"{exc}{' (hit max_tokens)' if truncated else ''}"
    else:
        res.value = text if text is not None else ""
    return res


def failed(
    request: RoleRequest,
    status: str,
    error: str,
    *,
    backend: str,
    model: str,
    latency_ms: float = 0.0,
    attempts: int = 1,
) -> RoleResult:
    return RoleResult(
        request=request,
        status=status,  # type: ignore[arg-type]
        text=None,
        error=error,
        latency_ms=latency_ms,
        attempts=attempts,
        backend=backend,
        model=model,
    )


def approx_tokens(text: str) -> int:
    """~4 characters per token: the simulator's and the fallback usage estimate."""
    return (len(text) + 3) // 4
