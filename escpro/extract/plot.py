"""PNG plots for `escpro stats` (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from escpro import atomic


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stage_plot(panels: list[tuple[str, list[dict]]], strategies: list[str], path: Path) -> Path:
    """Stacked bars: share of each strategy among supporter turns per dialogue stage.

    panels: (title, stage rows from escpro.extract.stats.stage_rows) per subplot.
    """
    plt = _plt()
    panels = [(t, rows) for t, rows in panels if any(r["count"] for r in rows)] or panels[:1]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 2.6, 4.2), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10" if len(strategies) <= 10 else "tab20")
    names = list(strategies)
    for _, rows in panels:
        names += [r["strategy"] for r in rows if r["strategy"] not in names]
    colors = {name: cmap(i % cmap.N) for i, name in enumerate(names)}
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        stages = sorted({r["stage"] for r in rows})
        totals = {s: sum(r["count"] for r in rows if r["stage"] == s) for s in stages}
        bottom = [0.0] * len(stages)
        x = list(range(len(stages)))
        for name in names:
            vals = [next((r["share"] for r in rows if r["stage"] == s and r["strategy"] == name), 0.0) for s in stages]
            if not any(vals):
                continue
            ax.bar(x, vals, bottom=bottom, color=colors[name], label=name, width=0.75, edgecolor="white", linewidth=0.5)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(x, [f"{s:.1f}\n(n={totals[s]})" for s in stages], fontsize=8)
        ax.set_xlabel("dialogue stage  floor(5i/n)/5\n(n: first seeker to last supporter turn)", fontsize=8)
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("share of supporter turns")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    order = sorted(range(len(labels)), key=lambda i: names.index(labels[i]))
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="center right", fontsize=8, frameon=False)
    fig.suptitle("Strategy distribution over dialogue stages")
    fig.tight_layout(rect=(0, 0, 1 - 2.4 / fig.get_figwidth(), 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path


def q_histogram(qs: list[float], theta: float, path: Path) -> Path:
    """Histogram of Q over expanded nodes, with theta marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if qs:
        ax.hist(qs, bins=min(40, max(5, len(qs) // 5)), color="#4c72b0", edgecolor="white")
    ax.axvline(theta, color="#c44e52", linestyle="--", label=f"theta = {theta:g}")
    ax.set_xlabel("Q of expanded nodes")
    ax.set_ylabel("nodes")
    ax.set_title(f"Q distribution ({len(qs)} expanded nodes)")
    ax.legend(frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path


def toxicity_plot(rows: list[dict], labels: list[str], model: str, path: Path) -> Path:
    """Grouped bars: mean score per label (x) for each Table 7 row with utterances (colour).

    rows: ToxicityResult.csv_rows() ({"row", "utterances", <label>: mean}).
    """
    plt = _plt()
    rows = [r for r in rows if r["utterances"]]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 3.0), 4.2))
    cmap = plt.get_cmap("tab10")
    width = 0.8 / max(1, len(rows))
    for k, r in enumerate(rows):
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, [r[lab] or 0.0 for lab in labels], width=width, color=cmap(k % cmap.N),
               label=f"{r['row']} (n={r['utterances']})")
    ax.set_xticks(list(range(len(labels))), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("mean score per utterance")
    ax.set_title(f"Toxicity by attribute ({model})", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
