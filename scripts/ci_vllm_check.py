"""Checks of the CI pipeline through a real vLLM (scripts/ci_vllm.sh): did every role get its
answers over HTTP from vLLM, how often were Strategy/Reward answers schema-valid, are nodes and
pairs written and traceable, did evaluation answer. Prints one JSON report; exits 1 on a failure.

  python scripts/ci_vllm_check.py --db t.duckdb --extract esc-pro/ --eval eval/ \
      --endpoints E.json --metrics-before m0.txt --metrics-after m1.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb

ROLES = ("seeker", "supporter", "strategy", "reward")


def metric_sum(text: str, name: str) -> float:
    """Sum of a Prometheus counter over its labels (vLLM's /metrics)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def call_checks(con, served_model: str) -> tuple[dict, list[str]]:
    failures = []
    rows = con.execute(
        """SELECT role, backend, model, count(*) FILTER (WHERE NOT cached) AS sent,
                  count(*) FILTER (WHERE NOT cached AND status = 'ok') AS ok,
                  coalesce(sum(attempts) FILTER (WHERE NOT cached), 0) AS attempts,
                  count(*) FILTER (WHERE error LIKE 'HTTP 400%') AS http400,
                  count(*) FILTER (WHERE truncated_turns > 0) AS truncated_calls,
                  coalesce(max(truncated_turns), 0) AS max_truncated
           FROM llm_calls GROUP BY ALL ORDER BY role"""
    ).fetchall()
    cols = ["role", "backend", "model", "sent", "ok", "attempts", "http400", "truncated_calls", "max_truncated"]
    per = {}
    for r in rows:
        d = dict(zip(cols, r))
        per.setdefault(d["role"], []).append(d)
    report = {}
    for role in ROLES:
        entries = per.get(role, [])
        if not entries:
            failures.append(f"{role}: no calls recorded")
            continue
        for e in entries:
            if e["backend"] != "openai" or e["model"] != served_model:
                failures.append(f"{role}: answered by {e['backend']}/{e['model']}, not openai/{served_model}")
        sent = sum(e["sent"] for e in entries)
        ok = sum(e["ok"] for e in entries)
        attempts = sum(e["attempts"] for e in entries)
        report[role] = {
            "sent": sent, "ok": ok, "attempts": attempts,
            "valid_rate_calls": round(ok / sent, 3) if sent else None,  # after escpro's retries
            "valid_rate_attempts": round(ok / attempts, 3) if attempts else None,  # each try
            "http400": sum(e["http400"] for e in entries),
            "truncated_calls": sum(e["truncated_calls"] for e in entries),
            "max_truncated_turns": max(e["max_truncated"] for e in entries),
        }
        if ok == 0:
            failures.append(f"{role}: no call answered validly")
        if report[role]["http400"]:
            failures.append(f"{role}: {report[role]['http400']} calls refused with HTTP 400")
    return report, failures


def tree_checks(con, extract_dir: Path) -> tuple[dict, list[str]]:
    failures = []
    nodes = dict(con.execute("SELECT kind, count(*) FROM nodes GROUP BY kind").fetchall())
    searched = con.execute("SELECT count(*) FROM nodes WHERE created_iter > 0 AND kind IN ('expanded', 'end')").fetchone()[0]
    trees = dict(con.execute("SELECT status, count(*) FROM trees GROUP BY status").fetchall())
    ids = {r[0] for r in con.execute("SELECT node_id FROM nodes").fetchall()}
    pairs = [json.loads(line) for line in (extract_dir / "pairs.jsonl").read_text().splitlines() if line.strip()]
    untraceable = [p for p in pairs if not ({p["chosen_node_id"], p["rejected_node_id"], *p["path_ids"]} <= ids)]
    if searched == 0:
        failures.append("the search expanded no node with a model's texts")
    if not pairs:
        failures.append("no preference pair extracted")
    if untraceable:
        failures.append(f"{len(untraceable)} pairs name nodes that are not in the database")
    return {"nodes": nodes, "searched_nodes": searched, "trees": trees, "pairs": len(pairs),
            "pairs_traceable": len(pairs) - len(untraceable)}, failures


def eval_checks(eval_dir: Path) -> tuple[dict, list[str]]:
    preds = [json.loads(x) for x in (eval_dir / "predictions.jsonl").read_text().splitlines() if x.strip()]
    scores = json.loads((eval_dir / "scores.json").read_text())
    answered = sum(1 for p in preds if p.get("status") == "ok" and (p.get("raw") or "").strip())
    failures = [] if answered else ["evaluation: no prediction has an answer"]
    return {"predictions": len(preds), "answered": answered, "scores": scores}, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--extract", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--endpoints", type=Path, required=True)
    ap.add_argument("--metrics-before", type=Path, required=True)
    ap.add_argument("--metrics-after", type=Path, required=True)
    args = ap.parse_args()
    eps = json.loads(args.endpoints.read_text())
    served = eps["supporter"]["model"]
    con = duckdb.connect(str(args.db), read_only=True)
    calls, f1 = call_checks(con, served)
    trees, f2 = tree_checks(con, args.extract)
    sent = con.execute("SELECT count(*) FROM llm_calls WHERE NOT cached").fetchone()[0]
    con.close()
    evals, f3 = eval_checks(args.eval)
    before, after = args.metrics_before.read_text(), args.metrics_after.read_text()
    served_ok = metric_sum(after, "vllm:request_success_total") - metric_sum(before, "vllm:request_success_total")
    hits = metric_sum(after, "vllm:prefix_cache_hits_total") - metric_sum(before, "vllm:prefix_cache_hits_total")
    queries = metric_sum(after, "vllm:prefix_cache_queries_total") - metric_sum(before, "vllm:prefix_cache_queries_total")
    failures = f1 + f2 + f3
    # Every call escpro sent and got an answer to was a request vLLM completed (eval's too).
    answered = sum(c["ok"] for c in calls.values())
    if served_ok < answered:
        failures.append(f"vLLM completed {served_ok:g} requests, fewer than the {answered} answers recorded")
    report = {
        "ok": not failures, "failures": failures, "served_model": served,
        "vllm_requests_completed": served_ok, "build_calls_sent": sent,
        "prefix_cache_hit_rate": round(hits / queries, 3) if queries else None,
        "roles": calls, "trees": trees, "eval": {k: v for k, v in evals.items() if k != "scores"},
        "eval_scores": {k: evals["scores"].get(k) for k in ("Q", "Qw", "B", "rouge_l", "valid_rate", "n")
                        if k in evals["scores"]},
    }
    print(json.dumps(report, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
