"""Benchmark of the commercetools extraction: N orders (2 line items each) served by the sandbox
in its own process, extracted into an in-memory DuckDB with keyset paging (500 per page), then
staged (orders, order items, refunds). Prints records/s, requests and the peak RSS of this process.

    .venv/bin/python bench/bench_commercetools.py [--orders 100000]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_pipeline.clients.commercetools import CommercetoolsClient, Credentials  # noqa: E402
from referral_pipeline.extract.base import extract  # noqa: E402
from referral_pipeline.extract.commercetools import CommercetoolsExtractor  # noqa: E402
from referral_pipeline.sources.commercetools import staging_specs  # noqa: E402
from referral_pipeline.transform.staging.runner import run_staging  # noqa: E402
from referral_pipeline_tests.sources.commercetools_support import (CLIENT_ID, CLIENT_SECRET, PROJECT, line,  # noqa: E402
                                                                   new_db, order, write_fixtures)


def wait_for(port: int, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("sandbox did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--port-base", type=int, default=8790)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ct-"))
    write_fixtures(tmp, orders=(order(i, minutes=i / 60, lines=[line(f"l{i}-1", "SKU-A", 2500, 2, discount_per_unit=250),
                                                                 line(f"l{i}-2", "SKU-B", 999, 1)])
                                for i in range(args.orders)))
    port = args.port_base + 2
    server = subprocess.Popen([sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--data", str(tmp),
                               "--systems", "commercetools", "--port-base", str(args.port_base),
                               "--env-file", str(tmp / "sandbox.env")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        wait_for(port)
        base = f"http://127.0.0.1:{port}"
        client = CommercetoolsClient(Credentials(PROJECT, CLIENT_ID, CLIENT_SECRET, (), base, base))
        con = new_db(str(tmp / "bench.duckdb"))
        if os.environ.get("BENCH_DUCKDB_MEMORY"):
            con.execute(f"SET memory_limit = '{os.environ['BENCH_DUCKDB_MEMORY']}'")
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        result = extract(con, CommercetoolsExtractor(client, "ct", "orders"), "bench")
        extract_s = time.perf_counter() - started
        extract_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        staged = {s.name: run_staging(con, s, "bench").staged for s in staging_specs("ct") if s.entity == "orders"}
        stage_s = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    n = result.counts.fetched
    print(f"extract: {n} orders in {extract_s:.1f} s = {n / extract_s:,.0f} records/s; "
          f"{result.requests['requests']} requests ({result.pages} pages + token)")
    print(f"staging: {staged} in {stage_s:.1f} s = {n / stage_s:,.0f} orders/s")
    print(f"peak RSS of the pipeline process: {base_rss:.0f} MB before, {extract_rss:.0f} MB after extraction, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB after staging (DuckDB file database)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
