"""Shared test fixtures: where the repository, the bundled library and ../shared live."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ZOO = SHARED / "zoo"
CONFORMANCE = SHARED / "conformance"


def pytest_configure(config):
    if not SHARED.is_dir():
        raise pytest.UsageError(f"tests need the shared data beside the checkout: {SHARED} is missing")
