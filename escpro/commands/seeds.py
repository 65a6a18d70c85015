"""`escpro seeds inspect|convert`: look at a seed file the way the build will read it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from escpro.atomic import atomic_open
from escpro.cli_common import emit, escpro_command
from escpro.seeds.formats import FORMATS
from escpro.seeds.load import load_seeds


@click.group(name="seeds", context_settings={"help_option_names": ["-h", "--help"]})
def seeds() -> None:
    """Inspect and convert seed dialogues (ExTES JSON, ESConv JSON/JSONL, escpro JSONL)."""


def _seed_options(func):
    func = click.option("--strict", is_flag=True, help="Stop at the first bad record instead of dropping it.")(func)
    func = click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
        help="Seed file format (auto-detected from the first record).",
    )(func)
    func = click.option(
        "--taxonomy", default="cso8", show_default=True,
        help="Strategy taxonomy: cso8 (paper), esconv8, or a YAML file.",
    )(func)
    return func


@escpro_command(seeds, name="inspect")
@click.argument("path", type=click.Path(path_type=Path))
@_seed_options
def inspect(path, taxonomy, fmt, strict, as_json, log_level):
    """Count what a seed file holds after normalisation: dialogues read and kept, drops per
    reason, supporter turns per strategy, mean turns and words.

    Example: escpro seeds inspect esconv_valid.jsonl --taxonomy esconv8
    """
    result = load_seeds(path, taxonomy=taxonomy, fmt=fmt, strict=strict)
    summary = result.summary()

    def text() -> str:
        lines = [
            f"{summary['path']} ({summary['format']}, taxonomy {summary['taxonomy']})",
            f"  dialogues read:            {summary['dialogues_read']}",
            f"  dialogues kept:            {summary['dialogues_kept']}",
        ]
        for reason, count in summary["dropped"].items():
            lines.append(f"  dropped ({reason}): {count}")
        lines.append(f"  mean turns per dialogue:   {summary['mean_turns']:.2f}")
        lines.append(f"  mean words per utterance:  {summary['mean_words_per_utterance']:.2f}")
        lines.append(f"  merged mixed-strategy turns: {summary['merged_mixed_strategy']}")
        lines.append("  supporter turns per strategy:")
        width = max((len(k) for k in summary["strategy_counts"]), default=0)
        for name, count in summary["strategy_counts"].items():
            lines.append(f"    {name:<{width}}  {count}")
        return "\n".join(lines)

    emit(summary, as_json, text)


@escpro_command(seeds, name="convert")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Canonical JSONL to write.")
@_seed_options
def convert(path, out, taxonomy, fmt, strict, as_json, log_level):
    """Write the kept dialogues as escpro's canonical JSONL (one dialogue per line).

    Example: escpro seeds convert extes_train.json --out seeds.jsonl
    """
    result = load_seeds(path, taxonomy=taxonomy, fmt=fmt, strict=strict)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out) as fh:
        for d in result.dialogues:
            fh.write(json.dumps(d.to_record(), ensure_ascii=False) + "\n")
    summary = result.summary() | {"out": str(out)}
    emit(summary, as_json, f"wrote {len(result.dialogues)} of {result.read} dialogues to {out}"
         + (f" (dropped: {summary['dropped']})" if summary["dropped"] else ""))
