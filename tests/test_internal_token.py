"""The adapter's internal routes (/sparql, /provenance/..., /metrics) trust a shared secret,
not a caller's address; the logs and keys stay public (adapter.gateway.local.ServiceGuard)."""

from __future__ import annotations

import hmac
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from adapter.app import AdapterService, provenance_http_routes, serve
from adapter.config import AdapterConfig, load_config
from adapter.exceptions import ConfigError
from adapter.gateway.local import ServiceGuard
from adapter.provenance.integrity.keys import ephemeral_keys
from adapter.provenance.ledger import ProvenanceLedger
from adapter.provenance.runtime import ProvenanceRuntime
from adapter.provenance.store import OxigraphStore
from adapter.state import PipelineState

TOKEN = "s3rvice-token-0123456789abcdef0123456789abcdef"
VARIABLE = "NGSILD_ADAPTER_SERVICE_TOKEN"

CONFIG = """
[[collectivity]]
tenant = "ville"
name = "Ville"

[[connection]]
name = "ville-hook"
collectivity = "ville"
lns = "chirpstack"
transport = "webhook"
allow_unauthenticated = true

[provenance]
key_dir = "keys"
{provenance}

[gateway]
{gateway}
"""


def config(
    tmp_path: Path, *, provenance: str = "", gateway: str = "", env: dict[str, str] | None = None
) -> AdapterConfig:
    path = tmp_path / "adapter.toml"
    path.write_text(CONFIG.format(provenance=provenance, gateway=gateway))
    return load_config(path, env=env or {})


async def _values(request: web.Request) -> web.Response:
    return web.json_response({"no2": 38.5})


def _request(address: str, authorization: str | None = None) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (address, 40000) if name == "peername" else default
    )
    headers = {"Authorization": authorization} if authorization is not None else {}
    return make_mocked_request("GET", "/sparql", headers=headers, transport=transport)


async def _answer(guard: ServiceGuard, address: str, authorization: str | None = None) -> web.Response:
    (route,) = guard.protect([web.get("/sparql", _values)])
    answer = await route.handler(_request(address, authorization))
    assert isinstance(answer, web.Response)
    return answer


# -- without a secret: this machine only, as before ------------------------------------------


async def test_without_a_secret_another_machine_is_refused_with_the_setting_to_use() -> None:
    answer = await _answer(ServiceGuard(), "10.1.2.3")
    assert answer.status == 403
    assert b"service_token_env" in answer.body  # type: ignore[operator]


async def test_without_a_secret_this_machine_is_served() -> None:
    for address in ("127.0.0.1", "::1"):
        assert (await _answer(ServiceGuard(), address)).status == 200


def test_open_to_network_without_a_secret_cannot_be_configured(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="open_to_network = true needs service_token_env"):
        config(tmp_path, provenance="open_to_network = true")
    with pytest.raises(ConfigError, match="needs service_token_env"):
        config(tmp_path, env={"NGSILD_ADAPTER_PROVENANCE_OPEN_TO_NETWORK": "true"})
    with pytest.raises(ValueError):
        ServiceGuard(token=None, open_to_network=True)


# -- with a secret: every caller sends it ------------------------------------------------------

OPEN = ServiceGuard(token=TOKEN, open_to_network=True)


async def test_another_machine_without_the_token_gets_401_with_a_bearer_challenge() -> None:
    answer = await _answer(OPEN, "10.1.2.3")
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"no2" not in answer.body  # type: ignore[operator]


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN[:-1]}",  # a prefix of the secret
        f"Bearer {TOKEN}x",  # the secret and more
        f"Basic {TOKEN}",  # another scheme
        TOKEN,  # no scheme
        "Bearer ",
        "Bearer \u00e9\u00e9\u00e9",  # not ASCII: refused, not an error
        f"Bearer {TOKEN.upper()}",
    ],
)
async def test_a_wrong_token_gets_401(authorization: str) -> None:
    assert (await _answer(OPEN, "10.1.2.3", authorization)).status == 401


async def test_the_right_token_is_served_from_another_machine() -> None:
    assert (await _answer(OPEN, "10.1.2.3", f"Bearer {TOKEN}")).status == 200
    assert (await _answer(OPEN, "10.1.2.3", f"bearer {TOKEN}")).status == 200  # the scheme is case-insensitive


async def test_this_machine_needs_the_token_too_once_one_is_configured() -> None:
    local = ServiceGuard(token=TOKEN, open_to_network=False)
    assert (await _answer(local, "127.0.0.1")).status == 401  # no trust by address
    assert (await _answer(local, "127.0.0.1", f"Bearer {TOKEN}")).status == 200
    assert (await _answer(local, "10.1.2.3", f"Bearer {TOKEN}")).status == 403  # and not from elsewhere unless opened


