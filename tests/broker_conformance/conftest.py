"""The broker-conformance suite's targets: the embedded broker, always, and a real broker when
``NGSILD_ADAPTER_TEST_BROKER_URL`` is set (its root, without ``/ngsi-ld/v1``).

Environment of a run against a real broker (Orion-LD with ``-multiservice``, Scorpio...):

``NGSILD_ADAPTER_TEST_BROKER_URL``     the broker's root URL (turns the ``real`` target on)
``NGSILD_ADAPTER_TEST_TEMPORAL_URL``   where its temporal API answers, when elsewhere (Mintaka
                                       beside Orion-LD); default: the broker's URL
``NGSILD_ADAPTER_TEST_CONTEXT_URL``    a URL the broker can download the adapter's own context
                                       from (``contexts/ngsild-adapter.jsonld``, served by the
                                       adapter under ``contexts_url``); default: its official
                                       URL, which needs the internet
``NGSILD_ADAPTER_TEST_BROKER_TOKEN``   a bearer token, when the broker sits behind a PEP

Without the variable the ``real`` parameter is not generated at all: nothing is skipped and
counted. Every test works in a tenant of its own (``conformance_<random>``), with ids of its own,
and deletes the entities and subscriptions it made (a tenant cannot be deleted over the API).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapter.ngsild.broker import create_broker_app

BROKER_URL_VARIABLE = "NGSILD_ADAPTER_TEST_BROKER_URL"
ADAPTER_CONTEXT = "https://w3id.org/ngsild-adapter/context.jsonld"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "broker_differs(reason): an assertion known to differ between brokers (the test accepts each "
        "known answer and the reason names them); see KNOWN_DIFFERENCES in test_conformance.py",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        names = ["embedded", *(["real"] if os.environ.get(BROKER_URL_VARIABLE) else [])]
        metafunc.parametrize("target", names, indirect=True)


@dataclass
class Target:
    """One broker under test, a tenant of this test's own, and what the test made there."""

    name: str  # embedded or real
    url: str
    temporal_url: str
    context_url: str  # the adapter's context, as this broker can download it
    session: aiohttp.ClientSession
    tenant: str
    token: str | None = None
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    made: dict[str, set[str]] = field(default_factory=dict)  # tenant -> entity ids
    subscriptions: dict[str, set[str]] = field(default_factory=dict)  # tenant -> subscription ids

    def entity_id(self, kind: str, n: int) -> str:
        return f"urn:ngsi-ld:{kind}:conformance-{self.run}-{n}"

    def other_tenant(self) -> str:
        return f"{self.tenant}_b"

    def headers(self, tenant: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "NGSILD-Tenant": tenant or self.tenant, **extra}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def api(self, path: str, *, temporal: bool = False) -> str:
        return f"{(self.temporal_url if temporal else self.url).rstrip('/')}/ngsi-ld/v1{path}"


async def _clean(target: Target) -> None:
    for tenant, ids in target.made.items():
        if ids:
            async with target.session.post(
                target.api("/entityOperations/delete"), json=sorted(ids), headers=target.headers(tenant)
            ) as response:
                await response.read()
    for tenant, subscriptions in target.subscriptions.items():
        for subscription in subscriptions:
            async with target.session.delete(
                target.api(f"/subscriptions/{subscription}"), headers=target.headers(tenant)
            ) as response:
                await response.read()


@pytest.fixture
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    tenant = f"conformance_{uuid.uuid4().hex[:12]}"
    async with aiohttp.ClientSession() as session:
        if request.param == "embedded":
            server = TestServer(create_broker_app(), host="127.0.0.1")
            await server.start_server()
            url = str(server.make_url("")).rstrip("/")
            made = Target("embedded", url, url, ADAPTER_CONTEXT, session, tenant)
            try:
                yield made
            finally:
                try:
                    await _clean(made)
                finally:
                    await server.close()
            return
        url = os.environ[BROKER_URL_VARIABLE].rstrip("/")
        made = Target(
            "real",
            url,
            os.environ.get("NGSILD_ADAPTER_TEST_TEMPORAL_URL", url),
            os.environ.get("NGSILD_ADAPTER_TEST_CONTEXT_URL", ADAPTER_CONTEXT),
            session,
            tenant,
            token=os.environ.get("NGSILD_ADAPTER_TEST_BROKER_TOKEN"),
        )
        try:
            yield made
        finally:
            await _clean(made)
