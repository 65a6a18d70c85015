"""LLaMA-Factory layout: sharegpt-style records plus dataset_info.json entries.

LLaMA-Factory's sharegpt reader wants the conversation to start with a human turn and alternate;
a supporter greeting before the first seeker turn (seed context), and in SFT records a seeker's
last words after the final reply, are therefore dropped from these copies (counted in the
manifest as llamafactory_dropped_turns). The TRL files keep them.
"""

from __future__ import annotations

TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
_ROLE = {"user": "human", "assistant": "gpt"}


def to_sharegpt(
    messages: list[dict[str, str]], *, end_with_assistant: bool = False
) -> tuple[str, list[dict[str, str]], int]:
    """(system, conversations, turns dropped): leading assistant turns, and with
    end_with_assistant trailing user turns (a seeker's goodbye after the last reply), which
    LLaMA-Factory's SFT reader would reject as an odd message count."""
    system = ""
    rest = list(messages)
    if rest and rest[0]["role"] == "system":
        system = rest.pop(0)["content"]
    dropped = 0
    while rest and rest[0]["role"] != "user":
        rest.pop(0)
        dropped += 1
    while end_with_assistant and rest and rest[-1]["role"] != "assistant":
        rest.pop()
        dropped += 1
    conv = [{"from": _ROLE[m["role"]], "value": m["content"]} for m in rest]
    return system, conv, dropped


def pair_to_sharegpt(rec: dict) -> tuple[dict, int]:
    system, conv, dropped = to_sharegpt(rec["prompt"])
    out = {
        "system": system,
        "conversations": conv,
        "chosen": {"from": "gpt", "value": rec["chosen"][0]["content"]},
        "rejected": {"from": "gpt", "value": rec["rejected"][0]["content"]},
        "tree_id": rec["tree_id"],
        "chosen_node_id": rec["chosen_node_id"],
        "rejected_node_id": rec["rejected_node_id"],
    }
    return out, dropped


def kto_to_sharegpt(rec: dict) -> tuple[dict, int]:
    system, conv, dropped = to_sharegpt(rec["prompt"] + rec["completion"])
    return {"system": system, "conversations": conv, "kto_tag": rec["label"], "node_id": rec["node_id"]}, dropped


def sft_to_sharegpt(rec: dict) -> tuple[dict, int]:
    system, conv, dropped = to_sharegpt(rec["messages"], end_with_assistant=True)
    return {"system": system, "conversations": conv, "path_id": rec["path_id"]}, dropped


def dataset_info(prefix: str, files: dict[str, str]) -> dict:
    """dataset_info.json entries for the files written (kind -> file name)."""
    info = {}
    if "pairs" in files:
        info[f"{prefix}_pairs"] = {
            "file_name": files["pairs"],
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
            "tags": dict(TAGS),
        }
    if "kto" in files:
        info[f"{prefix}_kto"] = {
            "file_name": files["kto"],
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "kto_tag": "kto_tag", "system": "system"},
            "tags": dict(TAGS),
        }
    if "sft" in files:
        info[f"{prefix}_sft"] = {
            "file_name": files["sft"],
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": dict(TAGS),
        }
    return info
