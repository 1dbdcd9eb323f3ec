"""``make run`` / ``make dev``: the sandbox's lifecycle around one job run or ``dagster dev``.

``run`` starts the sandbox in the background (unless ``--sandbox off``), loads the environment it
prints, runs the ``nightly`` job once in-process against a persistent Dagster instance
(``$DAGSTER_HOME``, so the run shows in the UI later), prints the summary, stops the sandbox (which
writes its state), and exits non-zero when the run failed.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]


def add_sandbox_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sandbox", choices=("on", "off"), default="on")
    p.add_argument("--data", type=Path, help="fixture directory for the sandbox")
    p.add_argument("--scale", default="small")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--state-dir", type=Path, default=Path("data/sandbox-state"))
    p.add_argument("--port-base", type=int, default=8700)
    p.add_argument("--faults")
    p.add_argument("--config", help="programs file (default data/programs.yaml, or DIR/programs.yaml with --data)")
    p.add_argument("--duckdb", default="data/referral.duckdb")


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, _, value = line.partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


@contextmanager
def sandbox(args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """Run the sandbox in a child process for the duration of the block; yields its env vars."""
    if args.sandbox == "off":
        yield {}
        return
    env_file = Path(tempfile.mkdtemp(prefix="referral-sandbox-")) / "sandbox.env"
    cmd = [sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--state-dir", str(args.state_dir),
           "--port-base", str(args.port_base), "--env-file", str(env_file)]
    cmd += ["--data", str(args.data)] if args.data else ["--scale", args.scale, "--seed", str(args.seed)]
    if args.faults:
        cmd += ["--faults", args.faults]
    print(f"starting sandbox: {' '.join(shlex.quote(c) for c in cmd[1:])}", flush=True)
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        deadline = time.time() + 900
        while not env_file.exists():
            if proc.poll() is not None:
                raise SystemExit(f"sandbox exited with status {proc.returncode} before it was ready")
            if time.time() > deadline:
                raise SystemExit("sandbox did not become ready in 15 minutes")
            time.sleep(0.2)
        env = read_env_file(env_file)
        Path(".sandbox.env").write_text(env_file.read_text())
        yield env
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
        Path(".sandbox.env").unlink(missing_ok=True)
        shutil.rmtree(env_file.parent, ignore_errors=True)


def prepare_dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home.resolve())
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def configure_environment(args: argparse.Namespace, sandbox_env: dict[str, str]) -> None:
    os.environ.update(sandbox_env)
    config = args.config
    if not config and args.data and (Path(args.data) / "programs.yaml").exists() and args.sandbox == "on":
        config = str(Path(args.data) / "programs.yaml")
    os.environ["REFERRAL_CONFIG"] = config or os.environ.get("REFERRAL_CONFIG") or "data/programs.yaml"
    os.environ["REFERRAL_DUCKDB_PATH"] = args.duckdb
    if getattr(args, "as_of", None):
        os.environ["REFERRAL_AS_OF"] = args.as_of


PID_TAG, HOST_TAG = "referral/pid", "referral/host"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance) -> list[str]:
    """Runs of this host whose process died (SIGKILL, power loss) stay STARTED in the instance and keep
    their ``duckdb`` pool slot, which would block every later run forever: mark them failed and free
    their slots. Runs of live processes (an overlapping hourly/nightly run) are left alone."""
    from dagster import DagsterRunStatus, RunsFilter

    released = []
    running = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
    for run in running:
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or host != socket.gethostname() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(run, f"process {pid} died before the run finished (released by the next run)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def run_job(job_name: str = "nightly") -> tuple[bool, str]:
    from dagster import DagsterInstance

    from .definitions import build_definitions

    defs = build_definitions()
    job = defs.resolve_job_def(job_name)
    with DagsterInstance.get() as instance:
        for run_id in release_dead_runs(instance):
            print(f"released run {run_id}: its process is gone", file=sys.stderr)
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            tags={"referral/trigger": "make run", PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
            run_config={"loggers": {"console": {"config": {"log_level": os.environ.get("REFERRAL_LOG_LEVEL", "INFO")}}}})
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"FAILED {event.step_key}: {event.event_specific_data.error.message.strip()}", file=sys.stderr)
    return result.success, result.run_id


def cmd_run(args: argparse.Namespace) -> int:
    from .summary import print_summary

    prepare_dagster_home()
    with sandbox(args) as env:
        configure_environment(args, env)
        started = time.monotonic()
        ok, run_id = run_job(args.job)
        print_summary(os.environ["REFERRAL_DUCKDB_PATH"], run_id, ok, time.monotonic() - started)
    return 0 if ok else 1


def cmd_dev(args: argparse.Namespace) -> int:
    prepare_dagster_home()
    with sandbox(args) as env:
        configure_environment(args, env)
        cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "referral_pipeline.definitions",
               "-h", "127.0.0.1", "-p", os.environ.get("DAGSTER_PORT", "3000")]
        proc = subprocess.Popen(cmd, preexec_fn=_reset_signals)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


def _reset_signals() -> None:
    """``dagster dev`` started from a non-interactive shell inherits SIGINT ignored; restore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m referral_pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the nightly job once (make run)")
    add_sandbox_args(run_p)
    run_p.add_argument("--as-of", help="the run's as_of time (ISO-8601)")
    run_p.add_argument("--job", choices=("nightly", "hourly"), default="nightly", help="the job to run once")
    dev_p = sub.add_parser("dev", help="sandbox + dagster dev (make dev)")
    add_sandbox_args(dev_p)
    args = parser.parse_args(argv)
    return {"run": cmd_run, "dev": cmd_dev}[args.command](args)
