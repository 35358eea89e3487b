"""The world the provenance end-to-end tests read or tamper with: built once per run
(``support.build_world``); each test takes its own copy (``World.copy``)."""

from __future__ import annotations

import asyncio

import pytest

from tests.provenance_e2e.support import World, build_world


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    return asyncio.run(build_world(tmp_path_factory.mktemp("world") / "w"))
