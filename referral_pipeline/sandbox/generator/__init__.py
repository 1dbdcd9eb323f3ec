"""The sandbox world generator: a coherent, deterministic world across Salesforce,
commercetools, BigCommerce, Friendbuy and Yotpo, written as a fixture directory (contracts §3.1)
with ``programs.yaml`` (contracts §5) and ``manifest.json`` (counts and planted cases).

``generate_world(scale, seed, out_dir)`` writes it; ``ensure_generated(scale, seed, cache_root)``
returns a cached copy, generating it once (atomically) when missing. Modules: ``people``
(identity), ``referrals`` (activity), ``fraud`` (planted fraud/eligibility), ``promo`` (codes and
planted code problems), ``malformed`` (planted bad records), ``orders`` (order planning), one
renderer per system, ``writer`` (DuckDB JSON writing), ``manifest``, ``world`` (orchestration).
"""
from __future__ import annotations

from pathlib import Path

from .cache import ensure_generated
from .settings import PROGRAMS_YAML, SCALES

__all__ = ["generate_world", "ensure_generated", "SCALES", "PROGRAMS_YAML"]


def generate_world(scale: str, seed: int, out_dir: Path, *, invalid_utf8: str = "surrogate") -> dict:
    """Write a complete fixture directory for ``scale`` and ``seed`` into ``out_dir`` (its
    system folders, ``programs.yaml`` and ``manifest.json`` are replaced) and return the manifest.

    Planted invalid UTF-8 is a lone-surrogate escape (backslash-u-d800) in the JSON text, which the
    sandbox's ``core.jsonio`` reads and serves as planted; ``invalid_utf8="replacement"`` writes
    U+FFFD instead, for readers that refuse lone surrogates."""
    from .world import generate

    return generate(scale, int(seed), Path(out_dir), invalid_utf8=invalid_utf8)