async def test_the_token_is_compared_in_constant_time() -> None:
    with mock.patch("adapter.gateway.local.hmac.compare_digest", wraps=hmac.compare_digest) as compare:
        assert (await _answer(OPEN, "10.1.2.3", "Bearer guess")).status == 401
        assert (await _answer(OPEN, "10.1.2.3", f"Bearer {TOKEN}")).status == 200
    assert [c.args for c in compare.call_args_list] == [(b"guess", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


# -- the settings -------------------------------------------------------------------------------


def test_the_secret_is_read_from_the_named_variable_and_kept_out_of_repr(tmp_path: Path) -> None:
    settings = config(
        tmp_path,
        provenance=f'service_token_env = "{VARIABLE}"\nopen_to_network = true',
        gateway=f'adapter_token_env = "{VARIABLE}"',
        env={VARIABLE: TOKEN},
    )
    assert settings.provenance.service_token == TOKEN and settings.provenance.open_to_network
    assert settings.gateway.adapter_token == TOKEN and settings.gateway.required_adapter_token() == TOKEN
    assert TOKEN not in repr(settings)
    assert ServiceGuard.from_settings(settings.provenance) == ServiceGuard(TOKEN, True)


def test_a_weak_secret_stops_the_start_of_the_processes_that_use_it(tmp_path: Path) -> None:
    for weak in ("short", "x" * 31, "has spaces in it " * 3, "tab\t" * 10):
        settings = config(
            tmp_path,
            provenance=f'service_token_env = "{VARIABLE}"',
            gateway=f'adapter_token_env = "{VARIABLE}"',
            env={VARIABLE: weak},
        )
        with pytest.raises(ConfigError, match="at least 32 characters"):
            ServiceGuard.from_settings(settings.provenance)
        with pytest.raises(ConfigError, match="at least 32 characters"):
            settings.gateway.required_adapter_token()


def test_a_named_but_unset_variable_stops_the_start_with_one_line(tmp_path: Path) -> None:
    settings = config(
        tmp_path, provenance=f'service_token_env = "{VARIABLE}"', gateway='adapter_token_env = "GW_SECRET"'
    )
    # read by every process (verify, the gateway...): only those that need it refuse
    with pytest.raises(ConfigError, match=f"{VARIABLE} is not set") as caught:
        ServiceGuard.from_settings(settings.provenance)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="GW_SECRET is not set"):
        settings.gateway.required_adapter_token()
    with pytest.raises(ConfigError, match=f"{VARIABLE} is not set"):
        AdapterService(settings, http_port=0)
    AdapterService(settings, http_port=None)  # no HTTP listener: the secret is not needed


async def test_serve_refuses_to_start_before_opening_anything(tmp_path: Path) -> None:
    settings = config(tmp_path, provenance=f'service_token_env = "{VARIABLE}"')
    with pytest.raises(ConfigError, match=f"{VARIABLE} is not set"):
        await serve(settings, host="127.0.0.1", port=0)
    assert not (tmp_path / "var").exists()  # no state opened


# -- the real HTTP surface ------------------------------------------------------------------------


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(text="ngsild_adapter_index_lag 0\n")


@pytest.fixture
async def runtime() -> AsyncIterator[ProvenanceRuntime]:
    state = PipelineState(":memory:")
    ledger = ProvenanceLedger(state.connection, ephemeral_keys("adapter.test"), tenants=["ville"])
    runtime = ProvenanceRuntime(ledger, store=OxigraphStore(None), indexer=None, contexts={})
    yield runtime
    await runtime.close()
    state.close()


async def _served(runtime: ProvenanceRuntime, settings: AdapterConfig, host: str) -> TestServer:
    app = web.Application()
    app.add_routes(provenance_http_routes(runtime, settings, metrics=_metrics))
    server = TestServer(app, host=host)
    await server.start_server()
    return server


ASK = {"query": "ASK { ?s ?p ?o }"}
PUBLIC = ("/logs/ville/key", "/.well-known/jwks.json")


async def test_sparql_and_metrics_need_the_token_on_this_machine_and_the_logs_do_not(
    tmp_path: Path, runtime: ProvenanceRuntime
) -> None:
    settings = config(tmp_path, provenance=f'service_token_env = "{VARIABLE}"', env={VARIABLE: TOKEN})
    server = await _served(runtime, settings, "127.0.0.1")
    async with TestClient(server) as client:
        for path, params in (("/sparql", ASK), ("/metrics", {})):
            assert (await client.get(path, params=params)).status == 401
            assert (await client.get(path, params=params, headers={"Authorization": "Bearer nope"})).status == 401
            served = await client.get(path, params=params, headers={"Authorization": f"Bearer {TOKEN}"})
            assert served.status == 200, path
        assert (
            "ngsild_adapter_index_lag"
            in await (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text()
        )
        for path in PUBLIC:
            assert (await client.get(path)).status == 200, path
        assert (await client.get("/provenance/ville/uplinks/0")).status == 401


def _non_loopback_address() -> str | None:
    """An address of this machine outside the loopback network, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else str(address)


async def test_from_another_address_over_a_real_socket(tmp_path: Path, runtime: ProvenanceRuntime) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address outside loopback")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    unsecured = config(tmp_path / "a")
    secured = config(
        tmp_path / "b", provenance=f'service_token_env = "{VARIABLE}"\nopen_to_network = true', env={VARIABLE: TOKEN}
    )
    for settings, without, with_token in ((unsecured, 403, 403), (secured, 401, 200)):
        server = await _served(runtime, settings, address)
        try:
            async with aiohttp.ClientSession() as session:
                url = str(server.make_url("/sparql"))
                async with session.get(url, params=ASK) as answer:
                    assert answer.status == without
                async with session.get(url, params=ASK, headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
                    assert answer.status == with_token
                async with session.get(str(server.make_url("/logs/ville/key"))) as answer:
                    assert answer.status == 200
        finally:
            await server.close()
