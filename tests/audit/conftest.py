from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def checkpoint_file(settings: Any, tmp_path: Path) -> Path:
    """Each test its own checkpoint file: the file outlives the test database's rollback."""
    path = tmp_path / "audit-checkpoints.log"
    settings.PDS_AUDIT_CHECKPOINT_FILE = str(path)
    return path
