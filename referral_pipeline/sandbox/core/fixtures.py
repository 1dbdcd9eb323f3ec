"""Fixture directories (contracts §3.1): JSON Lines per collection, in each API's own shapes.

``read_system_fixtures`` reads ``DIR/<system>/<collection>.jsonl`` for the collections a
simulator declares. A missing file is an empty collection; a line that is not a JSON object or a
record without its primary key is refused with file, line and reason (``FixtureError``).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .jsonio import loads
from .store import CollectionSpec


class FixtureError(ValueError):
    def __init__(self, path: Path, line: int | None, reason: str):
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


def read_jsonl(path: Path, key: str | None = None, auto_key: str | None = None) -> list[dict]:
    """Records of a JSON Lines file. With ``auto_key``, a record missing ``key`` gets
    ``"<auto_key>-<line>"`` instead of being refused (for APIs whose rows have no id)."""
    records: list[dict] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FixtureError(path, None, f"cannot read file: {exc}") from exc
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = loads(line)
        except ValueError as exc:
            raise FixtureError(path, lineno, f"not valid JSON: {exc}") from None
        if not isinstance(rec, dict):
            raise FixtureError(path, lineno, f"expected a JSON object, got {type(rec).__name__}")
        if key is not None and rec.get(key) in (None, ""):
            if auto_key:
                rec[key] = f"{auto_key}-{lineno}"
                records.append(rec)
                continue
            raise FixtureError(path, lineno, f"record has no primary key {key!r}")
        records.append(rec)
    return records


def read_system_fixtures(root: Path, system: str, specs: dict[str, CollectionSpec],
                         now: datetime) -> dict[str, list[dict]]:
    """Records per collection for one simulator; missing modification stamps are set to ``now``."""
    folder = Path(root) / system
    out: dict[str, list[dict]] = {name: [] for name in specs}
    if not folder.is_dir():
        return out
    known = {f"{name}.jsonl" for name in specs}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".jsonl":
            continue
        if path.name not in known:
            raise FixtureError(path, None, f"unknown collection file; expected one of {sorted(known)}")
    for name, spec in specs.items():
        path = folder / f"{name}.jsonl"
        if not path.exists():
            continue
        records = read_jsonl(path, spec.key, spec.name if spec.auto_key else None)
        if spec.stamp:
            stamp = spec.stamp_format(now)
            for rec in records:
                if rec.get(spec.stamp) in (None, ""):
                    rec[spec.stamp] = stamp
        out[name] = records
    return out
