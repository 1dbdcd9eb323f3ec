"""Response bodies as the pipeline stores them, shared by every client.

orjson parses first (fast). A body orjson refuses — lone surrogate escapes (invalid Unicode) or
``NaN``/``Infinity`` literals, which real APIs do emit — is made storable: lone surrogates become
U+FFFD and non-finite numbers their text (``"nan"``, ``"inf"``, ``"-inf"``), so the record can be
landed and staging quarantines it (``invalid_text``, ``non_finite_amount``) instead of the run
failing. The repair is done on the bytes (escapes rewritten, literals quoted at the position
orjson reports) and parsed by orjson again; only a body that still fails goes through the
standard library and ``storable`` (slow: a 2 MB page takes ~0.3 s that way).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Any backslash escape, consumed as a unit so ``\\\\ud800`` (an escaped backslash) is not read as one;
# group 1 is a surrogate escape that is not the high half of a valid pair.
ESCAPE = re.compile(rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
                    rb"|(u[dD][89a-fA-F][0-9a-fA-F]{2})|.)", re.S)
SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
LITERALS = {b"-Infinity": b'"-inf"', b"Infinity": b'"inf"', b"NaN": b'"nan"'}
MAX_LITERAL_REPAIRS = 50


def storable(value: Any) -> Any:
    """Lone surrogates -> U+FFFD, non-finite floats -> their text, recursively."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value) if LONE_SURROGATE.search(value) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def decode_json(content: bytes | str) -> Any:
    """Parse a body (None when empty); raises ``ValueError`` when it is not JSON at all."""
    if not content:
        return None
    if isinstance(content, (bytes, bytearray, memoryview)) and SURROGATE_HINT.search(content):
        # a surrogate escape (lone ones make orjson fail at the end of its work): repair first
        # and parse once; a valid pair is left as it is
        try:
            return loads_repaired(bytes(content))
        except ValueError:
            return storable(json.loads(content))
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    if isinstance(content, (bytes, bytearray, memoryview)):
        try:
            return loads_repaired(bytes(content))
        except ValueError:
            pass
    return storable(json.loads(content))


def replace_lone_surrogates(body: bytes) -> bytes:
    """``\\ud800``-style escapes that are not half of a valid pair -> ``\\ufffd``."""
    if not SURROGATE_HINT.search(body):
        return body
    return ESCAPE.sub(lambda m: b"\\ufffd" if m.group(1) else m.group(0), body)


def quote_literal_at(body: bytes, pos: int) -> bytes | None:
    """The body with the ``NaN``/``Infinity``/``-Infinity`` literal at (or right after the sign
    at) ``pos`` replaced by its text; None when there is no such literal there."""
    candidates = [(pos - 1, b"-Infinity")] if pos > 0 else []
    for start, literal in candidates + [(pos, literal) for literal in LITERALS]:
        if body.startswith(literal, start):
            return body[:start] + LITERALS[literal] + body[start + len(literal):]
    return None


def loads_repaired(body: bytes) -> Any:
    """orjson on the repaired body; ``ValueError`` when the repair does not make it parse."""
    body = replace_lone_surrogates(body)
    for _ in range(MAX_LITERAL_REPAIRS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            fixed = quote_literal_at(body, exc.pos)
            if fixed is None:
                raise
            body = fixed
    raise ValueError("too many non-finite literals to repair")
