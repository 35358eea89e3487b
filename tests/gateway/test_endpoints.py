"""Notification endpoints (adapter.gateway.endpoints): a partner's URL cannot make the gateway
call the broker, the adapter or any internal service, not by its form, not by a redirect, not by
a DNS answer that changes between the check and the connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.config import GatewaySettings, load_config
from adapter.exceptions import ConfigError
from adapter.gateway.endpoints import (
    DeliveryOutcome,
    EndpointPolicy,
    EndpointRefused,
    EndpointUrl,
    address_refusal,
    deliver,
    guarded_connector,
    notification_session,
    parse_endpoint,
    parse_prefix,
)

POLICY = EndpointPolicy((parse_prefix("https://partner.example/hook"), parse_prefix("http://[2606:4700::1111]:8080/")))


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (42, "not_a_string"),
        ("https://partner.example/hook" + "a" * 3000, "too_long"),
        ("ftp://partner.example/hook", "scheme"),
        ("javascript://partner.example/hook", "scheme"),
        ("//partner.example/hook", "not_a_url"),
        ("https:partner.example/hook", "not_a_url"),
        ("https://user:pw@partner.example/hook", "userinfo"),
        ("https://partner.example@evil.example/hook", "userinfo"),
        ("https://evil.example\\@partner.example/hook", "bad_character"),
        ("https://partner.example/hook\\..\\admin", "bad_character"),
        ("https://partner.example/hook\r\nHost: orion", "bad_character"),
        ("https://partner.example/ho\x00ok", "bad_character"),
        ("https://partner\u200b.example/hook", "bad_character"),  # zero-width space
        ("https://partner.example/hook\u202e", "bad_character"),  # bidi override
        ("https://partner.example/hook#frag", "fragment"),
        ("https://partner.example:0443/hook", "bad_port"),
        ("https://partner.example:99999/hook", "bad_port"),
        ("https://partner.example:/hook", "bad_port"),
        ("https://partner.example:+443/hook", "bad_port"),
        ("https://partner.example:44 3/hook", "bad_character"),
        ("http://127.1/hook", "ambiguous_ip"),
        ("http://0x7f.0.0.1/hook", "ambiguous_ip"),
        ("http://0x7f000001/hook", "ambiguous_ip"),
        ("http://2130706433/hook", "ambiguous_ip"),
        ("http://0177.0.0.1/hook", "ambiguous_ip"),
        ("http://127.0.0.01/hook", "ambiguous_ip"),
        ("http://partner.example.1/hook", "ambiguous_ip"),
        ("http://[fe80::1%25eth0]/hook", "zone_id"),
        ("http://[v1.fe]/hook", "bad_host"),
        ("http://::1/hook", "bad_host"),
        ("http://[::1/hook", "bad_host"),
        ("https://partner.example./hook", "bad_host"),
        ("https://partner..example/hook", "bad_host"),
        ("https:///hook", "bad_host"),
        ("https://partner_example/hook", "bad_host"),
        ("https://partner.example%2eevil.example/hook", "bad_host"),
        ("https://xn--zz.example/hook", "bad_host"),
        ("https://partner.example/hook/../admin", "dot_segment"),
        ("https://partner.example/hook/%2e%2E/admin", "dot_segment"),
        ("https://partner.example/hook/./x", "dot_segment"),
        ("https://partner.example/hook%2F..%2Fadmin", "encoded_separator"),
        ("https://partner.example/hook%5cadmin", "encoded_separator"),
        ("https://partner.example/hook%0d%0a", "bad_path"),
        ("https://partner.example/hook%zz", "bad_path"),
        ("https://partner.example/hook/é", "bad_path"),
        ("https://partner.example/hook<script>", "bad_path"),
        ("https://partner.example/hook?a=%00", "bad_query"),
        ("https://partner.example/hook?a=<b>", "bad_query"),
        # well formed, but not under an allowed prefix
        ("https://partner.example/hookevil", "not_allowed"),
        ("https://partner.example/hoo", "not_allowed"),
        ("https://partner.example/", "not_allowed"),
        ("https://partner.example/HOOK", "not_allowed"),
        ("https://partner.example.evil.example/hook", "not_allowed"),
        ("https://evil-partner.example/hook", "not_allowed"),
        ("https://partner.examp1e/hook", "not_allowed"),
        ("https://partner.ex\u0430mple/hook", "not_allowed"),  # Cyrillic a: another IDNA name
        ("http://partner.example/hook", "not_allowed"),  # another scheme
        ("https://partner.example:8443/hook", "not_allowed"),  # another port
        ("http://[2606:4700::1111]:8081/", "not_allowed"),
        ("http://127.0.0.1/hook", "not_allowed"),
    ],
)
def test_hostile_urls_are_refused_with_their_reason(uri: object, reason: str) -> None:
    with pytest.raises(EndpointRefused) as caught:
        POLICY.check(uri)
    assert caught.value.reason == reason, caught.value


@pytest.mark.parametrize(
    ("uri", "normalised"),
    [
        ("https://partner.example/hook", "https://partner.example:443/hook"),
        ("HTTPS://PARTNER.Example:443/hook", "https://partner.example:443/hook"),
        ("https://partner.example/hook/", "https://partner.example:443/hook/"),
        ("https://partner.example/hook/ventilation/42", "https://partner.example:443/hook/ventilation/42"),
        ("https://partner.example/%68ook/%7euser/%c3%a9", "https://partner.example:443/hook/~user/%C3%A9"),
        ("https://partner.example/hook?key=a%2fb&x=1", "https://partner.example:443/hook?key=a%2Fb&x=1"),
        ("https://partner.example/hook?", "https://partner.example:443/hook"),
        ("https://ｐａｒｔｎｅｒ.example/hook", "https://partner.example:443/hook"),  # full-width letters, UTS 46
        ("http://[2606:4700:0::1111]:8080/any/path", "http://[2606:4700::1111]:8080/any/path"),
    ],
)
def test_allowed_urls_are_accepted_in_normal_form(uri: str, normalised: str) -> None:
    url = POLICY.check(uri)
    assert str(url) == normalised
    assert parse_endpoint(str(url)) == url  # the normal form is a fixed point


def test_idna_hosts_are_encoded_and_prefixes_compare_on_the_encoded_form() -> None:
    policy = EndpointPolicy((parse_prefix("https://bücher.example/"),))
    assert policy.check("https://BÜCHER.example/x").host == "xn--bcher-kva.example"
    assert policy.check("https://xn--bcher-kva.example/x").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("prefix", "uri", "allowed"),
    [
        ("https://partner.example/hook", "https://partner.example/hook", True),
        ("https://partner.example/hook", "https://partner.example/hook/", True),
        ("https://partner.example/hook", "https://partner.example/hook/x", True),
        ("https://partner.example/hook", "https://partner.example/hookevil", False),
        ("https://partner.example/hook/", "https://partner.example/hook", True),  # a trailing / is not a segment
        ("https://partner.example/hook/", "https://partner.example/hookx/", False),
        ("https://partner.example/a/b", "https://partner.example/a/bc", False),
        ("https://partner.example/a/b", "https://partner.example/a/b/c", True),
        ("https://partner.example/a/b", "https://partner.example/a", False),
        ("https://partner.example/", "https://partner.example/anything/at/all", True),
        ("https://partner.example/", "https://partner.example.evil.com/", False),
        ("https://partner.example/", "https://evil.com/partner.example/", False),
        ("https://partner.example:8443/", "https://partner.example/", False),
    ],
)
def test_prefixes_match_whole_segments_of_the_same_origin(prefix: str, uri: str, allowed: bool) -> None:
    policy = EndpointPolicy((parse_prefix(prefix),))
    try:
        policy.check(uri)
    except EndpointRefused as exc:
        assert not allowed, exc
    else:
        assert allowed


PREFIX = "https://partner.example/hooks/v1"
_HOSTS = [
    "partner.example",
    "PARTNER.EXAMPLE",
    "partner.example.",
    "partner.example.evil.com",
    "evil.com",
    "partner.example%2e",
    "xn--partner.example",
    "127.0.0.1",
    "[::1]",
    "ｐartner.example",
    "partner.exampl",
]
_SEGMENTS = [
    "hooks",
    "v1",
    "HOOKS",
    "v1evil",
    "hooksv1",
    "..",
    ".",
    "%2e%2e",
    "%2e",
    "%2F",
    "%68ooks",
    "%76%31",
    "x",
    "",
    "a%2fb",
    "%00",
    "\\",
    "é",
    "@",
]


def _mostly(good: str, *others: str) -> st.SearchStrategy[str]:
    """``good`` three times in four, else one of ``others``: URLs near the prefix, some inside."""
    return st.one_of(st.just(good), st.just(good), st.just(good), st.sampled_from(others))


_URL_TEXT = st.text(alphabet="abc/.%2eEfF@:?#\\-_~", max_size=12)


@st.composite
def candidate_urls(draw: st.DrawFn) -> str:
    scheme = draw(_mostly("https", "HTTPS", "http", "ftp", "https:"))
    user = draw(_mostly("", "user@", "partner.example@", ":@"))
    host = draw(_mostly("partner.example", *_HOSTS))
    port = draw(_mostly("", ":443", ":0443", ":8443", ":"))
    first = [draw(_mostly("hooks", *_SEGMENTS)), draw(_mostly("v1", *_SEGMENTS))]
    rest = draw(st.lists(st.one_of(st.sampled_from(_SEGMENTS), _URL_TEXT), max_size=3))
    query = draw(_mostly("", "?a=1", "?a=%2F", "?", "?a=%00"))
    fragment = draw(_mostly("", "#x", "#"))
    return f"{scheme}://{user}{host}{port}/{'/'.join(first + rest)}{query}{fragment}"


def _effective_port(uri: str) -> int:
    parts = urlsplit(uri)
    return parts.port or {"http": 80, "https": 443}[parts.scheme.lower()]


@settings(derandomize=True, max_examples=400, deadline=None)
@given(
    st.one_of(candidate_urls(), candidate_urls(), st.text(max_size=80), st.text(max_size=40).map(lambda t: PREFIX + t))
)
def test_any_url_the_check_accepts_lies_inside_an_allowed_prefix(uri: str) -> None:
    policy = EndpointPolicy((parse_prefix(PREFIX),))
    try:
        url = policy.check(uri)
    except EndpointRefused:
        return  # refusing is always safe; nothing else may come out
    # an independent reading of the accepted string, by the standard library
    parts = urlsplit(uri)
    assert parts.scheme.lower() == "https" and "@" not in parts.netloc and not parts.fragment
    assert (parts.hostname or "").encode("idna").decode().lower() == "partner.example" == url.host
    assert _effective_port(uri) == 443 == url.port
    segments = unquote(parts.path).split("/")[1:]
    assert segments[:2] == ["hooks", "v1"], uri
    assert "." not in segments and ".." not in segments
    assert parse_endpoint(str(url)) == url


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_no_string_makes_the_parser_fail_otherwise_than_by_refusing(text: str) -> None:
    for candidate in (text, "https://" + text, "https://partner.example/" + text):
        try:
            parse_endpoint(candidate)
        except EndpointRefused:
            pass


# -- addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.53.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00::2", "unique-local"),
        ("fc00::1", "unique-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not global"),
        ("192.0.2.10", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),
        ("2002:a00:1::", "private"),  # 6to4
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    why = address_refusal(ip_address(address))
    assert why is not None and kind in why, why


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:93.184.215.14"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ip_address(address)) is None


def test_private_ranges_are_allowed_only_when_configured_and_never_unspecified_or_multicast() -> None:
    allowed = (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))
    assert address_refusal(ip_address("127.0.0.1"), allowed) is None
    assert address_refusal(ip_address("::ffff:127.0.0.1"), allowed) is None
    assert address_refusal(ip_address("127.0.0.2"), allowed) is not None
    assert address_refusal(ip_address("10.9.8.7"), allowed) is None
    assert address_refusal(ip_address("0.0.0.0"), (ip_network("0.0.0.0/0"),)) is not None
    assert address_refusal(ip_address("224.0.0.1"), (ip_network("0.0.0.0/0"),)) is not None


def test_an_ip_literal_url_is_checked_when_the_subscription_is_made() -> None:
    policy = EndpointPolicy((parse_prefix("http://127.0.0.1:9000/"), parse_prefix("http://[::ffff:7f00:1]:9000/")))
    for uri in ("http://127.0.0.1:9000/hook", "http://[::ffff:127.0.0.1]:9000/hook"):
        with pytest.raises(EndpointRefused) as caught:
            policy.check(uri)
        assert caught.value.reason == "address"
    demo = EndpointPolicy(policy.allowed, (ip_network("127.0.0.1/32"),))
    assert demo.check("http://127.0.0.1:9000/hook").port == 9000


def test_the_policy_of_the_gateway_settings(tmp_path: Path) -> None:
    path = tmp_path / "adapter.toml"
    path.write_text(
        '[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[gateway]\n'
        'allowed_notification_urls = ["https://partner.example/hook"]\n'
        'allow_private_notification_addresses = ["127.0.0.1/32", "fd00::/8"]\n'
        'broker_url = "http://orion-ld:1026"\nadapter_url = "http://127.0.0.1:8090"\n'
    )
    config = load_config(path, env={})
    assert config.gateway.allow_private_notification_addresses == (ip_network("127.0.0.1/32"), ip_network("fd00::/8"))
    policy = EndpointPolicy.from_settings(config.gateway)
    assert [str(p) for p in policy.allowed] == ["https://partner.example:443/hook"]
    assert {str(u) for u in policy.internal} == {"http://orion-ld:1026/", "http://127.0.0.1:8090/"}
    from_env = load_config(path, env={"NGSILD_ADAPTER_GATEWAY_ALLOW_PRIVATE_NOTIFICATION_ADDRESSES": "10.0.0.0/8"})
    assert from_env.gateway.allow_private_notification_addresses == (ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('allowed_notification_urls = ["https://partner.example/a/../b"]', "allowed_notification_urls"),
        ('allowed_notification_urls = ["https://user@partner.example/"]', "allowed_notification_urls"),
        ('allowed_notification_urls = ["https://partner.example/?q=1"]', "allowed_notification_urls"),
        ('allow_private_notification_addresses = ["127.0.0.1/8"]', "has host bits set"),
        ('allow_private_notification_addresses = ["localhost"]', "allow_private_notification_addresses"),
        ("allow_private_notification_addresses = [1]", "must be a list of networks"),
    ],
)
def test_notification_settings_mistakes_stop_the_configuration(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "adapter.toml"
    path.write_text(f'[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[gateway]\n{line}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_an_internal_url_that_cannot_be_parsed_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="notification policy"):
        EndpointPolicy.from_settings(GatewaySettings(broker_url="http://orion ld:1026"))


# -- delivery over real sockets --------------------------------------------------------------------


@dataclass
class Endpoint:
    """A local HTTP server that counts what it receives."""

    server: TestServer
    hits: list[bytes] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port


async def _endpoint(
    answer: web.Response | None = None, *, never: asyncio.Event | None = None, redirect_to: str | None = None
) -> Endpoint:
    hits: list[bytes] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        hits.append(await request.read())
        if never is not None:
            await never.wait()
        if redirect_to is not None:
            return web.Response(status=307, headers={"Location": redirect_to})
        return answer if answer is not None else web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Endpoint(server, hits)


@pytest.fixture
async def broker() -> AsyncIterator[Endpoint]:
    endpoint = await _endpoint(web.json_response([]))
    yield endpoint
    await endpoint.server.close()


LOCAL = (ip_network("127.0.0.1/32"),)


async def test_a_redirect_to_the_broker_is_not_followed(broker: Endpoint) -> None:
    target = f"http://127.0.0.1:{broker.port}/ngsi-ld/v1/entities?type=WaterMeter"
    partner = await _endpoint(redirect_to=target)
    try:
        policy = EndpointPolicy(
            (parse_prefix(f"http://127.0.0.1:{partner.port}/hook"),),
            LOCAL,
            (parse_endpoint(f"http://127.0.0.1:{broker.port}"),),
        )
        url = policy.check(f"http://127.0.0.1:{partner.port}/hook")
        async with notification_session(policy) as session:
            delivery = await deliver(session, url, b'{"data": []}', timeout_s=5)
            assert (delivery.outcome, delivery.status) == (DeliveryOutcome.REDIRECTED, 307)
            assert not delivery.ok and target in delivery.detail
            assert partner.hits == [b'{"data": []}'] and broker.hits == []
            # even a client that followed it would not reach the broker through this connector
            with pytest.raises(aiohttp.ClientConnectorError, match="internal service"):
                await session.post(url.to_yarl(), data=b"{}")
        assert broker.hits == []
        async with aiohttp.ClientSession() as plain:  # the control: a plain client does reach it
            async with plain.post(str(url), data=b"{}") as answer:
                assert answer.status == 200
        assert len(broker.hits) == 1
    finally:
        await partner.server.close()


class FakeResolver(AbstractResolver):
    """Answers from a list, one answer per call (the last one repeated): a DNS that rebinds."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host != "partner.example":
            raise OSError(f"{host} does not resolve")
        address = self.answers[min(len(self.calls) - 1, len(self.answers) - 1)] if self.answers else ""
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass


