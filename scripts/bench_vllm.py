"""escpro build against a real vLLM (the CPU build serving Gemma 3 270M) beside the same server
saturated by a plain load generator with the same request shapes.

One run, three parts:
1. `build`: `escpro build` over a fixed workload (the first --seeds demo seeds, --iterations
   iterations per tree, answer reuse off), every role through the server. escpro's tokens/s =
   the server's own prompt + generation token counters (/metrics) over the build's wall time.
2. `engine`: every request the build sent, replayed with the same prompt and the same number of
   output tokens (`ignore_eos`, `max_tokens` = what the build got back; no grammar, so the length
   is exact) by a load generator keeping --concurrency requests in flight (the server's
   max-num-seqs): the tokens/s the server reaches saturated. efficiency_vs_engine = 1 / 2.
3. `ordering`: the same replay in three orders, with the prefix cache reset before each where the
   server allows it (VLLM_SERVER_DEV_MODE=1, set when the bench starts the server): as escpro
   sent them (trees interleaved), grouped by tree (each tree's calls back to back), shuffled.
   Prefix-cache hit rate from /metrics for each.

  .venv/bin/python scripts/bench_vllm.py --json                   # starts serving/cpu.yaml itself
  .venv/bin/python scripts/bench_vllm.py --endpoints E.json --json  # a server already running
  .venv/bin/python scripts/bench_vllm.py --validity 24 --json      # only: schema-valid rate of Strategy/Reward
  .venv/bin/python scripts/bench_vllm.py --kv-blocks 192 --json    # a 3.9k-token KV cache: ordering under pressure
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from escpro.config import load_config  # noqa: E402
from escpro.data import DEMO_SEEDS  # noqa: E402
from escpro.demo.served import SERVED_NAME  # noqa: E402
from escpro.roles.backends.openai import build_body  # noqa: E402
from escpro.roles.base import RoleRequest, RoleResult  # noqa: E402

COUNTERS = ("vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_queries_total", "vllm:request_success_total")


def metrics(root: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"{root}/metrics", timeout=30).read().decode()
    out = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in out:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


def cache_info(metrics_text: str, server_log: str = "") -> dict[str, int | None]:
    """The server's KV cache size, to tell whether a workload fits: blocks from the metrics
    (vllm:cache_config_info), tokens from the server's log ("KV cache size: N tokens"; a hybrid
    model like Gemma 3 spends one block per attention group, so tokens != blocks x block size)."""
    out: dict[str, int | None] = {"kv_blocks": None, "block_size": None, "kv_tokens": None}
    for line in metrics_text.splitlines():
        if line.startswith("vllm:cache_config_info{"):
            get = dict(re.findall(r'(\w+)="([^"]*)"', line))
            for key, label in (("kv_blocks", "num_gpu_blocks"), ("block_size", "block_size")):
                out[key] = int(get[label]) if get.get(label, "").isdigit() else None
    sizes = re.findall(r"KV cache size: ([\d,]+) tokens", server_log)
    if sizes:
        out["kv_tokens"] = int(sizes[-1].replace(",", ""))
    return out


def delta(a: dict[str, float], b: dict[str, float], wall: float) -> dict[str, float]:
    d = {k.split(":", 1)[1].removesuffix("_total"): b[k] - a[k] for k in COUNTERS}
    tokens = d["prompt_tokens"] + d["generation_tokens"]
    return {
        "wall_s": round(wall, 2), "requests": int(d["request_success"]),
        "prompt_tokens": int(d["prompt_tokens"]), "generation_tokens": int(d["generation_tokens"]),
        "tokens_per_s": round(tokens / wall, 2), "generation_tokens_per_s": round(d["generation_tokens"] / wall, 2),
        "prefix_cache_hit_rate": round(d["prefix_cache_hits"] / d["prefix_cache_queries"], 4)
        if d["prefix_cache_queries"] else None,
    }


def reset_prefix_cache(root: str) -> bool:
    try:
        req = urllib.request.Request(f"{root}/reset_prefix_cache", method="POST")
        return urllib.request.urlopen(req, timeout=30).status == 200
    except OSError:
        return False


@dataclass
class Recorder:
    """Wraps a role's model: keeps every request sent and what came back (for the replay)."""

    inner: object
    sent: list = field(default_factory=list)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def generate(self, requests):
        results: list[RoleResult] = await self.inner.generate(requests)
        now = time.monotonic()
        for req, res in zip(requests, results):
            self.sent.append((now - res.latency_ms / 1000, req, res))
        return results


