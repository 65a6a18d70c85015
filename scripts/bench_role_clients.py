"""Client CPU per call of the HTTP clients the `openai` role backend could use, side by side.

Starts the sim server (`escpro serve --engine sim`) as a separate process with a fixed latency
and slot count, then pushes N chat-completion calls at concurrency C through each client from
this process and reports calls/s and this process's CPU time per call (the server's CPU is not
counted). Clients: escpro's OpenAIModel (aiohttp underneath, with escpro's priority slots and
retries), a bare aiohttp session, httpx.AsyncClient and
the openai SDK's AsyncOpenAI (default httpx transport). httpx/openai are optional: pass
--extra-path DIR if they live outside the venv (e.g. `pip install --target DIR httpx openai`).

    python scripts/bench_role_clients.py --calls 2000 --concurrency 128 --latency-ms 20
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

BODY = {
    "model": "sim",
    "messages": [{"role": "system", "content": "You rate dialogues."}, {"role": "user", "content": "rate " * 200}],
    "max_tokens": 64,
    "temperature": 0.0,
}


async def run_escpro(url: str, n: int, c: int) -> int:
    from escpro.roles.backends.openai import OpenAIModel
    from escpro.roles.base import RoleRequest, Sampling

    m = OpenAIModel(url, "sim", concurrency=c, timeout_s=30, retries=0)
    reqs = [RoleRequest("supporter", tuple(BODY["messages"]) + ({"role": "user", "content": str(i)},),
                        sampling=Sampling(max_tokens=64)) for i in range(n)]
    res = await m.generate(reqs)
    await m.aclose()
    return sum(r.ok for r in res)


async def run_aiohttp(url: str, n: int, c: int) -> int:
    import aiohttp

    sem = asyncio.Semaphore(c)
    data = json.dumps(BODY).encode()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:
        async def one() -> bool:
            async with sem, s.post(url + "/chat/completions", data=data,
                                   headers={"Content-Type": "application/json", "X-Escpro-Role": "supporter"}) as r:
                json.loads(await r.read())
                return r.status == 200

        return sum(await asyncio.gather(*(one() for _ in range(n))))


async def run_httpx(url: str, n: int, c: int) -> int:
    import httpx

    sem = asyncio.Semaphore(c)
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one() -> bool:
            async with sem:
                r = await client.post(url + "/chat/completions", json=BODY, headers={"X-Escpro-Role": "supporter"})
                r.json()
                return r.status_code == 200

        return sum(await asyncio.gather(*(one() for _ in range(n))))


async def run_openai_sdk(url: str, n: int, c: int) -> int:
    from openai import AsyncOpenAI

    sem = asyncio.Semaphore(c)
    client = AsyncOpenAI(base_url=url, api_key="x", max_retries=0, timeout=30)

    async def one() -> bool:
        async with sem:
            r = await client.chat.completions.create(model="sim", messages=BODY["messages"], max_tokens=64,
                                                     extra_headers={"X-Escpro-Role": "supporter"})
            return bool(r.choices)

    ok = sum(await asyncio.gather(*(one() for _ in range(n))))
    await client.close()
    return ok


CLIENTS = {"escpro-aiohttp": run_escpro, "aiohttp": run_aiohttp, "httpx": run_httpx, "openai-sdk": run_openai_sdk}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--capacity", type=int, default=64)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--extra-path", default=None, help="appended to sys.path (httpx/openai outside the venv)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)
    with tempfile.TemporaryDirectory() as tmp:
        eps = Path(tmp) / "eps.json"
        server = subprocess.Popen(
            [sys.executable, "-m", "escpro", "serve", "--engine", "sim", "--port", "0", "--endpoints-out", str(eps),
             "--latency-ms", str(args.latency_ms), "--capacity", str(args.capacity)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        try:
            deadline = time.monotonic() + 30
            while not eps.exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"sim server did not start: {server.stderr.read().decode()[-500:]}")
                time.sleep(0.1)
            url = json.loads(eps.read_text())["supporter"]["base_url"]
            rows = []
            for name in args.clients.split(","):
                fn = CLIENTS[name]
                try:
                    asyncio.run(fn(url, 50, 16))  # warm-up (imports, connections)
                except ImportError as exc:
                    rows.append({"client": name, "error": f"not installed ({exc.name})"})
                    continue
                cpu0, t0 = time.process_time(), time.perf_counter()
                ok = asyncio.run(fn(url, args.calls, args.concurrency))
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
                rows.append({"client": name, "ok": ok, "calls_per_s": round(args.calls / wall, 1),
                             "client_cpu_ms_per_call": round(1000 * cpu / args.calls, 3)})
        finally:
            server.terminate()
            server.wait(10)
    if args.json:
        print(json.dumps({"args": vars(args), "results": rows}))
        return
    print(f"{args.calls} calls, concurrency {args.concurrency}, server latency {args.latency_ms:g} ms, "
          f"{args.capacity} slots")
    print(f"{'client':<16}{'ok':>7}{'calls/s':>10}{'CPU ms/call':>13}")
    for r in rows:
        if "error" in r:
            print(f"{r['client']:<16}{r['error']}")
        else:
            print(f"{r['client']:<16}{r['ok']:>7}{r['calls_per_s']:>10}{r['client_cpu_ms_per_call']:>13}")


if __name__ == "__main__":
    main()
