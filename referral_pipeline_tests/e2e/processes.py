"""The product as an operator runs it: the sandbox server and ``python -m referral_pipeline run`` as
separate processes (what ``make run`` does), so tests can overlap runs, SIGKILL them and read the
simulators' state and request counts over HTTP.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from referral_pipeline.runner import read_env_file
from referral_pipeline.sandbox.core.config import PORT_OFFSETS, SYSTEMS
from referral_pipeline.sandbox.testing import free_port_base

REPO = Path(__file__).resolve().parents[2]
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
# Authentication, not writes: token requests are made once per run and system.
AUTH_PATHS = ("/oauth2/token", "/oauth/token", "/v1/authorization")


class Sandbox:
    """A running ``python -m referral_pipeline.sandbox serve`` process."""

    def __init__(self, proc: subprocess.Popen, port_base: int, env: dict[str, str]):
        self.proc, self.port_base, self.env = proc, port_base, env

    def url(self, system: str) -> str:
        return f"http://127.0.0.1:{self.port_base + PORT_OFFSETS[system]}"

    def state(self, system: str) -> dict:
        return requests.get(self.url(system) + "/_sandbox/state", timeout=60).json()

    def request_counts(self, system: str) -> dict[str, int]:
        body = requests.get(self.url(system) + "/_sandbox/requests", params={"since": "9999"}, timeout=30).json()
        return body["request_counts"]

    def writes(self) -> dict[str, int]:
        """Write requests per ``system METHOD path`` (token requests excluded)."""
        out = {}
        for system in SYSTEMS:
            for key, n in self.request_counts(system).items():
                method, _, path = key.partition(" ")
                if method in WRITE_METHODS and not any(a in path for a in AUTH_PATHS):
                    out[f"{system} {key}"] = n
        return out

    def token_requests(self) -> dict[str, int]:
        return {f"{system} {key}": n for system in SYSTEMS for key, n in self.request_counts(system).items()
                if any(a in key for a in AUTH_PATHS)}

    def set_faults(self, system: str, **faults) -> None:
        requests.post(self.url(system) + "/_sandbox/faults", json=faults, timeout=10).raise_for_status()


@contextmanager
def sandbox_process(world: Path, tmp: Path, faults: str | None = None) -> Iterator[Sandbox]:
    port_base = free_port_base(len(SYSTEMS) + 1)
    env_file = tmp / "sandbox.env"
    cmd = [sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--data", str(world), "--state-dir",
           str(tmp / "sandbox-state"), "--port-base", str(port_base), "--env-file", str(env_file)]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "sandbox.log", "ab"))
    try:
        deadline = time.time() + 120
        while not env_file.exists():
            assert proc.poll() is None, f"sandbox exited: {(tmp / 'sandbox.log').read_text()[-2000:]}"
            assert time.time() < deadline, "sandbox did not start in 120 s"
            time.sleep(0.1)
        yield Sandbox(proc, port_base, read_env_file(env_file))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_run(sandbox: Sandbox, tmp: Path, world: Path, job: str = "nightly", as_of: str | None = None,
              log_name: str | None = None) -> subprocess.Popen:
    """``python -m referral_pipeline run --sandbox off`` against the running sandbox (its own process
    group, so a test can SIGKILL it and everything it started)."""
    env = {**os.environ, **sandbox.env, "DAGSTER_HOME": str(tmp / "dagster_home"),
           "REFERRAL_LOG_LEVEL": "WARNING"}
    env.pop("REFERRAL_AS_OF", None)
    cmd = [sys.executable, "-m", "referral_pipeline", "run", "--sandbox", "off", "--duckdb", str(tmp / "w.duckdb"),
           "--config", str(world / "programs.yaml"), "--job", job]
    if as_of:
        cmd += ["--as-of", as_of]
    log = open(tmp / (log_name or f"run-{job}.log"), "ab")
    return subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, tmp: Path, timeout: float = 600) -> int:
    rc = proc.wait(timeout=timeout)
    return rc


def run_log(tmp: Path, name: str) -> str:
    path = tmp / name
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)
