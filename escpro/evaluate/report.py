"""`escpro eval report`: runs (and the paper's published numbers) as one Table-2-shaped table.

Columns follow the paper: Q, B, Qw, R-L with Q, Qw and R-L in percent and B raw. Each run
directory contributes one row labelled by its run.json (name, mode, method); the reference rows
come from escpro/data/eval/paper_results.yaml, which names the paper table of every number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from escpro import atomic
from escpro.errors import ConfigError, DataError
from escpro.paths import data_path
from escpro.yamlfile import load_bounded, read_mapping

COLUMNS = ("Q", "B", "Qw", "R-L")
_KEYS = {"Q": "Q", "B": "B", "Qw": "Qw", "R-L": "rouge_l"}
_PERCENT = {"Q", "Qw", "R-L"}


def _read_json(path: Path) -> dict:
    data = load_bounded(path, "scores file", error=DataError)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def is_eval_run(path: Path) -> bool:
    """An `escpro eval run` directory, or a scores file given by path."""
    return (path / "scores.json").is_file() if path.is_dir() else path.is_file()


def collect_runs(run_dirs: Iterable[str | Path], skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per run directory (or a scores.json path / `escpro score --json` output).

    A directory without scores.json (e.g. a training run caught by `runs/*`) is not an error when
    `skipped` is given: its name and why are appended there, so a glob over a mixed folder works.
    """
    rows = []
    for d in run_dirs:
        d = Path(d)
        if not is_eval_run(d):
            why = f"{d}: not an eval run (no scores.json; run `escpro eval run` or `escpro score --json > FILE`)"
            if skipped is None or not d.is_dir():
                raise DataError(why)
            skipped.append(why)
            continue
        scores_path = d / "scores.json" if d.is_dir() else d
        scores = _read_json(scores_path)
        run = _read_json(d / "run.json") if d.is_dir() and (d / "run.json").is_file() else {}
        row: dict[str, Any] = {
            "source": "this run",
            "model": run.get("name") or scores.get("name") or d.name,
            "mode": run.get("mode") or "-",
            "method": run.get("method") or scores.get("method") or "-",
            "n": scores.get("n"),
            "invalid": scores.get("invalid"),
            "B_reason": scores.get("B_reason"),
            "path": str(d),
        }
        ci = scores.get("ci") or {}
        for col in COLUMNS:
            key = _KEYS[col]
            val = scores.get(key)
            scale = 100.0 if col in _PERCENT else 1.0
            row[col] = None if val is None else val * scale
            iv = ci.get(key)
            row[f"{col} ci"] = [iv[0] * scale, iv[1] * scale] if iv else None
        rows.append(row)
    return rows