def record_build(cfg, endpoints: Path, seeds: int, db: Path) -> tuple[list, float]:
    from escpro.build.run import BuildOptions, run_build
    from escpro.roles.roleset import build_roleset
    from escpro.taxonomy import load_taxonomy

    rs = build_roleset(cfg.roles, load_taxonomy(cfg.build.taxonomy), endpoints=endpoints, random_seed=0)
    recorders = {}
    for role, m in rs.models.items():
        recorders.setdefault(id(m), Recorder(m))
        rs.models[role] = recorders[id(m)]
    t0 = time.monotonic()
    summary = run_build(BuildOptions(seeds=DEMO_SEEDS, db=db, config=cfg, limit=seeds, random_seed=0,
                                     endpoints=endpoints), roleset=rs).to_dict()
    wall = time.monotonic() - t0
    sent = sorted((x for r in recorders.values() for x in r.sent), key=lambda x: x[0])
    failed = sum(summary["failed_calls"].values())
    return [(req, res) for _, req, res in sent], wall, failed


def replay_body(req: RoleRequest, res: RoleResult, model: str, api: str) -> bytes:
    body = build_body(req, model, api=api, structured="none")
    n = max(1, res.completion_tokens)
    body.update(max_tokens=n, min_tokens=n, ignore_eos=True, temperature=0.0)
    body.pop("stop", None)
    return orjson.dumps(body)


async def replay(url: str, bodies: list[bytes], concurrency: int) -> int:
    """Keep `concurrency` requests in flight until every body is sent; returns failures."""
    queue = list(reversed(bodies))
    failures = 0
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async def worker():
            nonlocal failures
            while queue:
                body = queue.pop()
                async with s.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    failures += r.status != 200
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def orders(sent: list, seed: int = 0) -> dict[str, list]:
    by_tree: dict[str, list] = {}
    for item in sent:
        by_tree.setdefault(str(item[0].meta.get("tree_id")), []).append(item)
    shuffled = list(sent)
    random.Random(seed).shuffle(shuffled)
    return {"as_sent": list(sent), "by_tree": [x for t in by_tree.values() for x in t], "shuffled": shuffled}


