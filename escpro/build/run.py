"""`escpro build` as a library call: seeds -> trees in a DuckDB file (new, resumed, or a plan).

The command (escpro/commands/build.py) only parses flags and prints; everything a user relies on
(shards, resume checks, the run record, the summary) happens here so tests, scripts and the demo
call it directly: `run_build(BuildOptions) -> BuildResult`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from escpro import __version__, aio
from escpro.build.gctune import build_gc
from escpro.build.resume import Existing, check_resume, read_existing
from escpro.build.roles import choose_roles, latest_record
from escpro.config import AppConfig
from escpro.config_base import SEED_MAX
from escpro.errors import ConfigError, EscproError
from escpro.mcts.scheduler import BuildStats, Scheduler, SeedJob, seed_record
from escpro.paths import REPO_DIR
from escpro.store import ids
from escpro.store.lock import BuildLock
from escpro.store.reader import build_counts
from escpro.store.schema import DATA_RULES_VERSION, SCHEMA_VERSION
from escpro.store.writer import BatchWriter, RunRecord, now_utc, run_record
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


@dataclass(frozen=True)
class SeedCounts:
    path: str
    read: int
    kept: int
    dropped: dict[str, int]
    selected: int
    sha256: str


@dataclass(frozen=True)
class StoredCounts:
    """What the file holds for the build's trees at the end (counted on the writer's connection)."""

    tree_status: dict[str, int] = field(default_factory=dict)
    nodes: int = 0
    end_nodes: int = 0
    llm_calls_in_db: int = 0
    failed_calls_in_db: int = 0


@dataclass(frozen=True)
class BuildResult:
    """A build's outcome; `to_dict()` is the summary `escpro build --json` prints."""

    run_id: str
    db: str | None  # None for a plan (--dry-run)
    dry_run: bool
    random_seed: int | None
    seeds: SeedCounts
    roles: dict[str, dict]  # role -> {backend, model, ...} as the role set describes itself
    retried_trees: list[str]
    role_change: dict | None
    sim_roles: list[str]
    stats: BuildStats  # the search's counters (trees, iterations, calls, tokens, failures)
    stored: StoredCounts

    @property
    def trees_done(self) -> int:
        return self.stats.trees_done

    @property
    def trees_failed(self) -> int:
        return self.stats.trees_failed

    def to_dict(self) -> dict:
        out = self.stats.as_dict()
        out.update(asdict(self.stored))
        out.update({
            "run_id": self.run_id, "db": self.db, "seeds": asdict(self.seeds),
            "dry_run": self.dry_run, "random_seed": self.random_seed, "roles": self.roles,
            "retried_trees": self.retried_trees, "role_change": self.role_change,
            "sim_roles": self.sim_roles,
        })
        return out


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


