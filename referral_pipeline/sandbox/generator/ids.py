"""Deterministic randomness and vectorized identifier encoders.

``stream(seed, name, ...)`` gives an independent numpy Generator per purpose, so adding draws to
one stage never shifts another. The encoders turn integer arrays into the identifier formats the
APIs use (18-character Salesforce ids with their case-safe suffix, UUIDs, base-36 coupon and
referral codes, dotted IPv4) as pyarrow string arrays, without a Python loop per value.
"""
from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_U64 = np.uint64
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_B36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_SF_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


def name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def stream(seed: int, name: str, *extra: int) -> np.random.Generator:
    """An independent random generator for one purpose (``name``) of one world (``seed``)."""
    entropy = [int(seed) % (1 << 63), name_key(name), *[int(e) % (1 << 63) for e in extra]]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def mix64(values: np.ndarray | int, salt: int = 0) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed 64-bit hash of each value (vectorized)."""
    offset = _U64((salt * 0x9E3779B97F4A7C15) % (1 << 64))
    with np.errstate(over="ignore"):
        x = np.asarray(values).astype(_U64) + offset
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        x = x ^ (x >> _U64(31))
    return x


def _to_strings(chars: np.ndarray) -> pa.Array:
    """(n, w) uint8 ASCII matrix -> pyarrow string array."""
    n, width = chars.shape
    if n == 0:
        return pa.array([], type=pa.string())
    fixed = np.ascontiguousarray(chars).view(f"S{width}").ravel()
    return pa.array(fixed).cast(pa.string())


def uuids(seed: int, namespace: str, idx: np.ndarray) -> pa.Array:
    """Version-4-shaped UUID strings, a deterministic function of (seed, namespace, idx)."""
    idx = np.asarray(idx, dtype=np.int64)
    salt = (int(seed) * 1_000_003 + name_key(namespace)) % (1 << 61)
    hi = mix64(idx.astype(_U64) * _U64(2), salt)
    lo = mix64(idx.astype(_U64) * _U64(2) + _U64(1), salt)
    nibbles = np.empty((len(idx), 32), dtype=np.uint8)
    for k in range(16):
        shift = _U64(60 - 4 * k)
        nibbles[:, k] = ((hi >> shift) & _U64(15)).astype(np.uint8)
        nibbles[:, 16 + k] = ((lo >> shift) & _U64(15)).astype(np.uint8)
    nibbles[:, 12] = 4
    nibbles[:, 16] = 8 + (nibbles[:, 16] & 3)
    hexes = _HEX[nibbles]
    out = np.full((len(idx), 36), ord("-"), dtype=np.uint8)
    out[:, 0:8] = hexes[:, 0:8]
    out[:, 9:13] = hexes[:, 8:12]
    out[:, 14:18] = hexes[:, 12:16]
    out[:, 19:23] = hexes[:, 16:20]
    out[:, 24:36] = hexes[:, 20:32]
    return _to_strings(out)


def _digits(values: np.ndarray, base: int, width: int, alphabet: np.ndarray) -> np.ndarray:
    v = np.asarray(values).astype(_U64)
    out = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = alphabet[(v % _U64(base)).astype(np.int64)]
        v = v // _U64(base)
    return out


def sf_ids(seed: int, key_prefix: str, seq: np.ndarray) -> pa.Array:
    """18-character Salesforce ids: key prefix, pod ``Dn``, reserved ``0``, a base-62 record
    number (seq offset by a seed-dependent base) and the case-safe 3-character suffix."""
    seq = np.asarray(seq, dtype=np.int64)
    base = int(mix64(np.array([name_key(key_prefix)]), int(seed))[0] % _U64(62 ** 7))
    body = np.empty((len(seq), 15), dtype=np.uint8)
    body[:, 0:3] = np.frombuffer(key_prefix.encode("ascii"), dtype=np.uint8)
    body[:, 3:5] = np.frombuffer(b"Dn", dtype=np.uint8)
    body[:, 5] = ord("0")
    body[:, 6:15] = _digits(seq + base + 1, 62, 9, _B62)
    upper = ((body >= ord("A")) & (body <= ord("Z"))).astype(np.int64)
    weights = np.array([1, 2, 4, 8, 16], dtype=np.int64)
    suffix = np.stack([_SF_SUFFIX[upper[:, 5 * c:5 * c + 5] @ weights] for c in range(3)], axis=1)
    return _to_strings(np.concatenate([body, suffix], axis=1))


def code36(idx: np.ndarray, width: int, salt: int, prefix: str = "") -> pa.Array:
    """Unique upper-case base-36 codes: a bijection of ``idx`` modulo 36**width (scrambled by
    ``salt``), so distinct indexes below 36**width never collide."""
    modulus = 36 ** width
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) and int(idx.max()) >= modulus:
        raise ValueError("code space too small")
    digits = _digits(permute(idx, modulus, salt), 36, width, _B36)
    if prefix:
        head = np.broadcast_to(np.frombuffer(prefix.encode("ascii"), dtype=np.uint8), (len(idx), len(prefix)))
        digits = np.concatenate([head, digits], axis=1)
    return _to_strings(digits)


def _multiplier(modulus: int) -> int:
    """A scrambling multiplier near modulus/phi, coprime with 2, 3 and 5 (so with every
    modulus built from them: 36**w, 10**d)."""
    a = max(int(modulus * 0.6180339887), 7)
    while a % 2 == 0 or a % 3 == 0 or a % 5 == 0:
        a += 1
    return a


def _mulmod(x: np.ndarray, a: int, modulus: int) -> np.ndarray:
    """(a * x) mod modulus exactly in uint64 for modulus < 2**42 (splits a into 22+20 bits)."""
    m = _U64(modulus)
    high = ((x * _U64(a >> 20)) % m) * _U64(1 << 20) % m
    return (high + x * _U64(a & ((1 << 20) - 1))) % m


def permute(idx: np.ndarray, modulus: int, salt: int) -> np.ndarray:
    """A bijection of [0, modulus): x -> a*x + b (mod modulus), for moduli below 2**42."""
    if modulus >= 1 << 42:
        raise ValueError("modulus too large for an exact uint64 permutation")
    x = np.asarray(idx).astype(_U64) % _U64(modulus)
    return ((_mulmod(x, _multiplier(modulus), modulus) + _U64(salt % modulus)) % _U64(modulus)).astype(np.int64)


def ipv4(addresses: np.ndarray) -> pa.Array:
    """Dotted-quad strings of uint32 addresses."""
    a = np.asarray(addresses, dtype=np.uint64)
    parts = [pc.cast(pa.array(((a >> _U64(s)) & _U64(255)).astype(np.int64)), pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """``values[idx]`` for a pyarrow array and an integer numpy index."""
    return values.take(pa.array(np.asarray(idx, dtype=np.int64)))
