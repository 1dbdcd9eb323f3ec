"""Benchmark of the sandbox world generator: times one generation (default ``medium``) and prints
records/s, MB/s and the process's peak RSS.

    .venv/bin/python bench/bench_generator.py [--scale medium] [--seed 1] [--out DIR]

Without ``--out`` the world is written to a temporary directory that is removed afterwards.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_pipeline.sandbox.generator import generate_world  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium", choices=("tiny", "small", "medium", "large"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="keep the world here (default: a temporary directory)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"bench-{args.scale}-"))
    try:
        started = time.perf_counter()
        manifest = generate_world(args.scale, args.seed, out)
        elapsed = time.perf_counter() - started
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    files = manifest["files"]
    records = sum(f["records"] for f in files.values())
    size = sum(f["bytes"] for f in files.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = manifest["counts"]
    print(f"scale={args.scale} seed={args.seed}: people={counts['people']:,} orders={counts['orders']['total']:,} "
          f"records={records:,} files={len(files)} size={size / 1e6:,.0f} MB")
    print(f"elapsed={elapsed:.1f} s  records/s={records / elapsed:,.0f}  MB/s={size / 1e6 / elapsed:,.1f}  "
          f"peak RSS={peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
