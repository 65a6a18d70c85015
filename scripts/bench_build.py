"""Build throughput: escpro's scheduler vs. a baseline that works like the authors' released code.

Both arms build the same synthetic seeds with the same search (escpro's TreeSearch, same build
config, answer reuse off unless --reuse) against the simulator served as a real HTTP server on
loopback (`escpro serve --engine sim`, a separate process, so its CPU is not counted), with a
fixed per-call latency and a fixed number of slots (calls beyond it queue in the server):

  escpro    `escpro build` as a library call (escpro.build.run.run_build): every tree on one
            event loop, all calls in flight together through the `openai` backend (aiohttp),
            every node and call committed to a DuckDB file.
  baseline  10 worker threads, one tree per worker at a time, one blocking call at a time per
            worker (each worker has its own event loop and an `openai` backend with concurrency
            1, so even the judgements escpro sends together go one by one): docs/paper.md
            section 7's profile of the authors' code. Its rows are kept in memory (the authors'
            code writes no database; the arm is latency-bound either way).

Reported (docs/performance.md; the report itself is scripts/bench_report.py): each arm's wall time, the calls the server counted, `bound_s`
(the fastest any client could finish on this server; scripts/bench_chains.py), efficiency =
bound_s / wall_s, and escpro's own CPU per call (client, search, storage).

    python scripts/bench_build.py                 # defaults: 64 seeds x 8 turns, 10 iterations, 100 ms, 64 slots
    python scripts/bench_build.py --latency-ms 20 --json
    python scripts/bench_build.py --reuse --skip-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_chains import ChainCounting, Chains, bound_s, counted_roleset  # noqa: E402,F401
from bench_report import ArmResult, print_table, report  # noqa: E402

BASELINE_WORKERS = 10  # the authors' released code: a pool of 10 worker threads


# --- Synthetic seeds --------------------------------------------------------------------------
def seed_records(n: int, turns: int, strategies: Sequence[str]) -> list[dict]:
    """n seed dialogues: greeting, first seeker turn, then `turns` strategy-labelled supporter
    turns each followed by a seeker turn (texts of realistic length, all distinct)."""
    out = []
    for i in range(n):
        t = [
            {"speaker": "supporter", "text": "Hi, thanks for reaching out. What's on your mind today?"},
            {"speaker": "seeker", "text": f"I've been struggling with problem number {i} at work and "
                                          "it keeps me awake at night; I don't know who to talk to."},
        ]
        for k in range(turns):
            t.append({"speaker": "supporter", "strategy": strategies[(i + k) % len(strategies)],
                      "text": f"That sounds really hard (seed {i}, turn {k}). It makes sense that you "
                              "feel this way, and I'm glad you told me about it."})
            t.append({"speaker": "seeker", "text": f"Yeah, turn {k} of seed {i}: I guess I just feel "
                                                   "stuck and tired of pretending everything is fine."})
        out.append({"seed_id": f"bench-{i}", "scene": "Work stress",
                    "situation": f"Seeker {i} is overwhelmed at work and sleeps badly.", "turns": t})
    return out


def write_seeds(path: Path, n: int, turns: int) -> Path:
    from escpro.taxonomy import load_taxonomy

    names = list(load_taxonomy("cso8").names)
    path.write_text("".join(json.dumps(r) + "\n" for r in seed_records(n, turns, names)), encoding="utf-8")
    return path


# --- The sim server (a separate process) ------------------------------------------------------
class SimServer:
    """`escpro serve --engine sim` in a subprocess; its CPU is not this process's."""

    def __init__(self, latency_ms: float, capacity: int, workdir: Path):
        self.latency_ms = latency_ms
        self.capacity = capacity
        self.eps = workdir / "endpoints.json"
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> SimServer:
        cmd = [sys.executable, "-m", "escpro", "serve", "--engine", "sim", "--port", "0",
               "--latency-ms", str(self.latency_ms), "--capacity", str(self.capacity),
               "--endpoints-out", str(self.eps)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        deadline = time.monotonic() + 60
        while not self.eps.exists():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")[-500:] if self.proc.stderr else ""
                raise RuntimeError(f"sim server exited (code {self.proc.returncode}): {err}")
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("sim server did not start within 60 s")
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written once the server listens; let the write finish
        self.base_url = json.loads(self.eps.read_text())["seeker"]["base_url"]
        return self

    def cpu_s(self) -> float:
        """The server process's CPU time so far (user + system, from /proc; 0 where unavailable)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, AttributeError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def requests(self) -> int:
        """Calls the server has received so far (its /stats)."""
        root = self.base_url.rsplit("/v1", 1)[0]
        with urllib.request.urlopen(f"{root}/stats", timeout=10) as r:  # noqa: S310 (loopback)
            return sum(json.loads(r.read())["requests"].values())

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- Config -----------------------------------------------------------------------------------
def make_config(base_url: str, *, iterations: int, reuse: bool, concurrency: int, trees: int):
    from escpro.config import AppConfig

    http = {"backend": "openai", "model": "sim", "base_url": base_url, "concurrency": concurrency,
            "http_retries": 1, "request_timeout_s": 60}
    return AppConfig.model_validate({
        "roles": {"seeker": dict(http), "supporter": dict(http),
                  "strategy": {**http, "temperature": 0.0, "max_tokens": 200},
                  "reward": {**http, "temperature": 0.0, "max_tokens": 120}},
        "build": {"min_iterations": iterations, "max_iterations": iterations,
                  "reuse_answers": reuse, "concurrent_trees": trees},
    })


# --- The arms (their results: bench_report.ArmResult) ---------------------------------------
def warm_imports() -> None:
    """Import what a build imports lazily (duckdb's pandas/arrow glue included) before the clock
    starts: a one-off start-up cost, not a cost per call."""
    import duckdb
    import pyarrow as pa

    import escpro.aio
    import escpro.build.run  # noqa: F401
    import escpro.roles.backends.openai  # noqa: F401
    import escpro.seeds.load  # noqa: F401

    escpro.aio.loop_name()  # imports uvloop
    con = duckdb.connect()
    con.register("_t", pa.table({"x": [1]}))
    con.execute("SELECT * FROM _t").fetchall()
    con.close()


def run_escpro(seeds: Path, db: Path, server: SimServer, args) -> ArmResult:
    from escpro.build.run import BuildOptions, run_build

    cfg = make_config(server.base_url, iterations=args.iterations, reuse=args.reuse,
                      concurrency=args.client_concurrency, trees=args.seeds)
    chains = Chains()
    rs = counted_roleset(cfg, chains, args.random_seed)
    before, scpu0 = server.requests(), server.cpu_s()
    cpu0, t0 = time.process_time(), time.perf_counter()
    summary = run_build(BuildOptions(seeds=seeds, db=db, config=cfg, random_seed=args.random_seed,
                                     command="bench_build"), progress=False, roleset=rs).to_dict()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    calls = server.requests() - before
    return ArmResult(wall, cpu, calls, sum(summary["cached_calls"].values()), summary["iterations"],
                     summary["trees"]["done"], summary["trees"]["failed"], dict(chains.steps),
                     summary["nodes"], server.cpu_s() - scpu0)


class _Baseline:
    """The baseline's shared state: a queue of trees that BASELINE_WORKERS threads drain, one
    tree at a time each, on their own event loops."""

    def __init__(self, seeds: Path, server: SimServer, args) -> None:
        from escpro.mcts.scheduler import BuildStats, SeedJob
        from escpro.seeds.load import load_seeds
        from escpro.store import ids
        from escpro.taxonomy import load_taxonomy

        self.args = args
        self.cfg = make_config(server.base_url, iterations=args.iterations, reuse=args.reuse,
                               concurrency=1, trees=1)
        loaded = load_seeds(seeds, load_taxonomy(self.cfg.build.taxonomy))
        self.jobs: queue.Queue = queue.Queue()
        for d in loaded.dialogues:
            self.jobs.put(SeedJob(d, ids.tree_id(loaded.sha256, d.index)))
        self.total = self.jobs.qsize()
        self.chains = Chains()
        self.stats: list[BuildStats] = []
        self.errors: list[BaseException] = []
        self.finished = 0
        self.lock = threading.Lock()

    def worker(self) -> None:
        try:
            asyncio.run(self._trees())
        except BaseException as exc:  # noqa: BLE001 (re-raised in the main thread)
            self.errors.append(exc)

    async def _trees(self) -> None:
        from escpro.mcts.scheduler import Scheduler

        rs = counted_roleset(self.cfg, self.chains, self.args.random_seed)
        kept: list = []

        async def commit(delta) -> None:
            kept.append(delta)  # in memory: the authors' code writes no database

        sched = Scheduler(rs, self.cfg.build, commit, "baseline")
        self.stats.append(sched.stats)
        try:
            while True:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    return
                st = await sched.run_tree(job)
                if st.status == "done":
                    sched.stats.trees_done += 1
                elif st.status == "failed":
                    sched.stats.trees_failed += 1
                self._tick()
        finally:
            await rs.aclose()

    def _tick(self) -> None:
        with self.lock:
            self.finished += 1
            if not self.args.json:
                print(f"\r  baseline: {self.finished}/{self.total} trees", end="", file=sys.stderr, flush=True)


def run_baseline(seeds: Path, server: SimServer, args) -> ArmResult:
    """10 worker threads; each runs one tree at a time on its own event loop, one call at a
    time (its openai backend has concurrency 1)."""
    b = _Baseline(seeds, server, args)
    before, scpu0 = server.requests(), server.cpu_s()
    cpu0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=b.worker, name=f"baseline-{i}") for i in range(BASELINE_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if not args.json:
        print(file=sys.stderr)
    if b.errors:
        raise b.errors[0]
    calls = server.requests() - before
    return ArmResult(wall, cpu, calls, sum(sum(s.cached.values()) for s in b.stats),
                     sum(s.iterations for s in b.stats), sum(s.trees_done for s in b.stats),
                     sum(s.trees_failed for s in b.stats), dict(b.chains.steps),
                     server_cpu_s=server.cpu_s() - scpu0)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=64, help="synthetic seed dialogues (default 64)")
    p.add_argument("--turns", type=int, default=8, help="supporter turns per seed (default 8)")
    p.add_argument("--iterations", type=int, default=10,
                   help="MCTS iterations per tree (min = max; default 10)")
    p.add_argument("--latency-ms", type=float, default=100.0, help="server latency per call (default 100)")
    p.add_argument("--capacity", type=int, default=64, help="server slots; more calls queue (default 64)")
    p.add_argument("--reuse", action="store_true", help="answer reuse on (reports the calls it saved)")
    p.add_argument("--skip-baseline", action="store_true", help="run the escpro arm only")
    p.add_argument("--client-concurrency", type=int, default=None,
                   help="escpro arm: requests in flight per endpoint (roles.<role>.concurrency; default: "
                        "--capacity, as a build configured for this server would use)")
    p.add_argument("--random-seed", type=int, default=0, help="sampling seed of every call (default 0)")
    p.add_argument("--keep", type=Path, default=None, help="keep the escpro arm's DuckDB file here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.client_concurrency is None:
        args.client_concurrency = args.capacity
    for name in ("seeds", "turns", "iterations", "capacity", "client_concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.latency_ms <= 0:
        p.error("--latency-ms must be > 0 (the bound divides by it)")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="escpro-bench-") as tmp:
        tmpd = Path(tmp)
        seeds = write_seeds(tmpd / "seeds.jsonl", args.seeds, args.turns)
        db = args.keep or tmpd / "bench.duckdb"
        if db.exists():
            sys.exit(f"error: {db} exists; choose another --keep path")
        with SimServer(args.latency_ms, args.capacity, tmpd) as server:
            if not args.json:
                print(f"sim server on {server.base_url}; escpro arm ...", file=sys.stderr)
            warm_imports()
            esc = run_escpro(seeds, db, server, args)
            base = None
            if not args.skip_baseline:
                if not args.json:
                    print(f"baseline arm ({BASELINE_WORKERS} threads, one call at a time each) ...",
                          file=sys.stderr)
                base = run_baseline(seeds, server, args)
                if base.calls != esc.calls and not args.reuse:
                    print(f"warning: the arms sent different numbers of calls ({esc.calls} vs "
                          f"{base.calls}): the searches diverged", file=sys.stderr)
    r = report(args, esc, base, (load0, os.getloadavg()[0]))
    if args.json:
        print(json.dumps(r))
    else:
        print_table(r)
    return r


if __name__ == "__main__":
    main()
