"""OAuth for the commercetools simulator: client-credentials tokens and scope checks.

``POST /oauth/token`` (Basic auth or ``client_id``/``client_secret`` form fields,
``grant_type=client_credentials``, optional space-separated ``scope``) issues a bearer token.
Tokens are self-contained and signed (HMAC of client id, scopes and expiry with a key derived from
the client secret), so they stay valid across simulator restarts and resets, like real tokens,
and need no storage. Scopes have the form ``<name>:<projectKey>`` (``manage_project``,
``view_/manage_`` + ``customers|orders|discount_codes|cart_discounts|types``); store-scoped
``<name>:<projectKey>:<storeKey>`` scopes do not open the project-wide endpoints.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from .errors import ApiError

RESOURCE_SCOPES = {"customers": "customers", "orders": "orders", "discount-codes": "discount_codes",
                   "cart-discounts": "cart_discounts", "types": "types"}
_SCOPE_RE = re.compile(r"^[a-z_]+:[A-Za-z0-9_\-]+(:[A-Za-z0-9_\-]+)?$")
INVALID_CLIENT = "Please provide valid client credentials using HTTP Basic Authentication."


@dataclass(frozen=True)
class TokenInfo:
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


def split_scopes(raw) -> list[str]:
    """Scopes from a space- or comma-separated string or a list."""
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        return [str(s) for s in raw if str(s).strip()]
    return [s for s in re.split(r"[\s,]+", str(raw)) if s]


def grantable(requested: str, client_scopes: list[str], project_key: str) -> bool:
    """A client may request any of its own scopes; ``manage_project`` implies every scope of
    the project (a sandbox decision: the real rule for implied scopes is not documented)."""
    if not _SCOPE_RE.match(requested):
        return False
    if requested in client_scopes:
        return True
    return f"manage_project:{project_key}" in client_scopes and requested.split(":")[1] == project_key


def allows(scopes: tuple[str, ...], project_key: str, resource: str, write: bool) -> bool:
    """Do these scopes open ``/{project_key}/{resource}`` for reading (or writing)?"""
    name = RESOURCE_SCOPES[resource]
    wanted = {"manage_project", f"manage_{name}"} | (set() if write else {f"view_{name}"})
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) == 2 and parts[1] == project_key and parts[0] in wanted:
            return True
    return False


def required_scope(resource: str, write: bool) -> str:
    name = RESOURCE_SCOPES[resource]
    return f"manage_{name}" if write else f"view_{name}"


class TokenIssuer:
    """Issues and verifies signed bearer tokens."""

    def __init__(self, signing_key: bytes, ttl_seconds: int):
        self.key = signing_key
        self.ttl = int(ttl_seconds)
        self._verified: OrderedDict[str, TokenInfo] = OrderedDict()

    def issue(self, client_id: str, scopes: list[str], now: float) -> tuple[str, int]:
        payload = orjson.dumps({"c": client_id, "s": " ".join(scopes), "e": int(now) + self.ttl})
        body = base64.urlsafe_b64encode(payload).rstrip(b"=")
        return (body + b"." + self._sign(body)).decode(), self.ttl

    def _sign(self, body: bytes) -> bytes:
        return base64.urlsafe_b64encode(hmac.new(self.key, body, hashlib.sha256).digest()[:24])

    def verify(self, token: str, now: float) -> TokenInfo:
        info = self._verified.get(token)
        if info is None:
            info = self._decode(token)
            self._verified[token] = info
            if len(self._verified) > 1024:
                self._verified.popitem(last=False)
        if now >= info.expires_at:
            raise invalid_token("The access token expired.")
        return info

    def _decode(self, token: str) -> TokenInfo:
        body, _, sig = token.encode().partition(b".")
        if not sig or not hmac.compare_digest(sig, self._sign(body)):
            raise invalid_token()
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
            return TokenInfo(data["c"], tuple(split_scopes(data["s"])), float(data["e"]))
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise invalid_token() from None


def signing_key(client_secret: str, project_key: str) -> bytes:
    return hashlib.sha256(f"ct-sandbox:{project_key}:{client_secret}".encode()).digest()


def invalid_token(description: str | None = None) -> ApiError:
    return ApiError(401, "invalid_token", "invalid_token", oauth=True, description=description)


def bearer_token(header: str | None) -> str:
    if not header:
        raise ApiError(401, "invalid_token", "Missing or malformed 'Authorization' header.", oauth=True)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_token", "Missing or malformed 'Authorization' header.", oauth=True)
    return token.strip()


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
