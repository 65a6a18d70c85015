"""Small ESC-Pro-shaped training files (the shapes `escpro extract` writes), built in code."""

from __future__ import annotations

import json
from pathlib import Path

from escpro.formatting import format_supporter_turn, system_prompt
from escpro.taxonomy import load_taxonomy

SEEKER = [
    "I feel so lonely since I moved to this city.",
    "My boss yelled at me today and I cannot sleep.",
    "I failed my exam and my parents will be upset.",
    "My best friend stopped answering my messages.",
]
GOOD = [
    ("Emotional Validation", "That sounds really painful, and your feelings make sense."),
    ("Affirmation", "You have already shown a lot of strength by reaching out."),
    ("Collaborative Planning", "Shall we make a small plan together for this week?"),
]
BAD = [
    ("Share Information", "Many people move cities. It is normal."),
    ("Reflective Statements", "You said you are lonely."),
]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def make_extract_dir(root: Path, n_dialogues: int = 4) -> Path:
    """pairs.jsonl, kto.jsonl and sft.jsonl for n dialogues (2 supporter turns each)."""
    tax = load_taxonomy("cso8")
    system = {"role": "system", "content": system_prompt(tax)}
    pairs, kto, sft = [], [], []
    for d in range(n_dialogues):
        path_id = f"t{d}-p0"
        history = [system]
        msgs = [system]
        for turn in range(2):
            user = {"role": "user", "content": SEEKER[(d + turn) % len(SEEKER)]}
            history = history + [user]
            gs, gr = GOOD[(d + turn) % len(GOOD)]
            bs, br = BAD[(d + turn) % len(BAD)]
            chosen = [{"role": "assistant", "content": format_supporter_turn(gs, gr)}]
            rejected = [{"role": "assistant", "content": format_supporter_turn(bs, br)}]
            common = {"tree_id": f"t{d}", "path_ids": [path_id]}
            pairs.append({"prompt": history, "chosen": chosen, "rejected": rejected,
                          "chosen_node_id": f"t{d}-n{turn}a", "rejected_node_id": f"t{d}-n{turn}b", **common})
            kto.append({"prompt": history, "completion": chosen, "label": True, **common})
            kto.append({"prompt": history, "completion": rejected, "label": False, **common})
            history = history + chosen
            msgs = msgs + [user] + chosen
        sft.append({"messages": msgs, "path_id": path_id})
    root.mkdir(parents=True, exist_ok=True)
    _write(root / "pairs.jsonl", pairs)
    _write(root / "kto.jsonl", kto)
    _write(root / "sft.jsonl", sft)
    return root