async def test_a_public_looking_name_resolving_to_loopback_is_refused_at_connect_time(broker: Endpoint) -> None:
    policy = EndpointPolicy((parse_prefix(f"http://partner.example:{broker.port}/"),))
    url = policy.check(f"http://partner.example:{broker.port}/ngsi-ld/v1/entities")  # a name: passes the form check
    resolver = FakeResolver(["127.0.0.1"])
    async with notification_session(policy, resolver=resolver) as session:
        delivery = await deliver(session, url, b"{}", timeout_s=5)
    assert delivery.outcome is DeliveryOutcome.REFUSED and "loopback" in delivery.detail
    assert resolver.calls and broker.hits == []


async def test_a_rebinding_dns_answer_is_refused_when_the_connection_is_made(broker: Endpoint) -> None:
    policy = EndpointPolicy((parse_prefix(f"http://partner.example:{broker.port}/"),))
    url = policy.check(f"http://partner.example:{broker.port}/hook")
    resolver = FakeResolver(["93.184.215.14", "127.0.0.1"])  # public when checked, loopback when connected
    connector = guarded_connector(policy, resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as session:
        await connector.check_resolved(url)  # the subscription is accepted
        delivery = await deliver(session, url, b"{}", timeout_s=5)
    assert delivery.outcome is DeliveryOutcome.REFUSED
    assert len(resolver.calls) == 2 and broker.hits == []


async def test_an_unchecked_ip_literal_is_refused_by_the_socket_guard(broker: Endpoint) -> None:
    policy = EndpointPolicy(())  # nothing allowed, no private range
    unchecked = EndpointUrl("http", "127.0.0.1", broker.port, "/ngsi-ld/v1/entities")  # never went through check
    async with notification_session(policy) as session:
        delivery = await deliver(session, unchecked, b"{}", timeout_s=5)
    assert delivery.outcome is DeliveryOutcome.REFUSED and broker.hits == []


async def test_a_notification_is_delivered_once_and_failures_are_typed() -> None:
    never = asyncio.Event()
    ok, refusing, silent = await _endpoint(), await _endpoint(web.Response(status=503)), await _endpoint(never=never)
    try:
        policy = EndpointPolicy(
            tuple(parse_prefix(f"http://127.0.0.1:{e.port}/") for e in (ok, refusing, silent)), LOCAL
        )
        async with notification_session(policy) as session:
            delivered = await deliver(
                session,
                policy.check(f"http://127.0.0.1:{ok.port}/n"),
                b'{"id": 1}',
                timeout_s=5,
                headers={"Content-Type": "text/plain", "Link": "<ctx>"},
            )
            rejected = await deliver(session, policy.check(f"http://127.0.0.1:{refusing.port}/n"), b"{}", timeout_s=5)
            timed_out = await deliver(session, policy.check(f"http://127.0.0.1:{silent.port}/n"), b"{}", timeout_s=0.2)
        assert (delivered.outcome, delivered.status, delivered.ok) == (DeliveryOutcome.DELIVERED, 204, True)
        assert ok.hits == [b'{"id": 1}']
        assert (rejected.outcome, rejected.status) == (DeliveryOutcome.REJECTED, 503)
        assert timed_out.outcome is DeliveryOutcome.TIMEOUT and silent.hits == [b"{}"]
    finally:
        never.set()
        for endpoint in (ok, refusing, silent):
            await endpoint.server.close()


async def test_the_content_type_is_the_gateways_not_the_callers() -> None:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers["Content-Type"])
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/n", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        policy = EndpointPolicy((parse_prefix(f"http://127.0.0.1:{server.port}/"),), LOCAL)
        async with notification_session(policy) as session:
            await deliver(
                session,
                policy.check(f"http://127.0.0.1:{server.port}/n"),
                b"{}",
                timeout_s=5,
                headers={"Content-Type": "text/html"},
                content_type="application/ld+json",
            )
        assert seen == ["application/ld+json"]
    finally:
        await server.close()


async def test_an_unreachable_endpoint_is_a_typed_failure() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = EndpointPolicy((parse_prefix(f"http://127.0.0.1:{port}/"),), LOCAL)
    async with notification_session(policy) as session:
        delivery = await deliver(session, policy.check(f"http://127.0.0.1:{port}/n"), b"{}", timeout_s=5)
    assert delivery.outcome is DeliveryOutcome.UNREACHABLE


async def test_deliver_refuses_a_session_without_the_guarded_connector() -> None:
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError, match="notification_session"):
            await deliver(plain, parse_endpoint("https://partner.example/hook"), b"{}", timeout_s=1)
