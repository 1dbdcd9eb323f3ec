"""JSON encoding for the simulators: orjson for speed, the standard library as a fallback.

Fixtures may plant text that is not valid Unicode (a lone surrogate such as ``"\\ud800"``), as
real systems sometimes return. orjson refuses such strings; the standard library reads them and
writes them back as ``\\udXXX`` escapes, so they are served exactly as planted.
"""
from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    """Compact JSON. Only the parts orjson refuses go through the standard library: a list or an
    object (with text keys) is written item by item when orjson fails on it, so one planted
    record does not make a whole page of 250 records take the slow way."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError: lone surrogates and other text orjson refuses
        pass
    if isinstance(obj, (list, tuple)):
        return b"[" + b",".join(dumps(item) for item in obj) + b"]"
    if isinstance(obj, dict) and all(isinstance(key, str) for key in obj):
        return b"{" + b",".join(_stdlib(key) + b":" + dumps(value) for key, value in obj.items()) + b"}"
    return _stdlib(obj)


def _stdlib(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), default=str).encode()


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # raises json.JSONDecodeError (a ValueError) when really invalid
