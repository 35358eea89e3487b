"""Where the gateway may POST partners' notifications: a URL policy that holds from the
partner's string to the connected socket.

A subscription names its notification endpoint; the gateway POSTs every forwarded
notification there. That URL is the partner's input, and the gateway sits next to the broker
and the adapter, so a URL (or a redirect, or a DNS answer) naming them would turn the gateway
into the partner's proxy to internal services (SSRF). Three checks, each on parsed values:

1. ``parse_endpoint``: the string becomes an ``EndpointUrl`` (http or https, no userinfo, no
   fragment, host lower-cased and IDNA-encoded or a canonical IP address, port explicit, path
   normalised), or is refused with a reason. Anything a URL parser could read two ways is
   refused rather than guessed: control and format characters, backslashes, numeric hosts
   other than a dotted quad (``127.1``, ``0x7f.1``, ``2130706433``, ``0177.0.0.1``), IPv6 zone
   ids, dot segments, encoded slashes.
2. ``EndpointPolicy.check``: the URL is under one of ``[gateway] allowed_notification_urls``,
   compared on scheme, host, port and whole path segments (``/hook`` covers ``/hook`` and
   ``/hook/x``, not ``/hookevil``).
3. The addresses: every address the host resolves to must be public (not loopback,
   link-local, private, unique-local, multicast, reserved, unspecified, nor an IPv4-mapped,
   6to4 or NAT64 form of one), unless it lies in ``[gateway]
   allow_private_notification_addresses``; and never one of the internal services (the
   broker, the adapter, the gateway itself: ``EndpointPolicy.internal``). This holds at
   connection time: ``guarded_connector`` resolves through ``GuardedResolver`` and creates
   every socket through a factory that checks the address it is about to connect to, so a DNS
   answer that changes between the check and the connection (rebinding) is refused too.

``deliver`` POSTs without following redirects (a 3xx is a failed delivery) under a total
timeout, through a session whose connector is guarded, and returns a typed ``Delivery``::

    policy = EndpointPolicy.from_settings(config.gateway)
    url = policy.check(subscription["notification"]["endpoint"]["uri"])  # EndpointRefused: 400
    async with notification_session(policy) as session:
        outcome = await deliver(session, url, body, timeout_s=10)
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import socket
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Literal

import aiohttp
import idna
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from adapter.exceptions import AdapterError, ConfigError

if TYPE_CHECKING:
    from adapter.config import GatewaySettings

__all__ = [
    "AddressRefused",
    "Delivery",
    "DeliveryOutcome",
    "EndpointPolicy",
    "EndpointPrefix",
    "EndpointRefused",
    "EndpointUrl",
    "GuardedConnector",
    "GuardedResolver",
    "address_refusal",
    "deliver",
    "guarded_connector",
    "notification_session",
    "parse_endpoint",
    "parse_prefix",
]

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: RFC 3986: scheme "://" authority path-abempty [ "?" query ] [ "#" fragment ]
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?",
    re.DOTALL,
)
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@/%-]*")
_QUERY = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*")
_PERCENT = re.compile(r"%(?P<hex>[0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: the last label decides whether a URL parser (WHATWG) reads the host as an IPv4 address
_NUMERIC_LABEL = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")
_DOTTED_QUAD = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
_NAT64 = ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ip_network("fc00::/7")


class EndpointRefused(AdapterError):
    """A notification endpoint the gateway will not POST to; ``reason`` is a stable code
    (``bad_character``, ``scheme``, ``userinfo``, ``ambiguous_ip``, ``not_allowed``,
    ``address``...), the message says why for the partner."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class AddressRefused(EndpointRefused, OSError):
    """A resolved or connected address the policy refuses. An ``OSError`` too, so that aiohttp
    treats it as a failed connection (``ClientConnectorError``) and opens nothing."""

    def __init__(self, detail: str) -> None:
        EndpointRefused.__init__(self, "address", detail)
        self.errno, self.strerror = errno.EACCES, detail  # what aiohttp shows of a connection error

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class EndpointUrl:
    """A parsed, normalised notification URL. ``host`` is ASCII: a lower-case IDNA name, or an
    IP address in its canonical text (IPv6 without brackets); ``port`` is always explicit;
    ``path`` starts with ``/``, percent-encoded with unreserved characters decoded and the
    other escapes in upper case; ``query`` is None when there is none."""

    scheme: Literal["http", "https"]
    host: str
    port: int
    path: str = "/"
    query: str | None = None

    @property
    def address(self) -> IPAddress | None:
        """The host when it is an IP address (no resolution then)."""
        try:
            return ip_address(self.host)
        except ValueError:
            return None

    @property
    def segments(self) -> tuple[str, ...]:
        """The path's segments (``/a/b/`` is ``("a", "b", "")``)."""
        return tuple(self.path.split("/")[1:])

    def _authority(self, *, explicit_port: bool) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if not explicit_port and self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query is not None else ""
        return f"{self.scheme}://{self._authority(explicit_port=True)}{self.path}{query}"

    def to_yarl(self) -> URL:
        """The URL to request, already encoded (aiohttp sends it as it is, re-quoting nothing)."""
        query = f"?{self.query}" if self.query is not None else ""
        return URL(f"{self.scheme}://{self._authority(explicit_port=False)}{self.path}{query}", encoded=True)


