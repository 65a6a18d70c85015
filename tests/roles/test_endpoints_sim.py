"""The endpoints file loader and the sim engine's knobs."""

import pytest

from escpro.errors import ConfigError
from escpro.roles.backends.sim import SimEngine
from escpro.roles.config import RolesConfig, SimSettings
from escpro.roles.endpoints import apply_endpoints, load_endpoints
from escpro.roles.schemas import parse_json_answer, reward_schema


@pytest.mark.parametrize(
    "body, match",
    [
        ("{}", "mapping"),
        ('{"judge": {"base_url": "u", "model": "m"}}', "unknown role"),
        ('{"reward": {"base_url": "http://h/v1"}}', "reward.model"),
        ('{"reward": {"base_url": "http://h/v1", "model": "m", "port": 1}}', "reward.port: unknown key"),
        ('{"reward": {"base_url": "u", "model": "m"}}', "reward.base_url: 'u' is not an http"),
        ('{"reward": {"base_url": "ftp://h/v1", "model": "m"}}', "not an http"),
        ('{"reward": {"base_url": "http://h:70000/v1", "model": "m"}}', "port must be between 1 and 65535"),
        ('{"reward": {"base_url": "http://h/v1", "model": "m", "structured": "json"}}', "reward.structured"),
        ('{"reward": {"base_url": "http://h/v1", "model": "  "}}', "reward.model"),
        ("{not json", "not valid"),
    ],
)
def test_bad_endpoints_files(tmp_path, body, match):
    p = tmp_path / "eps.json"
    p.write_text(body)
    with pytest.raises(ConfigError, match=match):
        load_endpoints(p)


def test_missing_endpoints_file(tmp_path):
    with pytest.raises(ConfigError, match="escpro serve"):
        load_endpoints(tmp_path / "none.json")


def test_apply_endpoints_keeps_decoding_settings(tmp_path):
    p = tmp_path / "eps.yaml"
    p.write_text("reward: {base_url: 'http://h:1/v1', model: m, api_key_env: K, structured: response_format}\n")
    cfg = apply_endpoints(RolesConfig(), p)
    r = cfg.reward
    assert (r.backend, r.base_url, r.model, r.api_key_env, r.structured) == ("openai", "http://h:1/v1", "m", "K", "response_format")
    assert r.temperature == 0.0 and r.max_tokens == RolesConfig().reward.max_tokens
    assert cfg.seeker.backend is None  # roles the file does not name stay unset: never the simulator


def test_sim_engine_end_probability_grows_and_answers_are_valid():
    eng = SimEngine(SimSettings(end_probability=0.0, end_growth=0.1))

    def end_rate(turns: int) -> float:
        hist = "\n".join("Seeker: a\nSupporter: b" for _ in range(turns))
        ends = 0
        for i in range(400):
            msgs = ({"role": "system", "content": f"s{i}"}, {"role": "user", "content": "\n" + hist})
            ends += "[END]" in eng.answer("seeker", msgs, None).text
        return ends / 400

    assert end_rate(0) == 0.0
    assert 0.15 < end_rate(3) < 0.45 < end_rate(8)
    for i in range(50):
        ans = eng.answer("reward", ({"role": "user", "content": str(i)},), reward_schema())
        parse_json_answer(ans.text, reward_schema())
    a = eng.answer("reward", ({"role": "user", "content": "x"},), reward_schema(), seed=1)
    assert a == eng.answer("reward", ({"role": "user", "content": "x"},), reward_schema(), seed=1)


def test_gguf_cache_key_follows_the_file(tmp_path, monkeypatch):
    from escpro.roles.backends.transformers import gguf_cache_dir, resolve_model_path

    monkeypatch.setenv("ESCPRO_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_model_path(str(f), None) == (str(tmp_path), "m.gguf")
    a = gguf_cache_dir(str(tmp_path), "m.gguf")
    assert a.parent == tmp_path / "cache" / "gguf" and a.name.startswith("m-")
    assert gguf_cache_dir(str(tmp_path), "m.gguf") == a
    f.write_bytes(b"GGUF" + b"\1" * 32)  # a different file at the same path
    assert gguf_cache_dir(str(tmp_path), "m.gguf") != a
