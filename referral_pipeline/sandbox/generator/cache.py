"""``ensure_generated``: a cache of generated worlds, safe for concurrent and repeated calls.

``cache_root/<scale>-seed<seed>/`` is complete when it holds the marker file ``.complete``.
Generation happens in a private temporary directory next to it, under an exclusive file lock
(concurrent callers wait, then find the finished world), and ends with an atomic rename.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from .settings import GENERATOR_VERSION, SCALES

MARKER = ".complete"


def world_dir(scale: str, seed: int, cache_root: Path) -> Path:
    return Path(cache_root) / f"{scale}-seed{int(seed)}"


def is_complete(path: Path) -> bool:
    marker = path / MARKER
    return marker.is_file() and marker.read_text().strip() == f"generator {GENERATOR_VERSION}"


def ensure_generated(scale: str, seed: int, cache_root: Path) -> Path:
    """The directory of the generated world, generating it first if it is missing."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    target = world_dir(scale, seed, cache_root)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if is_complete(target):
                return target
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                from . import generate_world

                generate_world(scale, seed, tmp)
                (tmp / MARKER).write_text(f"generator {GENERATOR_VERSION}\n")
                if target.exists():  # stale or partial (no marker): replace it
                    shutil.rmtree(target)
                os.rename(tmp, target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target