@dataclass(frozen=True, slots=True)
class EndpointPrefix:
    """One allowed prefix: an origin and the path segments every allowed URL starts with."""

    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]

    def covers(self, url: EndpointUrl) -> bool:
        """Same scheme, host and port, and the path starts with these whole segments."""
        return (url.scheme, url.host, url.port) == (self.scheme, self.host, self.port) and url.segments[
            : len(self.segments)
        ] == self.segments

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{'/'.join(self.segments)}"


def _refuse(reason: str, detail: str) -> EndpointRefused:
    return EndpointRefused(reason, detail)


def _check_characters(text: str) -> None:
    for ch in text:
        if ch == "\\":
            raise _refuse("bad_character", "a backslash is not allowed in a notification URL")
        if ch.isspace() or unicodedata.category(ch).startswith("C"):
            raise _refuse("bad_character", f"character U+{ord(ch):04X} is not allowed in a notification URL")


def _port(text: str, scheme: str) -> int:
    if text == "":
        return _DEFAULT_PORTS[scheme]
    if not text.isascii() or not text.isdigit() or len(text) > 5 or (text.startswith("0")):
        raise _refuse("bad_port", f"port {text!r} must be a number from 1 to 65535 without leading zeros")
    port = int(text)
    if not 1 <= port <= 65535:
        raise _refuse("bad_port", f"port {port} must be from 1 to 65535")
    return port


def _ipv6_host(text: str) -> str:
    inner = text[1:-1]
    if "%" in inner:
        raise _refuse("zone_id", "an IPv6 zone id is not allowed in a notification URL")
    if not re.fullmatch(r"[0-9A-Fa-f:.]+", inner):
        raise _refuse("bad_host", f"[{inner}] is not an IPv6 address")
    try:
        return str(IPv6Address(inner))
    except ValueError as exc:
        raise _refuse("bad_host", f"[{inner}] is not an IPv6 address") from exc


