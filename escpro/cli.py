"""The `escpro` command line: a click group whose commands load lazily from escpro.commands.*.

Lazy loading keeps `escpro --help` fast (no torch import) and lets each command live in its own
module. A command whose module has not landed yet still shows in --help and, when run, exits
non-zero naming the missing piece instead of printing a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from escpro import __version__
from escpro.cli_common import escpro_command

# name -> (module, attribute, one-line help, the piece that provides it)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "serve": ("escpro.commands.serve", "serve", "Start the role models (vLLM servers or the simulator).", "role-model serving"),
    "seeds": ("escpro.commands.seeds", "seeds", "Inspect and convert seed dialogues (ExTES, ESConv, JSONL).", "seed loading"),
    "build": ("escpro.commands.build", "build", "Expand seed dialogues into strategy trees by MCTS (DuckDB).", "the MCTS build"),
    "merge": ("escpro.commands.merge", "merge", "Merge DuckDB files built by shards into one.", "the MCTS build"),
    "query": ("escpro.commands.query", "query", "Run read-only SQL over a build's DuckDB file.", "the MCTS build"),
    "extract": ("escpro.commands.extract", "extract", "Extract ESC-Pro preference/KTO/SFT data from trees.", "ESC-Pro extraction"),
    "stats": ("escpro.commands.stats", "stats", "Table 5 statistics, stage plot and search/call costs.", "ESC-Pro extraction"),
    "tree": ("escpro.commands.tree", "tree", "Draw one conversation tree (svg, png, dot or text).", "ESC-Pro extraction"),
    "train": ("escpro.commands.train", "train", "Train a supporter model: sft, dpo (CSO), ipo, simpo, kto, orpo.", "training"),
    "eval": ("escpro.commands.eval", "eval_group", "Build test sets, generate predictions, report tables.", "evaluation"),
    "score": ("escpro.commands.score", "score", "Score predictions: Q, Qw, preference bias B, ROUGE-L.", "evaluation"),
    "ui": ("escpro.commands.ui", "ui", "Web app: browse trees and pairs, run the human evaluation.", "the web UI"),
    "demo": ("escpro.commands.demo", "demo", "Run the whole pipeline on bundled seeds with a small model.", "the end-to-end demo"),
}


def _not_built(name: str, help_text: str, piece: str, module: str) -> click.Command:
    @escpro_command(
        name=name,
        help=f"{help_text} [not built yet]",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args, as_json, log_level):  # noqa: ARG001
        click.echo(
            f"error: 'escpro {name}' is not built yet: it needs {piece} ({module}).", err=True
        )
        sys.exit(3)

    return cmd


class LazyGroup(click.Group):
    """Commands load on first use; click's own errors (usage, bad option values, unreadable
    paths) print as one line, like escpro's (`error: ... (see 'escpro CMD --help')`)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            sys.exit(_usage_error(exc))
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except Exception as exc:  # a command module that fails to import, or a bug outside one
            from escpro.cli_common import report

            argv = list(sys.argv if args is None else args)
            debug = "--log-level=debug" in argv or any(
                a == "--log-level" and b.lower() == "debug" for a, b in zip(argv, argv[1:]))
            sys.exit(report(exc, debug=debug))
        sys.exit(0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, help_text, piece = COMMANDS[name]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                return _not_built(name, help_text, piece, module)
            raise
        return getattr(mod, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Use the registry's one-liners so --help never imports heavy modules.
        rows = [(name, spec[2]) for name, spec in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _usage_error(exc: click.ClickException) -> int:
    from escpro.console import escape_controls
    from escpro.errors import first_line

    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    msg = first_line(escape_controls(exc.format_message(), keep=""), limit=2000)
    click.echo(f"error: {msg}{where}", err=True)
    return exc.exit_code


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="escpro")
def cli() -> None:
    """escpro: build ESC-Pro turn-level preference data by MCTS over support strategies, then
    train (SFT, CSO/DPO, IPO, SimPO, KTO, ORPO) and evaluate emotional-support models on it.

    Every subcommand accepts --json and --log-level after its own name, and --config FILE
    where it reads a config (build, extract, stats, tree, ui, train, eval testset/run, serve, demo).
    """


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
