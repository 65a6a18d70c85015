"""Replicas of one model: two real `escpro serve --engine sim` servers on loopback, a role listing
both; calls spread by least outstanding requests, failover when one dies, recovery when it is back."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.backends.replicas import ReplicaSet
from escpro.roles.config import RolesConfig
from escpro.roles.endpoints import write_endpoints
from escpro.roles.roleset import build_roleset
from escpro.taxonomy import load_taxonomy

CTX = DialogueContext("work", "stressed", (Utterance("seeker", "I cannot sleep before exams."),))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sim(port: int, latency_ms: float, capacity: int = 64) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "escpro", "serve", "--engine", "sim", "--port", str(port),
         "--latency-ms", str(latency_ms), "--capacity", str(capacity)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "sim server did not start"
            time.sleep(0.1)


def served(port: int) -> int:
    data = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5).read())
    return sum(data["requests"].values())


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def two_sims():
    ports = [free_port(), free_port()]
    procs = [start_sim(ports[0], latency_ms=20), start_sim(ports[1], latency_ms=200)]
    try:
        yield ports, procs
    finally:
        for p in procs:
            stop(p)


def roleset_for(tmp_path, ports):
    eps = tmp_path / "endpoints.json"
    urls = [f"http://127.0.0.1:{p}/v1" for p in ports]
    write_endpoints(eps, {r: {"base_url": urls, "model": "sim", "api_key_env": None}
                          for r in ("seeker", "supporter", "strategy", "reward")})
    return build_roleset(RolesConfig(), load_taxonomy("cso8"), endpoints=eps)


def test_calls_spread_by_least_outstanding_and_fail_over(tmp_path, two_sims):
    ports, procs = two_sims
    rs = roleset_for(tmp_path, ports)
    model = rs.models["strategy"]
    assert isinstance(model, ReplicaSet) and len(model.replicas) == 2

    async def burst(n, workers=6):
        """`workers` callers, each sending its next call when the last one is answered."""
        async def worker(k):
            return [await rs.score_strategies(CTX) for _ in range(k)]
        parts = await asyncio.gather(*(worker(n // workers) for _ in range(workers)))
        return [o for part in parts for o in part]

    async def go():
        try:
            first = await burst(60)
            before = (served(ports[0]), served(ports[1]))
            stop(procs[1])  # replica 2 dies: every call must still be answered, by replica 1
            second = await burst(30)
            health_after_death = [s["healthy"] for s in model.stats()]
            procs[1] = start_sim(ports[1], latency_ms=20)  # back, on the same port
            await asyncio.sleep(model.cooldown_s * 2 + 0.5)
            third = await burst(40)
            return first, before, second, health_after_death, third
        finally:
            await rs.aclose()

    first, before, second, health_after_death, third = asyncio.run(go())
    assert all(o.ok for o in first + second + third)
    fast, slow = before
    # Least outstanding: the 10x faster replica frees its slots sooner and takes more of the burst,
    # but the slow one still takes part.
    assert fast + slow == 60 and slow >= 5 and fast > 2 * slow, before
    assert health_after_death == [True, False]
    assert served(ports[1]) > 0, "the restored replica got no calls after its cool-down"
    assert all(s["healthy"] for s in model.stats())


def test_one_replica_down_from_the_start_still_answers(tmp_path):
    port = free_port()
    dead = free_port()  # nothing listens here
    proc = start_sim(port, latency_ms=5)
    try:
        rs = roleset_for(tmp_path, [dead, port])

        async def go():
            try:
                return await asyncio.gather(*(rs.judge(CTX.extend(Utterance("supporter", "That sounds hard.", "Affirmation")))
                                              for _ in range(10)))
            finally:
                await rs.aclose()

        t0 = time.monotonic()
        out = asyncio.run(go())
        assert all(o.ok for o in out) and time.monotonic() - t0 < 10
        assert served(port) == 10
    finally:
        stop(proc)


def test_endpoints_reject_a_bad_replica_list(tmp_path):
    from escpro.errors import ConfigError
    from escpro.roles.endpoints import load_endpoints

    eps = tmp_path / "e.json"
    eps.write_text(json.dumps({"seeker": {"base_url": ["http://a/v1", 3], "model": "m"}}))
    with pytest.raises(ConfigError, match="base_url"):
        load_endpoints(eps)