def _name_host(text: str) -> str:
    if not text:
        raise _refuse("bad_host", "the notification URL has no host")
    try:
        mapped = text.lower() if text.isascii() else idna.uts46_remap(text, std3_rules=True, transitional=False)
    except idna.IDNAError as exc:
        raise _refuse("bad_host", f"host {text!r} is not a valid domain name: {exc}") from exc
    labels = mapped.split(".")
    if any(not label for label in labels):
        raise _refuse("bad_host", f"host {text!r} has an empty label (or a trailing dot)")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # a URL parser reads this host as an IPv4 address: accept only the one unambiguous form
        if not _DOTTED_QUAD.fullmatch(mapped):
            raise _refuse(
                "ambiguous_ip",
                f"host {text!r} is a numeric address other than a dotted quad "
                "(octal, hexadecimal, decimal or shortened forms are refused)",
            )
        return str(IPv4Address(mapped))
    try:
        encoded = idna.encode(mapped, uts46=False, std3_rules=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise _refuse("bad_host", f"host {text!r} is not a valid domain name: {exc}") from exc
    if len(encoded) > 253 or not all(_LABEL.fullmatch(label) for label in encoded.split(".")):
        raise _refuse("bad_host", f"host {text!r} is not a valid domain name")
    return encoded


def _host_and_port(authority: str, scheme: str) -> tuple[str, int]:
    if "@" in authority:
        raise _refuse("userinfo", "a notification URL must not carry a user name or password")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise _refuse("bad_host", "an IPv6 address opened with [ is not closed")
        rest = authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _refuse("bad_host", f"unexpected {rest!r} after the IPv6 address")
        if rest == ":":
            raise _refuse("bad_port", "the port after ':' is empty")
        return _ipv6_host(authority[: end + 1]), _port(rest[1:], scheme)
    if authority.count(":") > 1:
        raise _refuse("bad_host", "an IPv6 address must be written in brackets")
    host, colon, port = authority.partition(":")
    if colon and not port:
        raise _refuse("bad_port", "the port after ':' is empty")
    return _name_host(host), _port(port, scheme)


def _normalise_escapes(text: str, where: str, *, forbidden: frozenset[int]) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise _refuse(f"bad_{where}", f"the {where} has a '%' that is not a percent-escape")

    def one(match: re.Match[str]) -> str:
        byte = int(match["hex"], 16)
        if byte in forbidden:
            raise _refuse(
                "encoded_separator" if byte in (0x2F, 0x5C) else f"bad_{where}",
                f"the escape %{byte:02X} is not allowed in the {where} of a notification URL",
            )
        ch = chr(byte)
        return ch if ch in _UNRESERVED else f"%{byte:02X}"

    return _PERCENT.sub(one, text)


_CONTROL_BYTES = frozenset(range(0x20)) | {0x7F}


def _path(text: str) -> str:
    if not _PATH.fullmatch(text):
        raise _refuse("bad_path", "the path holds a character that must be percent-encoded")
    path = _normalise_escapes(text, "path", forbidden=_CONTROL_BYTES | {0x2F, 0x5C}) or "/"
    if any(segment in (".", "..") for segment in path.split("/")):
        raise _refuse("dot_segment", "'.' and '..' segments are not allowed in a notification URL")
    return path


def _query(text: str | None) -> str | None:
    if not text:
        return None
    if not _QUERY.fullmatch(text):
        raise _refuse("bad_query", "the query holds a character that must be percent-encoded")
    return _normalise_escapes(text, "query", forbidden=_CONTROL_BYTES)


def parse_endpoint(uri: object) -> EndpointUrl:
    """``uri`` as a normalised ``EndpointUrl``; raises ``EndpointRefused`` naming the problem.

    Strict on purpose: a URL that two parsers could read differently (the gateway's check and
    the HTTP client's connection) is refused, never interpreted.
    """
    if not isinstance(uri, str):
        raise _refuse("not_a_string", "the notification URL must be a string")
    if len(uri) > MAX_URL_LENGTH:
        raise _refuse("too_long", f"the notification URL is longer than {MAX_URL_LENGTH} characters")
    _check_characters(uri)
    match = _URL.fullmatch(uri)
    if match is None:
        raise _refuse("not_a_url", "the notification URL must be an absolute http:// or https:// URL")
    scheme = match["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        raise _refuse("scheme", f"scheme {scheme!r} is not allowed: http or https only")
    if match["fragment"] is not None:
        raise _refuse("fragment", "a notification URL must not have a fragment (#...)")
    for part in ("path", "query"):
        if not (match[part] or "").isascii():
            raise _refuse(f"bad_{part}", f"the {part} holds non-ASCII characters: percent-encode them")
    host, port = _host_and_port(match["authority"], scheme)
    return EndpointUrl(
        "https" if scheme == "https" else "http", host, port, _path(match["path"]), _query(match["query"])
    )


def parse_prefix(text: str) -> EndpointPrefix:
    """An allowed prefix of ``[gateway] allowed_notification_urls``, parsed like an endpoint
    (a trailing ``/`` is optional: prefixes match whole segments); no query."""
    url = parse_endpoint(text)
    if url.query is not None:
        raise _refuse("bad_query", "an allowed notification URL prefix has no query")
    segments = url.segments
    if segments and segments[-1] == "":
        segments = segments[:-1]
    return EndpointPrefix(url.scheme, url.host, url.port, segments)


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, allowed_private: Sequence[IPNetwork] = ()) -> str | None:
    """Why a notification may not be sent to ``ip`` (None: it may). Public addresses only,
    unless ``ip`` lies in one of ``allowed_private``; unspecified and multicast never."""
    if isinstance(ip, IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            why = address_refusal(embedded, allowed_private)
            return None if why is None else f"{ip} stands for {embedded}: {why}"
        if ip.scope_id is not None:
            return f"{ip} has a zone id"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if any(ip.version == net.version and ip in net for net in allowed_private):
        return None
    for kind, hit in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unique-local", isinstance(ip, IPv6Address) and ip in _UNIQUE_LOCAL),
        ("site-local", isinstance(ip, IPv6Address) and ip.is_site_local),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not global", not ip.is_global),
    ):
        if hit:
            return f"{ip} is a {kind} address"
    return None


def _plain(ip: IPAddress) -> IPAddress:
    if isinstance(ip, IPv6Address):
        return ip.ipv4_mapped or IPv6Address(int(ip))  # without a zone id
    return ip


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Which notification URLs and addresses the gateway may reach.

    ``allowed``: the prefixes (deny by default); ``allowed_private``: networks allowed
    although not public (tests, the demo); ``internal``: the broker, the adapter and the
    gateway itself, never reached whatever the other settings (compared on address and port).
    """

    allowed: tuple[EndpointPrefix, ...]
    allowed_private: tuple[IPNetwork, ...] = ()
    internal: tuple[EndpointUrl, ...] = ()

    @classmethod
    def from_settings(cls, settings: GatewaySettings, *, internal_urls: Iterable[str] = ()) -> EndpointPolicy:
        """The policy of ``[gateway]``: its prefixes and private networks; the broker, the
        adapter and the gateway's public URL as internal services, with ``internal_urls``."""
        try:
            allowed = tuple(parse_prefix(p) for p in settings.allowed_notification_urls)
            urls = [settings.broker_url, settings.adapter_url, settings.public_url, *internal_urls]
            internal = tuple(parse_endpoint(u) for u in urls if u)
        except EndpointRefused as exc:
            raise ConfigError(f"[gateway] notification policy: {exc}") from exc
        return cls(allowed, tuple(settings.allow_private_notification_addresses), internal)

    def check(self, uri: object) -> EndpointUrl:
        """The normalised URL when the gateway may notify it, else ``EndpointRefused``.

        Checks the form, the allowlist and, for an IP-address host, the address; a name's
        addresses are checked when it is resolved (``GuardedResolver``, at each connection)."""
        url = parse_endpoint(uri)
        if not any(prefix.covers(url) for prefix in self.allowed):
            raise _refuse("not_allowed", f"{url} is not under an allowed notification URL")
        if url.address is not None:
            self.refuse_address(url.address, url.port, set())
        return url

    def refuse_address(self, ip: IPAddress, port: int, internal: set[tuple[IPAddress, int]]) -> None:
        """Raise ``AddressRefused`` unless ``ip`` may be connected to on ``port``;
        ``internal`` holds the internal services' resolved (address, port) pairs."""
        why = address_refusal(ip, self.allowed_private)
        if why is not None:
            raise AddressRefused(f"notification address refused: {why}")
        literal = {(_plain(u.address), u.port) for u in self.internal if u.address is not None}
        if (_plain(ip), port) in literal | internal:
            raise AddressRefused(f"notification address refused: {ip} port {port} is an internal service")


class GuardedResolver(AbstractResolver):
    """Resolves through ``inner`` and refuses a host unless every address it resolves to is
    allowed by ``policy``; resolves the internal services' names on the way, for the checks
    of the socket factory."""

    def __init__(self, policy: EndpointPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner if inner is not None else DefaultResolver()
        self.internal: set[tuple[IPAddress, int]] = set()

    async def _internal(self) -> None:
        for service in self.policy.internal:
            if service.address is None:
                try:
                    found = await self._inner.resolve(service.host, service.port, socket.AF_UNSPEC)
                except OSError:
                    continue  # a service that does not resolve cannot be connected to either
                self.internal |= {(_plain(ip_address(r["host"])), service.port) for r in found}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await self._internal()
        results = await self._inner.resolve(host, port, family)
        for result in results:
            try:
                address = ip_address(result["host"])
            except ValueError as exc:
                raise AddressRefused(f"{host} resolved to {result['host']!r}, not an IP address") from exc
            try:
                self.policy.refuse_address(address, result["port"] or port, self.internal)
            except AddressRefused as exc:
                raise AddressRefused(f"{host}: {exc}") from None
        return results

    async def close(self) -> None:
        await self._inner.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that resolves through a ``GuardedResolver`` and checks the address of
    every socket it opens (IP-address hosts bypass resolvers in aiohttp; the socket factory
    does not). Built by ``guarded_connector``."""

    def __init__(self, resolver: GuardedResolver, *, limit: int = 100) -> None:
        self.guard = resolver
        super().__init__(resolver=resolver, socket_factory=self._socket, use_dns_cache=False, limit=limit)

    async def close(self, *, abort_ssl: bool = False) -> None:
        await super().close(abort_ssl=abort_ssl)
        await self.guard.close()  # passed in, so aiohttp leaves it open

    def _socket(self, addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        try:
            address = ip_address(sockaddr[0])
        except ValueError as exc:
            raise AddressRefused(f"cannot check the address {sockaddr[0]!r}") from exc
        self.guard.policy.refuse_address(address, int(sockaddr[1]), self.guard.internal)
        return socket.socket(family, type_, proto)

    async def check_resolved(self, url: EndpointUrl) -> None:
        """Resolve ``url``'s host now and raise ``AddressRefused`` if an address is refused
        (for a subscription's creation: the check at each connection still applies)."""
        if url.address is not None:
            self.guard.policy.refuse_address(url.address, url.port, self.guard.internal)
        else:
            await self.guard.resolve(url.host, url.port, socket.AF_UNSPEC)


def guarded_connector(policy: EndpointPolicy, *, resolver: AbstractResolver | None = None) -> GuardedConnector:
    """A connector that only connects where ``policy`` allows (``resolver``: the DNS
    resolver to guard; the system's by default)."""
    return GuardedConnector(GuardedResolver(policy, resolver))


def notification_session(policy: EndpointPolicy, *, resolver: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """The client session ``deliver`` needs: guarded connector, no proxy from the environment,
    no cookies kept between partners."""
    return aiohttp.ClientSession(
        connector=guarded_connector(policy, resolver=resolver), trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    )


class DeliveryOutcome(str, Enum):
    """What became of one notification."""

    DELIVERED = "delivered"  # the partner answered 2xx
    REDIRECTED = "redirected"  # 3xx: not followed, a failure
    REJECTED = "rejected"  # the partner answered 1xx, 4xx or 5xx
    REFUSED = "refused"  # the address policy refused the connection
    UNREACHABLE = "unreachable"  # DNS or connection failure, TLS error, broken answer
    TIMEOUT = "timeout"  # no complete answer within the time limit


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one POST; ``detail`` is for the logs (never the partner's body)."""

    outcome: DeliveryOutcome
    status: int | None = None
    detail: str = field(default="")

    @property
    def ok(self) -> bool:
        return self.outcome is DeliveryOutcome.DELIVERED


def _refused_in(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused) or isinstance(getattr(seen, "os_error", None), AddressRefused):
            return True
        # aiohappyeyeballs folds several failed addresses into one OSError with their messages
        if isinstance(seen, OSError) and "notification address refused" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def deliver(
    session: aiohttp.ClientSession,
    url: EndpointUrl,
    body: bytes,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> Delivery:
    """POST ``body`` to ``url`` once: no redirect followed, ``timeout_s`` for the whole
    exchange. ``session`` must come from ``notification_session`` (its connector enforces the
    address policy; another session is a programming error: ``TypeError``). Never raises for
    what the partner or the network does."""
    if not isinstance(session.connector, GuardedConnector):
        raise TypeError("deliver needs a session from notification_session (a guarded connector)")
    try:
        async with session.post(
            url.to_yarl(),
            data=body,
            headers={**(headers or {}), "Content-Type": content_type},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            status = response.status
            location = response.headers.get("Location", "")
    except (TimeoutError, asyncio.TimeoutError):
        delivery = Delivery(DeliveryOutcome.TIMEOUT, None, f"no answer within {timeout_s} s")
    except (aiohttp.ClientError, OSError) as exc:
        if _refused_in(exc):
            delivery = Delivery(DeliveryOutcome.REFUSED, None, str(exc)[:300])
        else:
            delivery = Delivery(DeliveryOutcome.UNREACHABLE, None, f"{type(exc).__name__}: {str(exc)[:300]}")
    else:
        if 200 <= status < 300:
            return Delivery(DeliveryOutcome.DELIVERED, status)
        if 300 <= status < 400:
            delivery = Delivery(
                DeliveryOutcome.REDIRECTED, status, f"redirect not followed (Location: {location[:200]!r})"
            )
        else:
            delivery = Delivery(DeliveryOutcome.REJECTED, status, f"the endpoint answered {status}")
    log.warning("notification to %s failed: %s (%s)", url, delivery.outcome.value, delivery.detail)
    return delivery
