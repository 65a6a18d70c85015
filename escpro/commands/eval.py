"""`escpro eval {testset, run, report}`: build test sets, generate predictions, report tables."""

from __future__ import annotations

from pathlib import Path

import click

from escpro import atomic
from escpro.cli_common import emit, escpro_command

BACKENDS = ["transformers", "llamacpp", "vllm-offline", "openai", "sim"]
BASELINES = ["none", "direct-refine", "self-refine", "example"]


def _drop_none(d: dict) -> dict:
    """Flags left unset must not override the config file."""
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}


@click.group(name="eval", context_settings={"help_option_names": ["-h", "--help"]})
def eval_group() -> None:
    """Evaluate supporter models as the paper does: strategy accuracy (Q, Qw), preference bias
    (B) and ROUGE-L, on turn-level test sets, with the paper's decoding baselines."""


@escpro_command(eval_group, name="testset", config=True)
@click.option("--seeds", "seeds_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Held-out seed dialogues (ExTES, ESConv or canonical JSONL).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Test-set JSONL to write.")
@click.option("--taxonomy", default=None, help="cso8 (default), esconv8 or a YAML file.")
@click.option("--kang", is_flag=True, help="Kang et al.-style strategy test set: 5-15 utterance "
              "context windows, earlier supporter turns labelled.")
@click.option("--min-window", type=click.IntRange(min=1), default=5, show_default=True, help="--kang: shortest window.")
@click.option("--max-window", type=click.IntRange(min=1), default=15, show_default=True, help="--kang: longest window.")
@click.option("--per-dialogue", type=click.IntRange(min=0), default=0, show_default=True,
              help="--kang: target turns kept per dialogue (0 = all).")
@click.option("--label-context", is_flag=True, help="Write earlier supporter turns' strategies "
              "into the context (always on with --kang).")
@click.option("--seed", type=int, default=0, show_default=True, help="Window-length seed (--kang).")
def testset(seeds_path, out, taxonomy, kang, min_window, max_window, per_dialogue, label_context,
            seed, config_path, as_json, log_level):
    """Turn held-out seed dialogues into turn-level test items (JSONL: id, scene, description,
    context [{role: User|Supporter, text}], gold_response, strategy_gold).

    Greetings and other context-only supporter turns stay in the context but are never items;
    a supporter turn without a strategy becomes a ROUGE-L-only item (strategy_gold null).

    \b
    Example:
      escpro eval testset --seeds extes_test.json --out tests/extes_test.jsonl
      escpro eval testset --seeds esconv_test.json --taxonomy esconv8 --kang --out kang.jsonl
    """
    from escpro.config import load_config
    from escpro.evaluate.testsets import kang_items, turn_items, write_items
    from escpro.seeds.load import load_seeds

    cfg = load_config(config_path)
    tax_name = taxonomy or cfg.eval.taxonomy
    loaded = load_seeds(seeds_path, taxonomy=tax_name)
    if kang:
        items = kang_items(loaded.dialogues, min_window=min_window, max_window=max_window,
                           per_dialogue=per_dialogue, seed=seed)
    else:
        items = turn_items(loaded.dialogues, label_context=label_context)
    n = write_items(items, out)
    labelled = sum(1 for it in items if it.strategy_gold)
    info = {
        "out": str(out), "items": n, "strategy_labelled": labelled, "rouge_only": n - labelled,
        "dialogues": len(loaded.dialogues), "dialogues_read": loaded.read,
        "dropped": dict(loaded.dropped), "taxonomy": loaded.taxonomy, "kind": "kang" if kang else "turns",
    }
    emit(info, as_json, lambda: (
        f"wrote {n} items ({labelled} with a gold strategy, {n - labelled} ROUGE-L only) from "
        f"{len(loaded.dialogues)} of {loaded.read} dialogues to {out}"
        + (f"; dropped: {dict(loaded.dropped)}" if loaded.dropped else "")
    ))


@escpro_command(eval_group, name="run", config=True)
@click.option("--model", "model", default=None, help="Model: HF id or local dir (transformers, vllm-offline), "
              "GGUF dir (llamacpp), served model name (openai), anything (sim).")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), default=None, help="PEFT LoRA adapter directory.")