async def validity(cfg, endpoints: Path, n: int) -> dict:
    """Strategy and Reward calls on demo dialogue prefixes: share of schema-valid answers (one try)."""
    from escpro.roles.api import DialogueContext, Utterance
    from escpro.roles.roleset import build_roleset
    from escpro.seeds.load import load_seeds
    from escpro.taxonomy import load_taxonomy

    tax = load_taxonomy(cfg.build.taxonomy)
    roles = cfg.roles.model_copy(update={"max_retries": 0})
    rs = build_roleset(roles, tax, endpoints=endpoints, random_seed=0)
    ctxs = []
    for d in load_seeds(DEMO_SEEDS, tax).dialogues:
        hist = [Utterance(t.speaker, t.text, t.strategy) for t in d.turns]
        for k in range(1, len(hist) + 1):
            ctxs.append((d, tuple(hist[:k])))
    pick = ctxs[:: max(1, len(ctxs) // n)][:n]
    try:
        strat = await asyncio.gather(*(rs.score_strategies(DialogueContext(d.scene, d.situation, h))
                                       for d, h in pick if h[-1].speaker == "seeker"))
        judge = await asyncio.gather(*(rs.judge(DialogueContext(d.scene, d.situation, h))
                                       for d, h in pick if any(u.speaker == "supporter" for u in h)))
    finally:
        await rs.aclose()

    def rate(outs):
        ok = sum(o.ok for o in outs)
        hit_limit = sum(1 for o in outs if not o.ok and (o.result.completion_tokens or 0)
                        >= o.result.request.sampling.max_tokens)
        return {"calls": len(outs), "valid": ok, "rate": round(ok / len(outs), 3) if outs else None,
                "invalid_at_max_tokens": hit_limit,
                "mean_completion_tokens": round(sum(o.result.completion_tokens for o in outs) / max(1, len(outs)), 1)}

    return {"strategy": rate(strat), "reward": rate(judge)}


def kv_overrides(kv_cache_gb: int | None, kv_blocks: int | None) -> dict:
    """Served-model keys for a smaller KV cache: VLLM_CPU_KVCACHE_SPACE, and/or a fixed number of
    KV blocks (vLLM's --num-gpu-blocks-override, which the CPU build honours too) for a cache
    smaller than the 1 GB granularity of the variable allows."""
    from escpro.demo.served import SERVING_FILE
    from escpro.roles.serving import load_serving

    over: dict = {}
    if kv_cache_gb is not None:
        over["cpu_kv_cache_gb"] = kv_cache_gb
    if kv_blocks is not None:
        extra = list(load_serving(SERVING_FILE).models[0].extra_args)
        over["extra_args"] = [*extra, "--num-gpu-blocks-override", str(kv_blocks)]
    return over


def start_server(work: Path, whitespace_flag: bool, model_overrides: dict | None = None):
    from escpro.demo.served import served_roles

    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # /reset_prefix_cache for the ordering runs
    over = {} if whitespace_flag else {"structured_outputs_config": None}
    return served_roles(work, lambda m: print(m, file=sys.stderr), overrides=over, model_overrides=model_overrides)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=Path, help="use a running server (else serving/cpu.yaml is started)")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "build" / "vllm-cpu.yaml")
    ap.add_argument("--seeds", type=int, default=6,
                    help="trees: the first N demo seeds (6 = all; 2 trees cannot keep a fast CPU engine busy)")
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--tree-parallel", type=int, default=1,
                    help="iterations of one tree in flight (more concurrent calls from few trees)")
    ap.add_argument("--concurrency", type=int, default=32, help="load generator: requests in flight")
    ap.add_argument("--no-ordering", action="store_true", help="skip the three ordering replays")
    ap.add_argument("--validity", type=int, default=0, help="only measure the schema-valid rate over N contexts")
    ap.add_argument("--no-whitespace-flag", action="store_true",
                    help="start the server with vLLM's default JSON grammar (for --validity)")
    ap.add_argument("--kv-cache-gb", type=int, help="started server: VLLM_CPU_KVCACHE_SPACE (serving file: 2)")
    ap.add_argument("--kv-blocks", type=int,
                    help="started server: exactly N KV-cache blocks (--num-gpu-blocks-override), for cache pressure")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.endpoints and (args.kv_cache_gb is not None or args.kv_blocks is not None):
        ap.error("--kv-cache-gb/--kv-blocks size the server the bench starts; not with --endpoints")
    cfg = load_config(args.config)
    cfg = cfg.model_copy(update={"build": cfg.build.model_copy(update={
        "min_iterations": args.iterations, "max_iterations": args.iterations, "reuse_answers": False,
        "tree_parallel": args.tree_parallel})})
    work = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    ctx = (contextlib.nullcontext(args.endpoints) if args.endpoints
           else start_server(work, not args.no_whitespace_flag, kv_overrides(args.kv_cache_gb, args.kv_blocks)))
    out: dict = {"seeds": args.seeds, "iterations": args.iterations, "tree_parallel": args.tree_parallel,
                 "concurrency": args.concurrency, "kv_cache_gb": args.kv_cache_gb, "kv_blocks": args.kv_blocks}
    with ctx as eps:
        ep = json.loads(Path(eps).read_text())["strategy"]
        base = ep["base_url"] if isinstance(ep["base_url"], str) else ep["base_url"][0]
        root, api = base.removesuffix("/v1"), ep.get("api", "chat")
        if args.validity:
            out["validity"] = asyncio.run(validity(cfg, Path(eps), args.validity))
        else:
            out.update(run_bench(cfg, Path(eps), root, base, ep["model"], api, args, work))
    print(json.dumps(out, indent=2) if args.json else out)
    return 0


def run_bench(cfg, eps: Path, root: str, base: str, model: str, api: str, args, work: Path) -> dict:
    url = f"{base}/{'chat/completions' if api == 'chat' else 'completions'}"
    reset_prefix_cache(root)
    log = work / "serve-logs" / f"{SERVED_NAME}.log"  # only when the bench started the server
    cache = cache_info(urllib.request.urlopen(f"{root}/metrics", timeout=30).read().decode(),
                       log.read_text(errors="replace") if log.exists() else "")
    m0 = metrics(root)
    sent, wall, failed = record_build(cfg, eps, args.seeds, work / "bench.duckdb")
    build = delta(m0, metrics(root), wall) | {"failed_calls": failed, "calls_sent": len(sent)}
    runs = {}
    for name, items in orders(sent).items():
        if args.no_ordering and name != "as_sent":
            continue
        bodies = [replay_body(req, res, model, api) for req, res in items]
        cleared = reset_prefix_cache(root)
        m0, t0 = metrics(root), time.monotonic()
        fails = asyncio.run(replay(url, bodies, args.concurrency))
        runs[name] = delta(m0, metrics(root), time.monotonic() - t0) | {"failures": fails, "cache_reset": cleared}
    engine = runs["as_sent"]
    return {
        "kv_cache": cache, "build": build, "engine_saturated": engine,
        "efficiency_vs_engine": round(build["tokens_per_s"] / engine["tokens_per_s"], 3),
        "ordering": {k: {"prefix_cache_hit_rate": v["prefix_cache_hit_rate"], "tokens_per_s": v["tokens_per_s"],
                         "wall_s": v["wall_s"]} for k, v in runs.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
