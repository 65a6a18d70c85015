"""Chat-template handling shared by every method: supplying a template, folding the system prompt
where a template rejects it (Gemma-2), and the paper's length limits (512-token completions,
prompts truncated from the left, whole messages at a time so the template stays well-formed).

Works on any tokenizer with `apply_chat_template`; no torch needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from escpro.errors import ConfigError, DataError

Messages = list[dict[str, str]]

_PROBE = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def read_template(value: str) -> str:
    """A template given inline, as a path to a .jinja file, or as `trl:<name>` (TRL's bundled ones)."""
    if value.startswith("trl:"):
        import trl

        p = Path(trl.__file__).parent / "chat_templates" / f"{value[4:]}.jinja"
        if not p.is_file():
            raise ConfigError(f"chat_template {value}: TRL ships no template named {value[4:]!r}")
        return p.read_text(encoding="utf-8")
    if "{%" in value or "{{" in value:
        return value
    p = Path(value)
    if p.is_file():
        return p.read_text(encoding="utf-8")
    raise ConfigError(f"chat_template {value!r}: neither a Jinja template nor an existing file")


def install_template(tokenizer: Any, chat_template: str | None, model_name: str) -> None:
    """Use the configured template, else the tokenizer's; a model with neither is a clear error."""
    if chat_template:
        tokenizer.chat_template = read_template(chat_template)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"model {model_name} has no chat template; set train.chat_template (inline Jinja, a .jinja "
            "file, or trl:<name>, e.g. trl:qwen2_5)"
        )


def render(tokenizer: Any, messages: Messages, *, generation_prompt: bool = False) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
    )
    return list(out["input_ids"])


def template_rejects_system(tokenizer: Any) -> bool:
    """True when rendering a system message fails (Gemma-2 raises "System role not supported")."""
    try:
        tokenizer.apply_chat_template(_PROBE, tokenize=False)
    except Exception:  # noqa: BLE001 - jinja raises TemplateError or anything the template raises
        return True
    return False


def should_fold(tokenizer: Any, fold_system: str) -> bool:
    if fold_system == "always":
        return True
    if fold_system == "never":
        return False
    return template_rejects_system(tokenizer)


def fold_system(messages: Messages) -> Messages:
    """Merge system messages into the first user turn (a new user turn if the history starts with
    the assistant, keeping user/assistant alternation)."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    text = "\n\n".join(system)
    if rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{text}\n\n{rest[0]['content']}"
    else:
        rest.insert(0, {"role": "user", "content": text})
    return rest


def cut_completion(tokenizer: Any, messages: Messages, limit: int) -> tuple[Messages, bool]:
    """Each assistant message's content limited to `limit` tokens (the paper's max target length)."""
    out, cut = [], False
    for m in messages:
        ids = tokenizer(m["content"], add_special_tokens=False)["input_ids"]
        if m["role"] == "assistant" and len(ids) > limit:
            m = {**m, "content": tokenizer.decode(ids[:limit])}
            cut = True
        out.append(m)
    return out, cut


def truncate_left(tokenizer: Any, prompt: Messages, budget: int, fold: bool) -> tuple[Messages, bool]:
    """Drop the oldest non-system messages until the rendered prompt fits `budget` tokens; the
    history restarts at a user turn. The last user turn is always kept (TRL drops what still
    does not fit)."""
    system = [m for m in prompt if m["role"] == "system"]
    turns = [m for m in prompt if m["role"] != "system"]

    def size(ts: Messages) -> int:
        msgs = system + ts
        return len(render(tokenizer, fold_system(msgs) if fold else msgs, generation_prompt=True))

    dropped = False
    while len(turns) > 1 and size(turns) > budget:
        turns = turns[1:]
        while len(turns) > 1 and turns[0]["role"] != "user":
            turns = turns[1:]
        dropped = True
    return system + turns, dropped


def assistant_mask(tokenizer: Any, messages: Messages) -> tuple[list[int], list[int]]:
    """input_ids of the whole dialogue and a 0/1 mask over its assistant turns (end-of-turn token
    included), found by rendering growing prefixes, so any template works without
    `{% generation %}` markers."""
    full = render(tokenizer, messages)
    mask = [0] * len(full)
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = _common_prefix(render(tokenizer, messages[:k], generation_prompt=True), full) if k else 0
        end = _common_prefix(render(tokenizer, messages[: k + 1]), full)
        eos = getattr(tokenizer, "eos_token_id", None)
        span = full[start:end]
        if eos in span:  # stop learning at the end-of-turn token, not the separator after it
            end = start + len(span) - span[::-1].index(eos)
        for i in range(start, end):
            mask[i] = 1
    return full, mask


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def prepare_records(tokenizer: Any, kind: str, records: list[dict[str, Any]], *, fold: bool,
                    prompt_budget: int, completion_limit: int, max_length: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records in the exact form handed to TRL (only the columns it reads) plus counts of what the
    limits changed. SFT records come back tokenized with an assistant mask."""
    stats = {"prompt_truncated": 0, "completion_cut": 0, "dropped_empty": 0}
    out: list[dict[str, Any]] = []
    for rec in records:  # seconds at most: no bar (the run's one bar is the training's)
        if kind == "sft":
            msgs, cut = cut_completion(tokenizer, rec["messages"], completion_limit)
            system = [m for m in msgs if m["role"] == "system"]
            turns = [m for m in msgs if m["role"] != "system"]
            ids, mask = assistant_mask(tokenizer, fold_system(msgs) if fold else msgs)
            dropped = False
            while len(ids) > max_length and len(turns) > 2:
                turns = turns[1:]
                while len(turns) > 1 and turns[0]["role"] != "user":
                    turns = turns[1:]
                msgs = system + turns
                ids, mask = assistant_mask(tokenizer, fold_system(msgs) if fold else msgs)
                dropped = True
            stats["completion_cut"] += cut
            stats["prompt_truncated"] += dropped
            if not any(mask):
                stats["dropped_empty"] += 1
                continue
            out.append({"input_ids": ids, "assistant_masks": mask})
            continue
        prompt, dropped = truncate_left(tokenizer, rec["prompt"], prompt_budget, fold)
        if fold:
            prompt = fold_system(prompt)
        stats["prompt_truncated"] += dropped
        if kind == "pairs":
            chosen, c1 = cut_completion(tokenizer, rec["chosen"], completion_limit)
            rejected, c2 = cut_completion(tokenizer, rec["rejected"], completion_limit)
            stats["completion_cut"] += c1 + c2
            out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        else:
            completion, c = cut_completion(tokenizer, rec["completion"], completion_limit)
            stats["completion_cut"] += c
            out.append({"prompt": prompt, "completion": completion, "label": bool(rec["label"])})
    if not out:
        raise DataError("no trainable records left after applying the chat template and length limits")
    return out, stats
