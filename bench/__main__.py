"""``make bench``: run every benchmark in turn and print its report (numbers go to docs/benchmarks.md).

    .venv/bin/python -m bench [name ...]      # e.g. python -m bench sandbox identity
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["generator", "sandbox", "commercetools", "bigcommerce", "extract", "identity", "referrals", "chain", "quality", "sync"]


def main(argv: list[str]) -> int:
    names = argv or [n for n in BENCHMARKS if (HERE / f"bench_{n}.py").exists()]
    failed = []
    for name in names:
        print(f"\n=== bench_{name} ===", flush=True)
        started = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / f"bench_{name}.py")], cwd=HERE.parent)
        print(f"=== bench_{name}: exit {rc}, {time.perf_counter() - started:.1f}s ===", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
