"""scripts/bench_vllm.py's cache-pressure options: what they change in the command escpro starts
vLLM with, and the KV cache size read back from the server's metrics. The bench itself runs a
real vLLM (minutes); its figures are in docs/serving.md."""

from __future__ import annotations

from pathlib import Path

from escpro.demo.served import SERVING_FILE
from escpro.roles.serving import load_serving, server_command, server_env
from tests.helpers import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_vllm.py"


bv = load_script(SCRIPT)


def _served(over: dict):
    cfg = load_serving(SERVING_FILE)
    return cfg, cfg.models[0].model_copy(update=over)


def test_kv_blocks_keeps_the_serving_files_arguments() -> None:
    cfg, m = _served(bv.kv_overrides(None, 40))
    cmd = server_command(cfg, m)
    i = cmd.index("--num-gpu-blocks-override")
    assert cmd[i + 1] == "40"
    assert "--max-num-seqs" in cmd  # serving/cpu.yaml's own extra_args survive
    assert server_env(cfg, m)["VLLM_CPU_KVCACHE_SPACE"] == f"{cfg.models[0].cpu_kv_cache_gb:g}"


def test_kv_cache_gb_sets_the_cpu_cache_variable() -> None:
    cfg, m = _served(bv.kv_overrides(1, None))
    assert server_env(cfg, m)["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert "--num-gpu-blocks-override" not in server_command(cfg, m)
    assert bv.kv_overrides(None, None) == {}


def test_cache_info_reads_the_servers_cache_size() -> None:
    text = ('# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n'
            'vllm:cache_config_info{block_size="128",cache_dtype="auto",mamba_block_size="None",'
            'num_gpu_blocks="40",prefix_caching_hash_algo="sha256"} 1.0\n'
            'vllm:prompt_tokens_total{engine="0",model_name="gemma3-270m"} 12.0\n')
    log = "(EngineCore pid=1) INFO [kv_cache_utils.py:2327] CPU KV cache size: 110,733 tokens, Maximum ...\n"
    assert bv.cache_info(text, log) == {"kv_blocks": 40, "block_size": 128, "kv_tokens": 110733}
    assert bv.cache_info(text) == {"kv_blocks": 40, "block_size": 128, "kv_tokens": None}
    assert bv.cache_info("vllm:prompt_tokens_total 1.0\n") == {"kv_blocks": None, "block_size": None,
                                                               "kv_tokens": None}
