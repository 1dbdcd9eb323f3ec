"""OAuth 2.0 for the simulated org: ``/services/oauth2/token`` (client credentials with HTTP Basic
or form credentials, username-password, JWT bearer), ``/services/oauth2/revoke``, issued access
tokens that expire, and the ``Authorization: Bearer|OAuth <token>`` check on API requests.

Token errors use OAuth's ``{"error", "error_description"}`` body (simple-salesforce raises
``SalesforceAuthenticationFailed`` from it); API requests with a missing, unknown or expired
token get 401 ``INVALID_SESSION_ID``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from ..core.simulator import json_response
from .schema import make_id

ORG_ID = make_id("00D", 1)
USER_ID = make_id("005", 1)


@dataclass
class Session:
    token: str
    owner: str                 # connected-app client id or username: cursors are per user
    issued_at: datetime
    expires_at: datetime | None


class TokenStore:
    """Issued access tokens; a static token from the credentials never expires."""

    def __init__(self, static_token: str | None = None):
        self.sessions: dict[str, Session] = {}
        if static_token:
            self.sessions[static_token] = Session(static_token, "static-token", datetime.min, None)

    def issue(self, owner: str, now: datetime, ttl_seconds: float) -> Session:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        session = Session(token, owner, now, now + timedelta(seconds=ttl_seconds) if ttl_seconds > 0 else None)
        self.sessions[token] = session
        return session

    def lookup(self, token: str, now: datetime) -> Session | None:
        session = self.sessions.get(token)
        if session is None:
            return None
        if session.expires_at is not None and now >= session.expires_at:
            del self.sessions[token]
            return None
        return session

    def revoke(self, token: str) -> bool:
        return self.sessions.pop(token, None) is not None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


class OAuthEndpoint:
    """``POST /services/oauth2/token`` and ``/revoke`` for one simulator."""

    def __init__(self, sim):
        self.sim = sim

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            return self._client_credentials(request, form)
        if grant == "password":
            return self._password(form)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt_bearer(form)
        return oauth_error("unsupported_grant_type", "grant type not supported")

    async def revoke(self, request: Request) -> Response:
        form = await _form(request)
        if not self.sim.tokens.revoke(form.get("token", "")):
            return oauth_error("unsupported_token_type", "this token type is not supported")
        return Response(status_code=200)

    # -- grants
    def _client_credentials(self, request: Request, form: dict) -> Response:
        client_id, secret = _basic_credentials(request) or (form.get("client_id"), form.get("client_secret"))
        failure = self._check_client(client_id, secret)
        if failure is not None:
            return failure
        return self._grant(client_id)

    def _password(self, form: dict) -> Response:
        failure = self._check_client(form.get("client_id"), form.get("client_secret"))
        if failure is not None:
            return failure
        creds = self.sim.credentials
        if form.get("username") != creds.get("username") or form.get("password") != creds.get("password"):
            return oauth_error("invalid_grant", "authentication failure")
        return self._grant(form["username"])

    def _jwt_bearer(self, form: dict) -> Response:
        import jwt  # pyjwt, a simple-salesforce dependency

        try:
            claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False, "verify_aud": False})
        except jwt.PyJWTError:
            return oauth_error("invalid_grant", "invalid assertion")
        creds = self.sim.credentials
        if claims.get("iss") != creds.get("client_id"):
            return oauth_error("invalid_client_id", "client identifier invalid")
        if claims.get("sub") != creds.get("username"):
            return oauth_error("invalid_grant", "user hasn't approved this consumer")
        if int(claims.get("exp", 0)) < time.time():
            return oauth_error("invalid_grant", "expired authorization code")
        return self._grant(claims["sub"])

    def _check_client(self, client_id: str | None, secret: str | None) -> Response | None:
        creds = self.sim.credentials
        if not client_id or client_id != creds.get("client_id"):
            return oauth_error("invalid_client_id", "client identifier invalid")
        if secret != creds.get("client_secret"):
            return oauth_error("invalid_client", "invalid client credentials")
        return None

    def _grant(self, owner: str) -> Response:
        sim = self.sim
        now = sim.now()
        session = sim.tokens.issue(owner, now, float(sim.config.options.get("token_ttl_seconds", 7200)))
        issued_at = str(int(now.timestamp() * 1000))
        instance_url = sim.base_url
        identity = f"{instance_url}/id/{ORG_ID}/{USER_ID}"
        digest = hmac.new(str(sim.credentials.get("client_secret", "")).encode(), (identity + issued_at).encode(),
                          hashlib.sha256).digest()
        return json_response({"access_token": session.token, "instance_url": instance_url, "id": identity,
                              "token_type": "Bearer", "issued_at": issued_at,
                              "signature": base64.b64encode(digest).decode(), "scope": "api"})


async def _form(request: Request) -> dict[str, Any]:
    """Form fields from the urlencoded body and the query string (Salesforce accepts both)."""
    body = (await request.body()).decode("utf-8", "replace")
    fields = dict(parse_qsl(request.url.query))
    fields.update(parse_qsl(body))
    return fields


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return client_id, secret
