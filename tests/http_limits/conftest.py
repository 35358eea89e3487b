"""The ``limits`` marker: a test names the ``ServerLimits`` fields its server gets."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "limits(**fields): ServerLimits fields of the test's server")
