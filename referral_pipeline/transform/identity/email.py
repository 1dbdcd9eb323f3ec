"""Email normalization rules of product §3, in Python (the SQL macros in ``macros.sql`` have the
same semantics and are tested on the same cases).

- ``email_normalized``: lower-cased, trimmed (ASCII whitespace: space, tab, CR, LF, form feed).
- ``email_canonical`` (duplicate detection only, never merging): ``email_normalized`` with any
  ``+tag`` removed from the local part; for ``gmail.com`` and ``googlemail.com`` the dots are
  removed from the local part and the domain is written ``gmail.com``. The address is split at its
  last ``@``; a local part that would become empty (``+tag@x.com``) is kept as it is; a string
  without ``@`` is returned normalized but otherwise unchanged.
"""
from __future__ import annotations

WHITESPACE = " \t\n\r\f"
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def email_normalized(email: str | None) -> str | None:
    if email is None:
        return None
    value = email.strip(WHITESPACE).lower()
    return value or None


def email_canonical(email: str | None) -> str | None:
    value = email_normalized(email)
    if value is None or "@" not in value:
        return value
    local, _, domain = value.rpartition("@")
    untagged = local.split("+", 1)[0]
    if untagged:
        local = untagged
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"
