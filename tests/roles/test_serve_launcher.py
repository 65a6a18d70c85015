"""The vLLM launcher end to end with a stand-in server: the `vllm` executable is a script that
starts escpro's sim server on the port it is given, so start, health wait, endpoints file, a real
call, and the clean stop on SIGTERM all run for real on a CPU (ESCPRO_ASSUME_GPU=1 skips the GPU
probe)."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.config import RolesConfig
from escpro.roles.roleset import build_roleset
from escpro.taxonomy import load_taxonomy
from tests.helpers import start_serve

FAKE_VLLM = """#!{python}
import os, sys
args = sys.argv[1:]
assert args[0] == "serve" and "--enable-prefix-caching" in args, args
if os.environ.get("FAKE_VLLM_FAIL"):
    print("CUDA error: out of memory", flush=True)
    sys.exit(3)
port = args[args.index("--port") + 1]
os.execv(sys.executable, [sys.executable, "-m", "escpro", "serve", "--engine", "sim", "--port", port])
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(tmp_path):
    exe = tmp_path / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable))
    exe.chmod(0o755)
    cfg = tmp_path / "serving.yaml"
    p1, p2 = free_port(), free_port()
    cfg.write_text(
        f"log_dir: {tmp_path / 'logs'}\nhealth_timeout_s: 60\nvllm: {{executable: {exe}}}\nmodels:\n"
        f"  - {{name: dialog, model: m1, roles: [seeker, supporter], port: {p1}}}\n"
        f"  - {{name: judge, model: m2, roles: [strategy, reward], port: {p2}}}\n"
    )
    return cfg


def test_serve_starts_waits_writes_endpoints_and_stops_children(tmp_path):
    cfg = setup(tmp_path)
    eps = tmp_path / "endpoints.json"
    env = {**os.environ, "ESCPRO_ASSUME_GPU": "1", "PYTHONUNBUFFERED": "1"}
    proc = start_serve(cfg, eps, env=env, timeout_s=60, poll_s=0.2, what="servers did not become healthy")
    try:
        data = json.loads(eps.read_text())
        assert data["seeker"]["model"] == "dialog" and data["reward"]["model"] == "judge"
        assert data["seeker"]["base_url"] != data["reward"]["base_url"]
        rs = build_roleset(RolesConfig(), load_taxonomy("cso8"), endpoints=eps)
        ctx = DialogueContext("s", "t", (Utterance("seeker", "hi"),))

        async def go():
            try:
                return await asyncio.gather(rs.score_strategies(ctx), rs.support(ctx, "Affirmation"))
            finally:
                await rs.aclose()

        assert all(o.ok for o in asyncio.run(go()))
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        err = proc.stderr.read()
        pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", err)]
        assert len(pids) == 2 and "servers stopped" in err
        for pid in pids:  # every child is gone
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            assert not alive, f"child {pid} still running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_child_dying_before_health_is_reported_with_its_log(tmp_path):
    cfg = setup(tmp_path)
    env = {**os.environ, "ESCPRO_ASSUME_GPU": "1", "FAKE_VLLM_FAIL": "1"}
    res = subprocess.run([sys.executable, "-m", "escpro", "serve", "--config", str(cfg)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode != 0
    assert "exited with code 3 before it was healthy" in res.stderr
    assert "CUDA error: out of memory" in res.stderr and "Traceback" not in res.stderr
