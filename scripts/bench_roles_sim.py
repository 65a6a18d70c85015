"""RoleSet throughput with simulated models: in-process `sim` vs `openai` -> sim HTTP server.

Both runs push the same mix of the four roles (a 12-utterance dialogue, one request per call,
all in flight at once through asyncio) through the full RoleSet path: prompt rendering,
validation, cleaning, retries. The HTTP server runs in a separate process (its CPU is not
counted); the numbers say how many role calls/s escpro itself can drive, i.e. the ceiling a build
can reach before the models are the bottleneck.

    python scripts/bench_roles_sim.py --calls 4000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.config import RoleBinding, RolesConfig
from escpro.roles.roleset import build_roleset
from escpro.taxonomy import load_taxonomy


def contexts(n: int) -> list[DialogueContext]:
    out = []
    for i in range(n):
        hist = tuple(
            Utterance("seeker", f"I have been feeling low since the move {i} {j}.")
            if j % 2 == 0
            else Utterance("supporter", "That sounds really hard, tell me more.", "Emotional Validation")
            for j in range(12)
        )
        out.append(DialogueContext("Moving away", f"Situation {i}: moved to a new city, lonely.", hist))
    return out


async def drive(cfg: RolesConfig, n: int) -> tuple[float, float, int]:
    rs = build_roleset(cfg, load_taxonomy("cso8"))
    ctxs = contexts(n)
    calls = []
    for i, c in enumerate(ctxs):
        k = i % 4
        if k == 0:
            calls.append(rs.score_strategies(c))
        elif k == 1:
            calls.append(rs.judge(c))
        elif k == 2:
            calls.append(rs.seek(c))
        else:
            calls.append(rs.support(c.extend(Utterance("seeker", "yeah")), "Affirmation"))
    cpu0, t0 = time.process_time(), time.perf_counter()
    outs = await asyncio.gather(*calls)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await rs.aclose()
    return n / wall, 1000 * cpu / n, sum(o.ok for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=256, help="openai backend: requests in flight")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    sim = RoleBinding(backend="sim")
    cfg = RolesConfig(seeker=sim, supporter=sim, strategy=sim, reward=sim)
    asyncio.run(drive(cfg, 200))  # warm-up
    rate, cpu, ok = asyncio.run(drive(cfg, args.calls))
    rows.append({"path": "RoleSet -> sim (in-process)", "calls_per_s": round(rate), "cpu_ms_per_call": round(cpu, 3), "ok": ok})
    with tempfile.TemporaryDirectory() as tmp:
        eps = Path(tmp) / "eps.json"
        server = subprocess.Popen(
            [sys.executable, "-m", "escpro", "serve", "--engine", "sim", "--port", "0", "--endpoints-out", str(eps),
             "--capacity", "1024"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        try:
            deadline = time.monotonic() + 30
            while not eps.exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"sim server did not start: {server.stderr.read().decode()[-500:]}")
                time.sleep(0.1)
            url = json.loads(eps.read_text())["seeker"]["base_url"]
            http = RoleBinding(backend="openai", model="sim", base_url=url, concurrency=args.concurrency)
            cfg = RolesConfig(seeker=http, supporter=http, strategy=http, reward=http)
            asyncio.run(drive(cfg, 200))
            rate, cpu, ok = asyncio.run(drive(cfg, args.calls))
            rows.append({"path": "RoleSet -> openai -> sim server", "calls_per_s": round(rate),
                         "cpu_ms_per_call": round(cpu, 3), "ok": ok})
        finally:
            server.terminate()
            server.wait(10)
    if args.json:
        print(json.dumps({"calls": args.calls, "results": rows}))
        return
    print(f"{args.calls} role calls (strategy/reward/seeker/supporter mix), all in flight")
    print(f"{'path':<34}{'calls/s':>9}{'client CPU ms/call':>20}{'ok':>7}")
    for r in rows:
        print(f"{r['path']:<34}{r['calls_per_s']:>9}{r['cpu_ms_per_call']:>20}{r['ok']:>7}")


if __name__ == "__main__":
    main()
