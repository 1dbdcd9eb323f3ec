"""MAPI access tokens: ``POST /v1/authorization`` issues them, every other call presents one.

Tokens look like the real RS256 JWTs (header ``{"alg":"RS256","typ":"JWT"}``, payload
``{exp, userId, merchantId, role, iat}`` with ``exp - iat`` = the token lifetime, a 256-byte
signature). The signature is an HMAC chain keyed by the merchant's MAPI key and secret, so
tokens are stateless: they survive a simulator restart and stop working when the credentials
change. Both ``Authorization: Bearer <token>`` and the raw token (what Segment sends) are accepted.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

import orjson

from ..core import stamps
from .errors import MapiError, unauthorized

_HEADER = {"alg": "RS256", "typ": "JWT"}
_SIGNATURE_BYTES = 256  # an RS256 signature with a 2048-bit key


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies the bearer tokens of one merchant account."""

    def __init__(self, key: str, secret: str, merchant_id: str, user_email: str, ttl_seconds: float):
        self.key, self.secret = key, secret
        self.merchant_id, self.user_email = merchant_id, user_email
        self.ttl_seconds = ttl_seconds
        self._signing_key = hashlib.sha256(f"{key}\0{secret}\0friendbuy-sandbox-jwt".encode()).digest()

    def credentials_match(self, key: str, secret: str) -> bool:
        return hmac.compare_digest(key.encode(), self.key.encode()) and \
            hmac.compare_digest(secret.encode(), self.secret.encode())

    def issue(self, now: datetime) -> dict:
        """The 200 body of ``POST /v1/authorization``."""
        iat = int(now.timestamp())
        expires_at = now + timedelta(seconds=self.ttl_seconds)
        payload = {"exp": int(expires_at.timestamp()), "userId": f"email:{self.user_email}",
                   "merchantId": self.merchant_id, "role": "admin", "iat": iat}
        signing_input = f"{b64url(orjson.dumps(_HEADER))}.{b64url(orjson.dumps(payload))}"
        token = f"{signing_input}.{b64url(self._sign(signing_input))}"
        return {"tokenType": "Bearer", "token": token, "expires": stamps.fmt_iso_millis_z(expires_at)}

    def verify_header(self, header: str | None, now: datetime) -> dict:
        """The token's payload, or ``MapiError(401)`` when missing, malformed, forged or expired."""
        token = (header or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise unauthorized()
        return self.verify(token, now)

    def verify(self, token: str, now: datetime) -> dict:
        parts = token.split(".")
        if len(parts) != 3:
            raise unauthorized()
        signing_input = f"{parts[0]}.{parts[1]}"
        try:
            signature = b64url_decode(parts[2])
            payload = orjson.loads(b64url_decode(parts[1]))
        except (ValueError, orjson.JSONDecodeError):
            raise unauthorized() from None
        if not hmac.compare_digest(signature, self._sign(signing_input)) or not isinstance(payload, dict):
            raise unauthorized()
        if not isinstance(payload.get("exp"), int) or now.timestamp() >= payload["exp"]:
            raise unauthorized()
        return payload

    def _sign(self, signing_input: str) -> bytes:
        blocks = []
        data = signing_input.encode()
        for i in range(_SIGNATURE_BYTES // 32):
            blocks.append(hmac.new(self._signing_key, bytes([i]) + data, hashlib.sha256).digest())
        return b"".join(blocks)


def parse_authorization_body(body: object) -> tuple[str, str]:
    """``{key, secret}`` from the request body, or 422 naming what is missing or mistyped."""
    if not isinstance(body, dict):
        raise MapiError(400, "Invalid input, object invalid")
    problems = [f'"{name}" is required' if body.get(name) in (None, "") else f'"{name}" must be a string'
                for name in ("key", "secret") if not isinstance(body.get(name), str) or not body.get(name)]
    if problems:
        raise MapiError(422, "; ".join(problems))
    return body["key"], body["secret"]
