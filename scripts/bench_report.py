"""scripts/bench_build.py's results: what one arm measured (ArmResult), the JSON object `--json`
prints (report) and the text table (print_table). Apart from the measuring so that the report's
keys and wording change in one place and the measuring code stays short; the keys are read by
docs/performance.md and by whoever compares runs, so they are kept stable."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench_chains import bound_s


@dataclass
class ArmResult:
    wall_s: float
    cpu_s: float
    calls: int  # sent to the server
    cached: int  # answered from a tree's reuse cache (not sent)
    iterations: int
    trees_done: int
    trees_failed: int
    chains: dict[str, int]
    nodes: int | None = None
    server_cpu_s: float = 0.0


def report(args, esc: ArmResult, base: ArmResult | None, load: tuple[float, float]) -> dict:
    lat = args.latency_ms / 1000.0
    chains = list(esc.chains.values())
    b = bound_s(esc.calls, chains, lat, args.capacity)
    out = {
        "seeds": args.seeds, "turns": args.turns, "iterations": args.iterations,
        "latency_ms": args.latency_ms, "capacity": args.capacity, "reuse": args.reuse,
        "wall_s": round(esc.wall_s, 3),
        "baseline_wall_s": round(base.wall_s, 3) if base else None,
        "speedup_vs_baseline": round(base.wall_s / esc.wall_s, 2) if base else None,
        "calls": esc.calls,
        "bound_s": round(b, 3),
        "bound_throughput_s": round(esc.calls * lat / args.capacity, 3),
        "bound_chain_s": round(max(chains, default=0) * lat, 3),
        "longest_chain": max(chains, default=0),
        "efficiency": round(b / esc.wall_s, 3),
        "cpu_ms_per_call": round(1000.0 * esc.cpu_s / max(esc.calls, 1), 3),
        "calls_per_s": round(esc.calls / esc.wall_s, 1),
        "server_cpu_ms_per_call": round(1000.0 * esc.server_cpu_s / max(esc.calls, 1), 3),
        "server_utilisation": round(esc.calls * lat / args.capacity / esc.wall_s, 3),
        "iterations_done": esc.iterations,
        "trees_done": esc.trees_done,
        "trees_failed": esc.trees_failed,
        "nodes": esc.nodes,
        "calls_saved_by_reuse": esc.cached if args.reuse else 0,
        "baseline_calls": base.calls if base else None,
        "baseline_calls_per_s": round(base.calls / base.wall_s, 1) if base else None,
        "baseline_cpu_ms_per_call": round(1000.0 * base.cpu_s / max(base.calls, 1), 3) if base else None,
        "load_avg_1m": {"start": round(load[0], 2), "end": round(load[1], 2)},
        "cpus": os.cpu_count(),
    }
    return out


def print_table(r: dict) -> None:
    print(f"{r['seeds']} seeds x {r['turns']} turns, {r['iterations']} iterations/tree, latency "
          f"{r['latency_ms']:g} ms, capacity {r['capacity']}, answer reuse {'on' if r['reuse'] else 'off'}")
    print(f"{'arm':<10}{'wall s':>9}{'calls':>8}{'calls/s':>9}{'CPU ms/call':>13}")
    print(f"{'escpro':<10}{r['wall_s']:>9.2f}{r['calls']:>8}{r['calls_per_s']:>9.1f}{r['cpu_ms_per_call']:>13.3f}")
    if r["baseline_wall_s"] is not None:
        print(f"{'baseline':<10}{r['baseline_wall_s']:>9.2f}{r['baseline_calls']:>8}"
              f"{r['baseline_calls_per_s']:>9.1f}{r['baseline_cpu_ms_per_call']:>13.3f}")
    print(f"sim server CPU {r['server_cpu_ms_per_call']:.3f} ms/call (its own process, not counted above)")
    print(f"bound {r['bound_s']:.2f} s (throughput {r['bound_throughput_s']:.2f} s, longest chain "
          f"{r['longest_chain']} steps = {r['bound_chain_s']:.2f} s); efficiency {r['efficiency']:.3f}; "
          f"server busy {100 * r['server_utilisation']:.0f}%")
    if r["speedup_vs_baseline"] is not None:
        print(f"speedup vs baseline: {r['speedup_vs_baseline']:.2f}x")
    if r["reuse"]:
        saved = r["calls_saved_by_reuse"]
        print(f"answer reuse saved {saved} calls ({100 * saved / max(saved + r['calls'], 1):.1f}% of "
              f"{saved + r['calls']})")
    print(f"load average (1 min) {r['load_avg_1m']['start']} -> {r['load_avg_1m']['end']} on "
          f"{r['cpus']} CPUs; trees done {r['trees_done']}, failed {r['trees_failed']}")
