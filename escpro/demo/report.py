"""What the demo shows at the end: a sample preference pair, the scores, a query to paste.

Pure formatting of the summary dictionary (plus reading one line of pairs.jsonl), kept apart from
the pipeline so that the closing report can change without touching how the steps run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from escpro.demo.steps import shell_join


def sample_pair(pairs_path: Path) -> dict[str, Any] | None:
    """The first preference pair of pairs.jsonl, reduced to what the report prints."""
    if not pairs_path.is_file():
        return None
    with pairs_path.open(encoding="utf-8") as fh:
        line = fh.readline()
    if not line.strip():
        return None
    rec = json.loads(line)
    last_user = next((m["content"] for m in reversed(rec["prompt"]) if m["role"] == "user"), "")
    return {
        "tree_id": rec.get("tree_id"),
        "turn": rec.get("turn"),
        "context_last_user": last_user,
        "chosen": rec["chosen"][0]["content"],
        "rejected": rec["rejected"][0]["content"],
        "chosen_node_id": rec.get("chosen_node_id"),
        "rejected_node_id": rec.get("rejected_node_id"),
        "chosen_q": rec.get("chosen_q"),
        "rejected_q": rec.get("rejected_q"),
    }


def query_command(db: Path, pair: dict[str, Any] | None) -> str:
    """A `escpro query` the user can paste: the pair's two nodes, or the best nodes."""
    if pair and pair.get("chosen_node_id"):
        ids = ", ".join(f"'{pair[k]}'" for k in ("chosen_node_id", "rejected_node_id"))
        sql = (f"SELECT node_id, strategy, round(q, 3) AS q, n, supporter_text FROM nodes "
               f"WHERE node_id IN ({ids})")
    else:
        sql = ("SELECT node_id, strategy, round(q, 3) AS q, n FROM nodes WHERE kind = 'expanded' "
               "ORDER BY q DESC LIMIT 10")
    # Double quotes around the SQL keep its single-quoted ids readable (no $, ` or " inside).
    return f'{shell_join(["escpro", "query", "--db", db])} "{sql}"'


def run_scores(scores: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """One evaluation run as the summary keeps it; `valid` is the share of predictions that carry
    a known strategy in the "(<Strategy>) <reply>" format (1 - invalid)."""
    inv = scores.get("invalid")
    return {"Q": scores.get("Q"), "Qw": scores.get("Qw"), "B": scores.get("B"), "B_reason": scores.get("B_reason"),
            "rouge_l": scores.get("rouge_l"), "invalid": inv,
            "valid": None if inv is None else round(1.0 - inv, 4), "n": scores.get("n"), **extra}


def fmt_scores(r: dict[str, Any]) -> str:
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}"

    b = "n/a" if r.get("B") is None else f"{r['B']:.2f}"
    if r.get("B") is None and r.get("B_reason"):
        b += f" ({r['B_reason'].split(' (')[0]})"
    valid = r.get("valid")
    n = r.get("n")
    shown = (f"valid {round(valid * n)}/{n}" if valid is not None and n else f"n={n}")
    return f"Q {pct(r.get('Q'))}  Qw {pct(r.get('Qw'))}  B {b}  R-L {pct(r.get('rouge_l'))}  ({shown} in format)"


def summary_text(s: dict[str, Any]) -> str:
    """The closing report: times, where things went, a pair, scores, a query to paste."""
    lines = ["", f"Demo finished in {s['total_seconds']:.1f} s (roles backend: {s['backend']}).", "",
             "  step       time"]
    for st in s["steps"]:
        lines.append(f"  {st['name']:<9} {st['seconds']:>6.1f} s")
    lines += ["", f"Everything is in {s['out']}:"]
    f = s["files"]
    labels = [("config (resolved)", "config"), ("trees (DuckDB)", "db"), ("ESC-Pro data", "esc_pro"),
              ("statistics + plots", "stats"), ("SFT stage", "sft"), ("trained model", "train"),
              ("evaluation runs", "eval"), ("summary", "summary")]
    for label, key in labels:
        if key in f:
            lines.append(f"  {label:<20} {f[key]}")
    p = s.get("sample_pair")
    if p:
        def q(v):
            return "?" if v is None else f"{v:.2f}"

        lines += ["", f"A preference pair (tree {p['tree_id']}, turn {p['turn']}):",
                  f"  seeker:   {clip(p['context_last_user'])}",
                  f"  chosen   (Q {q(p['chosen_q'])}): {clip(p['chosen'])}",
                  f"  rejected (Q {q(p['rejected_q'])}): {clip(p['rejected'])}"]
    lines += ["", "Scores on the held-out test set (Q, Qw, ROUGE-L in %, B lower is better; a prediction",
              "without a known strategy in the \"(<Strategy>) <reply>\" format scores 0):"]
    for label, r in s["scores"].items():
        lines.append(f"  {label:<8} {fmt_scores(r)}")
    sample = s.get("sample_prediction")
    if sample:
        lines += [f"  e.g. trained: {clip(sample)}"]
    lines += ["", "Look inside the trees with SQL:", f"  {s['query']}", "",
              "Redo any step by hand: the commands are in summary.json (steps[].command)."]
    return "\n".join(lines)


def clip(text: str, width: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