def load_reference(path: str | Path | None = None, tables: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The paper's published rows (optionally only some tables, e.g. ["Table 2"]; "all" = every one)."""
    if tables and any(t.strip().lower() == "all" for t in tables):
        tables = None
    p = Path(path) if path else data_path("eval") / "paper_results.yaml"
    data = read_mapping(p, "reference results file")
    rows = []
    wanted = {t.lower().replace("table", "").strip() for t in tables} if tables else None
    for r in data.get("rows", []):
        if wanted is not None and r["table"].lower().replace("table", "").strip() not in wanted:
            continue
        rows.append(
            {
                "source": f"paper {r['table']}",
                "model": r["backbone"],
                "mode": r["mode"],
                "method": r["method"],
                "Q": r["Q"], "B": r["B"], "Qw": r["Qw"], "R-L": r["R_L"],
                "n": None, "invalid": None,
            }
        )
    if tables and not rows:
        raise ConfigError(f"no reference rows for {', '.join(tables)} (tables: 2, 4, 9, 10, 11)")
    return rows


def _fmt(row: dict[str, Any], col: str, show_ci: bool) -> str:
    val = row.get(col)
    if val is None:
        return "n/a"
    text = f"{val:.2f}"
    iv = row.get(f"{col} ci") if show_ci else None
    if iv:
        text += f" [{iv[0]:.2f}, {iv[1]:.2f}]"
    return text


def build_report(
    runs: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]] = (), *, show_ci: bool = True
) -> dict[str, Any]:
    rows = list(runs) + list(reference)
    header = ["Source", "Model", "Mode", "Method", "Q ↑", "B ↓", "Qw ↑", "R-L ↑", "n", "invalid %"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 4 + ["---:"] * 6) + "|",
    ]
    for r in rows:
        cells = [r["source"], r["model"], r["mode"], r["method"]]
        cells += [_fmt(r, c, show_ci) for c in COLUMNS]
        cells.append("" if r.get("n") is None else str(r["n"]))
        cells.append("" if r.get("invalid") is None else f"{100 * r['invalid']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "\nQ = macro-F1, Qw = weighted-F1 of the predicted strategy, R-L = ROUGE-L F (all percent); "
        "B = Kang et al.'s strategy preference bias (lower is better). "
        "Invalid predictions count as wrong in Q/Qw and are left out of B."
    )
    if show_ci and any(r.get(f"{c} ci") for r in runs for c in COLUMNS):
        note += " [..] = 95% bootstrap interval."
    for r in runs:
        if r.get("B") is None and r.get("B_reason"):
            note += f" B n/a for {r['model']} ({r['method']}): {r['B_reason']}."
    if reference:
        note += " Paper rows: CSO paper, values as published (escpro/data/eval/paper_results.yaml)."
    markdown = "\n".join(lines) + "\n" + note + "\n"

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["source", "model", "mode", "method", "Q", "B", "Qw", "R-L",
                "Q_lo", "Q_hi", "B_lo", "B_hi", "Qw_lo", "Qw_hi", "R-L_lo", "R-L_hi", "n", "invalid"])
    for r in rows:
        out = [r["source"], r["model"], r["mode"], r["method"]]
        out += ["" if r.get(c) is None else round(r[c], 4) for c in COLUMNS]
        for c in COLUMNS:
            iv = r.get(f"{c} ci")
            out += [round(iv[0], 4), round(iv[1], 4)] if iv else ["", ""]
        out += ["" if r.get("n") is None else r["n"], "" if r.get("invalid") is None else r["invalid"]]
        w.writerow(out)
    return {"rows": rows, "markdown": markdown, "csv": buf.getvalue()}


def plot_report(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Q, Qw, R-L (percent) and B per row as horizontal bars, one panel each.

    Rows run down the page (labels stay horizontal and legible however many there are; the width
    is fixed), this run's rows in blue above the paper's in grey, error bars from bootstrap
    intervals, "n/a" written where a value is missing instead of a zero-height bar.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [" ".join(x for x in (str(r["model"]), str(r["mode"]), str(r["method"])) if x and x != "-")
              + ("" if r["source"] == "this run" else f" [{str(r['source']).replace('paper ', '')}]")
              for r in rows]
    height = 1.6 + 0.26 * max(len(rows), 4)
    fig, axes = plt.subplots(1, 4, figsize=(14, height), sharey=True)
    ypos = list(range(len(rows)))
    for ax, col in zip(axes, ("Q", "Qw", "R-L", "B")):
        vals = [r.get(col) if r.get(col) is not None else 0.0 for r in rows]
        err = [[0.0] * len(rows), [0.0] * len(rows)]
        for k, r in enumerate(rows):
            iv = r.get(f"{col} ci")
            if iv and r.get(col) is not None:
                err[0][k] = max(0.0, r[col] - iv[0])
                err[1][k] = max(0.0, iv[1] - r[col])
        colors = ["tab:blue" if r["source"] == "this run" else "tab:gray" for r in rows]
        has_err = any(e > 0 for side in err for e in side)
        ax.barh(ypos, vals, xerr=err if has_err else None, color=colors, capsize=2, height=0.7)
        for k, r in enumerate(rows):
            if r.get(col) is None:
                ax.text(0, k, " n/a", va="center", fontsize=7, color="tab:red")
        ax.set_title(f"{col} {'(lower is better)' if col == 'B' else '(%)'}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ypos)
    axes[0].set_yticklabels(labels, fontsize=7)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)  # first row on top, no empty margin
    fig.tight_layout()
    p = Path(path)
    with atomic.atomic_open(p, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return p
