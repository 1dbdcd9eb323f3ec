"""Benchmark of the sandbox (issue: simulators serve >= 20,000 records/s per system): the generated
world at a scale (default medium) served by the BigCommerce and commercetools simulators in their own
processes with rate limits off, paged through by a minimal client (requests + orjson with a lenient fallback, max page size).
Prints records/s per system; the client's own parsing is included, so the server is at least this fast.

    .venv/bin/python bench/bench_sandbox.py [--scale medium] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from referral_pipeline.runner import read_env_file  # noqa: E402
from referral_pipeline.sandbox.core.jsonio import loads  # noqa: E402  (orjson, lenient for planted bad text)
from referral_pipeline.sandbox.generator import ensure_generated  # noqa: E402
from referral_pipeline.sandbox.testing import free_port_base  # noqa: E402

PARSE = [0.0]  # seconds the client spent parsing JSON (excluded from the server-side rate)
NO_LIMITS = {"bigcommerce": {"rate_limit": {"requests_per_window": 0}}, "commercetools": {"rate_limit": {}}}


def page_bigcommerce(env: dict) -> tuple[int, int, float]:
    base = f"{env['BIGCOMMERCE_API_URL']}/stores/{env['BIGCOMMERCE_STORE_HASH']}/v2/orders"
    session = requests.Session()
    session.headers.update({"X-Auth-Token": env["BIGCOMMERCE_ACCESS_TOKEN"], "Accept": "application/json"})
    session.get(base, params={"page": 1, "limit": 1, "sort": "id:asc"})  # warm-up: the simulator builds its index
    records = requests_made = 0
    started = time.perf_counter()
    page = 1
    while True:
        r = session.get(base, params={"page": page, "limit": 250, "sort": "id:asc"})
        requests_made += 1
        if r.status_code == 204:
            break
        r.raise_for_status()
        t = time.perf_counter()
        records += len(loads(r.content))
        PARSE[0] += time.perf_counter() - t
        page += 1
    return records, requests_made, time.perf_counter() - started


def page_bigcommerce_customers(env: dict) -> tuple[int, int, float]:
    """v3 customers by ``date_modified`` with cursor paging (``after``), as the extraction reads them."""
    base = f"{env['BIGCOMMERCE_API_URL']}/stores/{env['BIGCOMMERCE_STORE_HASH']}/v3/customers"
    session = requests.Session()
    session.headers.update({"X-Auth-Token": env["BIGCOMMERCE_ACCESS_TOKEN"], "Accept": "application/json"})
    params = {"sort": "date_modified:asc", "limit": 250, "date_modified:min": "2000-01-01"}
    session.get(base, params={**params, "limit": 1})  # warm-up: the simulator builds its index
    records = requests_made = 0
    after = None
    started = time.perf_counter()
    while True:
        r = session.get(base, params={**params, "after": after} if after else params)
        requests_made += 1
        r.raise_for_status()
        t = time.perf_counter()
        body = loads(r.content)
        PARSE[0] += time.perf_counter() - t
        records += len(body["data"])
        cursor = body["meta"]["cursor_pagination"]
        if not cursor["links"].get("next"):
            break
        after = cursor["end_cursor"]
    return records, requests_made, time.perf_counter() - started


def page_commercetools(env: dict) -> tuple[int, int, float]:
    token = requests.post(f"{env['CTP_AUTH_URL']}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(env["CTP_CLIENT_ID"], env["CTP_CLIENT_SECRET"])).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    url = f"{env['CTP_API_URL']}/{env['CTP_PROJECT_KEY']}/orders"
    session.get(url, params={"limit": "1", "sort": "lastModifiedAt asc"})  # warm-up
    records = requests_made = 0
    last = None
    started = time.perf_counter()
    while True:
        params = [("sort", "lastModifiedAt asc"), ("sort", "id asc"), ("limit", "500"), ("withTotal", "false")]
        if last:
            params.append(("where", f'lastModifiedAt > "{last[0]}" or (lastModifiedAt = "{last[0]}" and id > "{last[1]}")'))
        r = session.get(url, params=params)
        requests_made += 1
        r.raise_for_status()
        t = time.perf_counter()
        results = loads(r.content)["results"]
        PARSE[0] += time.perf_counter() - t
        if not results:
            break
        records += len(results)
        last = (results[-1]["lastModifiedAt"], results[-1]["id"])
    return records, requests_made, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    root = ensure_generated(args.scale, args.seed, ROOT / "data" / "bench-cache")
    print(f"world {args.scale}/seed {args.seed}: {root} ({time.perf_counter() - t0:.1f}s incl. generation if not cached)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    base = free_port_base()
    proc = subprocess.Popen([sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--data", str(root),
                             "--systems", "bigcommerce,commercetools", "--port-base", str(base),
                             "--env-file", str(tmp / "env"), "--faults", json.dumps(NO_LIMITS)], cwd=ROOT)
    try:
        while not (tmp / "env").exists():
            if proc.poll() is not None:
                raise SystemExit("sandbox failed to start")
            time.sleep(0.2)
        env = read_env_file(tmp / "env")
        for name, fn in (("bigcommerce v2 orders", page_bigcommerce), ("bigcommerce v3 customers", page_bigcommerce_customers),
                         ("commercetools orders", page_commercetools)):
            PARSE[0] = 0.0
            records, reqs, seconds = fn(env)
            served = seconds - PARSE[0]
            print(f"{name}: {records} records in {seconds:.1f}s over {reqs} requests = {records / seconds:,.0f} records/s "
                  f"end to end; {records / served:,.0f} records/s served (excluding {PARSE[0]:.1f}s of client JSON parsing)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
