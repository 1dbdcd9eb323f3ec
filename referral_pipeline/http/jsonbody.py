"""Response bodies as the pipeline stores them, shared by every client.

orjson parses first (fast). A body orjson refuses — lone surrogate escapes (invalid Unicode) or
``NaN``/``Infinity`` literals, which real APIs do emit — is parsed by the standard library and
made storable: lone surrogates become U+FFFD and non-finite numbers their text, so the record can
be landed and staging quarantines it (``invalid_text``, ``non_finite_amount``) instead of the run
failing.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return storable(json.loads(content))
