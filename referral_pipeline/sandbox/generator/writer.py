"""Writing fixture files: DuckDB renders each record as one JSON line, straight to disk.

``FixtureWriter.write(relpath, sql)`` runs ``sql`` (a SELECT of one struct per record, over Arrow
tables registered from the plan) and appends ``to_json`` of each row to ``out_dir/relpath``:
COPY writes a part file, which is appended to the target (so a file can be built from several
chunks or from differently shaped groups of records). ``strip_nulls`` drops null members
(commercetools omits absent optional fields; Salesforce and BigCommerce send explicit nulls).
The SQL macros here format timestamps and money the way each API does.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import duckdb
import pyarrow as pa

# Planted invalid-UTF-8 text. "surrogate" (default): a lone-surrogate escape ``\ud800`` in the JSON
# text (DuckDB strings must be valid UTF-8, so a private-use marker is rendered and swapped for the
# escape in the final line). "replacement": U+FFFD, what an API returns for undecodable bytes.
REPLACEMENT = "\ufffd"
SURROGATE_MARKER = "\ue000"
SURROGATE_ESCAPE = "\\ud800"

MACROS = r"""
CREATE OR REPLACE MACRO ts(ms) AS make_timestamp(CAST(ms AS BIGINT) * 1000);
CREATE OR REPLACE MACRO fmt_sf(ms) AS strftime(ts(ms), '%Y-%m-%dT%H:%M:%S.%g+0000');
CREATE OR REPLACE MACRO fmt_ms_z(ms) AS strftime(ts(ms), '%Y-%m-%dT%H:%M:%S.%gZ');
CREATE OR REPLACE MACRO fmt_s_z(ms) AS strftime(ts(ms), '%Y-%m-%dT%H:%M:%SZ');
CREATE OR REPLACE MACRO fmt_rfc(ms) AS strftime(ts(ms), '%a, %d %b %Y %H:%M:%S +0000');
CREATE OR REPLACE MACRO fmt_date(ms) AS strftime(ts(ms), '%Y-%m-%d');
CREATE OR REPLACE MACRO fmt_ymd_hms(ms) AS strftime(ts(ms), '%Y-%m-%d %H:%M:%S');
CREATE OR REPLACE MACRO money4(c) AS
    (CASE WHEN c < 0 THEN '-' ELSE '' END) || (abs(c) // 100)::VARCHAR || '.'
    || lpad((abs(c) % 100)::VARCHAR, 2, '0') || '00';
CREATE OR REPLACE MACRO major(c) AS CAST(c AS DOUBLE) / 100.0;
CREATE OR REPLACE MACRO ip4(a) AS
    ((a >> 24) & 255)::VARCHAR || '.' || ((a >> 16) & 255)::VARCHAR || '.'
    || ((a >> 8) & 255)::VARCHAR || '.' || (a & 255)::VARCHAR;
CREATE OR REPLACE MACRO cent_money(cents, cur) AS
    {'type': 'centPrecision', 'currencyCode': cur, 'centAmount': cents, 'fractionDigits': 2};
CREATE OR REPLACE MACRO email_variant(loc, dom, v) AS CASE v
    WHEN 1 THEN upper(loc[1]) || loc[2:] || '@' || dom
    WHEN 2 THEN loc || '@' || upper(dom[1]) || dom[2:]
    WHEN 3 THEN ' ' || loc || '@' || dom || ' '
    WHEN 4 THEN upper(loc || '@' || dom)
    WHEN 5 THEN replace(loc, '.', '')[1:2] || '.' || replace(loc, '.', '')[3:] || '@' || dom
    WHEN 6 THEN loc || '+shop@' || dom
    WHEN 7 THEN loc || '@googlemail.com'
    ELSE loc || '@' || dom END;
"""


class FixtureWriter:
    def __init__(self, out_dir: Path, threads: int = 2, invalid_utf8: str = "surrogate",
                 memory_limit: str | None = None):
        if invalid_utf8 not in ("replacement", "surrogate"):
            raise ValueError("invalid_utf8 must be 'replacement' or 'surrogate'")
        self.out_dir = Path(out_dir)
        self.invalid_utf8 = invalid_utf8
        self.bad_text = REPLACEMENT if invalid_utf8 == "replacement" else SURROGATE_MARKER
        self.tmp_dir = self.out_dir / ".parts"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(config={"threads": threads, "preserve_insertion_order": True})
        self.con.execute("SET enable_progress_bar = false")
        self.timings: dict[str, float] = {}
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET temp_directory = '{self.tmp_dir / 'spill'}'")
        self.con.execute(MACROS)
        self.records: dict[str, int] = {}
        self._part = 0

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def touch(self, relpath: str) -> None:
        path = self.out_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        self.records.setdefault(relpath, 0)

    def write(self, relpath: str, select_sql: str, strip_nulls: bool = False, null_keys: tuple = (),
              bad_text: bool = False) -> int:
        """Append one JSON line per row of ``select_sql`` (its single column ``rec`` is the record).

        ``strip_nulls`` drops every null member (a JSON merge patch: exact, slower on big records);
        ``null_keys`` drops ``"key":null`` members of just those keys with one regular-expression
        pass (fast; each key must never be the first member of its object). ``bad_text``: the rows
        may hold planted invalid text (``self.bad_text``), finalised here."""
        target = self.out_dir / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        self._part += 1
        part = self.tmp_dir / f"part-{self._part}.jsonl"
        expr = "json_merge_patch('{}', to_json(q.rec))" if strip_nulls else "to_json(q.rec)"
        if null_keys:
            pattern = ',"(' + "|".join(null_keys) + ')":null'
            expr = f"regexp_replace({expr}, '{pattern}', '', 'g')"
        if bad_text and self.invalid_utf8 == "surrogate":
            expr = f"replace({expr}, '{SURROGATE_MARKER}', '{SURROGATE_ESCAPE}')"
        started = time.perf_counter()
        count = self.con.execute(
            f"COPY (SELECT {expr} AS line FROM ({select_sql}) q) TO '{part}' "
            "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')").fetchone()[0]
        _append(part, target)
        self.timings[relpath] = self.timings.get(relpath, 0.0) + time.perf_counter() - started
        self.records[relpath] = self.records.get(relpath, 0) + int(count)
        return int(count)

    def write_rows(self, relpath: str, rows: list[dict]) -> int:
        """Append a small fixed set of records built in Python (catalog-like collections)."""
        import orjson

        target = self.out_dir / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab") as fh:
            for row in rows:
                fh.write(orjson.dumps(row) + b"\n")
        self.records[relpath] = self.records.get(relpath, 0) + len(rows)
        return len(rows)

    def finish(self) -> dict[str, dict]:
        """Close DuckDB and describe every file written (records, bytes, sha256)."""
        self.con.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        files = {}
        for relpath in sorted(self.records):
            path = self.out_dir / relpath
            files[relpath] = {"records": self.records[relpath], "bytes": path.stat().st_size, "sha256": _sha256(path)}
        return files


def _append(part: Path, target: Path) -> None:
    """Move ``part`` to the end of ``target`` (a rename when ``target`` is new, else an
    in-kernel copy where the OS offers one)."""
    if not target.exists():
        os.replace(part, target)
        return
    with open(part, "rb") as src, open(target, "ab") as dst:
        remaining = os.fstat(src.fileno()).st_size
        try:
            while remaining > 0:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), remaining)
                if copied == 0:
                    break
                remaining -= copied
        except (AttributeError, OSError):
            src.seek(os.fstat(src.fileno()).st_size - remaining)
            shutil.copyfileobj(src, dst, 1 << 22)
    part.unlink()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
