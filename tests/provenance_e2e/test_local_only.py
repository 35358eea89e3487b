"""The paths that answer with values are served to the adapter's own machine only, until the
sharing gateway; the logs and keys (digests and signatures) are public."""

from __future__ import annotations

from unittest import mock

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from adapter.gateway.local import local_only


async def _values(request: web.Request) -> web.Response:
    return web.json_response({"no2": 38.5})


def _request_from(address: str) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (address, 40000) if name == "peername" else default
    return make_mocked_request("GET", "/sparql", transport=transport)


async def test_another_machine_is_refused_with_a_reason() -> None:
    (route,) = local_only([web.get("/sparql", _values)])
    answer = await route.handler(_request_from("10.1.2.3"))
    assert answer.status == 403
    assert b"open_to_network" in answer.body  # type: ignore[attr-defined]


async def test_this_machine_is_served() -> None:
    (route,) = local_only([web.get("/sparql", _values)])
    for address in ("127.0.0.1", "::1"):
        answer = await route.handler(_request_from(address))
        assert answer.status == 200
