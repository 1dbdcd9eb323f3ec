"""The lenient body decoder: the fast byte-level repair gives exactly what the standard library
plus ``storable`` gives (lone surrogates -> U+FFFD, non-finite literals -> their text)."""
from __future__ import annotations

import json

import pytest

from referral_pipeline.http.jsonbody import decode_json, loads_repaired, storable

BODIES = [
    rb'{"a": "x\ud800y", "b": "ok"}',                                # lone high surrogate
    rb'{"a": "x\udc00y"}',                                           # lone low surrogate
    rb'{"a": "\ud83d\ude00 pair \ud83d"}',                           # valid pair kept, lone one replaced
    rb'{"a": "\uD800\uD800\uDC00"}',                                 # high, then a valid pair (upper case)
    rb'{"\ud800key": 1}',                                            # in a key
    rb'{"a": "\\ud800 is text", "b": "\\\ud800"}',                  # escaped backslash, then a real lone one
    rb'{"a": NaN, "b": [1, -Infinity, Infinity], "c": "NaN Infinity"}',
    rb'{"results": [{"v": NaN, "t": "x\ud9ffz"}, {"v": 1.5}]}',      # both kinds together
]


@pytest.mark.parametrize("body", BODIES)
def test_repair_matches_the_standard_library(body):
    expected = storable(json.loads(body))
    assert loads_repaired(body) == expected
    assert decode_json(body) == expected


def test_repaired_values():
    assert decode_json(rb'{"a": "x\ud800y", "n": NaN, "m": -Infinity}') == {"a": "x\ufffdy", "n": "nan", "m": "-inf"}
    assert decode_json(rb'{"a": "\\ud800"}') == {"a": "\\ud800"}     # text, not an escape: unchanged


def test_not_json_still_raises():
    with pytest.raises(ValueError):
        decode_json(b"<html>nope</html>")
    assert decode_json(b"") is None
