from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def login(demo: Any) -> Any:
    """A logged-in test client for a demo user (the test settings skip the second factor like the demo)."""

    def make(username: str) -> Client:
        client = Client()
        client.force_login(demo.users[username])
        return client

    return make
