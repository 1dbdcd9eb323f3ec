"""Run a simulator on a real loopback socket inside the test process (uvicorn in a thread).

    with serve_in_thread(SalesforceSimulator(config)) as sim:
        requests.get(sim.base_url + "/services/data/v62.0/limits/")
"""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from .core.simulator import Simulator


def free_port_base(count: int = 5) -> int:
    """A port base such that base+1..base+count are currently free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1] - 1
        if base + count >= 65535:
            continue
        ok = True
        for p in range(base + 1, base + count + 1):
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range found")


@contextmanager
def serve_in_thread(sim: Simulator, host: str = "127.0.0.1", start: bool = True) -> Iterator[Simulator]:
    """Start ``sim`` (loading its data unless ``start`` is False) on an ephemeral port."""
    if start:
        sim.start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    sim.base_url = f"http://{host}:{port}"
    config = uvicorn.Config(sim.app(), log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError(f"{sim.name} simulator did not start")
        time.sleep(0.01)
    try:
        yield sim
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