def run_build(opts: BuildOptions, progress: bool = False, roleset=None) -> BuildResult:
    """Run (or resume, or plan) a build.

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
    result = None
    try:
        result = _run_build(opts, progress, roleset, fresh=lock.created)
        return result
    finally:
        # A build that returns has recorded its run; one that stopped early may not have, and
        # the file the lock created is then removed if it holds no run.
        lock.release(recorded=result is not None)


def _run_build(opts: BuildOptions, progress: bool, roleset, fresh: bool = False) -> BuildResult:
    """`fresh`: the build lock has just created the file (escpro's tables, no rows), so there is
    nothing to read back (one open of the file fewer at start-up)."""
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
    if not opts.dry_run and not fresh:
        old = read_existing(db, tids, resume=opts.resume, retry_failed=opts.retry_failed,
                            timeout_s=cfg.build.lock_timeout_s)
    if old.runs:
        first = check_resume(old.runs, cfg, seeds.sha256, db)
        if random_seed is None:
            random_seed = first.get("random_seed")
    existing, nodes = old.trees, old.nodes
    choice, roleset, role_backends = _roles(opts, cfg, old, db, tax, random_seed, roleset)
    run_id = f"run-{now_utc():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    prompts = roleset.template_record() if hasattr(roleset, "template_record") else None
    run_row = _run_row(opts, cfg, run_id=run_id, roles=role_backends, choice=choice, old=old,
                       taxonomy=tax.name, seeds_sha256=seeds.sha256, random_seed=random_seed,
                       prompts=prompts)
    jobs = [
        SeedJob(d, tid, existing.get(tid), nodes.get(tid, []),
                json.dumps(seed_record(d), ensure_ascii=False))
        for tid, d in zip(tids, chosen, strict=True)
    ]
    record = run_record(run_row, _pending_rows(jobs, existing, run_id))
    stats, stored = _grow(db, cfg, roleset, run_id, jobs, progress, record)
    if tmpdir is not None:
        tmpdir.cleanup()
    return BuildResult(
        run_id=run_id, db=None if opts.dry_run else str(db), dry_run=opts.dry_run,
        random_seed=random_seed,
        seeds=SeedCounts(path=str(opts.seeds), read=seeds.read, kept=len(seeds.dialogues),
                         dropped=dict(seeds.dropped), selected=len(chosen), sha256=seeds.sha256),
        roles=role_backends, retried_trees=old.retried, role_change=choice.change,
        sim_roles=[r for r, b in role_backends.items() if b.get("backend") == "sim"],
        stats=stats, stored=stored,
    )


def _roles(opts: BuildOptions, cfg: AppConfig, old: Existing, db: Path, tax, random_seed, roleset):
    """(the role choice, the role set that plays it, each role's backend and model as recorded)."""
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
    return choice, roleset, role_backends


def _run_row(opts: BuildOptions, cfg: AppConfig, *, run_id: str, roles: dict, choice, old: Existing,
             taxonomy: str, seeds_sha256: str, random_seed: int | None, prompts) -> dict:
    """The runs row: what this invocation was (a resume adds one)."""
    return {
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
        "data_rules_version": DATA_RULES_VERSION,
        "config": {**cfg.model_dump(mode="json"), "resolved_roles": roles},
        "roles": choice.record,
        "role_change": choice.change,
        "retried_trees": old.retried or None,
        "code_version": code_version(),
        "taxonomy": taxonomy,
        "seeds_sha256": seeds_sha256,
        "started_at": now_utc(),
        "seeds_path": str(opts.seeds),
        "prompts": prompts,
        "shard": f"{opts.shard[0]}/{opts.shard[1]}" if opts.shard else None,
        "random_seed": random_seed,
        "command": opts.command or None,
    }


def _pending_rows(jobs: list[SeedJob], existing: dict, run_id: str) -> list[dict]:
    """The trees a new run registers (status pending) before any search starts."""
    return [
        {
            "tree_id": j.tree_id, "run_id": run_id, "seed_id": j.dialogue.seed_id,
            "seed_index": j.dialogue.index, "scene": j.dialogue.scene,
            "situation": j.dialogue.situation, "status": "pending", "iterations": 0,
            "end_count": 0, "seed": j.seed_json, "error": None, "stop_reason": None,
            "node_count": None, "consecutive_failures": None, "failed_iterations": None,
        }
        for j in jobs
        if j.tree_id not in existing
    ]


def _grow(db: Path, cfg: AppConfig, roleset, run_id: str, jobs: list[SeedJob],
          progress: bool, record: RunRecord) -> tuple[BuildStats, StoredCounts]:
    """Run the scheduler over the jobs with one batch writer, which records the run first; what
    the file holds at the end is counted on the writer's still-open connection."""
    from escpro.progress import BuildProgress

    bar = BuildProgress([(j.tree_id, int((j.tree_row or {}).get("iterations") or 0)) for j in jobs
                         if (j.tree_row or {}).get("status") not in ("done", "failed")],
                        cfg.build.max_iterations, enabled=progress)
    tids = [j.tree_id for j in jobs]
    counts: dict = {}

    async def main() -> BuildStats:
        _cancel_on_signals(asyncio.current_task())
        writer = BatchWriter(db, cfg.build.commit_interval_s, cfg.build.commit_max_rows,
                             cfg.build.lock_timeout_s, record=record)
        sched = Scheduler(roleset, cfg.build, bar.observe(writer.put), run_id,
                          progress=bar.update if progress else None)
        search = asyncio.ensure_future(sched.run(jobs))
        writer.start(on_record_failed=search.cancel)  # then close() below raises the reason
        try:
            return await search
        finally:
            try:
                counts.update(await writer.close(then=lambda con: build_counts(con, tids)) or {})
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
    return stats, StoredCounts(**counts)
