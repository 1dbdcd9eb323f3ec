"""Test isolation for process-wide state: the shared token cache (``http.client.SHARED_TOKENS``)
is emptied before every test, so a token from one test's simulator never reaches another's."""
from __future__ import annotations

import pytest

from referral_pipeline.clients import salesforce
from referral_pipeline.http.client import SHARED_TOKENS


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    SHARED_TOKENS.clear()
    salesforce.LOGIN_INSTANCES.clear()
    yield