@click.option("--testset", "testset_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--backend", type=click.Choice(BACKENDS), default=None, help="Default: eval.model.backend (transformers).")
@click.option("--endpoints", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Endpoints file from `escpro serve`: evaluate the model served for --endpoint-role.")
@click.option("--endpoint-role", default="supporter", show_default=True, help="Which endpoint of --endpoints to use.")
@click.option("--baseline", type=click.Choice(BASELINES), default=None,
              help="Decoding baseline (paper Appendix E). Default: none.")
@click.option("--examples", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Training seed dialogues for --baseline example.")
@click.option("--taxonomy", default=None, help="Strategy taxonomy (default eval.taxonomy = cso8).")
@click.option("--temperature", type=float, default=None, help="Default 0 (greedy, deterministic).")
@click.option("--max-new-tokens", type=int, default=None, help="Reply length limit (default 256).")
@click.option("--batch-size", type=int, default=None, help="In-process backends: requests per generate call.")
@click.option("--name", default=None, help="Row label in reports (default: adapter or model name).")
@click.option("--method", default=None, help="Method label in reports, e.g. SFT, CSO (default: base / baseline).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=None,
              help="Bootstrap resamples for confidence intervals in scores.json (default 0).")
@click.option("--mode", default=None, help="Mode label in reports: Full, LoRA (default '-').")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N items.")
@click.option("--overwrite", is_flag=True, help="Discard predictions already in --out instead of resuming.")
def run(model, adapter, testset_path, out, backend, endpoints, endpoint_role, baseline, examples, taxonomy,
        temperature, max_new_tokens, batch_size, n_boot, name, method, mode, limit, overwrite, config_path, as_json, log_level):
    """Generate predictions for a test set with one model and score them.

    The model sees the training format (system prompt listing the strategies, earlier supporter
    turns as "(<Strategy>) <reply>") and answers "(<Strategy>) <reply>"; an answer without a known
    strategy is counted invalid. All requests of a chunk go to the backend at once. Writes
    predictions.jsonl, run.json, config.yaml and scores.json into --out; rerunning resumes.

    \b
    Examples:
      escpro eval run --model Qwen/Qwen2.5-7B-Instruct --adapter out/cso-lora --testset t.jsonl --out runs/cso
      escpro eval run --endpoints endpoints.json --testset t.jsonl --out runs/served --baseline self-refine
      escpro eval run --backend sim --model sim --testset t.jsonl --out runs/sim

      escpro eval run --model runs/cso --testset t.jsonl --out runs/eval-cso   # an `escpro train` output
    """
    from escpro.config import load_config
    from escpro.errors import ConfigError
    from escpro.evaluate.run import EvalOptions, evaluate
    from escpro.evaluate.scoring import format_text

    model_over: dict = {"model": model, "adapter": adapter, "backend": backend,
                        "temperature": temperature, "batch_size": batch_size}
    from escpro.evaluate.trained import is_train_output, resolve_train_output

    if is_train_output(model) and not adapter:
        model_over.update(resolve_train_output(model))
        name = name or Path(model).name
    if endpoints:
        from escpro.roles.endpoints import load_endpoints

        eps = load_endpoints(endpoints)
        if endpoint_role not in eps:
            raise ConfigError(f"{endpoints}: no '{endpoint_role}' endpoint (has {', '.join(eps)})")
        ep = eps[endpoint_role]
        urls = ep["base_url"] if isinstance(ep["base_url"], list) else [ep["base_url"]]  # replicas
        model_over.update({"backend": "openai", "base_url": urls[0], "replica_urls": urls[1:],
                           "model": model or ep["model"], "api_key_env": ep.get("api_key_env")})
        if ep.get("structured"):
            model_over["structured"] = ep["structured"]
    over = {"eval": {"model": model_over, "baseline": baseline, "examples": examples,
                     "taxonomy": taxonomy, "max_new_tokens": max_new_tokens, "bootstrap": n_boot}}
    cfg = load_config(config_path, _drop_none(over)).eval
    if max_new_tokens is not None:
        cfg.model.max_tokens = max_new_tokens
    if not cfg.model.model:
        raise ConfigError("--model is required (or eval.model.model in --config, or --endpoints)")
    res = evaluate(EvalOptions(config=cfg, testset=testset_path, out=out, name=name, method=method,
                               mode=mode, overwrite=overwrite, limit=limit, progress=not as_json))
    emit(res.to_dict(), as_json, lambda: (
        f"{res.name} [{res.method}]: {res.generated} generated, {res.resumed} resumed, "
        f"{res.failed_calls} failed calls, {res.seconds} s -> {out}\n"
        + format_text(res.scores)
    ))


@escpro_command(eval_group, name="report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write table.md, table.csv and table.png (bar chart) here (default: print only).")
@click.option("--reference", "reference", is_flag=True, help="Add the paper's published numbers "
              "(Table 2 unless --reference-table says otherwise; escpro/data/eval/paper_results.yaml).")
@click.option("--reference-table", "ref_tables", multiple=True,
              help="With --reference: these paper tables instead of Table 2 (2, 4, 9, 10, 11 or all); repeatable.")
@click.option("--ci/--no-ci", default=True, show_default=True, help="Show bootstrap intervals when present.")
def report(run_dirs, out, reference, ref_tables, ci, as_json, log_level):
    """Table of Q, B, Qw and R-L (percent, B raw) over run directories, shaped like the paper's
    Table 2: one row per model and method. Directories that are not eval runs (no scores.json)
    are skipped with a note, so `runs/*` works on a folder that also holds training runs.

    \b
    Example:
      escpro eval report runs/* --reference --out reports/
    """
    from escpro.errors import DataError
    from escpro.evaluate.report import build_report, collect_runs, load_reference

    skipped: list[str] = []
    rows = collect_runs(run_dirs, skipped)
    for why in skipped:
        click.echo(f"note: skipped {why}", err=True)
    if not rows:
        raise DataError(f"no eval run among the {len(run_dirs)} path(s) given")
    ref = load_reference(tables=list(ref_tables) or ["Table 2"]) if reference else []
    rep = build_report(rows, ref, show_ci=ci)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out / "table.md", rep["markdown"])
        atomic.write_text(out / "table.csv", rep["csv"])
        from escpro.evaluate.report import plot_report

        plot_report(rep["rows"], out / "table.png")
    emit({"rows": rep["rows"], "out": str(out) if out else None, "skipped": skipped}, as_json, rep["markdown"])
