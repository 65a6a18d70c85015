"""`escpro build` as a library call: seeds -> trees in a DuckDB file (new, resumed, or a plan).

The command (escpro/commands/build.py) only parses flags and prints; everything a user relies on
(shards, resume checks, the run record, the summary) happens here so tests and scripts can call
it directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from escpro import __version__, aio
from escpro.config import AppConfig
from escpro.config_base import SEED_MAX
from escpro.errors import ConfigError, EscproError
from escpro.mcts.gctune import build_gc
from escpro.mcts.resume import Existing, check_resume, read_existing
from escpro.mcts.runroles import choose_roles, latest_record
from escpro.mcts.scheduler import BuildStats, Scheduler, SeedJob, seed_record
from escpro.paths import REPO_DIR
from escpro.store import ids
from escpro.store.lock import BuildLock
from escpro.store.schema import DATA_RULES_VERSION, SCHEMA_VERSION
from escpro.store.writer import BatchWriter, init_db, now_utc
from escpro.taxonomy import load_taxonomy

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    seeds: Path
    db: Path | None
    config: AppConfig
    limit: int | None = None
    resume: bool = False
    shard: tuple[int, int] | None = None
    backend: str | None = None
    endpoints: Path | None = None
    random_seed: int | None = None
    dry_run: bool = False
    seeds_format: str = "auto"
    strict: bool = False
    command: str = ""
    allow_role_change: bool = False  # --resume with --endpoints elsewhere (recorded)
    retry_failed: bool = False  # --resume also re-runs the failed trees (recorded)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """"I/N" with 0 <= I < N."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def code_version() -> str:
    """The package version, plus the git commit when run from a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+g{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


class BuildError(EscproError):
    pass


class BuildInterrupted(EscproError):
    exit_code = 130


def _cancel_on_signals(task: asyncio.Task | None) -> None:
    """SIGINT/SIGTERM (Ctrl-C, a cluster scheduler's stop) cancel the build: the writer then
    commits every finished iteration before the process exits."""
    import signal

    if task is None:
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            pass


def _select(dialogues, shard, limit):
    out = list(dialogues)
    if shard is not None:
        i, n = shard
        out = [d for d in out if d.index % n == i]
    if limit is not None:
        out = out[:limit]
    return out


def run_build(opts: BuildOptions, progress: bool = False, roleset=None) -> dict:
    """Run (or resume, or plan) a build; returns the summary printed by the command.

    A build holds an OS lock on the database file itself (store/lock.py: released even on
    kill -9, the same lock whatever link names the file), so two builds never write one file;
    `escpro query` does not need it."""
    if opts.random_seed is not None and not 0 <= opts.random_seed <= SEED_MAX:
        raise ConfigError(f"--random-seed {opts.random_seed}: use 0..{SEED_MAX}")
    if opts.dry_run or opts.db is None:
        return _run_build(opts, progress, roleset)
    if opts.retry_failed and not opts.resume:
        raise ConfigError("--retry-failed: only with --resume (it re-runs the failed trees of a build)")
    lock = BuildLock(Path(opts.db), opts.config.build.lock_timeout_s)
    lock.acquire()
    try:
        return _run_build(opts, progress, roleset)
    finally:
        lock.release()  # also removes the file it created if the build stopped before writing


def _run_build(opts: BuildOptions, progress: bool, roleset) -> dict:
    from escpro.seeds.load import load_seeds

    cfg = opts.config
    tax = load_taxonomy(cfg.build.taxonomy)
    seeds = load_seeds(opts.seeds, tax, opts.seeds_format, opts.strict)
    chosen = _select(seeds.dialogues, opts.shard, opts.limit)
    if not chosen:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(seeds.dropped.items())) or "none"
        where = f" in shard {opts.shard[0]}/{opts.shard[1]}" if opts.shard else ""
        raise BuildError(
            f"{opts.seeds}: no seed dialogue to build{where} ({seeds.read} read, "
            f"{len(seeds.dialogues)} kept; dropped: {dropped})"
        )
    tmpdir = None
    db = opts.db
    if opts.dry_run:
        tmpdir = tempfile.TemporaryDirectory(prefix="escpro-plan-")
        db = Path(tmpdir.name) / "plan.duckdb"
    if db is None:
        raise ConfigError("--db is required (unless --dry-run)")
    db = Path(db)
    random_seed = opts.random_seed
    tids = [ids.tree_id(seeds.sha256, d.index) for d in chosen]
    old = Existing()
    if not opts.dry_run:
        old = read_existing(db, tids, resume=opts.resume, retry_failed=opts.retry_failed,
                            timeout_s=cfg.build.lock_timeout_s)
    if old.runs:
        first = check_resume(old.runs, cfg, seeds.sha256, db)
        if random_seed is None:
            random_seed = first.get("random_seed")
    existing, nodes = old.trees, old.nodes
    choice = choose_roles(
        cfg.roles, backend="sim" if opts.dry_run else opts.backend,
        endpoints=None if opts.dry_run else opts.endpoints,
        recorded=latest_record(old.runs) if old.runs else None,
        allow_change=opts.allow_role_change, db=db,
    )
    if roleset is None:
        from escpro.roles.roleset import build_roleset

        roleset = build_roleset(choice.roles, tax, random_seed=random_seed)
    if hasattr(roleset, "describe"):
        role_backends = roleset.describe()
    else:
        role_backends = {r: {"backend": b["backend"], "model": b["model"]}
                         for r, b in choice.record.items()}
    run_id = f"run-{now_utc():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    prompts = roleset.template_record() if hasattr(roleset, "template_record") else None
    run_row = {
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
        "data_rules_version": DATA_RULES_VERSION,
        "config": {**cfg.model_dump(mode="json"), "resolved_roles": role_backends},
        "roles": choice.record,
        "role_change": choice.change,
        "retried_trees": old.retried or None,
        "code_version": code_version(),
        "taxonomy": tax.name,
        "seeds_sha256": seeds.sha256,
        "started_at": now_utc(),
        "seeds_path": str(opts.seeds),
        "prompts": prompts,
        "shard": f"{opts.shard[0]}/{opts.shard[1]}" if opts.shard else None,
        "random_seed": random_seed,
        "command": opts.command or None,
    }
    jobs = [
        SeedJob(d, tid, existing.get(tid), nodes.get(tid, []),
                json.dumps(seed_record(d), ensure_ascii=False))
        for tid, d in zip(tids, chosen, strict=True)
    ]
    pending_rows = [
        {
            "tree_id": j.tree_id, "run_id": run_id, "seed_id": j.dialogue.seed_id,
            "seed_index": j.dialogue.index, "scene": j.dialogue.scene,
            "situation": j.dialogue.situation, "status": "pending", "iterations": 0,
            "end_count": 0, "seed": j.seed_json,
        }
        for j in jobs
        if j.tree_id not in existing
    ]
    init_db(db, run_row, pending_rows, cfg.build.lock_timeout_s)
    from escpro.progress import BuildProgress

    bar = BuildProgress([(j.tree_id, int((j.tree_row or {}).get("iterations") or 0)) for j in jobs
                         if (j.tree_row or {}).get("status") not in ("done", "failed")],
                        cfg.build.max_iterations, enabled=progress)

    counts: dict = {}  # what the file holds at the end (read on the writer's open connection)

    async def main() -> BuildStats:
        _cancel_on_signals(asyncio.current_task())
        writer = BatchWriter(db, cfg.build.commit_interval_s, cfg.build.commit_max_rows,
                             cfg.build.lock_timeout_s)
        writer.start()
        sched = Scheduler(roleset, cfg.build, bar.observe(writer.put), run_id,
                          progress=bar.update if progress else None)
        try:
            return await sched.run(jobs)
        finally:
            try:
                counts.update(await writer.close(then=lambda con: _db_summary(con, tids)) or {})
            finally:
                await roleset.aclose()

    try:
        with build_gc():  # fewer, shorter collector pauses while the trees run (gctune.py)
            stats = aio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise BuildInterrupted(
            f"interrupted; everything up to the last commit is in {db}: continue with "
            "`escpro build ... --resume`"
        ) from None
    finally:
        bar.close()
    summary = stats.as_dict()
    summary.update(counts)
    summary.update(
        {
            "run_id": run_id,
            "db": None if opts.dry_run else str(db),
            "seeds": {"path": str(opts.seeds), "read": seeds.read, "kept": len(seeds.dialogues),
                      "dropped": dict(seeds.dropped), "selected": len(chosen),
                      "sha256": seeds.sha256},
            "dry_run": opts.dry_run,
            "random_seed": random_seed,
            "roles": role_backends,
            "retried_trees": old.retried,
            "role_change": choice.change,
            "sim_roles": [r for r, b in role_backends.items() if b.get("backend") == "sim"],
        }
    )
    if tmpdir is not None:
        tmpdir.cleanup()
    return summary


def _db_summary(con, tids: list[str]) -> dict:
    """What the file holds for these trees (counted on the writer's connection at the end)."""
    status = dict(con.execute(
        "SELECT status, count(*) FROM trees WHERE list_contains(?, tree_id) GROUP BY status",
        [tids]).fetchall())
    n_nodes, n_end = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_end) FROM nodes "
        "WHERE list_contains(?, tree_id)", [tids]).fetchone()
    calls = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status <> 'ok') FROM llm_calls "
        "WHERE list_contains(?, tree_id)", [tids]).fetchone()
    return {"tree_status": status, "nodes": n_nodes, "end_nodes": n_end,
            "llm_calls_in_db": calls[0], "failed_calls_in_db": calls[1]}
