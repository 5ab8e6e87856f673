from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def demo(db: Any) -> Any:
    """The demo region (fixtures/demo_region.json) loaded in the test database."""
    from apps.regions.demo import demo_region_load

    return demo_region_load()


@pytest.fixture
def live_demo(transactional_db: Any) -> Any:
    """The demo region committed, for tests that drive other processes (gateway, worker, browser)."""
    from apps.regions.demo import demo_region_load

    return demo_region_load()


@pytest.fixture
def process_env(transactional_db: Any, tmp_path: Any) -> dict[str, str]:
    """Environment for child processes so that they share this test's database and broker."""
    from tests.support.processes import child_env

    return child_env(tmp_path)


@pytest.fixture(autouse=True)
def english_interface(settings: Any) -> None:
    """Assertions read English messages; the product's default (French) is checked by its own test,
    which sets LANGUAGE_CODE back to 'fr'. Child processes (browser tests) keep the real default."""
    settings.LANGUAGE_CODE = "en"
