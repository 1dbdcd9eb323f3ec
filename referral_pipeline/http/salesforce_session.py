"""A ``requests`` session that lets simple-salesforce talk to a plain-http Salesforce (the sandbox).

simple-salesforce keeps only the host of ``instance_url`` and builds every URL as
``https://{host}/...`` (also for query paging, SObject and Bulk 2.0 calls), and its login flows
post to ``https://{domain}.salesforce.com/services/oauth2/token``. ``session_for_instance``
mounts ``HttpsToHttpAdapter`` for those https prefixes so the requests go to the plain-http
instance instead. For an ``https://`` instance URL (production) the session is left untouched.

    session = session_for_instance(os.environ["SALESFORCE_INSTANCE_URL"], login_domain="acme.my")
    sf = Salesforce(consumer_key=..., consumer_secret=..., domain="acme.my", session=session)
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class HttpsToHttpAdapter(HTTPAdapter):
    """Sends each request to ``http://<target host:port>`` with the same path and query."""

    def __init__(self, target_base_url: str, **kwargs):
        parts = urlsplit(target_base_url)
        if parts.scheme != "http" or not parts.netloc:
            raise ValueError(f"expected a plain-http base URL, got {target_base_url!r}")
        self.target_netloc = parts.netloc
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        parts = urlsplit(request.url)
        request.url = urlunsplit(("http", self.target_netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


def session_for_instance(instance_url: str, login_domain: str | None = None,
                         session: requests.Session | None = None) -> requests.Session:
    """A session for simple-salesforce: when ``instance_url`` is ``http://host:port``, requests to
    ``https://host:port/`` (and, with ``login_domain``, to ``https://{login_domain}.salesforce.com/``)
    are sent to it over plain http. Any other instance URL gets the session unchanged."""
    session = session or requests.Session()
    parts = urlsplit(instance_url)
    if parts.scheme != "http":
        return session
    adapter = HttpsToHttpAdapter(instance_url)
    session.mount(f"https://{parts.netloc}/", adapter)
    if login_domain:
        session.mount(f"https://{login_domain}.salesforce.com/", adapter)
    return session
