"""``serve``: run the five simulators, one process each, on ``port-base+1..5``.

The parent resolves the data (a fixture directory, or a generated world cached under the state
directory), starts one child process per simulator, waits until every child listens, prints the
environment variables that point the pipeline at them and writes them to ``.sandbox.env``. On
SIGINT/SIGTERM it stops the children, which write their state to ``--state-dir`` on the way out.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shlex
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .core.config import PORT_OFFSETS, SYSTEMS, SandboxConfig, SystemConfig, config_from_mapping, \
    load_config_file, merge_config, parse_fault_spec

log = logging.getLogger("referral_pipeline.sandbox")


@dataclass
class ServeOptions:
    data: Path | None = None
    scale: str = "small"
    seed: int = 1
    state_dir: Path | None = None
    host: str = "127.0.0.1"
    port_base: int = 8700
    faults: str | None = None
    env_file: Path | None = Path(".sandbox.env")
    systems: tuple[str, ...] = SYSTEMS
    ready_timeout: float = 600.0


def resolve_data(opts: ServeOptions) -> tuple[Path, str]:
    """The fixture root to load and a stable id of that source (persisted state is tied to it)."""
    if opts.data is not None:
        root = Path(opts.data)
        if not root.is_dir():
            raise SystemExit(f"sandbox: --data {root}: not a directory")
        return root, f"data:{root.resolve()}"
    from .generator import ensure_generated  # heavy imports only when generating

    base = Path(opts.state_dir) if opts.state_dir else Path(os.environ.get("TMPDIR", "/tmp")) / "referral-sandbox"
    root = ensure_generated(opts.scale, opts.seed, base / "generated")
    return root, f"generated:{opts.scale}:{opts.seed}"


def build_config(root: Path, faults: str | None) -> SandboxConfig:
    cfg = config_from_mapping(load_config_file(root / "sandbox.yaml"))
    if faults:
        cfg = merge_config(cfg, parse_fault_spec(faults))
    return cfg


def _child_main(name: str, host: str, port: int, cfg_json: str, data_root: str, state_dir: str | None,
                source_id: str, conn) -> None:
    import uvicorn

    from .registry import simulator_class

    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        cls = simulator_class(name)
        sim = cls(SystemConfig.model_validate_json(cfg_json), Path(data_root),
                  Path(state_dir) if state_dir else None, source_id)
        sim.base_url = f"http://{host}:{port}"
        sim.start()
        env = sim.env_vars(sim.base_url)
    except BaseException as exc:  # report every start-up failure to the parent, then exit
        conn.send(("error", name, f"{type(exc).__name__}: {exc}"))
        raise SystemExit(2)
    server = uvicorn.Server(uvicorn.Config(sim.app(), lifespan="on", log_level="warning", access_log=False,
                                           timeout_keep_alive=30))

    def announce():
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        if server.started:
            conn.send(("ready", name, {"base_url": sim.base_url, "env": env,
                                       "counts": {n: len(c) for n, c in sim.collections.items()}}))

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])


def write_env_file(path: Path, env: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))
    os.replace(tmp, path)


def serve(opts: ServeOptions) -> int:
    if opts.env_file and opts.env_file.exists():
        opts.env_file.unlink()
    root, source_id = resolve_data(opts)
    cfg = build_config(root, opts.faults)
    if opts.state_dir:
        Path(opts.state_dir).mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    children: dict[str, mp.Process] = {}
    for name in opts.systems:
        port = opts.port_base + PORT_OFFSETS[name]
        proc = ctx.Process(target=_child_main, name=f"sandbox-{name}",
                           args=(name, opts.host, port, cfg.for_system(name).model_dump_json(), str(root),
                                 str(opts.state_dir) if opts.state_dir else None, source_id, child_conn))
        proc.start()
        children[name] = proc

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    env: dict[str, str] = {"SANDBOX_STATE_DIR": str(opts.state_dir or "")}
    pending = set(children)
    failed = False
    deadline = time.time() + opts.ready_timeout
    while pending and not stop.is_set():
        if parent_conn.poll(0.1):
            kind, name, payload = parent_conn.recv()
            if kind == "error":
                print(f"sandbox: {name} failed to start: {payload}", file=sys.stderr, flush=True)
                failed = True
                break
            pending.discard(name)
            env.update(payload["env"])
            counts = ", ".join(f"{k}={v}" for k, v in payload["counts"].items())
            print(f"sandbox: {name} listening on {payload['base_url']} ({counts})", flush=True)
        elif any(not children[n].is_alive() for n in pending):
            dead = [n for n in pending if not children[n].is_alive()]
            print(f"sandbox: {', '.join(dead)} exited during start-up", file=sys.stderr, flush=True)
            failed = True
            break
        elif time.time() > deadline:
            print(f"sandbox: timed out waiting for {sorted(pending)}", file=sys.stderr, flush=True)
            failed = True
            break

    if not failed and not stop.is_set():
        env = {k: v for k, v in env.items() if v}
        if opts.env_file:
            write_env_file(opts.env_file, env)
        print("sandbox: ready. Point the pipeline at it with:", flush=True)
        for k, v in sorted(env.items()):
            print(f"export {k}={shlex.quote(v)}", flush=True)
        while not stop.is_set():
            if any(not p.is_alive() for p in children.values()):
                dead = [n for n, p in children.items() if not p.is_alive()]
                print(f"sandbox: {', '.join(dead)} stopped unexpectedly", file=sys.stderr, flush=True)
                failed = True
                break
            stop.wait(0.5)

    for proc in children.values():
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
    for proc in children.values():
        proc.join(timeout=120)
        if proc.is_alive():
            proc.kill()
            failed = True
    if opts.env_file and opts.env_file.exists():
        opts.env_file.unlink()
    print("sandbox: stopped" + (f"; state written to {opts.state_dir}" if opts.state_dir else ""), flush=True)
    return 1 if failed else 0
